"""Filtering fixed-point candidates: tolerance, outliers and greedy de-duplication, on
hand-made sets and against a brute-force all-pairs implementation."""

import numpy as np
import pytest
from robustreach.fixed_points import FixedPointResult, deduplicate, filter_fixed_points, outlier_mask


def brute_force_dedup(points, q, tol):
    """The same greedy rule with a full distance matrix: the reference for small sets."""
    distance = np.linalg.norm(points[:, None] - points[None], axis=-1)
    claimed_by = np.full(len(points), -1)
    kept = []
    for i in np.argsort(q, kind="stable"):
        if claimed_by[i] < 0:
            claimed_by[(distance[i] <= tol) & (claimed_by < 0)] = len(kept)
            kept.append(i)
    return np.array(kept), claimed_by


def test_dedup_hand_made():
    points = np.array([
        [0.0, 0.0], [1e-4, 0.0],            # one point found twice: keep the lower q (index 1)
        [1.0, 1.0], [1.0, 1.002],           # 2e-3 apart: two points
        [5.0, 0.0], [5.0008, 0.0], [5.0016, 0.0],  # a chain: merging does not chain through
    ])
    q = np.array([1e-3, 1e-5, 1e-6, 1e-6, 1e-9, 1e-8, 1e-7])
    kept, claimed_by = deduplicate(points, q, tol=1e-3)
    # Visit order by q: 4, 5 (claimed by 4), 6 (1.6e-3 from 4: kept), 2, 3, 1, 0 (claimed by 1).
    np.testing.assert_array_equal(kept, [4, 6, 2, 3, 1])
    np.testing.assert_array_equal(claimed_by, [4, 4, 2, 3, 0, 0, 1])


def test_dedup_matches_brute_force():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(30, 5))
    points = centres[rng.integers(0, 30, 1500)] + rng.normal(scale=0.02, size=(1500, 5))
    q = rng.random(1500)
    kept, claimed_by = deduplicate(points, q, tol=0.05)
    ref_kept, ref_claimed = brute_force_dedup(points, q, 0.05)
    np.testing.assert_array_equal(kept, ref_kept)
    np.testing.assert_array_equal(claimed_by, ref_claimed)


def test_dedup_scales_to_tens_of_thousands():
    """50,000 candidates in 100 dimensions around 7 fixed points (an all-pairs matrix would
    take 20 GB): exactly 7 representatives, each the lowest-q member of its cluster."""
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(7, 100))
    label = rng.integers(0, 7, 50_000)
    points = centres[label] + rng.normal(scale=1e-5, size=(50_000, 100))
    q = rng.random(50_000)
    kept, claimed_by = deduplicate(points, q, tol=1e-2)
    assert len(kept) == 7
    for k, i in enumerate(kept):
        members = label == label[i]
        assert q[i] == q[members].min()
        np.testing.assert_array_equal(claimed_by == k, members)


def test_outliers():
    points = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [0.1, 0.1], [3.0, 3.0]])
    np.testing.assert_array_equal(outlier_mask(points, max_nn_distance=1.0), [0, 0, 0, 0, 1])
    np.testing.assert_array_equal(outlier_mask(points, max_nn_distance=10.0), [0, 0, 0, 0, 0])
    # Distances from the centroid (0.64, 0.64): 0.905, 0.83, 0.83, 0.76, 3.34; mean 1.335.
    np.testing.assert_array_equal(outlier_mask(points, centroid_factor=2.0), [0, 0, 0, 0, 1])
    np.testing.assert_array_equal(outlier_mask(points, centroid_factor=3.0), [0, 0, 0, 0, 0])
    assert not outlier_mask(points).any()
    assert outlier_mask(points[:1], max_nn_distance=1.0).all()


def _result(h, u, q, tol_q=1e-10):
    n = len(q)
    return FixedPointResult(h=np.asarray(h, np.float32), u=np.asarray(u, np.float32), q=np.asarray(q),
                            converged=np.asarray(q) < tol_q, n_first_order=np.zeros(n, int),
                            n_newton=np.zeros(n, int), tol_q=tol_q)


def test_filter_fixed_points():
    h = [[0, 0], [0, 0], [0, 1e-5], [1, 1], [7, 7], [0, 0]]
    u = [[0], [1], [0], [0], [0], [0]]
    q = [1e-12, 1e-11, 1e-13, 1e-3, 1e-12, 1e-11]
    out = filter_fixed_points(_result(h, u, q), dedup_tol=1e-3)
    # Index 3 fails the tolerance; 0, 2, 5 are one point (lowest q: 2); 1 differs in u.
    np.testing.assert_array_equal(out.index, [2, 4, 1])  # increasing q, ties by index
    np.testing.assert_array_equal(out.n_merged, [3, 1, 1])
    np.testing.assert_array_equal(np.asarray(out.result.h), np.asarray(h, np.float32)[[2, 4, 1]])
    # The nearest-neighbour test drops the lone far point, judged before merging.
    out = filter_fixed_points(_result(h, u, q), dedup_tol=1e-3, max_nn_distance=2.0)
    np.testing.assert_array_equal(out.index, [2, 1])
    # A looser tolerance on q keeps index 3 too.
    out = filter_fixed_points(_result(h, u, q), tol_q=1e-2)
    assert 3 in out.index.tolist()


@pytest.mark.parametrize("args, message", [
    ((np.zeros(3), np.zeros(3)), "points"),
    ((np.zeros((3, 2)), np.zeros(2)), "q"),
])
def test_dedup_rejects_bad_shapes(args, message):
    with pytest.raises(ValueError, match=message):
        deduplicate(*args, tol=0.1)
