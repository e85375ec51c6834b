"""A part's findings from the results index: the runs of its parameter file with the time each
took, the models they used (hashes, training condition, validation loss), and chosen figures
as PNG files, so that `docs/findings.md` names what it shows and can be regenerated.

```python
findings = part_findings("params/part1-short.yml", "results")
findings.runs, findings.models                      # pandas tables
pngs = export_part_figures(findings, "results", "docs/findings/part1-short", ["behaviour/aligned_trajectories"])
print(findings_markdown(findings, pngs, relative_to="docs/findings"))
numbers = saved_summaries(findings, "results", ["behaviour/measures"])   # tables the notebooks recorded
numbers += figure_summaries(findings, "results", ["behaviour/distributions/endpoint_error"])
numbers = export_long_tables(numbers, "docs/findings/part1-short")   # long ones as CSV, linked
```
`figure_summaries` reads the numbers back from the saved figures' traces (`plots.traces`):
median and quartiles over trials, with the range of the replicates' medians, for violins and
boxes; mean, std and count for curves with error bars. `scripts/findings.py PARAMFILE...` does
all of this from the command line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from robustreach.batch.runs import plan_runs
from robustreach.hashing import short_hash
from robustreach.paramfiles import file_models, load_paramfile
from robustreach.plots.traces import trace_table
from robustreach.store import ResultsStore
from robustreach.store.query import MISSING, lookup, varying_fields
from robustreach.train.runner import existing_model

__all__ = [
    "NumbersTable", "PartFindings", "export_part_figures", "figure_summaries", "findings_markdown", "markdown_table",
    "part_findings", "saved_summaries", "summarise_points",
]


@dataclass(frozen=True)
class PartFindings:
    """The runs and models of one parameter file, as the results index holds them."""

    part: str  # the parameter file's stem
    paramfile: Path
    runs: pd.DataFrame  # notebook, run, status, minutes, error
    models: pd.DataFrame  # model, the varied hyperparameters, status, batches, validation, commit
    model_hashes: list[str]  # full hashes of the models found


def part_findings(paramfile: str | Path, results: str | Path = "results", *, root: str | Path = ".") -> PartFindings:
    """The runs the file plans (with their records: status and minutes; "not run" without one)
    and the models its notebooks look up (with their newest usable record; "not trained")."""
    pf = load_paramfile(paramfile, root=root)
    store = ResultsStore(results)
    store.require_index()
    run_rows = []
    for spec in plan_runs(pf, results, store=store):
        found = store.find("runs", {"hash": spec.hash})
        record = found[0] if found else {}
        duration = record.get("duration_s")
        error = record.get("error") or {}
        run_rows.append({
            "notebook": spec.notebook,
            "run": short_hash(spec.hash),
            "status": record.get("status", "not run"),
            "minutes": None if duration is None else round(duration / 60, 1),
            "error": f"{error.get('ename')}: {error.get('evalue')}" if error else "",
        })

    planned = file_models(pf)
    varied = varying_fields([{"hyperparameters": m.hyperparameters.to_dict()} for m in planned])
    model_rows, hashes = [], []
    for model in planned:
        record = existing_model(store, model.hyperparameters)
        values = model.hyperparameters.to_dict()
        row = {"model": short_hash(record["hash"]) if record else "", "parameters": short_hash(model.hash)}
        for name in varied:  # the training condition: what differs among the part's models
            value = lookup({"hyperparameters": values}, name)
            row[name] = None if value is MISSING else value
        if record is None:
            row.update(status="not trained")
        else:
            hashes.append(record["hash"])
            validation = np.asarray(record.get("best_validation") or [np.nan], float)
            row.update(
                status=record["status"],
                batches=record.get("n_batches_run"),
                replicates=len(validation),
                validation_median=float(np.nanmedian(validation)),
                validation_range=f"{np.nanmin(validation):.3g}-{np.nanmax(validation):.3g}",
                commit=(((record.get("provenance") or {}).get("git") or {}).get("commit") or "")[:12],
            )
        model_rows.append(row)
    return PartFindings(pf.path.stem, pf.path, pd.DataFrame(run_rows), pd.DataFrame(model_rows), hashes)


def export_part_figures(
    findings: PartFindings, results: str | Path, directory: str | Path, identifiers: list[str]
) -> list[Path]:
    """PNG files of the figures under `identifiers` drawn from the part's models (a figure's
    models all among them), named by identifier and what distinguishes them within the part."""
    store = ResultsStore(results)
    records = _part_figure_records(findings, store, identifiers)
    if not records:
        return []
    return store.export_figures(records, directory, formats=("png",), names_among_exported=True)


@dataclass(frozen=True)
class NumbersTable:
    """Numbers the findings quote: their identifier, a title, what distinguishes them from the
    other records of that identifier (e.g. the test field), and the table itself."""

    identifier: str
    title: str
    distinguishing: list[tuple[str, Any]]
    table: pd.DataFrame
    file: Path | None = None  # where the table was written as CSV, when too long to show inline


MAX_INLINE_ROWS = 120  # longer tables go to CSV files beside the page (`export_long_tables`)


def export_long_tables(numbers: list[NumbersTable], directory: str | Path,
                       max_rows: int = MAX_INLINE_ROWS) -> list[NumbersTable]:
    """Write each table of more than `max_rows` rows to `directory` as CSV (named by identifier
    and what distinguishes it), and return the tables with `file` set for those; a page then
    links to the file instead of printing thousands of rows."""
    out, used = [], set()
    for item in numbers:
        if len(item.table) <= max_rows:
            out.append(item)
            continue
        name = item.identifier.replace("/", "-") + "".join(f"__{k}={v}" for k, v in item.distinguishing)
        name = re.sub(r"[^A-Za-z0-9_.=-]+", "_", name)
        stem, k = name, 1
        while name in used:
            k += 1
            name = f"{stem}__{k}"
        used.add(name)
        path = Path(directory) / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        item.table.to_csv(path, index=False)
        out.append(replace(item, file=path))
    return out


def _ours(findings: PartFindings, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records drawn from the part's models only."""
    ours = set(findings.model_hashes)
    return [record for record in records if record.get("model_hashes") and set(record["model_hashes"]) <= ours]


def _part_figure_records(findings: PartFindings, store: ResultsStore, identifiers: list[str]) -> list[dict[str, Any]]:
    return [record for identifier in identifiers for record in _ours(findings, store.find_figures(identifier))]


def summarise_points(points: pd.DataFrame) -> pd.DataFrame:
    """Per trace and x value: for distributions (several points at one x) n, median, quartiles
    and, where each point names its replicate (`customdata_1`), the range of the replicates'
    medians; for curves with error bars (one point per x) the mean, the std and the count
    (`customdata_1`, as `plots.sweeps.measure_curves` stores it)."""
    keys = ["trace", "x"] + (["panel"] if points["panel"].nunique() > 1 else [])
    rows = []
    for key, group in points.groupby(keys, sort=False):
        row = dict(zip(keys, key))
        values = group["y"].to_numpy(float)
        if len(group) == 1 and "error" in group:
            row.update(mean=values[0], std=float(group["error"].iloc[0]))
            if "customdata_1" in group:
                row["n"] = int(float(group["customdata_1"].iloc[0]))
        else:
            row.update(n=len(values), median=float(np.median(values)), q25=float(np.quantile(values, 0.25)),
                       q75=float(np.quantile(values, 0.75)))
            if "customdata_1" in group:
                medians = group.groupby("customdata_1")["y"].median()
                row.update(replicates=len(medians), replicate_medians=f"{medians.min():.3g}-{medians.max():.3g}")
        rows.append(row)
    table = pd.DataFrame(rows)
    try:  # violins put their x values as text ("0.5"); numbers sort and print as numbers
        table["x"] = pd.to_numeric(table["x"])
    except (ValueError, TypeError):
        pass
    return table


def figure_summaries(findings: PartFindings, results: str | Path, identifiers: list[str]) -> list[NumbersTable]:
    """The numbers of the part's saved figures under `identifiers`, read back from their traces
    (`summarise_points`), in the order of `identifiers`."""
    store = ResultsStore(results)
    summaries = []
    for record in _part_figure_records(findings, store, identifiers):
        fig = store.load_figure(record)
        points = trace_table(fig)
        if points.empty:
            continue
        title = fig.layout.title.text or record["identifier"]
        summaries.append(NumbersTable(record["identifier"], title, store.identifying(record), summarise_points(points)))
    return summaries


def saved_summaries(findings: PartFindings, results: str | Path, identifiers: list[str]) -> list[NumbersTable]:
    """The summary tables the part's notebooks recorded (`notebook.record_summary`) under
    `identifiers`, in that order."""
    store = ResultsStore(results)
    tables = []
    for identifier in identifiers:
        records = _ours(findings, store.find_summaries(identifier))
        for record in records:
            distinguishing = store.identifying(record, records) if len(records) > 1 else []
            tables.append(NumbersTable(record["identifier"], record["identifier"], distinguishing, store.load_summary(record)))
    return tables


def findings_markdown(findings: PartFindings, figures: list[Path], *, relative_to: str | Path,
                      numbers: list[NumbersTable] = ()) -> str:
    """The part's tables and figures as Markdown (figure links relative to `relative_to`)."""
    lines = [
        f"## {findings.part}: runs",
        "",
        f"The runs of `{findings.paramfile.name}` (minutes: the run's whole notebook, training included).",
        "",
        markdown_table(findings.runs),
        "",
        f"## {findings.part}: models",
        "",
        ("Model hashes as in `robustreach db ls models`; validation: the selected snapshot's task loss "
         "per replicate (median, range)."),
        "",
        markdown_table(findings.models),
        "",
    ]
    if numbers:
        lines += [f"## {findings.part}: numbers", "",
                  ("The summary tables the notebooks recorded, and numbers read back from saved figures "
                   "(per training condition or trace and test value: median and quartiles over trials with "
                   "the range of the replicates' medians, or a curve's mean and std)."), ""]
        for item in numbers:
            what = ", ".join(f"{name}={value}" for name, value in item.distinguishing)
            lines += [f"### {item.title}", "", f"`{item.identifier}`" + (f" ({what})" if what else ""), ""]
            if item.file is not None:
                link = Path(os.path.relpath(item.file, relative_to)).as_posix()
                lines += [f"{len(item.table)} rows, columns {', '.join(map(str, item.table.columns))}: [{item.file.name}]({link})", ""]
            else:
                lines += [markdown_table(item.table), ""]
    if figures:
        lines += [f"## {findings.part}: figures", ""]
        for path in figures:
            lines += [f"![{path.stem}]({Path(os.path.relpath(path, relative_to)).as_posix()})", ""]
    return "\n".join(lines)



def markdown_table(table: pd.DataFrame) -> str:
    """`table` as a Markdown (pipe) table: floats to 4 significant digits, missing values empty."""

    def cell(value) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        return (f"{value:.4g}" if isinstance(value, float) else str(value)).replace("|", "\\|")

    rows = [[str(c) for c in table.columns], ["---"] * len(table.columns)]
    rows += [[cell(v) for v in row] for row in table.itertuples(index=False)]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)
