"""Small conveniences for the notebooks: summary tables, saving figures as they are shown, and
the evaluation steps every behaviour notebook shares (evaluate each trained model through the
store's cache, the common replicate selection, tables and sentences that state the numbers).

```python
selection = select_trained_replicates(store, models, {"n_directions": 8})   # endpoint error, k = 2
evaluations = evaluate_trained(store, models, field_spec(evaluation, "curl"))
table = concat_tables([measures_table(ev, label) for label, ev in evaluations.items()])
summary_table(filter_replicates(table, selection), ("condition", "amplitude"))
```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from robustreach.config import Hyperparameters
from robustreach.evaluate import Evaluation, EvaluationSpec, evaluate, evaluate_models, load_spec
from robustreach.experiment import TrainedModel
from robustreach.measures import LABELS, concat_tables, filter_replicates, measures_table, select_replicates, summarise


def model_table(models: Sequence[TrainedModel]) -> pd.DataFrame:
    """One row per condition: model hash, batches run, best batch and validation per replicate."""
    rows = []
    for trained in models:
        record = trained.record
        rows.append(
            {
                "condition": trained.label,
                "model": record["hash"][:12],
                "status": record.get("status"),
                "batches run": record.get("n_batches_run"),
                "best batch": record.get("best_batch"),
                "best validation loss": np.round(record.get("best_validation", []), 5).tolist(),
                "excluded replicates": record.get("excluded_replicates"),
            }
        )
    return pd.DataFrame(rows).set_index("condition")


def save_and_show(
    store,
    fig: go.Figure,
    identifier: str,
    *,
    models: Sequence[TrainedModel],
    test: dict[str, Any] | None = None,
    figure: dict[str, Any] | None = None,
    evaluation_hash: str | None = None,
) -> None:
    """Record the figure in the results index (identified by its models' hyperparameters, the
    test condition and figure options) and display it."""
    store.save_figure(
        fig,
        identifier,
        train=_training_identity(models),
        test=test or {},
        figure=figure or {},
        model_hashes=[m.record["hash"] for m in models],
        evaluation_hash=evaluation_hash,
    )
    fig.show()


def record_summary(
    store,
    table: pd.DataFrame,
    identifier: str,
    *,
    models: Sequence[TrainedModel],
    test: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Record a table of numbers in the results index, identified as `save_and_show` identifies
    figures, and return it (to display): the findings quote it from there."""
    store.save_summary(table, identifier, train=_training_identity(models), test=test or {}, options=options or {},
                       model_hashes=[m.record["hash"] for m in models])
    return table


def _training_identity(models: Sequence[TrainedModel]) -> dict[str, Any]:
    """What identifies the training side of a figure or table: one model's hyperparameters, or
    several models' condition labels and the hyperparameters they share."""
    if len(models) == 1:
        return models[0].hyperparameters.to_dict()
    return {"conditions": [m.label for m in models], **_shared(models)}


def _shared(models: Sequence[TrainedModel]) -> dict[str, Any]:
    """The hyperparameters on which every model agrees, nested as in the parameter files."""
    dicts = [m.hyperparameters.to_dict() for m in models]
    return {
        section: {k: v for k, v in values.items() if all(d[section].get(k) == v for d in dicts)}
        for section, values in dicts[0].items()
    }


def figure_overview(store, identifier: str | None = None, **where: dict[str, Any]) -> pd.DataFrame:
    """Per figure type: how many figures match `where` (train/test/figure filters) and which
    parameters vary among them (what a reader can filter on)."""
    records = store.find_figures(identifier, **where)
    rows = []
    for name in sorted({r["identifier"] for r in records}):
        varying = store.varying("figures", type=name)
        rows.append({"figure type": name, "figures": sum(r["identifier"] == name for r in records),
                     "parameters that vary": ", ".join(f"{k} ({len(v)})" for k, v in varying.items()) or "-"})
    return pd.DataFrame(rows, columns=["figure type", "figures", "parameters that vary"])


def show_figures(store, identifier: str | None = None, *, annotate: bool = True, limit: int = 12, **where: dict[str, Any]) -> int:
    """Display the saved figures matching the filters, newest first, at most `limit` per type;
    `annotate` writes the identifying parameters on each. Returns how many were shown."""
    records = sorted(store.find_figures(identifier, **where), key=lambda r: (r["identifier"], r.get("created", "")))
    shown: dict[str, int] = {}
    for record in records:
        if shown.get(record["identifier"], 0) >= limit:
            continue
        shown[record["identifier"]] = shown.get(record["identifier"], 0) + 1
        store.load_figure(record, annotate=annotate).show()
    return sum(shown.values())


# --- evaluation helpers shared by the behaviour notebooks ---------------------------------


def evaluate_trained(
    store, models: Sequence[TrainedModel], spec: EvaluationSpec | Mapping[str, Any], *, progress: bool = False
) -> dict[str, Evaluation]:
    """Evaluate every trained model with one spec, cached in `store` under each model's hash
    (`store=None` evaluates without caching). Keys: the models' condition labels."""
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise ValueError(f"evaluate_trained: condition labels must be distinct, got {labels}")
    return evaluate_models(
        {m.label: (m.model, m.hyperparameters) for m in models},
        spec,
        store=store,
        model_hashes={m.label: m.record["hash"] for m in models} if store is not None else None,
        progress=progress,
    )


def field_spec(evaluation: Mapping[str, Any], field: str) -> dict[str, Any]:
    """The centre-out evaluation spec under the test `field` ("curl" or "constant"), with that
    field's amplitudes from `evaluation["amplitudes"]` and the other keys of `evaluation`
    (`n_directions`, `n_realisations`, `seed`, ...) passed through."""
    amplitudes = evaluation.get("amplitudes")
    if not isinstance(amplitudes, Mapping) or field not in amplitudes:
        known = ", ".join(amplitudes) if isinstance(amplitudes, Mapping) else "none"
        raise ValueError(f"evaluation.amplitudes has no list for the field {field!r} (perturbation.type); it has: {known}")
    rest = {key: value for key, value in evaluation.items() if key != "amplitudes"}
    return load_spec({**rest, "perturbation": field, "amplitudes": list(amplitudes[field])}).model_dump(mode="json")


def impulse_spec(impulses: Mapping[str, Any], variable: str) -> dict[str, Any]:
    """The evaluation spec of feedback impulses on `variable` ("pos" or "vel"): amplitudes from
    `impulses["amplitudes"][variable]`, `onset`, `duration` and `direction` into the impulse,
    every other key (`trial_set`, `n_grid`, `n_realisations`, `seed`, ...) passed through."""
    amplitudes = impulses.get("amplitudes")
    if not isinstance(amplitudes, Mapping) or variable not in amplitudes:
        known = ", ".join(amplitudes) if isinstance(amplitudes, Mapping) else "none"
        raise ValueError(f"impulses.amplitudes has no list for the variable {variable!r}; it has: {known}")
    impulse_keys = ("onset", "duration", "direction")
    impulse = {key: impulses[key] for key in impulse_keys if key in impulses}
    rest = {key: value for key, value in impulses.items() if key not in (*impulse_keys, "amplitudes")}
    spec = {**rest, "impulse": {**impulse, "variable": variable, "amplitudes": list(amplitudes[variable])}}
    return load_spec(spec).model_dump(mode="json")


def measures_of(evaluations: Mapping[Any, Evaluation], measures: Sequence[str] | None = None) -> pd.DataFrame:
    """One long measures table (`measures.measures_table`) of several models' evaluations."""
    return concat_tables([measures_table(evaluation, label, measures) for label, evaluation in evaluations.items()])


def condition_indices(evaluation: Evaluation, **labels: float) -> list[int]:
    """Indices of the test conditions whose labels have these values, e.g. `amplitude=2.0`."""
    unknown = [name for name in labels if evaluation.conditions and name not in evaluation.conditions[0]]
    if unknown:
        raise KeyError(f"condition_indices: no test label {unknown}; the labels are {list(evaluation.conditions[0])}")
    found = [i for i, c in enumerate(evaluation.conditions) if all(c[name] == value for name, value in labels.items())]
    if not found:
        raise ValueError(f"condition_indices: no test condition has {labels}; they are {list(evaluation.conditions)}")
    return found


def unperturbed_context(hp: Hyperparameters) -> float | None:
    """The context input an unperturbed training trial receives (None without a context input):
    `off_value` for the binary variant, 0 for the amplitude and std-scaled variants."""
    if hp.context.variant == "none":
        return None
    return hp.context.off_value if hp.context.variant == "binary" else 0.0


def select_trained_replicates(
    store,
    models: Sequence[TrainedModel],
    evaluation: Mapping[str, Any] | None = None,
    *,
    measure: str = "endpoint_error",
    k: float = 2.0,
) -> pd.DataFrame:
    """Replicate selection shared by every notebook (`measures.select_replicates`): `measure`
    on unperturbed centre-out reaches, with the unperturbed context input, and per training
    condition the replicates within best + `k` * std. `evaluation` gives `n_directions`,
    `n_realisations` and `seed` (other keys are ignored); evaluations go through the store."""
    keys = ("n_directions", "n_realisations", "seed", "reach_length", "n_grid")
    base = {key: value for key, value in (evaluation or {}).items() if key in keys}
    tables = []
    for trained in models:
        context = unperturbed_context(trained.hyperparameters)
        spec = base if context is None else {**base, "context": [context]}
        result = evaluate(trained.model, trained.hyperparameters, spec, store=store,
                          model_hash=trained.record["hash"] if store is not None else None)
        tables.append(measures_table(result, trained.label, [measure]))
    return select_replicates(concat_tables(tables), measure, k=k)


def summary_table(
    table: pd.DataFrame, by: Sequence[str] = ("condition", "amplitude"), measures: Sequence[str] | None = None, *, digits: int = 3
) -> pd.DataFrame:
    """Mean ± population std of each measure per group, one column per measure (for display).

    Takes a long measures table; NaN values (e.g. never settled) are skipped, and a group with
    none left shows "never". Columns are the measures' readable names (`measures.LABELS`).
    """
    rows = table if measures is None else table[table["measure"].isin(list(measures))]
    if rows.empty:
        raise ValueError(f"summary_table: no rows for the measures {list(measures or [])}; the table has {sorted(set(table['measure']))}")
    summary = summarise(rows, tuple(by))
    text = [
        "never" if n == 0 else f"{mean:.{digits}g} ± {std:.{digits}g}"
        for mean, std, n in zip(summary["mean"], summary["std"], summary["n"])
    ]
    wide = summary.assign(text=text).pivot(index=list(by), columns="measure", values="text")
    order = [m for m in (measures or dict.fromkeys(rows["measure"])) if m in wide.columns]
    return wide[order].rename(columns=LABELS).rename_axis(columns=None)


def measure_summary(
    table: pd.DataFrame, measure: str, by: Sequence[str], *, selection: pd.DataFrame | None = None, **where: Any
) -> pd.DataFrame:
    """`measures.summarise` of one measure per `by` group, over the rows that match `where`
    (e.g. `amplitude=2.0`) of the replicates included by `selection`."""
    rows = table[table["measure"] == measure]
    if rows.empty:
        raise ValueError(f"measure_summary: no rows for measure {measure!r}; the table has {sorted(set(table['measure']))}")
    for column, value in where.items():
        if column not in rows:
            raise KeyError(f"measure_summary: no column {column!r} to filter on; columns: {list(rows.columns)}")
        rows = rows[rows[column] == value]
    if selection is not None:
        rows = filter_replicates(rows, selection)
    if rows.empty:
        raise ValueError(f"measure_summary: no rows of {measure!r} left with {where}")
    return summarise(rows, tuple(by)).drop(columns="measure")


def trend_text(summary: pd.DataFrame, *, x: str, label: str, by: str = "condition", digits: int = 3) -> str:
    """Markdown that states a summary's numbers: per `by` group, the mean ± std of `label` at
    the first and last value of `x`, and how much smaller or larger in magnitude each group's
    mean is than the first group's there.

    `summary` has columns `by`, `x`, `mean`, `std` (e.g. `measures.lateral_deviation_summary`).
    """
    missing = sorted({by, x, "mean", "std"} - set(summary.columns))
    if missing:
        raise KeyError(f"trend_text: the summary lacks the columns {missing}")
    fmt = lambda row: f"{row['mean']:.{digits}g} ± {row['std']:.{digits}g}"
    name = x.replace("_", " ")
    groups = list(dict.fromkeys(summary[by]))
    lines, reference = [f"**{label}** (mean ± std):", ""], None
    for group in groups:
        rows = summary[summary[by] == group].sort_values(x)
        first, last = rows.iloc[0], rows.iloc[-1]
        line = f"- {group}: {fmt(first)} at {name} {first[x]:g}, {fmt(last)} at {name} {last[x]:g}"
        if reference is None:
            reference = last
        elif reference[x] == last[x] and reference["mean"] != 0:  # compare magnitudes: peak responses are signed
            change = 100.0 * (abs(last["mean"]) - abs(reference["mean"])) / abs(reference["mean"])
            line += f" ({abs(change):.0f}% {'smaller' if change < 0 else 'larger'} than {groups[0]} there)"
        lines.append(line)
    return "\n".join(lines)
