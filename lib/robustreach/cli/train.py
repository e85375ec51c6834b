"""`robustreach train PARAMS.yml`: train every parameter set of a file, without notebooks."""

from pathlib import Path
from typing import Annotated

import typer


def train(
    params: Annotated[Path, typer.Argument(help="Parameter file, e.g. params/part1.yml.")],
    force: Annotated[bool, typer.Option("--force", help="Retrain sets already in the index.")] = False,
    results: Annotated[Path, typer.Option("--results", help="Results directory.")] = Path("results"),
    method: Annotated[str, typer.Option("--method", help="vmap (default) or loop (reference).")] = "vmap",
) -> None:
    """Train every parameter set in PARAMS; sets already trained are skipped unless --force."""
    from robustreach.config import ConfigError
    from robustreach.paramfiles import ParamFileError, expand, load_paramfile
    from robustreach.store import ResultsStore
    from robustreach.train.runner import train_parameter_sets

    if method not in ("vmap", "loop"):
        raise typer.BadParameter(f"--method must be 'vmap' or 'loop', got {method!r}")
    try:
        parameter_sets = expand(load_paramfile(params))
        summary = train_parameter_sets(parameter_sets, ResultsStore(results), force=force, method=method, source=str(params))
    except (ParamFileError, ConfigError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    for note in summary.notes:
        typer.echo(f"note: {note}", err=True)
    for record in summary.trained:
        typer.echo(f"trained  {record['hash'][:12]}  status={record['status']}")
    for record in summary.skipped:
        typer.echo(f"skipped  {record['hash'][:12]}  (already trained; --force to retrain)")
    for failure in summary.failed:
        typer.echo(f"FAILED   {failure['error']}", err=True)
    diverged = f" ({len(summary.diverged)} diverged)" if summary.diverged else ""
    typer.echo(f"{len(summary.trained)} trained, {len(summary.skipped)} skipped, {len(summary.failed)} failed{diverged}")
    if summary.failed:  # errors and diverged sets: the file's sets are not all trained
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Attach `train` to the main `robustreach` app."""
    app.command("train")(train)
