"""CSV backup of the index (exact round trip) and YAML export for Quarto listing pages.

One CSV per table, one row per record, one column per dotted field (`hyperparameters.train.lr`),
and every cell JSON-encoded: `1` and `1.0`, `true`, `null`, `"text"` and `[1, 2]` all come
back with their types (a NaN from an older index is written as `null`, as in the index
itself), and an empty cell means the record lacks the field. A dict is split
into columns only when its keys are plain names (non-empty, no dots); otherwise it is one JSON
cell, so that splitting columns on dots is always unambiguous. `_doc_id` keeps TinyDB's ids.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from robustreach.store.files import dumps_strict
from robustreach.store.query import flatten_record

__all__ = ["DOC_ID", "CsvRowCache", "csv_to_table", "table_to_csv", "table_to_yaml"]

DOC_ID = "_doc_id"
_FIRST = (DOC_ID, "hash", "status", "created")


def _splittable(value: Any) -> bool:
    # Keys read from JSON are strings; joining them finds a dot in any key at C speed.
    return type(value) is dict and bool(value) and "" not in value and "." not in "".join(value)


def _flatten(record: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in record.items():
        name = prefix + key
        if _splittable(value):
            _flatten(value, name + ".", out)
        else:
            out[name] = value


_ENCODE_STR = json.encoder.encode_basestring  # what json.dumps(s, ensure_ascii=False) writes


def _cell(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _ENCODE_STR(value)
    if kind is float:
        return repr(value) if math.isfinite(value) else "null"  # strict JSON, as in the index
    if kind is int:
        return str(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    return dumps_strict(value, ensure_ascii=False)


def _row(doc: Mapping[str, Any]) -> dict[str, str]:
    flat: dict[str, Any] = {}
    _flatten(doc, "", flat)
    return {name: _cell(value) for name, value in flat.items()}


class CsvRowCache:
    """Encoded cells of each record, reused while the record's JSON text is unchanged.

    Every write refreshes the whole table's CSV; re-encoding only the records that changed
    keeps that cheap for large tables (keyed by exact JSON, so `1` -> `1.0` is a change).
    """

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, tuple[str, dict[str, str]]]] = {}

    def __getstate__(self) -> dict[str, Any]:  # a store sent to a worker starts with no cache
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def rows(
        self, table: str, docs: Mapping[str, Mapping[str, Any]], texts: Mapping[str, str] | None = None
    ) -> list[tuple[str, dict[str, str]]]:
        """(doc id, column -> cell) per record; `texts` are the records' JSON if already made."""
        old = self._tables.get(table, {})
        new: dict[str, tuple[str, dict[str, str]]] = {}
        for doc_id, doc in docs.items():
            key = texts[doc_id] if texts is not None else json.dumps(doc, ensure_ascii=False)
            hit = old.get(str(doc_id))
            new[str(doc_id)] = (key, hit[1]) if hit is not None and hit[0] == key else (key, _row(doc))
        self._tables[table] = new
        return [(doc_id, cells) for doc_id, (_, cells) in new.items()]


def table_to_csv(
    docs: Mapping[str, Mapping[str, Any]],
    table: str = "",
    cache: CsvRowCache | None = None,
    texts: Mapping[str, str] | None = None,
) -> str:
    """CSV text of a TinyDB table (`doc id -> record`), reusing `cache` rows where unchanged."""
    if cache is not None:
        rows = cache.rows(table, docs, texts)
    else:
        rows = [(str(doc_id), _row(doc)) for doc_id, doc in docs.items()]
    names: set[str] = set()
    for _, cells in rows:
        names.update(cells)
    columns = [c for c in _FIRST[1:] if c in names] + sorted(names.difference(_FIRST))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([DOC_ID, *columns])
    writer.writerows([doc_id, *[cells.get(c, "") for c in columns]] for doc_id, cells in rows)
    return buffer.getvalue()


def _set(record: dict[str, Any], dotted: str, value: Any, where: str) -> None:
    parts = dotted.split(".")
    node = record
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(f"{where}: column {dotted!r} conflicts with a value at {part!r}")  # noqa: TRY004 - bad file
        node = child
    if parts[-1] in node:
        raise ValueError(f"{where}: column {dotted!r} conflicts with another column")
    node[parts[-1]] = value


def csv_to_table(path: Path) -> dict[str, dict[str, Any]]:
    """Read a CSV written by `table_to_csv` back into `doc id -> record`."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        try:
            columns = next(reader)
        except StopIteration:
            raise ValueError(f"{path} is empty: expected a header row starting with {DOC_ID!r}") from None
        if not columns or columns[0] != DOC_ID:
            raise ValueError(f"{path}: first column must be {DOC_ID!r}, got {columns[:1]}")
        docs: dict[str, dict[str, Any]] = {}
        for line, row in enumerate(reader, start=2):
            where = f"{path}, line {line}"
            if len(row) != len(columns):
                raise ValueError(f"{where}: {len(row)} cells for {len(columns)} columns")
            record: dict[str, Any] = {}
            for name, cell in zip(columns[1:], row[1:]):
                if cell == "":
                    continue
                try:
                    value = json.loads(cell)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{where}, column {name!r}: not a JSON value ({err})") from None
                _set(record, name, value, where)
            doc_id = row[0]
            if not doc_id.isdigit() or doc_id in docs:
                raise ValueError(f"{where}: bad or repeated {DOC_ID} {doc_id!r}")
            docs[doc_id] = record
    return docs


def table_to_yaml(docs: Mapping[str, Mapping[str, Any]]) -> str:
    """YAML list of flattened records (dotted keys), as Quarto listing pages read them."""
    import yaml

    items = [flatten_record(doc) for doc in docs.values()]
    return yaml.safe_dump(items, sort_keys=False, allow_unicode=True, default_flow_style=False)
