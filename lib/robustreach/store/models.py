"""Trained models on disk: `models/<short hash>.eqx` plus JSON side files, one record each.

The model file is one JSON header line holding the hyperparameters, then the leaves as written
by `eqx.tree_serialise_leaves`. The record's `hash` is the sha256 of the whole file, so
retraining the same hyperparameters to different weights gives a new model (and a new file),
while `params_hash` finds all models trained from one parameter set. Side files (training
history, replicate info, ...) are `models/<short hash>.<name>.json`, sharing the model's prefix.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from robustreach.hashing import jsonable, params_hash, short_hash
from robustreach.store.errors import DuplicateRecordError, NoMatchError
from robustreach.store.files import atomic_write, check_name, dumps_side, loads_side

if TYPE_CHECKING:
    from robustreach.store.index import ResultsIndex

__all__ = ["ModelsMixin", "read_model_header"]

PyTree = Any
MODELS = "models"


def read_model_header(data: bytes, where: str) -> tuple[dict[str, Any], int]:
    """The hyperparameters in a model file's header line and the offset of the leaves."""
    end = data.find(b"\n")
    if end < 0:
        raise ValueError(f"{where}: no header line; not a robustreach model file")
    try:
        header = json.loads(data[:end])
    except json.JSONDecodeError as err:
        raise ValueError(f"{where}: header line is not JSON ({err})") from None
    if not isinstance(header, dict) or "hyperparameters" not in header:
        raise ValueError(f"{where}: header line lacks 'hyperparameters'")
    return header["hyperparameters"], end + 1


def _default_skeleton(hyperparameters: dict[str, Any]) -> PyTree:
    try:
        from robustreach.model import skeleton_from_hyperparameters  # type: ignore[attr-defined]
    except ImportError as err:
        raise ImportError(
            "load_model needs skeleton=... (a function hyperparameters -> like-shaped pytree) until "
            f"robustreach.model.skeleton_from_hyperparameters exists ({err})"
        ) from None
    return skeleton_from_hyperparameters(hyperparameters)


class ModelsMixin:
    """Saving and loading models; mixed into `ResultsStore`."""

    def save_model(
        self: ResultsIndex,
        model: PyTree,
        hyperparameters: Mapping[str, Any] | Any,
        *,
        side_files: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write the model and its side files, then record them in table "models".

        **Arguments:**
        - `model`: any pytree (an ensemble of replicates is one model).
        - `hyperparameters`: the parameter set it was trained with (nested as in the file).
        - `side_files`: name -> JSON-able object (arrays and NaN allowed), e.g. "history".
        - `extra`: more top-level record fields (e.g. `{"experiment": "part1"}`).

        Identical bytes give the identical hash; saving them again returns the existing record.
        """
        import equinox as eqx

        hp = jsonable(hyperparameters)  # also takes a pydantic `Hyperparameters`
        if not isinstance(hp, dict):
            raise TypeError(f"hyperparameters must be a dict, got {type(hyperparameters).__name__}")
        side = {check_name(name, "side file name"): dumps_side(obj) for name, obj in (side_files or {}).items()}
        for key in extra or {}:
            if key in ("hash", "params_hash", "hyperparameters", "files"):
                raise ValueError(f"extra field {key!r} would overwrite a field save_model sets")

        buffer = io.BytesIO()
        buffer.write(json.dumps({"hyperparameters": hp}, ensure_ascii=False).encode("utf-8") + b"\n")
        eqx.tree_serialise_leaves(buffer, model)
        payload = buffer.getvalue()
        digest = hashlib.sha256(payload).hexdigest()
        stem = f"{MODELS}/{short_hash(digest)}"

        existing = self.find(MODELS, {"hash": digest})
        if existing:
            return existing[0]
        path = self.root / f"{stem}.eqx"
        if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise FileExistsError(f"{path} exists with other content (a 12-digit hash collision?)")

        files = {"model": f"{stem}.eqx"}
        for name, text in side.items():  # side files first: a crash leaves orphans for gc, not a broken record
            files[name] = f"{stem}.{name}.json"
            atomic_write(self.root / files[name], text)
        atomic_write(path, payload)
        record = {
            **(extra or {}),
            "hash": digest,
            "params_hash": params_hash(hp),
            "hyperparameters": hp,
            "files": files,
        }
        try:
            return self.insert(MODELS, record)
        except DuplicateRecordError:  # another process saved the same bytes meanwhile
            return self.get(MODELS, digest)

    def _model_record(self: ResultsIndex, which: Mapping[str, Any] | str) -> dict[str, Any]:
        if isinstance(which, str):
            return self.get(MODELS, which)
        if isinstance(which, Mapping) and isinstance(which.get("files"), Mapping) and "model" in which["files"]:
            return dict(which)
        return self.find_one(MODELS, which)

    def load_model(
        self: ResultsIndex,
        record_or_hash_or_where: Mapping[str, Any] | str,
        skeleton: Callable[[dict[str, Any]], PyTree] | None = None,
    ) -> tuple[PyTree, dict[str, Any]]:
        """Load a model given its record, its hash (or prefix), or a `where` matching one model.

        `skeleton(hyperparameters)` builds a like-shaped pytree whose leaves are replaced by the
        saved ones; the default is `robustreach.model.skeleton_from_hyperparameters`. The file
        is checked against the record's hash, so a changed file is an error, not a silent swap.
        """
        import equinox as eqx

        record = self._model_record(record_or_hash_or_where)
        path = self.root / record["files"]["model"]
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(f"model file {path} of record {record['hash'][:12]} is missing") from None
        if hashlib.sha256(data).hexdigest() != record["hash"]:
            raise ValueError(f"{path} does not match the hash of its record {record['hash']} (file changed?)")
        hyperparameters, offset = read_model_header(data, str(path))
        like = (skeleton or _default_skeleton)(hyperparameters)
        model = eqx.tree_deserialise_leaves(io.BytesIO(data[offset:]), like)
        return model, record

    def load_side_file(self: ResultsIndex, record: Mapping[str, Any] | str, name: str) -> Any:
        """A model's side file (arrays come back as NumPy arrays, NaN as NaN)."""
        rec = self._model_record(record) if isinstance(record, str) else record
        files = rec.get("files") or {}
        if name not in files or name == "model":
            available = sorted(k for k in files if k != "model")
            raise NoMatchError(f"record {rec.get('hash', '?')[:12]} has no side file {name!r}; it has {available}")
        return loads_side((self.root / files[name]).read_text(encoding="utf-8"))
