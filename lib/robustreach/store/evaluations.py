"""Evaluation cache: results of evaluating a model, keyed by (model hash, evaluation params).

Retraining a parameter set gives a new model hash, hence a new key: stale evaluations are
never returned. Results made only of dicts, lists, tuples, None, strings, numbers and arrays
are saved as `evaluations/<short hash>.npz` (readable with plain NumPy) with their structure
in a JSON entry; any other pytree (an `eqx.Module` such as a trajectory) is saved with
`eqx.tree_serialise_leaves` as `.eqx` and loaded into a like-shaped tree: `like` if given,
else `jax.eval_shape(compute)`, which runs `compute`'s Python on abstract values (no arrays
are computed; Python side effects such as prints do happen).
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from robustreach.hashing import jsonable, params_hash, short_hash
from robustreach.store.files import atomic_write

if TYPE_CHECKING:
    from robustreach.store.index import ResultsIndex

__all__ = ["EvaluationsMixin", "decode_npz", "encode_npz", "evaluation_hash"]

PyTree = Any
EVALUATIONS = "evaluations"
_STRUCTURE = "__structure__"


def evaluation_hash(model_hash: str, eval_params: Mapping[str, Any]) -> str:
    """The cache key: hash of the model hash together with the evaluation parameters."""
    return params_hash({"model_hash": model_hash, "eval_params": eval_params})


class _NotPlain(TypeError):
    pass


def _is_jax_array(x: Any) -> bool:
    if "jax" not in sys.modules:
        return False
    import jax

    return isinstance(x, jax.Array)


def _encode(node: Any, leaves: list[np.ndarray]) -> dict[str, Any]:
    kind = type(node)
    if node is None:
        return {"t": "none"}
    if kind in (bool, int, float, str):
        return {"t": "py", "v": node}
    if kind is dict:
        if not all(isinstance(k, str) for k in node):
            raise _NotPlain("dict keys must be strings")
        return {"t": "dict", "items": [[k, _encode(v, leaves)] for k, v in node.items()]}
    if kind in (list, tuple):
        return {"t": kind.__name__, "items": [_encode(v, leaves) for v in node]}
    if isinstance(node, (np.ndarray, np.generic)) or _is_jax_array(node):
        array = np.asarray(node)
        if array.dtype.kind not in "biufc":
            raise _NotPlain(f"array of dtype {array.dtype}")
        leaves.append(array)
        tag = "jax" if _is_jax_array(node) else ("numpy" if isinstance(node, np.ndarray) else "scalar")
        return {"t": tag, "i": len(leaves) - 1}
    raise _NotPlain(type(node).__name__)


def encode_npz(tree: PyTree) -> bytes | None:
    """`.npz` bytes of a plain tree (containers, numbers, arrays), or None if not plain."""
    leaves: list[np.ndarray] = []
    try:
        spec = _encode(tree, leaves)
    except _NotPlain:
        return None
    buffer = io.BytesIO()
    arrays = {f"leaf_{i}": a for i, a in enumerate(leaves)}
    np.savez(buffer, **{_STRUCTURE: np.array(json.dumps(spec)), **arrays})
    return buffer.getvalue()


def decode_npz(data: bytes) -> PyTree:
    """Inverse of `encode_npz` (JAX arrays come back as JAX arrays, NumPy as NumPy)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        spec = json.loads(str(npz[_STRUCTURE]))
        leaves = {name: npz[name] for name in npz.files if name != _STRUCTURE}

    def build(node: dict[str, Any]) -> Any:
        t = node["t"]
        if t == "none":
            return None
        if t == "py":
            return node["v"]
        if t == "dict":
            return {k: build(v) for k, v in node["items"]}
        if t in ("list", "tuple"):
            items = [build(v) for v in node["items"]]
            return items if t == "list" else tuple(items)
        array = leaves[f"leaf_{node['i']}"]
        if t == "jax":
            import jax.numpy as jnp

            return jnp.asarray(array)
        return array if t == "numpy" else array[()]

    return build(spec)


class EvaluationsMixin:
    """The evaluation cache; mixed into `ResultsStore`."""

    def cached_evaluation(
        self: ResultsIndex,
        model_hash: str,
        eval_params: Mapping[str, Any],
        compute: Callable[[], PyTree],
        *,
        like: PyTree | None = None,
    ) -> PyTree:
        """Load the saved result of `compute()` for this model and these params, or compute it.

        **Arguments:**
        - `model_hash`: hash of the model record evaluated.
        - `eval_params`: everything else the result depends on (test conditions, n trials,
          PRNG seed, ...); it is the record's `hyperparameters`.
        - `compute`: makes the result on a miss; not called on a hit.
        - `like`: a like-shaped tree for results that are not plain containers (default:
          `jax.eval_shape(compute)`, an abstract trace; pass `like` if `compute` cannot be traced).
        """
        h = evaluation_hash(model_hash, eval_params)
        found = self.find(EVALUATIONS, {"hash": h})
        if found and (self.root / found[0]["files"]["arrays"]).exists():
            record = found[0]
            data = (self.root / record["files"]["arrays"]).read_bytes()
            if record.get("format") == "npz":
                return decode_npz(data)
            import equinox as eqx
            import jax

            return eqx.tree_deserialise_leaves(io.BytesIO(data), like if like is not None else jax.eval_shape(compute))

        result = compute()
        payload = encode_npz(result)
        fmt = "npz"
        if payload is None:
            import equinox as eqx

            buffer = io.BytesIO()
            eqx.tree_serialise_leaves(buffer, result)
            payload, fmt = buffer.getvalue(), "eqx"
        relpath = f"{EVALUATIONS}/{short_hash(h)}.{fmt}"
        atomic_write(self.root / relpath, payload)
        self.upsert(
            EVALUATIONS,
            {
                "hash": h,
                "model_hash": model_hash,
                "hyperparameters": jsonable(dict(eval_params)),
                "format": fmt,
                "files": {"arrays": relpath},
            },
        )
        return result
