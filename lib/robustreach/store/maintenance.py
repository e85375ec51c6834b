"""Garbage collection: files without a record, and records without their files.

"Deleting" a model means removing its record; `gc` then finds what is left over:
- orphan files under `models/`, `evaluations/`, `figures/`, `summaries/` that no record lists, and temp
  files left by writes a crash cut off (`.<name>.*.tmp`, also beside `index.json` and in
  `db-csv/`). A file belongs to a record if the record lists it in `files`, or, for models,
  if its name starts with the model's short hash (side files such as
  `<short>.history.json`), so side files are never mistaken for orphans;
- records listing a file that does not exist; their remaining files become orphans;
- under `checkpoints/`: checkpoints of an older layout, set-aside unreadable ones
  (`*.bad-*`) and temp files (current checkpoints are resumable and kept);
- under `runs/<stem>/`: temporary run folders (`.<hash>.tmp-<host>-<pid>-<id>`) and old
  ones replaced by a rerun (`.<hash>.old-<id>`) whose process is gone: on this host, when
  that pid no longer runs; from another host, when untouched for `FOREIGN_STALE_S`.

`archive` and `delete` refuse to run while model files exist but the index has no model
record (index lost or empty): every model would look like an orphan. `robustreach db
rebuild` remakes the records first. A dry run only reads: it takes no lock and creates no
file, and a folder without an index is an error.

`dry-run` (default) only reports; `archive` moves files to `results/archive/<same path>` and
removed records to `results/archive/records/<table>.jsonl`; `delete` removes both for good.
Files younger than `min_age_s` are left alone: another process may have written them and not
yet inserted their record.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from robustreach.hashing import short_hash
from robustreach.store.errors import NoIndexError
from robustreach.store.figures import PLOTLY_JS
from robustreach.store.files import atomic_write, dumps_strict
from robustreach.store.training import CHECKPOINTS, is_current_checkpoint

if TYPE_CHECKING:
    from robustreach.store.index import ResultsIndex

__all__ = ["GcReport", "MaintenanceMixin"]

GcMode = Literal["dry-run", "archive", "delete"]
_SCANNED = ("models", "evaluations", "figures", "summaries")
_SHARED_ASSETS = (f"figures/{PLOTLY_JS}",)  # written by the store for every HTML figure
FOREIGN_STALE_S = 24 * 3600.0  # a run folder of another host untouched this long is abandoned
_RUN_TEMP = re.compile(r"^\.[0-9a-f]{12}\.(?:tmp-(?:(?P<host>.+)-)?(?P<pid>\d+)-[0-9a-f]{8}|old-[0-9a-f]{8})$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def host_name() -> str:
    """This machine's name as temporary run folders carry it (`.<hash>.tmp-<host>-<pid>-<id>`)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())


def run_folder_process_gone(name: str) -> bool:
    """Whether the process that made the temporary run folder `name` is known to have ended:
    it ran on this host and its pid no longer runs. (Another host's process cannot be asked.)"""
    match = _RUN_TEMP.match(name)
    return bool(match and match["pid"] is not None and match["host"] in (None, host_name())
                and not _pid_alive(int(match["pid"])))


def _newest_mtime(folder: Path) -> float:
    times = [folder.stat().st_mtime]
    for dirpath, _, files in os.walk(folder):
        times += [os.stat(os.path.join(dirpath, f)).st_mtime for f in files if os.path.exists(os.path.join(dirpath, f))]
    return max(times)


def stale_run_folders(root: Path, min_age_s: float, now: float) -> list[str]:
    """Temporary and replaced run folders under `root/runs` whose process is gone."""
    found = []
    for folder in sorted((root / "runs").glob("*/.*")):
        match = _RUN_TEMP.match(folder.name)
        if not match or not folder.is_dir() or folder.is_symlink():
            continue
        age = now - _newest_mtime(folder)
        if age < min_age_s:
            continue
        # kept: its process runs here, or it is another host's and was touched within a day
        local = match["host"] in (None, host_name())
        if match["pid"] is not None and not run_folder_process_gone(folder.name) and (local or age < FOREIGN_STALE_S):
            continue
        found.append(folder.relative_to(root).as_posix())
    return found


@dataclass
class GcReport:
    """What `gc` found (and, unless a dry run, archived or deleted).

    Paths are relative to the results directory.
    """

    mode: str
    orphan_files: list[str] = field(default_factory=list)
    missing_files: list[dict[str, str]] = field(default_factory=list)  # table, hash, file
    removed_records: list[dict[str, str]] = field(default_factory=list)  # table, hash
    archive_dir: Path | None = None

    def __str__(self) -> str:
        verb = {"dry-run": "would remove", "archive": "archived", "delete": "deleted"}[self.mode]
        lines = [
            f"gc ({self.mode}): {len(self.orphan_files)} orphan file(s), "
            f"{len(self.removed_records)} record(s) with missing files"
            + (f"; {verb}:" if self.orphan_files or self.removed_records else "")
        ]
        lines += [f"  file   {p}" for p in self.orphan_files]
        lines += [f"  record {m['table']} {m['hash'][:12]} (missing {m['file']})" for m in self.missing_files]
        if self.archive_dir is not None:
            lines.append(f"archive: {self.archive_dir}")
        return "\n".join(lines)


def _free_path(path: Path) -> Path:
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate


def _prune_empty_dirs(top: Path) -> None:
    for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
        if Path(dirpath) != top:
            try:
                os.rmdir(dirpath)  # only succeeds when empty
            except OSError:
                pass


class MaintenanceMixin:
    """`gc`; mixed into `ResultsStore`."""

    def gc(self: ResultsIndex, mode: GcMode = "dry-run", *, min_age_s: float = 60.0) -> GcReport:
        """Find orphan files and records with missing files; archive or delete them.

        **Arguments:**
        - `mode`: "dry-run" (report only), "archive" (move under results/archive/) or "delete".
        - `min_age_s`: leave files modified more recently than this alone.
        """
        if mode not in ("dry-run", "archive", "delete"):
            raise ValueError(f"gc mode {mode!r} must be 'dry-run', 'archive' or 'delete'")
        report = GcReport(mode=mode, archive_dir=self.root / "archive" if mode == "archive" else None)
        now = time.time()
        self.require_index()
        if mode == "dry-run":  # reads only: no lock file, nothing created
            self._gc_scan(report, self._index.read_data(), now, min_age_s)
            return report
        with self._index.locked():  # no write may land between the scan and the clean-up
            data = self._index.read_data()
            model_files = [p for p in (self.root / "models").glob("*.eqx") if not p.name.startswith(".")]
            if model_files and not data.get("models"):
                raise NoIndexError(
                    f"refusing gc --{mode}: {self.index_path} holds no model record but {self.root / 'models'} holds "
                    f"{len(model_files)} model file(s), which would all count as orphans; run "
                    f"`robustreach db rebuild --results {self.root}` first"
                )
            self._gc_scan(report, data, now, min_age_s)
            self._gc_apply(report, data)
        return report

    def _gc_scan(self: ResultsIndex, report: GcReport, data: dict[str, Any], now: float, min_age_s: float) -> None:
        """Fill `report` with what `gc` would remove, from the index `data`."""
        kept: list[dict[str, Any]] = []
        for table, docs in sorted(data.items()):
            for doc in docs.values():
                missing = [p for p in (doc.get("files") or {}).values() if not (self.root / p).exists()]
                if missing:
                    report.removed_records.append({"table": table, "hash": doc.get("hash", "")})
                    report.missing_files += [
                        {"table": table, "hash": doc.get("hash", ""), "file": p} for p in missing
                    ]
                else:
                    kept.append(doc)
        known = set(_SHARED_ASSETS) | {p for doc in kept for p in (doc.get("files") or {}).values()}
        model_prefixes = {
            f"{short_hash(doc['hash'])}."
            for doc in kept
            if any(str(p).startswith("models/") for p in (doc.get("files") or {}).values())
        }
        candidates = [p for top in _SCANNED for p in sorted((self.root / top).rglob("*"))]
        # temp files of writes cut off by a crash, next to the index and in its backups
        candidates += [p for d in ("", "db-csv", "db-yaml") for p in sorted((self.root / d).glob(".*.tmp"))]
        for path in candidates:
            if not path.is_file() or path.is_symlink():
                continue
            rel = path.relative_to(self.root).as_posix()
            owned = rel.startswith("models/") and any(path.name.startswith(p) for p in model_prefixes)
            if rel in known or owned or now - path.stat().st_mtime < min_age_s:
                continue
            report.orphan_files.append(rel)
        for path in sorted((self.root / CHECKPOINTS).glob("*")) if (self.root / CHECKPOINTS).is_dir() else []:
            if not path.is_file() or path.is_symlink() or is_current_checkpoint(path.name):
                continue
            if now - path.stat().st_mtime >= min_age_s:
                report.orphan_files.append(path.relative_to(self.root).as_posix())
        report.orphan_files += stale_run_folders(self.root, min_age_s, now)

    def _gc_apply(self: ResultsIndex, report: GcReport, data: dict[str, Any]) -> None:
        archive = report.archive_dir
        for rel in report.orphan_files:
            source = self.root / rel
            if archive is not None:
                target = _free_path(archive / rel)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, target)
            elif source.is_dir():  # a run folder
                shutil.rmtree(source, ignore_errors=True)
            else:
                source.unlink(missing_ok=True)
        by_table: dict[str, set[str]] = {}
        for item in report.removed_records:
            by_table.setdefault(item["table"], set()).add(item["hash"])
        for table, hashes in by_table.items():
            if archive is not None:
                lines = [dumps_strict(d, ensure_ascii=False) for d in data[table].values() if d.get("hash") in hashes]
                path = archive / "records" / f"{table}.jsonl"
                old = path.read_text(encoding="utf-8") if path.exists() else ""
                atomic_write(path, old + "".join(line + "\n" for line in lines))
            self._write(table, lambda tbl, hs=hashes: tbl.remove(lambda doc: doc.get("hash") in hs))
        for top in _SCANNED:
            if (self.root / top).is_dir():
                _prune_empty_dirs(self.root / top)
