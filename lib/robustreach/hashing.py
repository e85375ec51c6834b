"""Canonical JSON and sha256 hashes of parameter dicts.

Two parameter dicts that mean the same thing must hash the same, whatever produced them
(YAML, pydantic, NumPy): keys are sorted, integral floats become ints (`1.0` -> `1`), tuples
become lists, NumPy/JAX scalars and arrays become Python numbers and lists. NaN and infinities
have no canonical JSON form and are rejected with the key path where they occur.

```python
params_hash({"lr": 1e-3, "n": 1.0}) == params_hash({"n": 1, "lr": 0.001})  # True
short_hash(params_hash(p))  # first 12 hex digits, used in file names
```
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np

__all__ = ["SHORT_HASH_LENGTH", "canonical_json", "jsonable", "params_hash", "short_hash"]

SHORT_HASH_LENGTH = 12


def _child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _convert(obj: Any, path: str, *, canonical: bool) -> Any:
    """Turn `obj` into plain JSON types; `canonical` also normalises numbers and rejects NaN."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, int):
        return int(obj)  # IntEnum and friends -> plain int
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        if not math.isfinite(value):
            if canonical:
                where = path or "<top level>"
                raise ValueError(
                    f"{value!r} at {where!r} has no canonical JSON form; parameters must be finite numbers"
                )
            return value
        if canonical:
            if value == 0.0:
                return 0  # also folds -0.0 into 0
            if value.is_integer():
                return int(value)
        return value
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            if isinstance(key, (bool, np.bool_)) or not isinstance(key, (str, int, np.integer)):
                raise TypeError(f"key {key!r} at {path or '<top level>'!r} must be a string (or an integer)")
            skey = str(key)
            if skey in out:
                raise ValueError(f"keys {key!r} and {skey!r} at {path or '<top level>'!r} collide as JSON strings")
            out[skey] = _convert(value, _child(path, skey), canonical=canonical)
        return out
    if isinstance(obj, (list, tuple)):
        return [_convert(v, _child(path, i), canonical=canonical) for i, v in enumerate(obj)]
    if hasattr(obj, "model_dump") and callable(obj.model_dump):  # pydantic models, e.g. Hyperparameters
        return _convert(obj.model_dump(mode="json"), path, canonical=canonical)
    if isinstance(obj, np.ndarray) or hasattr(obj, "__array__"):  # NumPy and JAX arrays
        array = np.asarray(obj)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"array of dtype {array.dtype} at {path or '<top level>'!r} is not JSON-able")
        return _convert(array.tolist(), path, canonical=canonical)
    if isinstance(obj, (set, frozenset)):
        raise TypeError(f"set at {path or '<top level>'!r} has no order; pass a sorted list")
    raise TypeError(f"{type(obj).__name__} at {path or '<top level>'!r} is not JSON-able")


def jsonable(obj: Any) -> Any:
    """Plain JSON types for `obj` (NumPy/JAX -> Python, tuples -> lists), values kept as they are.

    Unlike `canonical_json`, `1.0` stays a float and NaN is allowed: this is how records are
    stored, faithful to what the caller passed.
    """
    return _convert(obj, "", canonical=False)


def canonical_json(obj: Any) -> str:
    """Canonical JSON text of `obj`: sorted keys, compact, integral floats as ints, no NaN."""
    return json.dumps(
        _convert(obj, "", canonical=True),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def params_hash(obj: Any) -> str:
    """Full sha256 hex digest of `canonical_json(obj)`."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def short_hash(h: str) -> str:
    """The first 12 hex digits of a hash, as used in file names."""
    if not isinstance(h, str) or len(h) < SHORT_HASH_LENGTH or any(c not in "0123456789abcdef" for c in h):
        raise ValueError(f"{h!r} is not a lowercase hex hash of at least {SHORT_HASH_LENGTH} digits")
    return h[:SHORT_HASH_LENGTH]
