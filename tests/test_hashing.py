"""Canonical JSON and parameter hashes: stability, normalisation, rejection of NaN."""

import hashlib
import json
import math

import jax.numpy as jnp
import numpy as np
import pytest
from robustreach.hashing import canonical_json, jsonable, params_hash, short_hash


def test_canonical_json_by_hand():
    obj = {"b": (1, 2.0, 2.5), "a": {"y": True, "x": None}, "c": "é"}
    assert canonical_json(obj) == '{"a":{"x":null,"y":true},"b":[1,2,2.5],"c":"é"}'


def test_hash_is_sha256_of_canonical_json():
    obj = {"lr": 0.001, "n": 3}
    expected = hashlib.sha256(b'{"lr":0.001,"n":3}').hexdigest()
    assert params_hash(obj) == expected
    assert len(expected) == 64


def test_hash_stable_across_key_order_and_int_float():
    a = {"train": {"n_batches": 100, "lr": 1e-3}, "plant": {"mass": 1, "dt": 0.05}}
    b = {"plant": {"dt": 0.05, "mass": 1.0}, "train": {"lr": 0.001, "n_batches": 100.0}}
    assert params_hash(a) == params_hash(b)
    assert params_hash({"x": -0.0}) == params_hash({"x": 0})


def test_hash_distinguishes_values_and_bools():
    assert params_hash({"x": 1}) != params_hash({"x": 2})
    assert params_hash({"x": 1}) != params_hash({"x": True})
    assert params_hash({"x": 1.5}) != params_hash({"x": 1})
    assert params_hash({"x": [1, 2]}) != params_hash({"x": [2, 1]})


def test_numpy_and_jax_values_are_plain():
    obj = {"a": np.float32(0.5), "b": np.int64(3), "c": np.arange(3.0), "d": jnp.array([[1, 2]]), "e": np.bool_(True)}
    assert json.loads(canonical_json(obj)) == {"a": 0.5, "b": 3, "c": [0, 1, 2], "d": [[1, 2]], "e": True}
    assert params_hash(obj) == params_hash({"a": 0.5, "b": 3, "c": [0, 1, 2], "d": [[1, 2]], "e": True})


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, np.float32("nan")])
def test_nonfinite_rejected_with_key_path(bad):
    with pytest.raises(ValueError, match=r"loss\.weights\[1\]"):
        params_hash({"loss": {"weights": [1.0, bad]}})


def test_unsupported_values_named():
    with pytest.raises(TypeError, match="'a.b'"):
        canonical_json({"a": {"b": {1, 2}}})
    with pytest.raises(TypeError, match="object"):
        canonical_json({"a": object()})


def test_jsonable_keeps_types_and_nan():
    out = jsonable({"a": (1.0, np.float64(2.0)), "b": np.array([np.nan])})
    assert out["a"] == [1.0, 2.0] and isinstance(out["a"][0], float)
    assert math.isnan(out["b"][0])


def test_short_hash():
    h = params_hash({"a": 1})
    assert short_hash(h) == h[:12]
    with pytest.raises(ValueError):
        short_hash("abc")
    with pytest.raises(ValueError):
        short_hash("Z" * 64)
