"""Training history: per-batch metrics, validation loss, snapshots, best batch, exclusions.

Arrays have shape `(n_batches, n_conditions, n_replicates)`; validation slots not computed
are NaN (never zeros). For one condition, `condition_history` gives the plain-dict form that
is saved beside a model and read by the plots (`loss/<term>` of shape
`(n_batches, n_replicates)`, `best_batch` of shape `(n_replicates,)`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from robustreach.train.step import METRIC_NAMES


def empty_history(n_batches: int, n_conditions: int, n_replicates: int) -> dict[str, np.ndarray]:
    """NaN-filled arrays for every metric and the validation loss."""
    shape = (n_batches, n_conditions, n_replicates)
    history = {name: np.full(shape, np.nan, np.float32) for name in METRIC_NAMES}
    history["validation"] = np.full(shape, np.nan, np.float32)
    return history


def best_batches(validation: np.ndarray, snapshots: np.ndarray) -> np.ndarray:
    """Per (condition, replicate), the snapshot batch with the lowest validation loss."""
    at_snapshots = validation[snapshots]  # (n_snapshots, C, R)
    filled = np.where(np.isnan(at_snapshots), np.inf, at_snapshots)
    return snapshots[np.argmin(filled, axis=0)]


def excluded_replicates(measure: np.ndarray, k: float) -> np.ndarray:
    """Replicates whose measure exceeds `best + k * std` over replicates (per condition, last axis)."""
    with warnings.catch_warnings():  # all-NaN rows (a diverged run) are all excluded, silently
        warnings.simplefilter("ignore", RuntimeWarning)
        best = np.nanmin(measure, axis=-1, keepdims=True)
        spread = np.nanstd(measure, axis=-1, keepdims=True)
    return ~(measure <= best + k * spread)


def condition_history(history: dict[str, np.ndarray], condition: int, snapshots: np.ndarray, k: float, n_done: int) -> dict[str, Any]:
    """The history of one condition, trimmed to the batches run, with best batch and exclusions."""
    best = best_batches(history["validation"][:n_done], snapshots[snapshots < n_done])[condition]
    best_loss = history["validation"][best, condition, np.arange(best.shape[0])]
    result: dict[str, Any] = {f"loss/{name}": history[name][:n_done, condition] for name in (*METRIC_NAMES[:5], "training")}
    result.update(
        {
            "learning_rate": history["learning_rate"][:n_done, condition, 0],
            "perturbation_scale": history["perturbation_scale"][:n_done, condition, 0],
            "validation/total": history["validation"][:n_done, condition],
            "snapshot_batches": snapshots[snapshots < n_done],
            "best_batch": best,
            "best_validation": best_loss,
            "excluded": excluded_replicates(best_loss, k),
        }
    )
    return result
