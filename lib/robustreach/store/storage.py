"""The index file: a TinyDB storage that writes atomically, opened under a file lock.

TinyDB's own JSONStorage rewrites the file in place (seek, write, truncate), so a crash leaves
half a file and concurrent processes overwrite each other. Here:

- `AtomicJSONStorage` writes a temporary file, fsyncs it and renames it over `index.json`, so
  readers always see a whole index; a file that does not parse raises `IndexCorruptError`
  instead of being overwritten. It writes strict JSON (NaN as null, see `store.files`) and
  reads older indexes holding `NaN` tokens.
- `IndexFile` opens TinyDB for one operation at a time: writes hold a `filelock.FileLock` for
  the whole read-modify-write (open, op, close), so separate processes interleave safely;
  reads take no lock, since a rename is atomic.
- The last parsed index is kept with its raw bytes, so repeated queries skip JSON parsing
  while the file is byte-for-byte unchanged.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from tinydb import TinyDB
from tinydb.storages import Storage

from robustreach.store.errors import IndexCorruptError
from robustreach.store.files import atomic_write, dumps_strict

__all__ = ["AtomicJSONStorage", "IndexFile", "parse_index"]

Data = dict[str, dict[str, Any]]


def _restore_hint(path: Path) -> str:
    return (
        f"run `robustreach db restore --results {path.parent}` to rebuild it from the CSV backup in "
        f"{path.parent / 'db-csv'} (the damaged file is kept as a backup, nothing is overwritten)"
    )


def parse_index(raw: bytes, path: Path) -> Data:
    """Parse the bytes of an index file, raising `IndexCorruptError` on anything malformed."""
    if not raw.strip():
        raise IndexCorruptError(f"index {path} is empty (truncated?); {_restore_hint(path)}")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise IndexCorruptError(f"index {path} is not valid JSON ({err}); {_restore_hint(path)}") from None
    if not isinstance(data, dict):
        raise IndexCorruptError(f"index {path} does not hold a JSON object of tables; {_restore_hint(path)}")
    for name, table in data.items():
        if not isinstance(table, dict) or not all(isinstance(doc, dict) for doc in table.values()):
            raise IndexCorruptError(f"index {path}: table {name!r} is not an object of records; {_restore_hint(path)}")
    return data


def _check_backup_orphaned(path: Path) -> None:
    """A missing index beside a non-empty CSV backup is a lost index, not a new one: writing a
    fresh index would overwrite the backup with one record."""
    backup = path.parent / "db-csv"
    if not backup.is_dir():
        return
    for csv_path in sorted(backup.glob("*.csv")):
        with open(csv_path, encoding="utf-8") as handle:
            header, first_row = handle.readline(), handle.readline()
            if header and first_row:
                raise IndexCorruptError(
                    f"index {path} is missing but {csv_path} holds records; {_restore_hint(path)}; then "
                    f"`robustreach db rebuild --results {path.parent}` adds records for model files the backup lacks"
                )


class _Snapshot:
    """The last seen raw bytes of the index and their parsed, never-mutated form."""

    def __init__(self) -> None:
        self.state: tuple[bytes, Data] | None = None  # replaced whole, so threads see a consistent pair


class AtomicJSONStorage(Storage):
    """TinyDB storage of one JSON file, written via temp file + fsync + rename.

    **Arguments:**
    - `path`: the index file; it is created by the first write, not before.
    - `snapshot`: parse cache shared by the operations of one store.
    - `writable`: whether this opening may write (the caller holds the lock). A writable
      opening parses its own copy, since TinyDB mutates what `read` returns.
    """

    def __init__(self, path: str | Path, snapshot: _Snapshot | None = None, writable: bool = False):
        super().__init__()
        self.path = Path(path)
        self.snapshot = snapshot
        self.writable = writable
        self.data: Data | None = None  # what this opening read or last wrote
        self.doc_json: dict[str, dict[str, str]] = {}  # table -> doc id -> JSON text, of the last write
        self.wrote = False

    def read(self) -> Data | None:
        if self.data is not None:  # one opening = one operation: the file is ours until close
            return self.data
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            _check_backup_orphaned(self.path)
            return None
        state = self.snapshot.state if self.snapshot is not None else None
        if state is not None and state[0] == raw and not self.writable:
            self.data = state[1]
        else:
            self.data = parse_index(raw, self.path)
            if self.snapshot is not None and not self.writable:
                self.snapshot.state = (raw, self.data)
        return self.data

    def write(self, data: Data) -> None:
        if not self.writable:
            raise RuntimeError("internal error: write through a read-only opening of the index")
        # Encode record by record: the same JSON texts then tell the CSV backup which records changed.
        self.doc_json = {
            table: {doc_id: dumps_strict(doc, ensure_ascii=False) for doc_id, doc in docs.items()}
            for table, docs in data.items()
        }
        tables = (
            json.dumps(table) + ": {" + ", ".join(f"{json.dumps(str(i))}: {text}" for i, text in docs.items()) + "}"
            for table, docs in self.doc_json.items()
        )
        raw = "{" + ", ".join(tables) + "}"
        atomic_write(self.path, raw.encode("utf-8"))
        self.data = data
        self.wrote = True
        if self.snapshot is not None:
            # Drop the snapshot rather than keep `data`: TinyDB's documents share objects with
            # what callers passed, and a snapshot must never change under a reader. The next
            # read parses the new file.
            self.snapshot.state = None


class IndexFile:
    """`index.json` opened for one operation at a time.

    ```python
    index = IndexFile(Path("results/index.json"))
    with index.reading() as db:
        db.table("models").all()
    with index.writing() as (db, storage):  # holds results/index.json.lock
        db.table("models").insert({...})
    ```
    """

    def __init__(self, path: Path, lock_timeout: float = 600.0):
        self.path = path
        self.lock_timeout = lock_timeout
        self._snapshot = _Snapshot()
        self._lock: FileLock | None = None
        self._lock_guard = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:  # a store can be sent to worker processes
        return {"path": self.path, "lock_timeout": self.lock_timeout}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["lock_timeout"])  # type: ignore[misc]

    @property
    def lock(self) -> FileLock:
        with self._lock_guard:
            if self._lock is None:  # one reentrant lock object per store, made on first use
                self._lock = FileLock(str(self.path) + ".lock", timeout=self.lock_timeout)
            return self._lock

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the index lock (for compound operations such as restore and gc)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Writes hold the lock for milliseconds; filelock's default 50 ms poll would idle waiters.
            self.lock.acquire(poll_interval=0.002)
        except Timeout:
            raise TimeoutError(
                f"could not lock {self.path} within {self.lock_timeout} s: another process is writing "
                f"to the index (lock file {self.lock.lock_file})"
            ) from None
        try:
            yield
        finally:
            self.lock.release()

    @contextmanager
    def reading(self) -> Iterator[TinyDB]:
        """TinyDB over the current index, for reading only."""
        db = TinyDB(self.path, snapshot=self._snapshot, writable=False, storage=AtomicJSONStorage)
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def writing(self) -> Iterator[tuple[TinyDB, AtomicJSONStorage]]:
        """TinyDB over the index under the lock; every TinyDB write is atomic on disk."""
        with self.locked():
            db = TinyDB(self.path, snapshot=self._snapshot, writable=True, storage=AtomicJSONStorage)
            try:
                yield db, db.storage  # type: ignore[misc]
            finally:
                db.close()

    def read_data(self) -> Data:
        """The whole index as a dict (never mutate it: it may be the shared snapshot)."""
        with self.reading() as db:
            return db.storage.read() or {}
