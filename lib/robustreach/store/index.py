"""Records in the index: insert, upsert, get, find, remove, plus CSV/YAML export and restore.

A record is a JSON object with at least
- `hash`: full sha256 hex; defaults to `params_hash(record["hyperparameters"])`;
- `hyperparameters`: nested as in the parameter file (optional for generic records that
  bring their own hash, such as notebook runs);
- `created` (UTC ISO time), `provenance` (see `robustreach.provenance`), `status`
  (default "complete");
- `files`: name -> path relative to `results/` of each file the record owns (checked to stay
  inside `results/`, also when restored from the CSV backup).

Records are strict JSON: a NaN or infinity passed in is stored as `null`.

Every write holds the index lock, writes `index.json` atomically and refreshes
`db-csv/<table>.csv` before releasing the lock, so the CSV backup is never behind a returned
write (a crash between the two can leave the CSV one write behind).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinydb.table import Document, Table

from robustreach.hashing import jsonable, params_hash
from robustreach.provenance import provenance, utc_now
from robustreach.store.backup import DOC_ID, CsvRowCache, csv_to_table, table_to_csv, table_to_yaml
from robustreach.store.errors import AmbiguousQueryError, DuplicateRecordError, NoIndexError, NoMatchError
from robustreach.store.files import atomic_write, check_inside, check_relative, finite_or_null
from robustreach.store.query import (
    BOOKKEEPING,
    Where,
    identifier_matches,
    unknown_fields,
    varying_fields,
)
from robustreach.store.storage import AtomicJSONStorage, IndexFile

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["STANDARD_TABLES", "ResultsIndex"]

STANDARD_TABLES = ("models", "evaluations", "figures", "summaries", "runs")
_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_HEX = re.compile(r"^[0-9a-f]{12,}$")


def _copy(obj: Any) -> Any:
    """An independent copy of JSON data (a JSON round trip is several times faster than deepcopy)."""
    return json.loads(json.dumps(obj))


def _describe(where: Mapping[str, Any] | None) -> str:
    return "all records" if not where else f"where {dict(where)!r}"


def ambiguity(table: str, records: list[dict[str, Any]], what: str) -> AmbiguousQueryError:
    """The error for several matches, naming the fields whose values differ among them."""
    fields = varying_fields(records)
    hashes = [r.get("hash", "?") for r in records]
    if fields:
        shown = "; ".join(f"{name}: {', '.join(map(repr, values))}" for name, values in fields.items())
        detail = f"they differ in {shown}. Add one of these fields to the query"
    else:
        listed = ", ".join(f"{r.get('hash', '?')[:12]} (created {r.get('created')})" for r in records)
        detail = (
            f"they differ only in bookkeeping fields (e.g. the same parameters run twice): {listed}. Pick one by hash"
        )
    return AmbiguousQueryError(f"{len(records)} records in table {table!r} match {what}; {detail}", fields, hashes)


class ResultsIndex:
    """The TinyDB index of a results directory; generic records of any table.

    **Arguments:**
    - `root`: the results directory (created on the first write).
    - `lock_timeout`: seconds to wait for another process's write before giving up.
    """

    def __init__(self, root: str | Path = "results", *, lock_timeout: float = 600.0):
        self.root = Path(root)
        self._index = IndexFile(self.root / "index.json", lock_timeout)
        self._csv_rows = CsvRowCache()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r})"

    @property
    def index_path(self) -> Path:
        return self._index.path

    @property
    def csv_dir(self) -> Path:
        return self.root / "db-csv"

    def require_index(self) -> None:
        """Raise `NoIndexError` unless `index.json` exists (for commands that only read)."""
        if not self.index_path.exists():
            self._index.read_data()  # a lost index beside its CSV backup raises its own error
            where = "no results folder" if not self.root.is_dir() else "no index"
            raise NoIndexError(
                f"{where} at {self.index_path}: run from the project folder or pass --results "
                f"(`robustreach db rebuild --results {self.root}` makes an index from the files under it)"
            )

    # -- tables -----------------------------------------------------------------------------
    def tables(self) -> list[str]:
        """Tables present in the index, plus the standard ones."""
        data = self._index.read_data()
        return sorted(set(STANDARD_TABLES) | {t for t in data if t != "_default"})

    def _check_table(self, table: str, *, creating: bool = False) -> str:
        if not isinstance(table, str) or not _TABLE_NAME.match(table):
            raise ValueError(f"table name {table!r} must start with a letter and hold letters, digits, '_', '-'")
        if not creating and table not in STANDARD_TABLES and table not in self._index.read_data():
            raise ValueError(f"no table {table!r} in {self.index_path}; tables: {', '.join(self.tables())}")
        return table

    # -- preparing records ----------------------------------------------------------------------
    def _prepare(self, table: str, record: Mapping[str, Any], prov: dict[str, Any] | None = None) -> dict[str, Any]:
        """Validate `record` and fill hash, created, provenance and status (a fresh copy)."""
        if not isinstance(record, Mapping):
            raise TypeError(f"a record for table {table!r} must be a dict, got {type(record).__name__}")
        for key in record:
            if not isinstance(key, str) or not key or "." in key or key == DOC_ID:
                raise ValueError(f"record field {key!r} (table {table!r}): fields must be non-empty names without dots")
        rec = finite_or_null(jsonable(record))
        hp = rec.get("hyperparameters")
        if hp is not None and not isinstance(hp, dict):
            raise TypeError(f"record 'hyperparameters' (table {table!r}) must be a dict, got {type(hp).__name__}")
        if "hash" not in rec:
            if hp is None:
                raise ValueError(f"a record for table {table!r} needs 'hyperparameters' or its own 'hash'")
            rec["hash"] = params_hash(hp)
        if not isinstance(rec["hash"], str) or not _HEX.match(rec["hash"]):
            raise ValueError(f"record hash {rec['hash']!r} (table {table!r}) must be lowercase hex, at least 12 digits")
        files = rec.get("files")
        if files is not None:
            if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
                raise TypeError(f"record 'files' (table {table!r}) must map names to paths relative to results/")
            for name, path in files.items():
                check_relative(path, f"record {rec['hash'][:12]} file {name!r}")
        prov = prov if prov is not None else provenance()
        rec.setdefault("provenance", prov)
        rec.setdefault("created", prov.get("created", utc_now()) if isinstance(prov, dict) else utc_now())
        rec.setdefault("status", "complete")
        return rec

    # -- writes -----------------------------------------------------------------------------
    def _write(self, table: str, operation: Callable[[Table], Any]) -> Any:
        """Run `operation` on the table under the lock, then refresh that table's CSV."""
        with self._index.writing() as (db, storage):
            result = operation(db.table(table))
            if storage.wrote and storage.data is not None:
                self._write_csv(table, storage.data.get(table, {}), texts=storage.doc_json.get(table))
        return result

    def _write_csv(
        self,
        table: str,
        docs: Mapping[str, Mapping[str, Any]],
        directory: Path | None = None,
        texts: Mapping[str, str] | None = None,
    ) -> Path:
        path = (directory or self.csv_dir) / f"{table}.csv"
        atomic_write(path, table_to_csv(docs, table, self._csv_rows if directory is None else None, texts))
        return path

    @staticmethod
    def _by_hash(tbl: Table, h: str) -> list[Document]:
        return tbl.search(lambda doc: doc.get("hash") == h)

    def insert(self, table: str, record: Mapping[str, Any]) -> dict[str, Any]:
        """Add a record; its hash must be new to the table (use `upsert` to replace)."""
        return self.insert_many(table, [record])[0]

    def insert_many(self, table: str, records: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Add several records in one write (one lock, one index rewrite)."""
        self._check_table(table, creating=True)
        prov = provenance()
        recs = [self._prepare(table, r, prov) for r in records]
        hashes = [r["hash"] for r in recs]
        if len(set(hashes)) != len(hashes):
            raise DuplicateRecordError(
                f"records for table {table!r} repeat a hash: {sorted({h for h in hashes if hashes.count(h) > 1})}"
            )

        def operation(tbl: Table) -> None:
            wanted = set(hashes)
            clash = [d["hash"] for d in tbl.search(lambda doc: doc.get("hash") in wanted)]
            if clash:
                raise DuplicateRecordError(
                    f"table {table!r} already holds a record with hash {clash[0]}; use upsert to replace it"
                )
            tbl.insert_multiple(recs)

        self._write(table, operation)
        return _copy(recs)

    def upsert(self, table: str, record: Mapping[str, Any], key: str = "hash") -> dict[str, Any]:
        """Insert `record`, or update the record whose `key` field equals the record's.

        An update replaces the given top-level fields, keeps the others and the original
        `created`, and sets `updated`. `key` may be dotted (`hyperparameters.name`).
        """
        self._check_table(table, creating=True)
        rec = self._prepare(table, record)
        where = Where({key: _required(rec, key, table)})

        def operation(tbl: Table) -> dict[str, Any]:
            found = tbl.search(where)
            if len(found) > 1:
                raise ambiguity(table, [dict(d) for d in found], f"{key}={where.conditions[key]!r}")
            if not found:
                tbl.insert(rec)
                return rec
            old = found[0]
            fields = dict(rec)
            if "created" not in record:
                fields["created"] = old.get("created", rec["created"])
                fields["updated"] = utc_now()
            clash = [d for d in self._by_hash(tbl, fields["hash"]) if d.doc_id != old.doc_id]
            if clash:
                raise DuplicateRecordError(f"table {table!r} already holds another record with hash {fields['hash']}")
            tbl.update(fields, doc_ids=[old.doc_id])
            return {**old, **fields}

        return _copy(self._write(table, operation))

    def remove(self, table: str, hash: str) -> None:
        """Remove the record with this hash (or unique prefix); its files stay until `gc`."""
        self._check_table(table)

        def operation(tbl: Table) -> None:
            doc = self._resolve(table, tbl, hash)
            tbl.remove(doc_ids=[doc.doc_id])

        self._write(table, operation)

    # -- reads --------------------------------------------------------------------------------
    def _resolve(self, table: str, tbl: Table, prefix: str) -> Document:
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"a hash or hash prefix must be a non-empty string, got {prefix!r}")
        found = tbl.search(lambda doc: str(doc.get("hash", "")).startswith(prefix))
        if not found:
            raise NoMatchError(f"no record with hash {prefix!r} in table {table!r} of {self.index_path}")
        if len(found) > 1:
            raise ambiguity(table, [dict(d) for d in found], f"hash prefix {prefix!r}")
        return found[0]

    def get(self, table: str, hash_or_prefix: str) -> dict[str, Any]:
        """The record with this full hash or unique hash prefix."""
        self._check_table(table)
        with self._index.reading() as db:
            return _copy(self._resolve(table, db.table(table), hash_or_prefix))

    def find(self, table: str, where: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Records matching `where` (see `robustreach.store.query`), in insertion order."""
        self._check_table(table)
        query = Where(where)
        with self._index.reading() as db:
            return _copy(db.table(table).search(query))

    def find_one(self, table: str, where: Mapping[str, Any] | None) -> dict[str, Any]:
        """The single record matching `where`; errors name misspelt or distinguishing fields."""
        found = self.find(table, where)
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ambiguity(table, found, _describe(where))
        message = f"no record in table {table!r} of {self.index_path} matches {_describe(where)}"
        unknown = unknown_fields(self.find(table), where)
        if unknown:
            message += f"; no record of this table has the field(s) {', '.join(unknown)}"
        raise NoMatchError(message)

    def dataframe(self, table: str, where: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Matching records flattened by `pandas.json_normalize(sep=".")`, hash column first."""
        import pandas as pd

        records = self.find(table, where)
        if not records:
            return pd.DataFrame(columns=["hash"])
        frame = pd.json_normalize(records, sep=".")
        return frame[["hash", *[c for c in frame.columns if c != "hash"]]]

    def varying(
        self, table: str, where: Mapping[str, Any] | None = None, type: str | None = None
    ) -> dict[str, list[Any]]:
        """Field -> sorted distinct values, for fields that differ among the matching records.

        `type` keeps records whose `identifier` is `type` or lies under it (figure types:
        `aligned_trajectories` covers `aligned_trajectories/compare_train_conditions`).
        Bookkeeping fields (hash, created, provenance, files, ...) are not reported.
        """
        records = self.find(table, where)
        if type is not None:
            if records and not any("identifier" in r for r in records):
                raise ValueError(f"records of table {table!r} have no 'identifier' field to filter by type {type!r}")
            records = [r for r in records if identifier_matches(r.get("identifier"), type)]
        return varying_fields(records, exclude=BOOKKEEPING)

    # -- backup ----------------------------------------------------------------------------------
    def export(self, directory: str | Path | None = None) -> list[Path]:
        """Write `<table>.csv` and `<table>.yml` for every table; returns the paths.

        By default CSVs go to `results/db-csv/` (the backup `restore` reads) and YAML to
        `results/db-yaml/`; with `directory`, both go there.
        """
        target = Path(directory) if directory is not None else None
        paths: list[Path] = []
        with self._index.locked():  # no writer may refresh a CSV between our reads and writes
            data = self._index.read_data()
            for table in sorted(t for t in data if t != "_default"):
                paths.append(self._write_csv(table, data[table], target))
                yml = (target or self.root / "db-yaml") / f"{table}.yml"
                atomic_write(yml, table_to_yaml(data[table]))
                paths.append(yml)
        return paths

    def restore(self) -> dict[str, int]:
        """Rebuild `index.json` from `db-csv/*.csv`; returns the record count per table.

        An existing index (damaged or not) is kept as `index.json.bak-<UTC time>` first. Every
        file path in the backup must lie inside `results/`; otherwise nothing is restored.
        """
        csvs = sorted(self.csv_dir.glob("*.csv"))
        if not csvs:
            raise FileNotFoundError(f"no CSV backup to restore from: {self.csv_dir} holds no <table>.csv")
        data = {path.stem: csv_to_table(path) for path in csvs}  # parse all before touching anything
        for name, docs in data.items():
            self._check_table(name, creating=True)
            for doc_id, doc in docs.items():
                files = doc.get("files") or {}
                if not isinstance(files, dict):
                    raise ValueError(f"{self.csv_dir / (name + '.csv')}, record {doc_id}: 'files' is not a mapping")
                for key, path in files.items():
                    check_inside(self.root, path, f"{self.csv_dir / (name + '.csv')}, record {doc_id}, file {key!r}")
        with self._index.locked():
            if self.index_path.exists():
                stamp = utc_now().replace(":", "").replace("+0000", "Z")
                backup = self.index_path.with_name(f"{self.index_path.name}.bak-{stamp}")
                backup.write_bytes(self.index_path.read_bytes())
            storage = AtomicJSONStorage(self.index_path, writable=True)
            storage.write(data)
        self._index._snapshot.state = None
        return {table: len(docs) for table, docs in data.items()}


def _required(record: Mapping[str, Any], key: str, table: str) -> Any:
    node: Any = record
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ValueError(f"upsert key {key!r} is missing from the record for table {table!r}")
        node = node[part]
    return node
