"""Queries on records: `where` dicts, field look-up, and the report of fields that vary.

A `where` is a nested dict or a dict of dotted keys (both at once is fine); each value is
matched by equality (`1 == 1.0`, but `True != 1`), `OneOf([...])` or `Range(lo, hi)`:

```python
{"train": {"n_batches": 100}, "perturbation.std": OneOf([0.0, 0.5]), "created": Range("2025-01", None)}
```

A key is looked up at the top level of a record when the record has that first field
(`hash`, `status`, `identifier`, ...), otherwise inside `record["hyperparameters"]`, so that
`train.n_batches` and `hyperparameters.train.n_batches` mean the same field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from robustreach.hashing import jsonable

__all__ = [
    "BOOKKEEPING",
    "HYPERPARAMETERS",
    "MISSING",
    "OneOf",
    "Range",
    "Where",
    "flatten_record",
    "flatten_where",
    "identifier_matches",
    "lookup",
    "unknown_fields",
    "varying_fields",
]

HYPERPARAMETERS = "hyperparameters"
# Fields that differ between any two records and say nothing about what was computed.
BOOKKEEPING = ("hash", "created", "updated", "provenance", "files", "params_hash")

MISSING = object()


@dataclass(frozen=True, init=False)
class OneOf:
    """Matches a field equal to any of `values`."""

    values: tuple[Any, ...]

    def __init__(self, values: Iterable[Any]):
        if isinstance(values, (str, bytes, Mapping)):
            raise TypeError(f"OneOf takes a list of values, got {values!r}")
        object.__setattr__(self, "values", tuple(jsonable(list(values))))

    def __call__(self, value: Any) -> bool:
        return any(_equal(value, v) for v in self.values)


@dataclass(frozen=True)
class Range:
    """Matches `lo <= field <= hi` (either bound None for open); numbers or strings (dates)."""

    lo: Any = None
    hi: Any = None

    def __post_init__(self) -> None:
        if self.lo is None and self.hi is None:
            raise ValueError("Range needs at least one bound")
        for bound in (self.lo, self.hi):
            if bound is not None and _kind(bound) not in ("number", "str"):
                raise TypeError(f"Range bounds must be numbers or strings, got {bound!r}")
        if self.lo is not None and self.hi is not None and _kind(self.lo) != _kind(self.hi):
            raise TypeError(f"Range bounds {self.lo!r} and {self.hi!r} are of different kinds")

    def __call__(self, value: Any) -> bool:
        bound = self.lo if self.lo is not None else self.hi
        if _kind(value) != _kind(bound) or (isinstance(value, float) and math.isnan(value)):
            return False
        return (self.lo is None or self.lo <= value) and (self.hi is None or value <= self.hi)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "str"
    return type(value).__name__


def _equal(a: Any, b: Any) -> bool:
    """Equality of JSON values with `1 == 1.0` but booleans distinct from numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(map(_equal, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple, dict)) or isinstance(b, (list, tuple, dict)):
        return False
    return a == b


def flatten_where(where: Mapping[str, Any] | None) -> dict[str, Any]:
    """Dotted key -> condition (a value, `OneOf` or `Range`) for a nested or dotted `where`."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Mapping[str, Any]) -> None:
        for key, value in node.items():
            if not isinstance(key, str) or not key:
                raise TypeError(f"where keys must be non-empty strings, got {key!r}")
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(value, Mapping) and value:
                walk(name, value)
            else:
                if name in flat:
                    raise ValueError(f"where gives {name!r} twice")
                flat[name] = value if isinstance(value, (OneOf, Range)) else jsonable(value)

    if where is None:
        return flat
    if not isinstance(where, Mapping):
        raise TypeError(f"where must be a dict, got {type(where).__name__}")
    walk("", where)
    return flat


def lookup(record: Mapping[str, Any], dotted: str) -> Any:
    """Value of a dotted field (top level first, else under hyperparameters); `MISSING` if absent."""
    parts = dotted.split(".")
    node: Any = record
    if parts[0] not in record:
        node = record.get(HYPERPARAMETERS)
    for part in parts:
        if not isinstance(node, Mapping) or part not in node:
            return MISSING
        node = node[part]
    return node


def _matches(value: Any, condition: Any) -> bool:
    if value is MISSING:
        return False
    if isinstance(condition, (OneOf, Range)):
        return condition(value)
    return _equal(value, condition)


class Where:
    """A TinyDB query (callable on a document, hashable) built from a `where` dict."""

    def __init__(self, where: Mapping[str, Any] | None):
        self.conditions = flatten_where(where)
        self._key = repr(sorted(self.conditions.items(), key=lambda kv: kv[0]))

    def __call__(self, doc: Mapping[str, Any]) -> bool:
        return all(_matches(lookup(doc, key), cond) for key, cond in self.conditions.items())

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Where) and other._key == self._key

    def __repr__(self) -> str:
        return f"Where({self.conditions!r})"


def flatten_record(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted field -> leaf value (lists and empty dicts are leaves)."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            flat.update(flatten_record(value, name))
        else:
            flat[name] = value
    return flat


def _dedup_key(value: Any) -> tuple[Any, ...]:
    if value is None:
        return ("none",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        # 1 and 1.0 are one key (equal and hash-equal); NaN is not equal to itself, so name it
        return ("number", "nan") if isinstance(value, float) and math.isnan(value) else ("number", value)
    if isinstance(value, str):
        return ("str", value)
    return ("json", json.dumps(value, sort_keys=True, default=str))


def _sort_key(value: Any) -> tuple[Any, ...]:
    key = _dedup_key(value)
    rank = {"none": 0, "bool": 1, "number": 2, "str": 3, "json": 4}[key[0]]
    if key[0] == "number" and key[1] == "nan":
        return (rank, math.inf, 1)
    return (rank, *key[1:], 0) if key[0] != "none" else (rank,)


def _short_name(name: str, top_level: set[str]) -> str:
    prefix = HYPERPARAMETERS + "."
    if name.startswith(prefix):
        rest = name[len(prefix) :]
        if rest.split(".")[0] not in top_level:
            return rest
    return name


def varying_fields(records: list[Mapping[str, Any]], *, exclude: Iterable[str] = BOOKKEEPING) -> dict[str, list[Any]]:
    """Field -> sorted distinct values, for the fields whose values differ among `records`.

    Bookkeeping fields (hash, created, provenance, files, ...) are left out. Hyperparameter
    fields are named as a `where` accepts them (`train.n_batches`); a field missing from some
    records counts as None there.
    """
    excluded = tuple(exclude)
    flats = [flatten_record(r) for r in records]
    top_level = {k for r in records for k in r}
    names = sorted({n for flat in flats for n in flat})
    out: dict[str, list[Any]] = {}
    for name in names:
        if name.split(".")[0] in excluded:
            continue
        distinct: dict[tuple[Any, ...], Any] = {}
        for flat in flats:
            value = flat.get(name)
            distinct.setdefault(_dedup_key(value), value)
        if len(distinct) > 1:
            out[_short_name(name, top_level)] = sorted(distinct.values(), key=_sort_key)
    return out


def unknown_fields(records: list[Mapping[str, Any]], where: Mapping[str, Any] | None) -> list[str]:
    """The fields of `where` that no record has (probably misspelt)."""
    return [key for key in flatten_where(where) if all(lookup(r, key) is MISSING for r in records)]


def identifier_matches(identifier: Any, wanted: str) -> bool:
    """`wanted` equals `identifier` or is one of its parent paths (`a` matches `a/b`)."""
    return isinstance(identifier, str) and (identifier == wanted or identifier.startswith(wanted.rstrip("/") + "/"))
