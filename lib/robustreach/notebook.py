"""Small conveniences for the notebooks: summary tables and saving figures as they are shown."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from robustreach.experiment import TrainedModel


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
) -> dict[str, Any]:
    """Record the figure in the results index (identified by its models' hyperparameters, the
    test condition and figure options) and display it."""
    train = models[0].hyperparameters.to_dict() if len(models) == 1 else {"conditions": [m.label for m in models], **_shared(models)}
    record = store.save_figure(
        fig,
        identifier,
        train=train,
        test=test or {},
        figure=figure or {},
        model_hashes=[m.record["hash"] for m in models],
        evaluation_hash=evaluation_hash,
    )
    fig.show()
    return record


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
