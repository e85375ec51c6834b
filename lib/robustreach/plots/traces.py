"""The numbers a saved figure draws, back as a table: its traces' points, one row each.

A figure in the results index is the record of what a notebook showed; reading its traces
gives the findings the same numbers without re-running an analysis (or needing the library
version that drew it).

```python
fig = store.load_figure(record)
points = trace_table(fig)          # trace, panel, x, y; and error (error bars), customdata_i
```
Plotly writes arrays as base64 typed arrays in its JSON ({"dtype", "bdata", "shape"}); they are
decoded here. Traces without `y` (images, annotations) are left out.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

__all__ = ["as_array", "trace_table"]


def as_array(values: Any) -> np.ndarray | None:
    """A trace attribute as a NumPy array: lists as they are, plotly's typed arrays decoded."""
    if values is None:
        return None
    if isinstance(values, dict) and "bdata" in values:
        array = np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"]))
        shape = values.get("shape")
        if shape:
            array = array.reshape([int(n) for n in str(shape).split(",")])
        return array
    return np.asarray(values, dtype=object if _mixed(values) else None)


def trace_table(fig: go.Figure) -> pd.DataFrame:
    """One row per drawn point: `trace` (its name), `panel` (its x axis: "x", "x2", ...), `x`,
    `y`, `error` (the error bar, where drawn) and `customdata_0...` (per-point extra data, such
    as the replicate a violin's point comes from)."""
    frames = []
    for number, trace in enumerate(fig.data):
        y = as_array(trace.y)
        if y is None or y.ndim != 1:
            continue
        x = as_array(trace.x)
        frame = pd.DataFrame({
            "trace": trace.name if trace.name is not None else f"trace {number}",
            "panel": getattr(trace, "xaxis", None) or "x",
            "x": x if x is not None and len(x) == len(y) else np.arange(len(y)),
            "y": y.astype(float),
        })
        error_y = getattr(trace, "error_y", None)
        error = as_array(error_y.array) if error_y is not None else None
        if error is not None and len(error) == len(y):
            frame["error"] = error.astype(float)
        customdata = as_array(trace.customdata)
        if customdata is not None and len(customdata) == len(y):
            columns = customdata.reshape(len(y), -1)
            for i in range(columns.shape[1]):
                frame[f"customdata_{i}"] = columns[:, i]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["trace", "panel", "x", "y"])


def _mixed(values: Any) -> bool:
    """Whether a list holds strings or rows of mixed types (kept as objects, not coerced)."""
    flat = np.asarray(values, dtype=object).ravel()
    return any(isinstance(v, str) for v in flat)
