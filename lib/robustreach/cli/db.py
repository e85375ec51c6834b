"""`robustreach db ...` and `robustreach figures ...`: the results index from the shell.

```
robustreach db ls models --where train.n_batches=100 --format table
robustreach db show 3fa9c2
robustreach db varying figures --type aligned_trajectories
robustreach db gc --archive
robustreach figures get --identifier aligned_trajectories --where train.perturbation.std=0.5 --save-dir out --annotate
```
`--where key=value` values are YAML scalars (`100` is an int, `0.5` a float, `true` a bool,
`[1, 2]` a list, `1e-3` a float too); keys are dotted fields as in `ResultsStore.find`.

Exit status: 0 on success; 1 when nothing matches (with the fields a misspelt key may have
meant), when there is no index at `--results` (read-only commands never create one, nor any
other file), or on any other error, reported in one line on stderr; 2 for bad usage.
JSON output is strict (non-finite numbers as null). `db ls` marks records whose files are
missing (status `ok [missing files]` in tables, `"missing_files"` in JSON).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import yaml

from robustreach.store.files import dumps_strict

__all__ = ["parse_where", "register"]

_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")

F = TypeVar("F", bound=Callable[..., Any])

ResultsOption = Annotated[Path, typer.Option("--results", help="The results directory.")]
WhereOption = Annotated[
    list[str] | None,
    typer.Option("--where", "-w", help="Filter key=value (dotted key, YAML value); repeatable."),
]


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def parse_where(items: list[str] | None) -> dict[str, Any]:
    """`["train.n_batches=100", "name=a"]` -> `{"train.n_batches": 100, "name": "a"}`."""
    where: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not key=value", param_hint="--where")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise typer.BadParameter(f"value of {key!r} is not YAML: {err}", param_hint="--where") from None
        if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads 1e-3 as a string
        if isinstance(value, dict):
            raise typer.BadParameter(f"value of {key!r} is a mapping; use dotted keys instead", param_hint="--where")
        if key in where:
            raise typer.BadParameter(f"{key!r} given twice", param_hint="--where")
        where[key] = value
    return where


def _store(results: Path, *, reading: bool = True):
    """The store at `results`; for commands that only read, its index must exist."""
    from robustreach.store import ResultsStore

    store = ResultsStore(results)
    if reading:
        store.require_index()
    return store


def _no_match(table: str, records: list[dict[str, Any]], where: dict[str, Any]) -> typer.Exit:
    """Report that nothing matched (naming fields no record has, and close known ones); exit 1."""
    import difflib

    from robustreach.store.query import HYPERPARAMETERS, flatten_record, unknown_fields

    unknown = unknown_fields(records, where)
    hint = ""
    if not records:
        hint = " (the table holds no records)"
    elif unknown:
        known = sorted({name.removeprefix(HYPERPARAMETERS + ".") for r in records for name in flatten_record(r)})
        close = {key: difflib.get_close_matches(key, known, n=3, cutoff=0.6) for key in unknown}
        means = "; ".join(f"{key}: did you mean {', '.join(c)}?" for key, c in close.items() if c)
        hint = f" (no record has the field(s) {', '.join(unknown)}" + (f"; {means}" if means else "") + ")"
        if not means:
            tops = sorted({k for r in records for k in r} | {k for r in records for k in r.get(HYPERPARAMETERS) or {}})
            hint += f"; fields start with one of: {', '.join(tops)}"
    typer.echo(f"no records in {table!r} match{hint}", err=True)
    return typer.Exit(1)


def _with_missing(store, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records with `missing_files` added where files they list are not on disk."""
    from robustreach.store.models import missing_files

    out = []
    for record in records:
        missing = missing_files(store.root, record)
        out.append({**record, "missing_files": missing} if missing else record)
    return out


def _friendly(command: F) -> F:
    """Report the store's errors as one line on stderr and exit status 1, not a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from robustreach.store import AmbiguousQueryError, IndexCorruptError

        try:
            return command(*args, **kwargs)
        except (IndexCorruptError, AmbiguousQueryError, LookupError, ValueError, TypeError, OSError) as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _cell(value: Any) -> str:
    if isinstance(value, str):
        return value
    return dumps_strict(value, ensure_ascii=False)


def _table_text(records: list[dict[str, Any]]) -> str:
    """Short hash, created, status, identifier and the fields that vary among `records`."""
    import pandas as pd

    from robustreach.store.query import MISSING, lookup, varying_fields

    varying = [name for name in varying_fields(records) if name not in ("status", "identifier", "missing_files")]
    rows = []
    for rec in records:
        status = str(rec.get("status", "")) + (" [missing files]" if rec.get("missing_files") else "")
        row = {"hash": rec.get("hash", "")[:12], "created": rec.get("created", ""), "status": status}
        if any("identifier" in r for r in records):
            row["identifier"] = rec.get("identifier", "")
        for name in varying:
            value = lookup(rec, name)
            row[name] = "" if value is MISSING else _cell(value)
        rows.append(row)
    return pd.DataFrame(rows).to_string(index=False)


def register(app: typer.Typer) -> None:
    """Attach the `db` and `figures` command groups to the main `robustreach` app."""
    db = typer.Typer(help="Query and maintain the results index (results/index.json).", no_args_is_help=True)
    figures = typer.Typer(help="Find and export saved figures.", no_args_is_help=True)
    app.add_typer(db, name="db")
    app.add_typer(figures, name="figures")

    @db.command("ls")
    @_friendly
    def ls(
        table: Annotated[str, typer.Argument(help="models, evaluations, figures, runs, ...")],
        where: WhereOption = None,
        format: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
        results: ResultsOption = Path("results"),
    ) -> None:
        """List the records of TABLE that match every --where."""
        store = _store(results)
        conditions = parse_where(where)
        records = _with_missing(store, store.find(table, conditions))
        if not records:
            raise _no_match(table, store.find(table), conditions)
        if format is Format.json:
            typer.echo(dumps_strict(records, indent=2, ensure_ascii=False))
        elif format is Format.csv:
            typer.echo(store.dataframe(table, conditions).to_csv(index=False), nl=False)
        else:
            typer.echo(_table_text(records))

    @db.command("show")
    @_friendly
    def show(
        hash: Annotated[str, typer.Argument(help="A hash or a unique prefix of one.")],
        table: Annotated[str | None, typer.Option("--table", "-t", help="Only look in this table.")] = None,
        results: ResultsOption = Path("results"),
    ) -> None:
        """Print the record with this hash (searched in every table unless --table)."""
        from robustreach.store import NoMatchError

        store = _store(results)
        found = []
        for name in [table] if table else store.tables():
            try:
                found.append((name, store.get(name, hash)))
            except NoMatchError:
                continue
        if not found:
            raise NoMatchError(f"no record with hash {hash!r} in {', '.join([table] if table else store.tables())}")
        if len(found) > 1:
            raise ValueError(f"hash prefix {hash!r} matches records in tables {[n for n, _ in found]}; use --table")
        name, record = found[0]
        typer.echo(dumps_strict({"table": name, **_with_missing(store, [record])[0]}, indent=2, ensure_ascii=False))

    @db.command("varying")
    @_friendly
    def varying(
        table: Annotated[str, typer.Argument(help="models, evaluations, figures, runs, ...")],
        type: Annotated[
            str | None, typer.Option("--type", help="Figure identifier (or a parent of it) to restrict to.")
        ] = None,
        where: WhereOption = None,
        results: ResultsOption = Path("results"),
    ) -> None:
        """Print each field whose values differ among the matching records, with its values."""
        store = _store(results)
        conditions = parse_where(where)
        if not store.find(table, conditions):
            raise _no_match(table, store.find(table), conditions)
        fields = store.varying(table, conditions, type=type)
        if not fields:
            typer.echo("no field varies among the matching records", err=True)
        for name, values in fields.items():
            typer.echo(f"{name}: {', '.join(dumps_strict(v, ensure_ascii=False) for v in values)}")

    @db.command("gc")
    @_friendly
    def gc(
        archive: Annotated[bool, typer.Option("--archive", help="Move orphans to results/archive/.")] = False,
        delete: Annotated[bool, typer.Option("--delete", help="Delete orphans for good.")] = False,
        min_age: Annotated[float, typer.Option("--min-age", help="Leave files younger than this (s).")] = 60.0,
        results: ResultsOption = Path("results"),
    ) -> None:
        """Find files without records and records without files (dry run unless --archive/--delete).

        Also covers unusable checkpoints and temporary run folders left by killed runs.
        Refuses to archive or delete while the index lacks every model record (run `db rebuild`).
        """
        if archive and delete:
            raise typer.BadParameter("choose one of --archive and --delete")
        mode = "archive" if archive else "delete" if delete else "dry-run"
        typer.echo(str(_store(results, reading=False).gc(mode, min_age_s=min_age)))

    @db.command("export")
    @_friendly
    def export(
        dir: Annotated[
            Path | None, typer.Option("--dir", help="Target directory (default: results/db-csv and results/db-yaml).")
        ] = None,
        results: ResultsOption = Path("results"),
    ) -> None:
        """Write every table as CSV (the backup) and YAML (for Quarto listing pages)."""
        for path in _store(results).export(dir):
            typer.echo(str(path))

    @db.command("restore")
    @_friendly
    def restore(results: ResultsOption = Path("results")) -> None:
        """Rebuild results/index.json from results/db-csv/*.csv (the old index is kept as a .bak)."""
        counts = _store(results, reading=False).restore()
        for table, n in sorted(counts.items()):
            typer.echo(f"{table}: {n} record(s)")

    @db.command("rebuild")
    @_friendly
    def rebuild(results: ResultsOption = Path("results")) -> None:
        """Add records for the model files and executed runs under results/ that the index lacks.

        Each model file's header holds its hyperparameters and record fields, and its hash is
        the record's hash, so lost records come back as they were; runs come back from their
        notebooks' metadata and parameters.json (without durations). Evaluations and figures
        cannot be rebuilt this way: restore them with `db restore` if db-csv/ has them.
        """
        from robustreach.batch.runs import records_on_disk

        store = _store(results, reading=False)
        report = store.rebuild_models()
        n_runs = store.rebuild_records("runs", records_on_disk(results))
        for record in report["added"]:
            typer.echo(f"added    {record['hash'][:12]}  status={record.get('status')}")
        for problem in report["skipped"]:
            typer.echo(f"skipped  {problem}", err=True)
        typer.echo(f"runs: {n_runs} added")
        typer.echo(f"models: {len(report['added'])} added, {report['present']} already recorded, {len(report['skipped'])} unreadable")
        if report["skipped"]:
            raise typer.Exit(1)

    @figures.command("get")
    @_friendly
    def get(
        identifier: Annotated[
            str | None, typer.Option("--identifier", "-i", help="Figure identifier or a parent of it.")
        ] = None,
        where: WhereOption = None,
        save_dir: Annotated[
            Path | None, typer.Option("--save-dir", help="Export the figures here (else just list them).")
        ] = None,
        annotate: Annotated[bool, typer.Option("--annotate", help="Note the distinguishing params on each.")] = False,
        formats: Annotated[list[str] | None, typer.Option("--format", help="html, json, png, svg; repeatable.")] = None,
        results: ResultsOption = Path("results"),
    ) -> None:
        """Find figures by identifier and params (e.g. --where train.perturbation.std=0.5), export them."""
        from robustreach.store.query import identifier_matches

        store = _store(results)
        records = [
            r
            for r in store.find("figures", parse_where(where))
            if identifier is None or identifier_matches(r.get("identifier"), identifier)
        ]
        if not records:
            typer.echo("no figures match", err=True)
            raise typer.Exit(1)
        if save_dir is None:
            typer.echo(_table_text(records))
            return
        paths = store.export_figures(records, save_dir, annotate=annotate, formats=formats or ("html", "json"))
        for path in paths:
            typer.echo(str(path))
