"""`robustreach` subcommands: batch (under construction)."""

import typer


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the main `robustreach` app."""
