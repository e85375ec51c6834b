"""Fixed-point figures: eigenvalue spectra, fixed points in PCA space, leading modes.

```python
lin = linearise(step, points.h, points.u)
spectra = spectra_table(lin, dt=0.05, keys=keys)      # keys: context, replicate, goal, ...
eigenvalue_spectra(spectra, colour_by="context")       # complex plane, unit circle beneath
pca = pca_basis(trajectory.hidden)                      # PCA of hidden trajectories (NumPy SVD)
fixed_points_pca(pca, points.h, lin, trajectories=trajectory.hidden)   # modes as segments
sweep_pca(sweep, replicate=0, lin=lin)                  # a goal sweep's points, by context
leading_modes(points_table(lin, dt=0.05, keys=keys), x="context", colour_by="replicate")
```
Colours follow `plots.style`: a column named `context` uses the diverging context scale,
`replicate` the replicate palette; any other column is treated as unordered categories.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from jaxtyping import ArrayLike, Float
from plotly.subplots import make_subplots

from robustreach.fixed_points.linearise import Linearisation
from robustreach.plots.style import Kind, add_zero_line, apply_style, colour_map

if TYPE_CHECKING:
    from robustreach.fixed_points.sweep import GoalSweep

UNIT_CIRCLE = {"color": "#9a9a9a", "width": 1, "dash": "dot"}
_KIND_OF_COLUMN = {"context": "context", "replicate": "replicate"}
_SPECTRUM_COLUMNS = {"point", "mode", "eig_real", "eig_imag", "abs", "angle", "tau", "frequency", "unstable",
                     "condition", "readout_gain", "readout_overlap"}
_STABILITY_COLOURS = {"stable": "#1b7837", "saddle": "#d95f02", "unstable": "#b2182b"}
_STABILITY_SYMBOLS = {"stable": "circle", "saddle": "diamond", "unstable": "x"}


class PCA(NamedTuple):
    """Principal axes of a cloud of hidden states: `mean`, `components` (rows, unit norm,
    by decreasing variance) and the fraction of the total variance each explains."""

    mean: Float[np.ndarray, " hidden"]
    components: Float[np.ndarray, "component hidden"]
    explained: Float[np.ndarray, " component"]

    def project(self, x: Float[ArrayLike, "... hidden"]) -> Float[np.ndarray, "... component"]:
        return (np.asarray(x, float) - self.mean) @ self.components.T

    def project_direction(self, v: Float[ArrayLike, "... hidden"]) -> Float[np.ndarray, "... component"]:
        """A direction (no mean subtracted), e.g. an eigenvector's real part."""
        return np.asarray(v, float) @ self.components.T


def pca_basis(states: Float[ArrayLike, "... hidden"], n_components: int = 3) -> PCA:
    """PCA by NumPy SVD of the centred states (any leading shape, e.g. trial x time x hidden)."""
    x = np.asarray(states, float)
    x = x.reshape(-1, x.shape[-1])
    if len(x) < 2 or not 1 <= n_components <= x.shape[1]:
        raise ValueError(f"need >= 2 states and 1 <= n_components <= {x.shape[1]}; got {len(x)} and {n_components}")
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    # A sign convention makes figures reproducible: the largest loading of each axis is positive.
    signs = np.sign(vt[np.arange(len(vt)), np.argmax(np.abs(vt), axis=1)])
    return PCA(mean, (vt * signs[:, None])[:n_components], (s**2 / np.sum(s**2))[:n_components])


def _group_colours(table: pd.DataFrame, colour_by: str | None, levels: Any = None,
                   kind: Kind | None = None) -> dict[Any, str | None]:
    if colour_by is None:
        return {None: None}
    if colour_by not in table:
        raise ValueError(f"colour_by={colour_by!r} is not a column of the table ({', '.join(map(str, table))})")
    return colour_map(kind or _KIND_OF_COLUMN.get(colour_by, "term"), table[colour_by].tolist(), levels)


def eigenvalue_spectra(
    spectra: pd.DataFrame,
    *,
    colour_by: str | None = None,
    levels: Any = None,
    colour_kind: Kind | None = None,
    title: str | None = None,
) -> go.Figure:
    """Eigenvalues (a `spectra_table`) on the complex plane, the unit circle drawn beneath.

    One trace per value of `colour_by` (e.g. "context", "replicate", "goal"), coloured by
    the scale of `colour_kind` (default: the column's own, see the module docstring; e.g.
    "amplitude" for an ordered column such as a goal's distance from the centre); hovering
    shows the point, mode, `|lambda|`, `tau` and every key column.
    """
    for column in ("eig_real", "eig_imag", "point", "mode", "abs", "tau"):
        if column not in spectra:
            raise ValueError(f"spectra has no column {column!r}; build it with fixed_points.spectra_table")
    keys = [c for c in spectra.columns if c not in _SPECTRUM_COLUMNS]
    fig = go.Figure()
    theta = np.linspace(0, 2 * np.pi, 361)
    fig.add_scatter(x=np.cos(theta), y=np.sin(theta), mode="lines", line=UNIT_CIRCLE, name="|λ| = 1",
                    hoverinfo="skip", showlegend=False)
    for value, colour in _group_colours(spectra, colour_by, levels, colour_kind).items():
        rows = spectra if colour_by is None else spectra[spectra[colour_by] == value]
        custom = rows[["point", "mode", "abs", "tau", *keys]].to_numpy(dtype=object)
        key_lines = "".join(f"<br>{k} %{{customdata[{4 + i}]}}" for i, k in enumerate(keys))
        fig.add_scatter(
            x=rows["eig_real"], y=rows["eig_imag"], mode="markers",
            name=f"{colour_by.replace('_', ' ')} {value}" if colour_by else "eigenvalues",
            marker={"color": colour, "size": 6, "opacity": 0.8}, customdata=custom,
            hovertemplate="point %{customdata[0]}, mode %{customdata[1]}<br>|λ| %{customdata[2]:.4f}, "
                          "τ %{customdata[3]:.3g}" + key_lines + "<extra></extra>",
        )
    add_zero_line(fig, "y")
    add_zero_line(fig, "x")
    fig.update_xaxes(title="Re λ")
    fig.update_yaxes(title="Im λ", scaleanchor="x", scaleratio=1)
    return apply_style(fig, title=title)


def mode_segments(
    pca: PCA,
    points: Float[ArrayLike, "point hidden"],
    lin: Linearisation,
    *,
    n_slow: int = 1,
    length: float = 0.2,
) -> pd.DataFrame:
    """Segments `h* +- length * Re(v) / ||Re(v)||` in PCA coordinates, one row per drawn mode:
    every unstable mode and the `n_slow` slowest stable modes of each point (a complex pair
    counts once, drawn along its real part). Columns: point, mode, kind, start_*, end_*."""
    points = np.asarray(points, float)
    if len(points) != len(lin):
        raise ValueError(f"points ({len(points)}) and linearisation ({len(lin)}) must have one row per point")
    rows = []
    centre = pca.project(points)
    for p in range(len(points)):
        w = lin.eigvals[p]
        keep = w.imag >= 0  # one member of each conjugate pair
        unstable = np.flatnonzero(keep & (np.abs(w) > 1))
        slow = np.flatnonzero(keep & (np.abs(w) <= 1))[:n_slow]
        for mode, kind in [*((m, "unstable") for m in unstable), *((m, "slow") for m in slow)]:
            direction = lin.right[p, :, mode].real
            direction = direction / (np.linalg.norm(direction) or 1.0)
            offset = length * pca.project_direction(direction)
            rows.append(dict(point=p, mode=int(mode), kind=kind, abs=float(np.abs(w[mode])),
                             **{f"start_{i}": v for i, v in enumerate(centre[p] - offset)},
                             **{f"end_{i}": v for i, v in enumerate(centre[p] + offset)}))
    return pd.DataFrame(rows)


def fixed_points_pca(
    pca: PCA,
    points: Float[ArrayLike, "point hidden"],
    lin: Linearisation | None = None,
    *,
    trajectories: Float[ArrayLike, "trial time hidden"] | None = None,
    stability: ArrayLike | None = None,
    colour_values: ArrayLike | None = None,
    colour_name: str = "context",
    colour_kind: Kind = "context",
    n_slow: int = 1,
    length: float = 0.2,
    title: str | None = None,
) -> go.Figure:
    """Fixed points in the PCA space of hidden trajectories (3D for 3 components, else 2D).

    Trajectories, if given, are drawn as thin grey lines; points are coloured by `stability`
    (labels from `points_table`; default: computed from `lin`); with `lin`, unstable modes
    (red) and the `n_slow` slowest stable modes (blue) are drawn as segments through each point.
    Given `colour_values` (one per point, e.g. the context), points are coloured by those on
    the scale of `colour_kind` instead, and stability is shown by the marker symbol
    (circle stable, diamond saddle, x unstable).
    """
    points = np.asarray(points, float)
    three_d = pca.components.shape[0] >= 3
    if not three_d and pca.components.shape[0] != 2:
        raise ValueError("fixed_points_pca needs a PCA with 2 or 3 components")

    def scatter(coords: np.ndarray, **kwargs: Any) -> go.Scatter | go.Scatter3d:
        if three_d:
            return go.Scatter3d(x=coords[:, 0], y=coords[:, 1], z=coords[:, 2], **kwargs)
        return go.Scatter(x=coords[:, 0], y=coords[:, 1], **kwargs)

    fig = go.Figure()
    if trajectories is not None:
        paths = pca.project(trajectories)
        paths = np.concatenate([paths, np.full(paths.shape[:-2] + (1, paths.shape[-1]), np.nan)], axis=-2)
        # Opaque in 3D: WebGL renderers draw translucent lines unreliably (some not at all).
        line = {"color": "rgb(200, 200, 200)", "width": 2} if three_d else {"color": "rgba(120, 120, 120, 0.35)", "width": 1}
        fig.add_trace(scatter(paths.reshape(-1, paths.shape[-1]), mode="lines", name="trajectories", line=line,
                              hoverinfo="skip"))
    if lin is not None:
        segments = mode_segments(pca, points, lin, n_slow=n_slow, length=length)
        n_dim = 3 if three_d else 2
        for kind, colour in (("unstable", "#b2182b"), ("slow", "#2166ac")):
            rows = segments[segments["kind"] == kind] if len(segments) else segments
            if len(rows) == 0:
                continue
            start = rows[[f"start_{i}" for i in range(n_dim)]].to_numpy()
            end = rows[[f"end_{i}" for i in range(n_dim)]].to_numpy()
            coords = np.stack([start, end, np.full_like(start, np.nan)], axis=1).reshape(-1, n_dim)
            fig.add_trace(scatter(coords, mode="lines", name=f"{kind} modes", line={"color": colour, "width": 4},
                                  hoverinfo="skip"))
    if stability is None and lin is not None:
        n_unstable = (np.abs(lin.eigvals) > 1).sum(axis=1)
        stability = np.where(n_unstable == 0, "stable",
                             np.where(n_unstable == lin.eigvals.shape[1], "unstable", "saddle"))
    labels = np.asarray(["fixed point"] * len(points) if stability is None else stability, dtype=object)
    centre = pca.project(points)
    size = 5 if three_d else 9
    if colour_values is None:
        for label in dict.fromkeys(labels.tolist()):
            mask = labels == label
            fig.add_trace(scatter(centre[mask], mode="markers", name=str(label),
                                  marker={"color": _STABILITY_COLOURS.get(label, "#222222"), "size": size},
                                  customdata=np.flatnonzero(mask),
                                  hovertemplate=f"{label} point %{{customdata}}<extra></extra>"))
    else:
        values = np.asarray(colour_values)
        if values.shape != (len(points),):
            raise ValueError(f"colour_values must have one entry per point ({len(points)}); got shape {values.shape}")
        for value, colour in colour_map(colour_kind, values.tolist()).items():
            for label in dict.fromkeys(labels[values == value].tolist()):
                mask = (values == value) & (labels == label)
                name = f"{colour_name} {value}" + ("" if label in ("stable", "fixed point") else f" ({label})")
                fig.add_trace(scatter(centre[mask], mode="markers", name=name, marker={
                    "color": colour, "size": size, "symbol": _STABILITY_SYMBOLS.get(label, "circle")},
                    customdata=np.flatnonzero(mask),
                    hovertemplate=f"{colour_name} {value}, {label} point %{{customdata}}<extra></extra>"))
    axis_titles = [f"PC{i + 1} ({100 * e:.0f}%)" for i, e in enumerate(pca.explained)]
    if three_d:
        fig.update_layout(scene={"xaxis_title": axis_titles[0], "yaxis_title": axis_titles[1],
                                     "zaxis_title": axis_titles[2]}, height=600)
    else:
        fig.update_xaxes(title=axis_titles[0])
        fig.update_yaxes(title=axis_titles[1], scaleanchor="x", scaleratio=1)
    return apply_style(fig, title=title)


def leading_modes(
    points: pd.DataFrame,
    *,
    x: str = "context",
    colour_by: str | None = "replicate",
    levels: Any = None,
    title: str | None = None,
) -> go.Figure:
    """`|lambda_1|` (with the line `|lambda| = 1`) and `tau_1` against a key column, e.g. the
    context value, from a `points_table`; one line per value of `colour_by`, points sorted by
    `x` (several fixed points at one `x` appear as several markers)."""
    for column in (x, "lead_abs", "lead_tau"):
        if column not in points:
            raise ValueError(f"points table has no column {column!r}")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("leading |λ|", "leading time constant τ"))
    for value, colour in _group_colours(points, colour_by, levels).items():
        rows = points if colour_by is None else points[points[colour_by] == value]
        rows = rows.sort_values(x, kind="stable")
        name = f"{colour_by} {value}" if colour_by is not None else "fixed points"
        for col, y in ((1, "lead_abs"), (2, "lead_tau")):
            fig.add_scatter(x=rows[x], y=rows[y], mode="lines+markers", name=name, legendgroup=name,
                            showlegend=col == 1, line={"color": colour}, row=1, col=col)
    fig.add_hline(1.0, line=UNIT_CIRCLE, layer="below", row=1, col=1)
    fig.update_xaxes(title=x)
    fig.update_yaxes(title="|λ₁|", row=1, col=1)
    fig.update_yaxes(title="τ₁ (time units; < 0: growth)", row=1, col=2)
    return apply_style(fig, title=title)


def sweep_pca(
    sweep: GoalSweep,
    replicate: int,
    lin: Linearisation | None = None,
    *,
    n_components: int = 3,
    n_slow: int = 1,
    length: float = 0.2,
    title: str | None = None,
) -> go.Figure:
    """One replicate's fixed points from a goal sweep, in the PCA space of its hold trials.

    Each replicate has its own hidden space, so a figure shows one. Points are coloured by
    context (symbol: stability); the hold trials of every goal and context are the grey lines.
    `lin` linearises the replicate's rows of `sweep.points` in order (for the mode segments).
    """
    rows = sweep.points[sweep.points["replicate"] == replicate] if len(sweep.points) else sweep.points
    if rows.empty:
        raise ValueError(f"the sweep has no fixed points for replicate {replicate}")
    hold = np.asarray(sweep.hold_hidden[replicate])  # (context, goal, time, hidden)
    return fixed_points_pca(
        pca_basis(hold, n_components), sweep.h[rows["point"].to_numpy()], lin,
        trajectories=hold.reshape(-1, *hold.shape[-2:]), stability=rows["stability"].to_numpy(),
        colour_values=rows["context"].to_numpy(), n_slow=n_slow, length=length, title=title,
    )
