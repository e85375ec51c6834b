"""Training history: loss per term and replicate on a log scale, with each best batch marked.

History format (what the trainer returns and the store saves as the "history" side file), a
dict of arrays:

- `loss/<term>`: shape (n_batches, n_replicates), the weighted training loss term per batch
  (terms such as `total`, `position`, `final_velocity`, `controller_output`, `hidden`);
- `best_batch`: shape (n_replicates,), the batch kept for each replicate;
- optional `validation/<term>`: validation loss, shape (n_batches, n_replicates) with NaN at
  batches without validation, or (n_validations, n_replicates) together with
  `validation_batch` (n_validations,) giving the batch of each row.

```python
loss_history(history)                          # every term, every replicate
loss_history(history, terms=["total"], replicates=[0, 2])
```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from robustreach.plots.style import apply_style, colours

LOSS_PREFIX, VALIDATION_PREFIX = "loss/", "validation/"


def _validation(history: Mapping[str, Any], term: str, n_batches: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(batches, values) of a validation term, rows without any finite value dropped."""
    key = VALIDATION_PREFIX + term
    if key not in history:
        return None
    values = np.asarray(history[key], float)
    batches = np.asarray(history["validation_batch"]) if "validation_batch" in history else np.arange(n_batches)
    if values.ndim != 2 or values.shape[0] != len(batches):
        raise ValueError(f"history[{key!r}] has shape {values.shape}; expected ({len(batches)}, n_replicates)")
    keep = np.isfinite(values).any(axis=1)
    return batches[keep], values[keep]


def loss_history(
    history: Mapping[str, Any],
    *,
    terms: Sequence[str] | None = None,
    replicates: Sequence[int] | None = None,
    title: str | None = None,
) -> go.Figure:
    """Lines per (term, replicate) over batches, log y; a star at each replicate's best batch
    on its total loss (validation total when recorded)."""
    available = [key[len(LOSS_PREFIX):] for key in history if key.startswith(LOSS_PREFIX)]
    if not available:
        raise KeyError(f"loss_history: no 'loss/<term>' arrays in the history; keys: {sorted(history)}")
    terms = list(available if terms is None else terms)
    missing = [t for t in terms if t not in available]
    if missing:
        raise KeyError(f"loss_history: no term(s) {missing} in the history; it has {available}")
    shapes = {t: np.shape(history[LOSS_PREFIX + t]) for t in available}
    n_batches, n_replicates = shapes[available[0]] if len(shapes[available[0]]) == 2 else (None, None)
    if n_batches is None or any(s != (n_batches, n_replicates) for s in shapes.values()):
        raise ValueError(f"loss_history: every 'loss/<term>' must have shape (n_batches, n_replicates); got {shapes}")
    replicates = list(range(n_replicates) if replicates is None else replicates)
    bad = [r for r in replicates if not 0 <= r < n_replicates]
    if bad:
        raise ValueError(f"loss_history: replicate(s) {bad} out of range 0..{n_replicates - 1}")

    batches = np.asarray(history.get("batch", np.arange(n_batches)))
    palette = dict(zip(terms, colours("term", terms)))
    fig = go.Figure()
    for term in terms:
        values = np.asarray(history[LOSS_PREFIX + term], float)
        validation = _validation(history, term, n_batches)
        for i, r in enumerate(replicates):
            fig.add_scatter(
                x=batches, y=values[:, r], mode="lines", name=term, legendgroup=term, showlegend=i == 0,
                line={"color": palette[term], "width": 1}, opacity=0.8,
                customdata=np.full(n_batches, r),
                hovertemplate=f"{term}<br>replicate %{{customdata}}<br>batch %{{x}}<br>%{{y:.4g}}<extra></extra>",
            )
            if validation is not None:
                fig.add_scatter(
                    x=validation[0], y=validation[1][:, r], mode="markers", name=f"{term} (validation)",
                    legendgroup=f"{term} (validation)", showlegend=i == 0,
                    marker={"color": palette[term], "size": 5, "symbol": "circle-open"},
                    customdata=np.full(len(validation[0]), r),
                    hovertemplate=f"{term} (validation)<br>replicate %{{customdata}}<br>batch %{{x}}<br>%{{y:.4g}}<extra></extra>",
                )

    if "best_batch" in history:
        best = np.asarray(history["best_batch"], int)
        if best.shape != (n_replicates,):
            raise ValueError(f"loss_history: best_batch has shape {best.shape}; expected ({n_replicates},)")
        reference = "total" if "total" in available else terms[0]
        validation = _validation(history, reference, n_batches)
        xs, ys = [], []
        for r in replicates:
            y = np.nan
            if validation is not None and best[r] in validation[0]:
                y = validation[1][list(validation[0]).index(best[r]), r]
            if not np.isfinite(y):
                y = np.asarray(history[LOSS_PREFIX + reference], float)[list(batches).index(best[r]), r]
            xs.append(best[r])
            ys.append(y)
        fig.add_scatter(
            x=xs, y=ys, mode="markers", name="best batch", marker={"symbol": "star", "size": 12, "color": "black"},
            customdata=np.asarray(replicates), hovertemplate="best batch %{x} of replicate %{customdata}<br>"
            f"{reference} %{{y:.4g}}<extra></extra>",
        )
    fig.update_yaxes(type="log", title_text="loss")
    fig.update_xaxes(title_text="batch")
    return apply_style(fig, title=title)
