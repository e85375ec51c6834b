"""Goal sweeps cached in the results index: options checked first, tables stored as plain
NumPy arrays and read back unchanged, a second request served from the store."""

import io
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from fixed_points_synthetic import synthetic_sweep
from robustreach.config import load_hyperparameters
from robustreach.fixed_points import cache
from robustreach.fixed_points.cache import (
    SWEEP_DEFAULTS,
    cache_key,
    cached_goal_sweep,
    frame_from_arrays,
    frame_to_arrays,
    goal_sweeps,
    sweep_from_arrays,
    sweep_options,
    sweep_to_arrays,
)
from robustreach.store import ResultsStore
from robustreach.store.evaluations import decode_npz, encode_npz


def test_sweep_options_fill_defaults_and_normalise_contexts():
    options = sweep_options({"contexts": [-1, 0, 2], "n_starts": 8})
    assert options == {**SWEEP_DEFAULTS, "contexts": [-1.0, 0.0, 2.0], "n_starts": 8}
    assert all(isinstance(c, float) for c in options["contexts"])
    assert sweep_options({"contexts": [[1, 0], [0, 1]]})["contexts"] == [[1.0, 0.0], [0.0, 1.0]]
    assert sweep_options(None)["contexts"] is None


@pytest.mark.parametrize("params, key", [
    ({"n_gird": 5}, "fixed_points.n_gird: unknown key"),
    ({"n_grid": 4}, "fixed_points.n_grid"),
    ({"n_starts": 2.5}, "fixed_points.n_starts"),
    ({"n_starts": 0}, "fixed_points.n_starts"),
    ({"tol_q": 0.0}, "fixed_points.tol_q"),
    ({"noise_std": -1.0}, "fixed_points.noise_std"),
    ({"tol_q": "small"}, "fixed_points.tol_q"),
    ({"contexts": 1.0}, "fixed_points.contexts"),
    ({"contexts": []}, "fixed_points.contexts"),
    ({"contexts": [[1.0], 2.0]}, "fixed_points.contexts"),
    ({"contexts": [[1.0, 2.0], [3.0]]}, "fixed_points.contexts"),
    ({"contexts": ["on"]}, "fixed_points.contexts"),
])
def test_sweep_options_name_the_bad_key(params, key):
    with pytest.raises(ValueError, match=key):
        sweep_options(params)


def test_frames_round_trip_through_plain_arrays():
    frame = pd.DataFrame({"replicate": [0, 1, 1], "context": [-1.0, 0.5, np.nan], "stable": [True, False, True],
                          "stability": ["stable", "saddle", "stable"], "eig": [1 + 2j, 0.5, -1j]})
    arrays = frame_to_arrays(frame)
    assert arrays["stability"]["categories"] == ["saddle", "stable"]
    np.testing.assert_array_equal(arrays["stability"]["codes"], [1, 0, 1])
    back = frame_from_arrays(decode_npz(encode_npz(arrays)))
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    assert back["stable"].dtype == bool and back["replicate"].dtype.kind == "i"
    assert frame_from_arrays(frame_to_arrays(pd.DataFrame())).empty


def test_a_sweep_is_a_plain_tree_that_reads_back_unchanged():
    sweep = synthetic_sweep()
    payload = encode_npz(sweep_to_arrays(sweep))
    assert payload is not None  # plain: stored as .npz, readable with NumPy alone
    with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
        assert len(npz.files) > 10
    back = sweep_from_arrays(decode_npz(payload))
    for name in ("points", "spectra", "conditions", "neighbours", "summary"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(sweep, name), check_dtype=False)
    for name in ("h", "u", "input_sv", "hold_hidden"):
        np.testing.assert_array_equal(getattr(back, name), getattr(sweep, name))
    with pytest.raises(ValueError, match="missing"):
        sweep_from_arrays({"points": {}})


@pytest.fixture
def counted_sweep(monkeypatch):
    calls = []

    def fake_goal_sweep(model, *, key, progress, finder_progress, **kwargs):
        calls.append(kwargs)
        return synthetic_sweep()

    monkeypatch.setattr(cache, "goal_sweep", fake_goal_sweep)
    return calls


def test_cached_goal_sweep_computes_once_per_model_and_options(tmp_path, counted_sweep):
    store = ResultsStore(tmp_path)
    options = {"contexts": [0.0, 1.0], "n_starts": 8}
    first = cached_goal_sweep(store, "a" * 64, None, options)
    assert len(counted_sweep) == 1 and counted_sweep[0]["contexts"] == [0.0, 1.0] and "seed" not in counted_sweep[0]
    again = cached_goal_sweep(store, "a" * 64, None, options)
    assert len(counted_sweep) == 1  # served from the store
    pd.testing.assert_frame_equal(again.points, first.points, check_dtype=False)
    np.testing.assert_array_equal(again.hold_hidden, first.hold_hidden)
    cached_goal_sweep(store, "a" * 64, None, {**options, "seed": 1})
    cached_goal_sweep(store, "b" * 64, None, options)
    assert len(counted_sweep) == 3  # other options, other model: computed
    records = store.find("evaluations", {"model_hash": "a" * 64})
    assert len(records) == 2 and {r["format"] for r in records} == {"npz"}
    assert any(r["hyperparameters"] == cache_key(options) for r in records)
    assert cache_key(options)["analysis"] == "fixed_points/goal_sweep"


def test_goal_sweeps_keys_by_label_and_checks_options_first(tmp_path, counted_sweep):
    store = ResultsStore(tmp_path)
    models = [SimpleNamespace(label=label, model=None, record={"hash": h * 64}, hyperparameters=load_hyperparameters({}))
              for label, h in (("x", "1"), ("y", "2"))]
    with pytest.raises(ValueError, match="fixed_points.n_grid"):
        goal_sweeps(store, models, {"n_grid": 2})
    assert counted_sweep == []  # nothing ran before the error
    sweeps = goal_sweeps(store, models, {"contexts": [0.0]})
    assert list(sweeps) == ["x", "y"] and len(counted_sweep) == 2
    goal_sweeps(None, models, {"contexts": [0.0]})  # without a store: computed, not cached
    assert len(counted_sweep) == 4
    with pytest.raises(ValueError, match="distinct"):
        goal_sweeps(store, [models[0], models[0]], {})


def test_goal_sweeps_take_each_models_own_workspace(tmp_path, counted_sweep):
    workspaces = {"small": [[-0.5, -0.25], [0.5, 0.25]], "default": None}
    models = [
        SimpleNamespace(label=label, model=None, record={"hash": label[0] * 64},
                        hyperparameters=load_hyperparameters({"task": {"workspace": w}} if w else {}))
        for label, w in workspaces.items()
    ]
    goal_sweeps(ResultsStore(tmp_path), models, {"n_starts": 2})
    assert [call["workspace"] for call in counted_sweep] == [[[-0.5, -0.25], [0.5, 0.25]], [[-1.0, -1.0], [1.0, 1.0]]]
