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
