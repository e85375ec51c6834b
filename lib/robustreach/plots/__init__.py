"""Plotly figure builders, one module per family of figures, sharing `plots.style`.

- `style`: colour scales per kind of variable (`colours`, `colour_map`), `apply_style`,
  `add_zero_line`;
- `trajectories`: 2D centre-out paths, aligned trajectories with per-trial hover;
- `profiles`: velocity / force profiles over time, mean ± 1 std;
- `distributions`: distributions of behavioural measures across test conditions;
- `sweeps`: a measure's mean ± std against a swept test value (context input, amplitude);
- `training`: loss histories per term and replicate;
- `fixed_points`: fixed points and eigen-spectra.

Every builder returns a `plotly.graph_objects.Figure`. The package imports nothing heavy at
import time, so `from robustreach.plots import style` stays cheap.
"""

from robustreach.plots.style import add_zero_line, apply_style, colour_map, colours, with_alpha

__all__ = ["add_zero_line", "apply_style", "colour_map", "colours", "with_alpha"]
