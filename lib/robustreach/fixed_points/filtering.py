"""From candidates to distinct fixed points: tolerance, outliers, duplicates.

Thresholds on `q` use the package convention `q = 1/2 ||F(h, u) - h||^2` (a sum over
units). Distances are Euclidean on the joined vector `[h, u]`, so points found for
different inputs stay distinct. Neighbour searches use `scipy.spatial.cKDTree`, so memory
grows with the number of points, never with its square.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from jaxtyping import ArrayLike, Bool, Float, Int
from scipy.spatial import cKDTree

from robustreach.fixed_points.finder import FixedPointResult


def outlier_mask(
    points: Float[ArrayLike, "point dim"],
    *,
    max_nn_distance: float | None = None,
    centroid_factor: float | None = None,
) -> Bool[np.ndarray, " point"]:
    """True for outliers: points whose nearest other point lies farther than
    `max_nn_distance`, or whose distance from the centroid exceeds `centroid_factor` times
    the mean such distance. Either test may be left off (None)."""
    points = np.asarray(points, float)
    if points.ndim != 2:
        raise ValueError(f"points must have shape (point, dim); got {points.shape}")
    out = np.zeros(len(points), bool)
    if max_nn_distance is not None and len(points) > 1:
        nn_distance, _ = cKDTree(points).query(points, k=2)
        out |= nn_distance[:, 1] > max_nn_distance
    elif max_nn_distance is not None:
        out[:] = True  # a lone point has no neighbour within any distance
    if centroid_factor is not None and len(points) > 0:
        distance = np.linalg.norm(points - points.mean(axis=0), axis=1)
        out |= distance > centroid_factor * distance.mean()
    return out


def deduplicate(
    points: Float[ArrayLike, "point dim"],
    q: Float[ArrayLike, " point"],
    *,
    tol: float,
) -> tuple[Int[np.ndarray, " kept"], Int[np.ndarray, " point"]]:
    """Greedy de-duplication keeping the lowest-`q` representative.

    Points are visited in order of increasing `q`; each one not yet claimed becomes a
    representative and claims every unclaimed point within distance `tol` of it. Returns the
    representatives' indices (in that order) and, for every point, the position in that
    list of the representative that claimed it.
    """
    points, q = np.asarray(points, float), np.asarray(q, float)
    if points.ndim != 2 or q.shape != points.shape[:1]:
        raise ValueError(f"need points (point, dim) and q (point,); got {points.shape} and {q.shape}")
    if not tol >= 0:
        raise ValueError(f"tol must be non-negative; got {tol}")
    claimed_by = np.full(len(points), -1)
    if len(points) == 0:
        return np.zeros(0, int), claimed_by
    tree = cKDTree(points)
    kept: list[int] = []
    for i in np.argsort(q, kind="stable"):
        if claimed_by[i] >= 0:
            continue
        near = np.asarray(tree.query_ball_point(points[i], tol), int)
        near = near[claimed_by[near] < 0]
        claimed_by[near] = len(kept)
        claimed_by[i] = len(kept)  # even if rounding put it outside its own ball
        kept.append(int(i))
    return np.asarray(kept, int), claimed_by


class Filtered(NamedTuple):
    """Distinct fixed points (`result`, ordered by increasing q), the candidate index of
    each (`index`), and how many kept candidates each one stands for (`n_merged`)."""

    result: FixedPointResult
    index: Int[np.ndarray, " kept"]
    n_merged: Int[np.ndarray, " kept"]


def filter_fixed_points(
    result: FixedPointResult,
    *,
    tol_q: float | None = None,
    dedup_tol: float = 1e-3,
    max_nn_distance: float | None = None,
    centroid_factor: float | None = None,
) -> Filtered:
    """Keep candidates with `q < tol_q` (default: the finder's own `tol_q`), drop outliers
    (see `outlier_mask`; off by default), then merge duplicates within `dedup_tol` on
    `[h, u]` keeping the lowest `q`. Outliers are judged before merging, so a point many
    starts converged to is never an outlier for lack of neighbours."""
    tol_q = result.tol_q if tol_q is None else tol_q
    q = np.asarray(result.q, float)
    index = np.flatnonzero(q < tol_q)
    joined = np.concatenate([np.asarray(result.h, float), np.asarray(result.u, float)], axis=1)[index]
    inlier = ~outlier_mask(joined, max_nn_distance=max_nn_distance, centroid_factor=centroid_factor)
    index, joined = index[inlier], joined[inlier]
    kept, claimed_by = deduplicate(joined, q[index], tol=dedup_tol)
    return Filtered(
        result=result.select(index[kept]),
        index=index[kept],
        n_merged=np.bincount(claimed_by, minlength=len(kept)),
    )
