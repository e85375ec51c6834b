"""Fixed points of a step function `F(h, u)`, their Jacobians and eigenmodes.

`q = 1/2 ||F(h, u) - h||^2` (a sum over units) is the residual measure everywhere.

- `finder`: `find_fixed_points` (Adam, then Levenberg-Marquardt with the exact Jacobian),
  `verify_float64`, `sample_starts`, `CellStep`.
- `filtering`: tolerance, outliers, de-duplication (`filter_fixed_points`).
- `linearise`: Jacobians, eigendecomposition, tidy tables of labels and spectra.
- `sweep` (import it explicitly; it needs the reaching model): `goal_sweep`, fixed points of
  a trained ensemble resting at each goal, per replicate and context value.
- `cache`: goal sweeps of trained models cached in the results index (`goal_sweeps`), and the
  sweep parameters checked before any work (`sweep_options`).
- `summaries`: tables and sentences of goal sweeps for the notebooks (continuum, stability,
  leading modes, readout overlap, input singular values).
- `checks`: re-linearising a sweep's points, and the one-step check of the linearisation.
- `continuation`: pseudo-arclength continuation of fixed points along a path of inputs
  (`continue_branches`, `InputPath`, `points_at`).
- `bifurcations`: where a branch's stability changes (`locate_bifurcations`: fold, branch
  point, flip, Neimark-Sacker), eigenvalues along branches.
- `hold_branches` (import it explicitly; it needs the reaching model): a trained model's hold
  points continued across context and along goals, tables, text and their cache.
"""

from robustreach.fixed_points.filtering import Filtered, deduplicate, filter_fixed_points, outlier_mask
from robustreach.fixed_points.finder import (
    CellStep,
    FixedPointResult,
    StepFn,
    find_fixed_points,
    q_value,
    sample_starts,
    verify_float64,
)
from robustreach.fixed_points.linearise import (
    Linearisation,
    eigendecompose,
    jacobians,
    linearisation_error,
    linearise,
    points_table,
    readout_gain,
    spectra_table,
    time_constants,
)

__all__ = [
    "CellStep", "Filtered", "FixedPointResult", "Linearisation", "StepFn", "deduplicate",
    "eigendecompose", "filter_fixed_points", "find_fixed_points", "jacobians", "linearisation_error",
    "linearise", "outlier_mask", "points_table", "q_value", "readout_gain", "sample_starts",
    "spectra_table", "time_constants", "verify_float64",
]
