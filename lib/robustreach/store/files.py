"""Crash-safe file writes and the JSON encoding of side files.

Every file the store writes goes through `atomic_write`: a temporary file in the same
directory, fsync, then `os.replace`, so a reader (or a crash) sees the old file or the new one,
never half of one.

Everything the store writes as JSON is strict JSON (`allow_nan=False`): a non-finite float
(NaN, +-Infinity) is written as `null`, since `NaN` tokens are not JSON and other tools reject
them. Files written by older versions with `NaN` tokens are still read.

Side files (training history, replicate info, ...) keep NumPy/JAX arrays: they come back as
NumPy arrays of the same dtype and shape, with `null` entries of float arrays read as NaN (so
a NaN survives the round trip; an infinity comes back as NaN too).
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

__all__ = [
    "atomic_write",
    "check_inside",
    "check_name",
    "check_relative",
    "dumps_side",
    "dumps_strict",
    "finite_or_null",
    "loads_side",
]

_ARRAY_KEY = "__ndarray__"
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some filesystems cannot open directories; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, data: bytes | str) -> None:
    """Write `data` to `path` atomically (temp file in the same directory, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def finite_or_null(obj: Any) -> Any:
    """`obj` (JSON data: dicts, lists, scalars) with every non-finite float replaced by None."""
    kind = type(obj)
    if kind is float:
        return obj if math.isfinite(obj) else None
    if kind is dict:
        return {key: finite_or_null(value) for key, value in obj.items()}
    if kind in (list, tuple):
        return [finite_or_null(value) for value in obj]
    return obj


def dumps_strict(obj: Any, **kwargs: Any) -> str:
    """`json.dumps` that writes strict JSON: non-finite floats become `null` (see module doc)."""
    try:
        return json.dumps(obj, allow_nan=False, **kwargs)
    except ValueError:  # a NaN or infinity somewhere: map them (only then, to keep writes fast)
        return json.dumps(finite_or_null(obj), allow_nan=False, **kwargs)


class _SideEncoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, np.generic):
            return finite_or_null(o.item())
        if isinstance(o, np.ndarray) or hasattr(o, "__array__"):
            array = np.asarray(o)
            if array.dtype.kind not in "biuf":
                raise TypeError(f"cannot store an array of dtype {array.dtype} in a JSON side file")
            return {_ARRAY_KEY: finite_or_null(array.tolist()), "dtype": str(array.dtype), "shape": list(array.shape)}
        return super().default(o)


def _decode_array(obj: dict[str, Any]) -> Any:
    if _ARRAY_KEY in obj and set(obj) == {_ARRAY_KEY, "dtype", "shape"}:
        return np.asarray(obj[_ARRAY_KEY], dtype=obj["dtype"]).reshape(obj["shape"])  # null -> NaN
    return obj


def dumps_side(obj: Any) -> str:
    """Strict JSON text of a side file; arrays are tagged with dtype and shape, NaN as null."""
    return _SideEncoder(allow_nan=False, indent=1).encode(finite_or_null(obj))


def loads_side(text: str) -> Any:
    """Inverse of `dumps_side` (arrays come back as NumPy arrays)."""
    return json.loads(text, object_hook=_decode_array)


def check_relative(path: str, what: str) -> str:
    """Check that `path` is a relative POSIX path inside results/ and return it."""
    if not isinstance(path, str) or not path:
        raise ValueError(f"{what}: expected a path relative to results/, got {path!r}")
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or "\\" in path:
        raise ValueError(f"{what}: {path!r} must be a relative path inside results/ (no '..', no leading '/')")
    return path


def check_inside(root: Path, path: str, what: str) -> Path:
    """`root / path` after checking that it stays inside `root`, also through symbolic links."""
    check_relative(path, what)
    full = Path(root) / path
    try:
        full.resolve().relative_to(Path(root).resolve())
    except ValueError:
        raise ValueError(f"{what}: {path!r} leads outside {root} (through a symbolic link)") from None
    return full


def check_name(name: str, what: str) -> str:
    """Check that `name` is usable inside a file name (letters, digits, '_' and '-')."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{what} {name!r} must consist of letters, digits, '_' and '-'")
    return name
