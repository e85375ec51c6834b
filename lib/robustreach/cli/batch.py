"""`robustreach` subcommands: batch, run, and the site group (build, listing, offline)."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from robustreach.paramfiles import ParamFileError

PARTS = ("demo", "part1", "part2", "part1-short", "part2-short")  # each has params/PART.yml and _quarto-PART.yml


class Executor(str, Enum):
    sequential = "sequential"
    processes = "processes"
    dask = "dask"
    slurm = "slurm"


class SiteEngine(str, Enum):
    auto = "auto"
    quarto = "quarto"
    nbconvert = "nbconvert"


Results = Annotated[Path, typer.Option("--results", help="Results directory (index, runs, site).")]
Force = Annotated[bool, typer.Option("--force", help="Rerun runs that are up to date.")]
Jobs = Annotated[
    int, typer.Option("--jobs", "-j", min=1, help="Runs at a time (processes, Dask workers, Slurm array).")
]
ExecutorOpt = Annotated[Executor, typer.Option("--executor", help="Where runs execute.")]
Scheduler = Annotated[
    str | None, typer.Option("--scheduler", help="Dask scheduler address (default: a local cluster).")
]
Partition = Annotated[str | None, typer.Option("--partition", help="Slurm partition.")]
TimeMin = Annotated[int, typer.Option("--time", min=1, help="Slurm time limit per run, in minutes.")]
Gpus = Annotated[int, typer.Option("--gpus", min=0, help="GPUs per Slurm job.")]


def _batch(
    paramfile: Path,
    results: Path,
    force: bool,
    jobs: int,
    executor: Executor,
    scheduler: str | None,
    partition: str | None,
    time: int,
    gpus: int,
    plan: bool = False,
    estimate: bool = False,
) -> int:
    """Run the batch and print its summary; returns the exit code (2: invalid parameter file).

    `plan`: print the estimated training time of every run and of the file, and stop;
    `estimate`: print it, then run, showing the time left in the progress bar.
    """
    from robustreach.batch import SlurmOptions, run_batch
    from robustreach.batch.estimate import estimate_batch

    slurm = SlurmOptions(partition=partition, time_min=time, gpus=gpus)
    try:
        timing = estimate_batch(paramfile, results=results, force=force) if plan or estimate else None
        if timing is not None:
            typer.echo(timing.report())
        if plan:
            return 0
        summary = run_batch(
            paramfile,
            results=results,
            executor=executor.value,
            jobs=jobs,
            force=force,
            scheduler=scheduler,
            slurm=slurm,
            estimate=timing,
        )
    except ParamFileError as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        return 2
    typer.echo(summary.report())
    return summary.exit_code


def _dry_run(paramfile: Path, results: Path) -> int:
    """List what a batch would do, doing none of it: parameter sets, models, runs."""
    import json

    from robustreach.batch.runner import up_to_date
    from robustreach.batch.runs import plan_runs
    from robustreach.cli.train import model_lines
    from robustreach.paramfiles import expand, file_models, load_paramfile
    from robustreach.store import ResultsStore

    try:
        pf = load_paramfile(paramfile)
        models = file_models(pf)
    except ParamFileError as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        return 2
    for note in pf.warnings:
        typer.secho(f"warning: {note}", fg=typer.colors.YELLOW, err=True)
    store = ResultsStore(results)
    sets = expand(pf)
    typer.echo(f"{paramfile}: {len(sets)} parameter set(s)")
    for index, pset in enumerate(sets):
        typer.echo(f"  set {index}: {json.dumps(pset, sort_keys=True)}")
    typer.echo(f"models to train or load ({len(models)}; hyperparameter hash, in the index?):")
    for line in model_lines(models, store):
        typer.echo(line)
    plan = plan_runs(pf, results, store=store)
    done = up_to_date(store, plan)
    typer.echo(f"runs ({len(plan)}; {len(plan) - len(done)} to execute, {len(done)} up to date):")
    for spec in plan:
        typer.echo(f"  {spec.notebook}  run {spec.hash[:12]}  {'up to date' if spec.hash in done else 'to run'}")
    return 0


def _site(results: Path, engine: SiteEngine, profile: str | None) -> None:
    from robustreach.site import SiteError, build_site

    try:
        site = build_site(results, engine=engine.value, profile=profile)
    except SiteError as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    typer.echo(f"site: {site / 'index.html'}")


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the main `robustreach` app."""

    @app.command("batch")
    def batch(
        paramfile: Annotated[Path, typer.Argument(help="Parameter file, e.g. params/demo.yml.")],
        results: Results = Path("results"),
        force: Force = False,
        jobs: Jobs = 1,
        executor: ExecutorOpt = Executor.sequential,
        scheduler: Scheduler = None,
        partition: Partition = None,
        time: TimeMin = 60,
        gpus: Gpus = 0,
        allow_failures: Annotated[
            bool,
            typer.Option("--allow-failures", help="Exit 0 even when runs failed (e.g. as a Quarto pre-render step)."),
        ] = False,
        plan: Annotated[
            bool,
            typer.Option("--plan", help="Calibrate a few batches of each training group, print the estimated "
                         "time of every run and of the file, and stop (records nothing)."),
        ] = False,
        estimate: Annotated[
            bool, typer.Option("--estimate", help="Like --plan, then run, with the estimated time left in the progress bar.")
        ] = False,
        dry_run: Annotated[
            bool,
            typer.Option("--dry-run", help="List the parameter sets, models (hashes, trained?) and runs; run nothing."),
        ] = False,
    ) -> None:
        """Execute every notebook of PARAMFILE once per parameter set (papermill).

        Runs already done with the same notebook, parameters and library version are
        skipped. Exits non-zero when a run failed; the summary names its cell and error.
        """
        if dry_run:
            raise typer.Exit(_dry_run(paramfile, results))
        code = _batch(paramfile, results, force, jobs, executor, scheduler, partition, time, gpus, plan, estimate)
        raise typer.Exit(0 if code == 1 and allow_failures else code)

    @app.command("run")
    def run(
        part: Annotated[str, typer.Argument(help=f"One of {', '.join(PARTS)}: runs params/PART.yml.")],
        results: Results = Path("results"),
        force: Force = False,
        jobs: Jobs = 1,
        executor: ExecutorOpt = Executor.sequential,
        scheduler: Scheduler = None,
        partition: Partition = None,
        time: TimeMin = 60,
        gpus: Gpus = 0,
        engine: Annotated[SiteEngine, typer.Option("--engine", help="Site builder.")] = SiteEngine.auto,
    ) -> None:
        """Run a part's batch (params/PART.yml), then build the site (even if a run failed)."""
        if part not in PARTS:
            typer.secho(
                f"error: unknown part {part!r}; choose one of {', '.join(PARTS)}", fg=typer.colors.RED, err=True
            )
            raise typer.Exit(2)
        code = _batch(Path("params") / f"{part}.yml", results, force, jobs, executor, scheduler, partition, time, gpus)
        if code == 2:
            raise typer.Exit(code)
        _site(results, engine, part)  # the part's profile: the same site as `quarto render --profile PART`
        raise typer.Exit(code)

    site_app = typer.Typer(help="Build the results website.", no_args_is_help=True)
    app.add_typer(site_app, name="site")

    @site_app.command("build")
    def site_build(
        results: Results = Path("results"),
        engine: Annotated[
            SiteEngine, typer.Option("--engine", help="Quarto when on PATH (auto), or nbconvert.")
        ] = SiteEngine.auto,
        profile: Annotated[str | None, typer.Option("--profile", help="Quarto profile (demo, part1, part2).")] = None,
    ) -> None:
        """Build results/site from the executed notebooks (no re-execution)."""
        _site(results, engine, profile)

    @site_app.command("listing")
    def site_listing(results: Results = Path("results")) -> None:
        """Write the page notebooks (pages/) and the listing (listing/runs.yml) Quarto renders,
        and export the index as YAML (db-yaml/). Quarto's pre-render step does this too."""
        from robustreach.site import sync_pages, write_listing

        sync_pages(results)
        typer.echo(f"listing: {write_listing(results, Path.cwd())}")

    @site_app.command("offline")
    def site_offline(
        directory: Annotated[
            Path | None, typer.Argument(help="Rendered site (default: $QUARTO_PROJECT_OUTPUT_DIR, else results/site).")
        ] = None,
    ) -> None:
        """Make rendered pages load their scripts (plotly.js) from the site itself, nothing from elsewhere."""
        from robustreach.site import localize_site

        directory = directory or Path(os.environ.get("QUARTO_PROJECT_OUTPUT_DIR", "results/site"))
        changed = localize_site(directory)
        typer.echo(f"plotly.js served locally by {len(changed)} page(s) under {directory}")
