"""robustreach: RNN controllers for a simulated point-mass arm, and their analysis.

The package is organised in small modules with one job each; see `docs/architecture.md`.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("robustreach")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
