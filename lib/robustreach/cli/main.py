"""Entry point of the `robustreach` command.

Each group of subcommands lives in its own module of this package and attaches itself
through a `register(app)` function, so that this file stays a list.
"""

import logging
import os
from typing import Annotated

import typer

from robustreach import __version__
from robustreach.cli import batch, db, train
from robustreach.compile_cache import ENV_VAR
from robustreach.devices import cpu_device_environment

app = typer.Typer(
    name="robustreach",
    help="Train RNN controllers of a point-mass arm, analyse them, and build the results site.",
    no_args_is_help=True,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"robustreach {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Show the version and exit."),
    ] = False,
    no_compile_cache: Annotated[
        bool,
        typer.Option("--no-compile-cache", help="Compile everything afresh (no JAX cache under RESULTS/jax-cache)."),
    ] = False,
) -> None:
    """robustreach command line."""
    if no_compile_cache:  # read by every library call and passed on to notebook kernels
        os.environ[ENV_VAR] = "off"
    # Before JAX starts: training uses every core (robustreach.devices); kernels inherit it.
    os.environ.update(cpu_device_environment())
    # The library logs through `logging` (versions and device at the start of training,
    # resumes, divergence); show those messages on the terminal.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    library_logger = logging.getLogger("robustreach")
    library_logger.setLevel(logging.INFO)
    if not library_logger.handlers:
        library_logger.addHandler(handler)


for _module in (train, db, batch):
    _module.register(app)
