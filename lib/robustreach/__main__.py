"""`python -m robustreach` is the `robustreach` command."""

from robustreach.cli.main import app

app()
