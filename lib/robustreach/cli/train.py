"""`robustreach train PARAMS.yml`: train the models the file's notebooks look up, without notebooks."""

from pathlib import Path
from typing import Annotated

import typer


def model_lines(models, store) -> list[str]:
    """One line per planned model: short hash, whether the index has it, what it is, who uses it."""
    from robustreach.train.runner import existing_model

    lines = []
    for planned in models:
        hp = planned.hyperparameters
        state = "exists " if existing_model(store, hp) is not None else "missing"
        what = (f"{hp.perturbation.type} std={hp.perturbation.std:g}, context {hp.context.variant}, "
                f"hidden {hp.controller.hidden_size}, {hp.train.n_batches} batches")
        users = ", ".join(Path(name).parent.name + "/" + Path(name).stem for name in planned.notebooks)
        lines.append(f"  {planned.hash[:12]}  {state}  {what}  (sets {list(planned.sets)}; {users})")
    return lines


def train(
    params: Annotated[Path, typer.Argument(help="Parameter file, e.g. params/part1.yml.")],
    force: Annotated[bool, typer.Option("--force", help="Retrain models already in the index.")] = False,
    results: Annotated[Path, typer.Option("--results", help="Results directory.")] = Path("results"),
    method: Annotated[str, typer.Option("--method", help="vmap (default) or loop (reference).")] = "vmap",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the models (hashes, whether trained); train nothing.")
    ] = False,
) -> None:
    """Train exactly the models the notebooks of PARAMS will look up (each parameter set as each
    notebook resolves it, with its part's defaults); models already trained are skipped unless --force."""
    from robustreach.config import ConfigError
    from robustreach.paramfiles import ParamFileError, file_models, load_paramfile
    from robustreach.store import ResultsStore
    from robustreach.train.runner import train_parameter_sets

    if method not in ("vmap", "loop"):
        raise typer.BadParameter(f"--method must be 'vmap' or 'loop', got {method!r}")
    try:
        pf = load_paramfile(params)
        models = file_models(pf)
    except (ParamFileError, ConfigError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    for note in pf.warnings:
        typer.echo(f"warning: {note}", err=True)
    store = ResultsStore(results)
    if dry_run:
        typer.echo(f"{len(models)} model(s) the notebooks of {params} look up:")
        for line in model_lines(models, store):
            typer.echo(line)
        return
    summary = train_parameter_sets([m.hyperparameters.to_dict() for m in models], store, force=force, method=method,
                                   source=str(params))
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
