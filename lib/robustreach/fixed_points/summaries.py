"""What the notebooks show of goal sweeps: tables per training condition and context, and
sentences that state their numbers (so narrative never claims more than the run found).

Every function takes `sweeps`, `{condition label: GoalSweep}` (e.g. from
`fixed_points.cache.goal_sweeps`), and returns tables with a leading `condition` column (the
training condition; not the eigenvalue condition number of `spectra_table`, which is left out).

```python
continuum_table(sweeps)              # per condition and context: fixed points per goal, smoothness
Markdown(continuum_text(continuum_table(sweeps)))
stability_table(sweeps)              # stable / saddle (unstable modes) / rotational pairs
leading = leading_mode_summary(sweeps)   # per replicate and context, over goals
Markdown(dynamics_text(leading, stability_table(sweeps)))
```
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from jaxtyping import ArrayLike, Float

from robustreach.fixed_points.sweep import GoalSweep

# Largest median relative error of the first-order prediction between neighbouring goals for
# which the hold points count as one smooth sheet: a jump between branches misses by ~100%.
TANGENT_TOL = 0.25


def _by_condition(sweeps: Mapping[str, GoalSweep], table: Callable[[GoalSweep], pd.DataFrame]) -> pd.DataFrame:
    frames = []
    for label, sweep in sweeps.items():
        frame = table(sweep)
        if len(frame):
            frames.append(frame.assign(condition=label)[["condition", *frame.columns]])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def centre_goal(points: pd.DataFrame) -> int:
    """Index of the goal nearest the centre of the goals (the workspace centre on an odd grid)."""
    goals = points[["goal", "goal_x", "goal_y"]].drop_duplicates("goal")
    xy = goals[["goal_x", "goal_y"]].to_numpy()
    return int(goals["goal"].to_numpy()[np.argmin(np.linalg.norm(xy - xy.mean(axis=0), axis=1))])


def hold_points(sweeps: Mapping[str, GoalSweep]) -> pd.DataFrame:
    """The `points` rows of every sweep's hold points (where each hold trial comes to rest)."""
    return _by_condition(sweeps, lambda s: s.points[s.points["is_hold_point"]] if len(s.points) else s.points)


def goal_distances(points: pd.DataFrame, digits: int = 3) -> pd.Series:
    """Each row's goal distance from the centre goal, rounded (for colouring by goal)."""
    centre = points[points["goal"] == centre_goal(points)][["goal_x", "goal_y"]].to_numpy()[0]
    return np.round(np.hypot(points["goal_x"] - centre[0], points["goal_y"] - centre[1]), digits)


def spectra_at(sweep: GoalSweep, **where: Any) -> pd.DataFrame:
    """Rows of `sweep.spectra` whose key columns equal the given values (e.g. `goal=12`), with
    each point's `goal_distance` from the centre goal and its `stability` added."""
    unknown = sorted(set(where) - set(sweep.spectra.columns))
    if unknown:
        raise KeyError(f"spectra_at: no column {unknown}; key columns are replicate, goal, context, is_hold_point")
    points = sweep.points.assign(goal_distance=goal_distances(sweep.points)).set_index("point")
    rows = sweep.spectra.assign(**{column: points.loc[sweep.spectra["point"], column].to_numpy()
                                   for column in ("goal_distance", "stability")})
    for column, value in where.items():
        rows = rows[rows[column] == value]
    if rows.empty:
        raise ValueError(f"spectra_at: no eigenvalues with {where}")
    return rows.reset_index(drop=True)


def continuum_table(sweeps: Mapping[str, GoalSweep], *, tangent_tol: float = TANGENT_TOL) -> pd.DataFrame:
    """Per training condition and context (over replicates): distinct fixed points per goal,
    goals where none was found, the share of stable hold points, how far hold points of
    neighbouring goals lie apart against the spread of distinct points within a goal, the
    relative error of the first-order prediction `(I - J)^-1 B du` of that step (median and
    max), the share of the hold points' variance across goals in 2 PCs (lowest replicate),
    and `smooth`: every goal has a point and the median error is below `tangent_tol`."""

    def one(sweep: GoalSweep) -> pd.DataFrame:
        if sweep.conditions.empty:
            return pd.DataFrame()
        keys = ["context"]
        conditions = sweep.conditions.groupby(keys)
        out = pd.DataFrame({
            "replicates": conditions["replicate"].nunique(), "goals": conditions["goal"].nunique(),
            "mean_distinct": conditions["n_distinct"].mean(), "max_distinct": conditions["n_distinct"].max(),
            "goals_without_point": conditions["n_distinct"].agg(lambda n: int(np.sum(n == 0))),
            "max_within_goal_spread": conditions["within_goal_spread"].max(),
        })
        if len(sweep.points):
            hold = sweep.points[sweep.points["is_hold_point"]].groupby(keys)
            out["hold_points_stable"] = hold["stability"].agg(lambda s: float(np.mean(s == "stable")))
        if len(sweep.neighbours):
            neighbours = sweep.neighbours.groupby(keys)
            out["median_neighbour_distance"] = neighbours["distance"].median()
            out["median_tangent_error"] = neighbours["tangent_error"].median()
            out["max_tangent_error"] = neighbours["tangent_error"].max()
        if "hold_variance_in_2_pcs" in sweep.summary:
            out["hold_variance_in_2_PCs"] = sweep.summary.groupby(keys)["hold_variance_in_2_pcs"].min()
        smooth = (out["goals_without_point"] == 0) & (out.get("median_tangent_error", np.inf) < tangent_tol)
        return out.assign(smooth=smooth.to_numpy()).reset_index()

    return _by_condition(sweeps, one)


def by_context(table: pd.DataFrame, *, digits: int = 3) -> pd.DataFrame:
    """A per-(condition, context) table turned for reading: one column per condition and
    context, one row per quantity (underscores as spaces), numbers to `digits` significant
    digits, True/False as yes/no, NaN as a dash."""

    def text(value: Any) -> Any:
        if isinstance(value, (bool, np.bool_)):
            return "yes" if value else "no"
        if isinstance(value, (float, np.floating)):
            return "–" if np.isnan(value) else f"{value:.{digits}g}"
        return value

    turned = table.set_index(["condition", "context"]).T.map(text)
    return turned.rename(index=lambda name: str(name).replace("_", " "))


def _values(frame: pd.DataFrame, column: str, fmt: str = ".3g") -> str:
    low, high = frame[column].min(), frame[column].max()
    return f"{low:{fmt}}" if np.isclose(low, high, rtol=1e-3) else f"{low:{fmt}} to {high:{fmt}}"


def _where(frame: pd.DataFrame) -> str:
    return "; ".join(f"{row.condition}, context {row.context:g}" for row in frame.itertuples())


def continuum_text(table: pd.DataFrame, *, tangent_tol: float = TANGENT_TOL) -> str:
    """Markdown stating what a `continuum_table` shows: coverage, multiplicity, and whether
    the hold points form a smooth sheet parameterised by the goal."""
    if table.empty:
        return "No fixed points were found in any condition: nothing to say about their arrangement."
    lines = []
    missing = table[table["goals_without_point"] > 0]
    if missing.empty:
        lines.append(f"Every goal had a fixed point in every replicate and context ({table['goals'].max()} goals).")
    else:
        lines.append(f"Some goals had no fixed point with q below the tolerance ({_where(missing)}): the search "
                     "did not converge there, so those conditions are incomplete (more `n_starts` or less "
                     "`noise_std` may help).")
    if (table["max_distinct"] <= 1).all():
        lines.append("Each goal had exactly one distinct fixed point, so the starting states all converged to "
                     "the point where the hold trial rests.")
    else:
        many = table[table["max_distinct"] > 1]
        lines.append(f"Some goals had several distinct fixed points (up to {many['max_distinct'].max():.0f}, mean "
                     f"{_values(many, 'mean_distinct', '.2f')} per goal in {_where(many)}); the hold point is the "
                     "one nearest to where the hold trial rests.")
    if "median_tangent_error" in table and table["median_tangent_error"].notna().any():
        rows = table.dropna(subset=["median_tangent_error"])
        lines.append(f"Hold points of neighbouring goals lie {_values(rows, 'median_neighbour_distance')} apart "
                     f"(median), and the first-order prediction (I − J)⁻¹ B Δu misses that step by "
                     f"{_values(rows, 'median_tangent_error', '.1%')} (median; at most "
                     f"{rows['max_tangent_error'].max():.1%}).")
        rough = rows[~rows["smooth"]]
        if rough.empty:
            flat = rows["hold_variance_in_2_PCs"].min() if "hold_variance_in_2_PCs" in rows else np.nan
            shape = (f"; the first two principal components hold at least {flat:.1%} of their variance across "
                     "goals, so the sheet is nearly flat" if flat >= 0.95 else
                     f"; the first two principal components hold {flat:.1%} of their variance across goals, "
                     "so the sheet is curved" if np.isfinite(flat) else "")
            lines.append("Within each context the hold points therefore form a continuum, a smooth sheet "
                         f"parameterised by the goal, rather than isolated attractors{shape}.")
        else:
            lines.append(f"In {_where(rough)} the median error reaches {tangent_tol:.0%} or more (or goals lack a "
                         "point): there the hold points jump between branches, or the goal grid is coarse for "
                         "the manifold's curvature, so they do not form one smooth sheet.")
    return " ".join(lines)


def tolerance_text(options: Mapping[str, Any], hidden_size: int) -> str:
    """The q convention next to the tolerances used, with the per-unit residual they allow."""
    tol_q, dedup = float(options["tol_q"]), float(options["dedup_tol"])
    rms = np.sqrt(2 * tol_q / hidden_size)
    return (f"Residual: q = ½‖F(h, u*) − h‖², summed over the {hidden_size} hidden units (not a mean). A candidate "
            f"counts as a fixed point when q < tol_q = {tol_q:.0e}, i.e. a root-mean-square residual below "
            f"√(2 tol_q / {hidden_size}) = {rms:.1e} per unit; candidates closer than {dedup:g} on [h, u] are merged, "
            f"keeping the lowest q. {options['n_starts']} starting states per goal and context: hold-trial states "
            f"plus N(0, {float(options['noise_std']):g}²) noise per unit.")


def _saddle_counts(n_unstable: pd.Series) -> str:
    counts = n_unstable[n_unstable > 0].value_counts().sort_index()
    return ", ".join(f"{n} × {k}" for k, n in counts.items()) or "–"


def stability_table(sweeps: Mapping[str, GoalSweep], *, hold_only: bool = False) -> pd.DataFrame:
    """Per training condition and context: how many distinct fixed points are stable, saddles
    or unstable (saddles listed as `count × unstable modes`), and the median numbers of
    rotational (complex-conjugate) pairs and slow modes per point."""

    def one(sweep: GoalSweep) -> pd.DataFrame:
        points = sweep.points
        if points.empty:
            return points
        points = points[points["is_hold_point"]] if hold_only else points
        grouped = points.groupby("context")
        return pd.DataFrame({
            "points": grouped.size(),
            "stable": grouped["stability"].agg(lambda s: int(np.sum(s == "stable"))),
            "saddle": grouped["stability"].agg(lambda s: int(np.sum(s == "saddle"))),
            "unstable": grouped["stability"].agg(lambda s: int(np.sum(s == "unstable"))),
            "saddles by unstable modes": grouped["n_unstable"].agg(_saddle_counts),
            "rotational pairs (median)": grouped["n_rotational_pairs"].median(),
            "slow modes (median)": grouped["n_slow"].median(),
            "leading mode complex": grouped["lead_imag"].agg(lambda v: float(np.mean(np.abs(v) > 0))),
        }).reset_index()

    return _by_condition(sweeps, one)


def leading_mode_summary(sweeps: Mapping[str, GoalSweep]) -> pd.DataFrame:
    """Per training condition, replicate and context: the median over goals of the hold
    points' leading `|lambda|` and time constant `tau_1` (medians of each), with the range of
    `|lambda_1|` over goals. The rows suit `plots.fixed_points.leading_modes`."""

    def one(sweep: GoalSweep) -> pd.DataFrame:
        if sweep.points.empty:
            return sweep.points
        hold = sweep.points[sweep.points["is_hold_point"]].groupby(["replicate", "context"])
        return pd.DataFrame({
            "goals": hold.size(), "lead_abs": hold["lead_abs"].median(), "lead_tau": hold["lead_tau"].median(),
            "lead_abs_min": hold["lead_abs"].min(), "lead_abs_max": hold["lead_abs"].max(),
        }).reset_index()

    return _by_condition(sweeps, one)


def readout_overlap_table(
    sweeps: Mapping[str, GoalSweep],
    *,
    slow_tau: float,
    readouts: Mapping[str, Float[ArrayLike, "replicate out hidden"]] | None = None,
) -> pd.DataFrame:
    """How strongly the hold points' modes show in the readout, per training condition and
    context: the overlap `||W v|| / (||W||_2 ||v||)` of the leading mode (mean over goals and
    replicates), the number of slow modes (`tau > slow_tau`) per point and their mean overlap,
    and the other stable modes' mean overlap. With `readouts` (each condition's readout weights,
    one matrix per replicate) the root-mean-square overlap of a random unit direction,
    `||W||_F / (sqrt(n_hidden) ||W||_2)` (mean over replicates), is given as a baseline."""
    baselines = {}
    for label, weights in (readouts or {}).items():
        weights = np.asarray(weights, float)
        weights = weights[None] if weights.ndim == 2 else weights
        # E||W v||^2 = ||W||_F^2 / n for v uniform on the unit sphere.
        baselines[label] = float(np.mean([np.linalg.norm(w) / np.sqrt(w.shape[1]) / np.linalg.norm(w, 2)
                                          for w in weights]))

    def one(sweep: GoalSweep) -> pd.DataFrame:
        spectra = sweep.spectra
        if spectra.empty or "readout_overlap" not in spectra:
            return pd.DataFrame()
        spectra = spectra[spectra["is_hold_point"]]
        rows = []
        for context, part in spectra.groupby("context"):
            slow = part[(part["abs"] < 1) & (part["tau"] > slow_tau)]
            other = part[(part["abs"] < 1) & ~(part["tau"] > slow_tau)]
            rows.append({
                "context": context,
                "leading mode overlap": part.loc[part["mode"] == 0, "readout_overlap"].mean(),
                "slow modes per point": len(slow) / part["point"].nunique(),
                "slow modes overlap": slow["readout_overlap"].mean() if len(slow) else np.nan,
                "other stable modes overlap": other["readout_overlap"].mean() if len(other) else np.nan,
            })
        return pd.DataFrame(rows)

    table = _by_condition(sweeps, one)
    if baselines and len(table):
        table["random direction overlap"] = table["condition"].map(baselines)
    return table


def input_sv_table(sweeps: Mapping[str, GoalSweep]) -> pd.DataFrame:
    """Long table of the singular values of `dF/du` at every hold point: condition, replicate,
    context, goal, `sv_index` (1 = largest), `measure` ("singular value of dF/du"), `value`
    (the shape `plots.sweeps.measure_curves` draws)."""

    def one(sweep: GoalSweep) -> pd.DataFrame:
        if sweep.points.empty:
            return sweep.points
        hold = sweep.points[sweep.points["is_hold_point"]]
        sv = sweep.input_sv[hold["point"].to_numpy()]
        n_sv = sv.shape[1]
        return pd.DataFrame({
            "replicate": np.repeat(hold["replicate"].to_numpy(), n_sv),
            "context": np.repeat(hold["context"].to_numpy(), n_sv),
            "goal": np.repeat(hold["goal"].to_numpy(), n_sv),
            "sv_index": np.tile(np.arange(1, n_sv + 1), len(hold)),
            "measure": "singular value of dF/du", "value": sv.ravel(),
        })

    return _by_condition(sweeps, one)


def _trend(values: Sequence[float]) -> str:
    steps = np.diff(np.asarray(values, float))
    if len(steps) == 0:
        return "is measured at one context value only"
    if np.all(steps > 0):
        return "rises monotonically"
    if np.all(steps < 0):
        return "falls monotonically"
    return "changes non-monotonically"


def _listing(contexts: np.ndarray, values: np.ndarray, fmt: str = ".3f") -> str:
    return ", ".join(f"{c:g}: {v:{fmt}}" for c, v in zip(contexts, values))


def _extremes(contexts: np.ndarray, values: np.ndarray) -> str:
    return f"lowest at context {contexts[np.argmin(values)]:g}, highest at {contexts[np.argmax(values)]:g}"


def dynamics_text(
    leading: pd.DataFrame,
    stability: pd.DataFrame,
    *,
    readout: pd.DataFrame | None = None,
    input_sv: pd.DataFrame | None = None,
) -> str:
    """Markdown on how the context input changes the hold points' dynamics, per condition:
    the leading `|lambda|` and `tau_1` (median over replicates of the per-replicate medians
    over goals of `leading_mode_summary`) at each context, their trend and how close to 1 they
    come; the stability counts of `stability_table`; with `readout` (`readout_overlap_table`)
    how the slow modes show in the output; with `input_sv` (`input_sv_table`) how the largest
    singular value of `dF/du` changes. Only what the numbers show is claimed."""
    if leading.empty:
        return "No hold points were found, so there are no spectra to describe."
    lines = []
    for condition, rows in leading.groupby("condition", sort=False):
        per_context = rows.groupby("context")[["lead_abs", "lead_tau"]].median().sort_index()
        contexts = per_context.index.to_numpy()
        lead = per_context["lead_abs"].to_numpy()
        tau = per_context["lead_tau"].to_numpy()
        trend = _trend(lead)
        text = (f"- **{condition}**: the leading |λ| of the hold points (median) {trend} with the context "
                f"({_listing(contexts, lead)}"
                + (f"; {_extremes(contexts, lead)}" if trend.startswith("changes") else "")
                + f"); τ₁ is {tau[0]:.3g} time units at context {contexts[0]:g} and {tau[-1]:.3g} at {contexts[-1]:g}.")
        nearest = int(np.argmin(np.abs(1 - lead)))
        if np.any(lead >= 1):
            text += f" At context {', '.join(f'{c:g}' for c in contexts[lead >= 1])} the leading mode does not decay."
        elif trend.startswith(("rises", "falls")):
            direction = "higher" if trend.startswith("rises") else "lower"
            text += (f" The leading eigenvalue approaches 1 as the context gets {direction} (closest at context "
                     f"{contexts[nearest]:g}, |λ| = {lead[nearest]:.3f}): the slowest return to the hold point "
                     "takes longer there.")
        counts = stability[stability["condition"] == condition] if not stability.empty else stability
        if len(counts):
            n, stable = int(counts["points"].sum()), int(counts["stable"].sum())
            if stable == n:
                text += f" All {n} distinct fixed points are stable."
            else:
                text += (f" Of {n} distinct fixed points {stable} are stable, {int(counts['saddle'].sum())} saddles "
                         f"and {int(counts['unstable'].sum())} unstable.")
        if readout is not None and len(readout):
            text += _readout_sentence(readout[readout["condition"] == condition])
        if input_sv is not None and len(input_sv):
            text += _input_sentence(input_sv[input_sv["condition"] == condition])
        lines.append(text)
    return "\n".join(lines)


def _readout_sentence(rows: pd.DataFrame) -> str:
    if rows.empty:
        return ""
    slow = rows.dropna(subset=["slow modes overlap"])
    if slow.empty:
        return " No mode of the hold points is slower than the slow-mode threshold."
    baseline = (f", a random direction {rows['random direction overlap'].iloc[0]:.2f}"
                if "random direction overlap" in rows else "")
    return (f" Slow modes appear at context {', '.join(f'{c:g}' for c in slow['context'])} "
            f"({_values(slow, 'slow modes per point', '.2g')} per point) and overlap the readout by "
            f"{_values(slow, 'slow modes overlap', '.2f')}, against {_values(rows, 'other stable modes overlap', '.2f')} "
            f"for the other stable modes{baseline}.")


def _input_sentence(rows: pd.DataFrame) -> str:
    if rows.empty:
        return ""
    first = rows[rows["sv_index"] == 1]
    per_context = first.groupby("context")["value"].median().sort_index()
    contexts, values = per_context.index.to_numpy(), per_context.to_numpy()
    trend = _trend(values)
    text = f" The largest singular value of dF/du (median) {trend} with the context ({_listing(contexts, values)})"
    if trend.startswith(("rises", "falls")):
        text += (f": the constant input moves the state more strongly at {'higher' if trend.startswith('rises') else 'lower'}"
                 " context values")
    return text + "."


def training_context_note(context: Mapping[str, Any], contexts: Sequence[float]) -> str:
    """Which swept context values the network met in training, from the `context` section
    (`variant`, `on_value`, `off_value`): binary models saw only the two values, std-scaled
    ones U(0, 1) draws and 0, amplitude ones N(0, 1) draws and 0 (beyond ±2 is rare)."""
    values = np.asarray(contexts, float).ravel()
    variant = context.get("variant", "none")
    if variant == "binary":
        seen = np.array([float(context["off_value"]), float(context["on_value"])])
        unseen = [c for c in values if not np.any(np.isclose(c, seen))]
        where = f"only {seen[0]:g} (unperturbed) and {seen[1]:g} (perturbed) in training"
    elif variant == "std_scaled":
        unseen = [c for c in values if not 0 <= c <= 1]
        where = "values in [0, 1] in training (0 on unperturbed trials)"
    elif variant == "amplitude":
        unseen = [c for c in values if abs(c) > 2]
        where = "N(0, 1) draws in training (0 on unperturbed trials), so |values| above 2 were rare"
    else:
        return "These models take no context input."
    if not unseen:
        return f"The network met {where}; every swept context value lies within that."
    return (f"The network met {where}: the context values {', '.join(f'{c:g}' for c in unseen)} lie outside "
            "that, so they show how its dynamics generalise.")
