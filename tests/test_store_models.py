"""Models on disk (round trip, hashes, side files) and the evaluation cache."""

import hashlib
import json
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from robustreach.hashing import params_hash
from robustreach.store import AmbiguousQueryError, ResultsStore, evaluation_hash


class TinyNet(eqx.Module):
    """A small module with array leaves of two dtypes, a float leaf and a static field."""

    linear: eqx.nn.Linear
    scale: jax.Array
    counts: jax.Array
    gain: float
    name: str = eqx.field(static=True)

    def __init__(self, hidden: int, *, key):
        k1, k2 = jax.random.split(key)
        self.linear = eqx.nn.Linear(3, hidden, key=k1)
        self.scale = jax.random.normal(k2, (hidden,))
        self.counts = jnp.arange(hidden, dtype=jnp.int32)
        self.gain = 0.5
        self.name = "tiny"


HP = {"controller": {"hidden": 5}, "train": {"n_batches": 100, "lr": 1e-3}}


def skeleton(hp):
    return TinyNet(hp["controller"]["hidden"], key=jax.random.PRNGKey(123))


def assert_same_tree(a, b):
    leaves_a, def_a = jax.tree_util.tree_flatten(a)
    leaves_b, def_b = jax.tree_util.tree_flatten(b)
    assert def_a == def_b
    for x, y in zip(leaves_a, leaves_b):
        assert type(x) is type(y) or (isinstance(x, jax.Array) and isinstance(y, jax.Array))
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        assert np.asarray(x).dtype == np.asarray(y).dtype


@pytest.fixture
def store(tmp_path):
    return ResultsStore(tmp_path / "results")


def test_model_round_trip(store):
    model = TinyNet(5, key=jax.random.PRNGKey(0))
    record = store.save_model(model, HP, extra={"experiment": "part1"})
    path = store.root / record["files"]["model"]
    assert path.name == f"{record['hash'][:12]}.eqx"
    assert record["hash"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["params_hash"] == params_hash(HP)
    # the header keeps the record's own fields, so that `rebuild_models` can remake the record
    assert json.loads(path.read_bytes().split(b"\n", 1)[0]) == {"hyperparameters": HP, "record": {"experiment": "part1"}}
    for which in (record, record["hash"][:10], {"train.n_batches": 100}):
        loaded, rec = store.load_model(which, skeleton=skeleton)
        assert_same_tree(loaded, model)
        assert rec["hyperparameters"] == HP and rec["experiment"] == "part1"
    assert loaded.name == "tiny"


def test_retraining_gives_new_hash_same_params_hash(store):
    a = store.save_model(TinyNet(5, key=jax.random.PRNGKey(0)), HP)
    b = store.save_model(TinyNet(5, key=jax.random.PRNGKey(1)), HP)
    assert a["hash"] != b["hash"] and a["params_hash"] == b["params_hash"]
    with pytest.raises(AmbiguousQueryError, match="bookkeeping"):
        store.load_model({"train.n_batches": 100}, skeleton=skeleton)
    again = store.save_model(TinyNet(5, key=jax.random.PRNGKey(0)), HP)  # identical bytes
    assert again["hash"] == a["hash"]
    assert len(store.find("models")) == 2


def test_changed_model_file_detected(store):
    record = store.save_model(TinyNet(5, key=jax.random.PRNGKey(0)), HP)
    path = store.root / record["files"]["model"]
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ValueError, match="does not match the hash"):
        store.load_model(record, skeleton=skeleton)


def test_side_files_round_trip(store):
    history = {
        "loss": np.array([3.0, np.nan, 1.0], dtype=np.float32),
        "grad_norm": jnp.array([[1.5, 2.5]]),
        "steps": [0, 1, 2],
        "best": math.nan,
        "note": "ok",
    }
    replicates = {"included": [True, False], "best_index": np.int64(0)}
    record = store.save_model(
        TinyNet(5, key=jax.random.PRNGKey(0)), HP, side_files={"history": history, "replicates": replicates}
    )
    short = record["hash"][:12]
    assert record["files"]["history"] == f"models/{short}.history.json"
    got = store.load_side_file(record, "history")
    assert got["loss"].dtype == np.float32 and got["loss"].shape == (3,)
    np.testing.assert_array_equal(got["loss"], history["loss"])  # NaN == NaN for assert_array_equal
    assert got["grad_norm"].shape == (1, 2) and got["grad_norm"].dtype == np.float32
    np.testing.assert_array_equal(got["grad_norm"], np.asarray(history["grad_norm"]))
    # strict JSON: a NaN scalar is written as null (NaN inside a float array comes back as NaN)
    assert got["steps"] == [0, 1, 2] and got["best"] is None and got["note"] == "ok"
    assert "NaN" not in (store.root / record["files"]["history"]).read_text()
    assert store.load_side_file(record["hash"], "replicates") == {"included": [True, False], "best_index": 0}
    with pytest.raises(KeyError, match="history"):
        store.load_side_file(record, "nope")
    with pytest.raises(ValueError, match="side file name"):
        store.save_model(TinyNet(5, key=jax.random.PRNGKey(2)), HP, side_files={"../x": 1})


def test_default_skeleton_is_the_project_model(store):
    from conftest import small_hyperparameters
    from robustreach.model import build_ensemble

    hp = small_hyperparameters()
    model = build_ensemble(hp, jax.random.PRNGKey(7))
    record = store.save_model(model, hp)
    assert record["hyperparameters"] == hp.to_dict()
    loaded, _ = store.load_model(record)
    for x, y in zip(
        jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array)),
        jax.tree_util.tree_leaves(eqx.filter(loaded, eqx.is_array)),
    ):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_eval_cache_hit_and_invalidation(store):
    calls = []

    def compute():
        calls.append(1)
        return {
            "positions": jnp.linspace(0.0, 1.0, 6).reshape(2, 3),
            "errors": np.array([0.5, np.nan]),
            "n": 2,
            "tag": ("a", None),
        }

    params = {"test": {"amplitude": 2.0}, "n_trials": 2}
    first = store.cached_evaluation("a" * 64, params, compute)
    second = store.cached_evaluation("a" * 64, {"n_trials": 2.0, "test": {"amplitude": 2}}, compute)  # same key
    assert len(calls) == 1
    assert isinstance(second["positions"], jax.Array)
    np.testing.assert_array_equal(np.asarray(second["positions"]), np.asarray(first["positions"]))
    np.testing.assert_array_equal(second["errors"], first["errors"])
    assert second["n"] == 2 and second["tag"] == ("a", None)
    (record,) = store.find("evaluations")
    assert record["hash"] == evaluation_hash("a" * 64, params) and record["model_hash"] == "a" * 64
    assert record["hyperparameters"] == params and record["files"]["arrays"].endswith(".npz")
    # a retrained model (new hash) or other params: computed again
    store.cached_evaluation("b" * 64, params, compute)
    store.cached_evaluation("a" * 64, {**params, "n_trials": 3}, compute)
    assert len(calls) == 3
    assert len(store.find("evaluations", {"model_hash": "a" * 64})) == 2
    # a record whose file vanished is recomputed, not an error
    (store.root / record["files"]["arrays"]).unlink()
    store.cached_evaluation("a" * 64, params, compute)
    assert len(calls) == 4


def test_eval_cache_of_a_module(store):
    calls = []

    def compute():
        calls.append(1)  # a real second call would give other weights
        return TinyNet(4, key=jax.random.PRNGKey(len(calls)))

    first = store.cached_evaluation("c" * 64, {"x": 1}, compute)
    like = TinyNet(4, key=jax.random.PRNGKey(99))
    second = store.cached_evaluation("c" * 64, {"x": 1}, compute, like=like)
    assert len(calls) == 1
    assert_same_tree(first, second)
    # without `like`, jax.eval_shape traces compute for the structure; the values come from disk
    third = store.cached_evaluation("c" * 64, {"x": 1}, compute)
    a, b = jax.tree_util.tree_flatten(first), jax.tree_util.tree_flatten(third)
    assert a[1] == b[1]
    for x, y in zip(a[0], b[0]):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert store.find_one("evaluations", {"x": 1})["format"] == "eqx"


def test_a_model_saved_before_fields_were_added_is_found_and_loads(store):
    """A record written before `plant.type` and `perturbation.settings` existed (and before the
    plant's numbers were array leaves) is the model of the same set written today."""
    from conftest import small_hyperparameters
    from robustreach.model import build_ensemble
    from robustreach.train.runner import existing_model

    def as_written_before(hp):
        values = hp.to_dict()
        del values["plant"]["type"], values["perturbation"]["settings"]
        return values

    hp = small_hyperparameters(perturbation={"type": "curl", "std": 0.5})
    other = small_hyperparameters(perturbation={"type": "curl", "std": 1.0})
    model = build_ensemble(hp, jax.random.PRNGKey(7))
    assert params_hash(as_written_before(hp)) != params_hash(hp.to_dict())  # not found by its hash
    # the file of those days: the controller's leaves only (the fixed part had none)
    trained = {"status": "ok"}
    store.save_model(build_ensemble(other, jax.random.PRNGKey(8)).controller, as_written_before(other), extra=trained)
    record = store.save_model(model.controller, as_written_before(hp), extra=trained)

    assert existing_model(store, hp)["hash"] == record["hash"]
    assert existing_model(store, small_hyperparameters(perturbation={"type": "curl", "std": 0.25})) is None
    loaded, _ = store.load_model(record)
    for saved, read in zip(jax.tree_util.tree_leaves(model.controller), jax.tree_util.tree_leaves(loaded.controller)):
        np.testing.assert_array_equal(np.asarray(saved), np.asarray(read))
    assert float(loaded.plant.mass) == hp.plant.mass
    # and a file written today (the fixed part's leaves after the controller's) loads alike
    loaded_now, _ = store.load_model(store.save_model(model, hp, extra=trained))
    for saved, read in zip(jax.tree_util.tree_leaves(model), jax.tree_util.tree_leaves(loaded_now)):
        np.testing.assert_array_equal(np.asarray(saved), np.asarray(read))
