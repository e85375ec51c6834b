"""Trained models on disk: `models/<short hash>.eqx` plus JSON side files, one record each.

The model file is one JSON header line holding the hyperparameters and the record's own fields
(`record`: status, best batches, ...), then the leaves as written by
`eqx.tree_serialise_leaves`; `rebuild_models` remakes lost records from these headers. The record's `hash` is the sha256 of the whole file, so
retraining the same hyperparameters to different weights gives a new model (and a new file),
while `params_hash` finds all models trained from one parameter set. Side files (training
history, replicate info, ...) are `models/<short hash>.<name>.json`, sharing the model's prefix.

A record counts only while its files exist and can be read (`missing_files`): a model whose
file was deleted is not "trained", whatever its status says.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from robustreach.hashing import jsonable, params_hash, short_hash
from robustreach.store.errors import DuplicateRecordError, NoMatchError
from robustreach.store.files import (
    atomic_write,
    check_inside,
    check_name,
    dumps_side,
    dumps_strict,
    finite_or_null,
    loads_side,
)

if TYPE_CHECKING:
    from robustreach.store.index import ResultsIndex

__all__ = ["ModelsMixin", "missing_files", "read_model_header", "read_model_header_full"]

PyTree = Any
MODELS = "models"


def missing_files(root: Any, record: Mapping[str, Any]) -> list[str]:
    """The files a record lists that are not readable regular files under `root`."""
    out = []
    for rel in (record.get("files") or {}).values():
        path = os.path.join(root, rel)
        if not (os.path.isfile(path) and os.access(path, os.R_OK)):
            out.append(rel)
    return out


def read_model_header(data: bytes, where: str) -> tuple[dict[str, Any], int]:
    """The hyperparameters in a model file's header line and the offset of the leaves."""
    header, offset = read_model_header_full(data, where)
    return header["hyperparameters"], offset


def read_model_header_full(data: bytes, where: str) -> tuple[dict[str, Any], int]:
    """A model file's whole header (hyperparameters, record fields) and the offset of the leaves."""
    end = data.find(b"\n")
    if end < 0:
        raise ValueError(f"{where}: no header line; not a robustreach model file")
    try:
        header = json.loads(data[:end])
    except json.JSONDecodeError as err:
        raise ValueError(f"{where}: header line is not JSON ({err})") from None
    if not isinstance(header, dict) or "hyperparameters" not in header:
        raise ValueError(f"{where}: header line lacks 'hyperparameters'")
    return header, end + 1


def check_name_ok(name: str) -> bool:
    try:
        check_name(name, "side file name")
    except ValueError:
        return False
    return True


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

        hp = finite_or_null(jsonable(hyperparameters))  # also takes a pydantic `Hyperparameters`
        if not isinstance(hp, dict):
            raise TypeError(f"hyperparameters must be a dict, got {type(hyperparameters).__name__}")
        side = {check_name(name, "side file name"): dumps_side(obj) for name, obj in (side_files or {}).items()}
        for key in extra or {}:
            if key in ("hash", "params_hash", "hyperparameters", "files"):
                raise ValueError(f"extra field {key!r} would overwrite a field save_model sets")

        buffer = io.BytesIO()
        header = {"hyperparameters": hp, **({"record": finite_or_null(jsonable(dict(extra)))} if extra else {})}
        buffer.write(dumps_strict(header, ensure_ascii=False).encode("utf-8") + b"\n")
        eqx.tree_serialise_leaves(buffer, model)
        payload = buffer.getvalue()
        digest = hashlib.sha256(payload).hexdigest()
        stem = f"{MODELS}/{short_hash(digest)}"

        existing = self.find(MODELS, {"hash": digest})
        if existing and self.model_problem(existing[0]) is None:
            return existing[0]
        path = self.root / f"{stem}.eqx"
        if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            if not existing:
                raise FileExistsError(f"{path} exists with other content (a 12-digit hash collision?)")

        files = {"model": f"{stem}.eqx"}
        for name, text in side.items():  # side files first: a crash leaves orphans for gc, not a broken record
            files[name] = f"{stem}.{name}.json"
            atomic_write(self.root / files[name], text)
        atomic_write(path, payload)
        if existing:  # the same bytes again, rewritten because the record's files were gone
            return existing[0]
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

    def model_problem(self: ResultsIndex, record: Mapping[str, Any], *, verify: bool = True) -> str | None:
        """Why a model record cannot be used (a file missing or unreadable, or, with `verify`,
        a model file whose bytes do not match the record's hash), or None if it can."""
        missing = missing_files(self.root, record)
        if missing:
            return f"file(s) {', '.join(str(self.root / m) for m in missing)} missing or unreadable"
        if verify and "model" in (record.get("files") or {}):
            path = self.root / record["files"]["model"]
            with open(path, "rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
            if digest != record.get("hash"):
                return f"{path} does not match the hash of its record (file changed?)"
        return None

    def rebuild_models(self: ResultsIndex) -> dict[str, Any]:
        """Add a record for every model file under `models/` that the index lacks.

        Each `.eqx` header holds the hyperparameters (and, from this version on, the record's
        own fields such as status and best batches); the hash is that of the file, so a rebuilt
        record has the hash the lost one had. Side files are those sharing the model's prefix.
        `created` is the file's modification time; files without record fields get status
        "unknown" (not used as trained). Returns `{"added": [...], "present": n, "skipped": [...]}`.
        """
        from robustreach.provenance import utc_now

        added: list[dict[str, Any]] = []
        skipped: list[str] = []
        present = 0
        with self._index.locked():
            known = {r.get("hash") for r in self.find(MODELS)}
            for path in sorted((self.root / MODELS).glob("*.eqx")):
                if path.name.startswith(".") or not path.is_file():
                    continue
                data = path.read_bytes()
                try:
                    header, _ = read_model_header_full(data, str(path))
                except ValueError as err:
                    skipped.append(str(err))
                    continue
                digest = hashlib.sha256(data).hexdigest()
                if digest in known:
                    present += 1
                    continue
                stem = path.name[: -len(".eqx")]
                files = {"model": path.relative_to(self.root).as_posix()}
                for side in sorted(path.parent.glob(f"{stem}.*.json")):
                    name = side.name[len(stem) + 1 : -len(".json")]
                    if check_name_ok(name):
                        files[name] = side.relative_to(self.root).as_posix()
                created = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
                fields = header.get("record") if isinstance(header.get("record"), dict) else {"status": "unknown"}
                hp = header["hyperparameters"]
                added.append(
                    {
                        **fields,
                        "hash": digest,
                        "params_hash": params_hash(hp),
                        "hyperparameters": hp,
                        "files": files,
                        "created": created,
                        "provenance": {"created": created, "rebuilt": utc_now()},
                    }
                )
                known.add(digest)
            if added:
                self.insert_many(MODELS, added)
        return {"added": added, "present": present, "skipped": skipped}

    def rebuild_records(self: ResultsIndex, table: str, records: list[dict[str, Any]]) -> int:
        """Insert those of `records` (remade from files) whose hash `table` lacks; returns how many."""
        with self._index.locked():
            known = {r.get("hash") for r in self.find(table)} if table in self.tables() else set()
            new = [r for r in records if r["hash"] not in known]
            if new:
                self.insert_many(table, new)
        return len(new)

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
        saved ones; by default the project's model is read (`robustreach.model.deserialise_model`:
        the trained controller from the file, the fixed plant and channels from the header's
        hyperparameters). The file is checked against the record's hash, so a changed file is
        an error, not a silent swap.
        """
        import equinox as eqx

        record = self._model_record(record_or_hash_or_where)
        path = check_inside(self.root, record["files"]["model"], f"model record {record['hash'][:12]}")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(f"model file {path} of record {record['hash'][:12]} is missing") from None
        if hashlib.sha256(data).hexdigest() != record["hash"]:
            raise ValueError(f"{path} does not match the hash of its record {record['hash']} (file changed?)")
        hyperparameters, offset = read_model_header(data, str(path))
        if skeleton is None:
            from robustreach.model import deserialise_model

            return deserialise_model(io.BytesIO(data[offset:]), hyperparameters), record
        model = eqx.tree_deserialise_leaves(io.BytesIO(data[offset:]), skeleton(hyperparameters))
        return model, record

    def load_side_file(self: ResultsIndex, record: Mapping[str, Any] | str, name: str) -> Any:
        """A model's side file (arrays come back as NumPy arrays, NaN as NaN)."""
        rec = self._model_record(record) if isinstance(record, str) else record
        files = rec.get("files") or {}
        if name not in files or name == "model":
            available = sorted(k for k in files if k != "model")
            raise NoMatchError(f"record {rec.get('hash', '?')[:12]} has no side file {name!r}; it has {available}")
        path = check_inside(self.root, files[name], f"model record {rec.get('hash', '?')[:12]}")
        return loads_side(path.read_text(encoding="utf-8"))
