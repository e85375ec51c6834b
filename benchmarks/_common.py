"""Helpers shared by the benchmark scripts: timing, tables and JSON summaries."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax


def best_time(function: Callable[[], Any], repeats: int = 5) -> float:
    """Best wall time of `repeats` calls (seconds); results are blocked on before stopping."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function())
        times.append(time.perf_counter() - start)
    return min(times)


def machine() -> dict[str, Any]:
    device = jax.devices()[0]
    return {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "device": getattr(device, "device_kind", str(device)),
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    """Rows of dicts as an aligned text table."""
    columns = list(rows[0])
    cells = [[_format(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))


def summary_path(name: str) -> Path:
    """`benchmarks/<name>.json` (or `<name>-<backend>.json` off the CPU)."""
    backend = jax.default_backend()
    return Path(__file__).with_name(f"{name}.json" if backend == "cpu" else f"{name}-{backend}.json")


def write_summary(name: str, summary: dict[str, Any]) -> Path:
    """Write the summary to `summary_path(name)`."""
    path = summary_path(name)
    path.write_text(json.dumps({"machine": machine(), **summary}, indent=2))
    print(f"\nwrote {path}")
    return path


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
