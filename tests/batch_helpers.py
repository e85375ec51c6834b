"""Helpers for the batch and site tests: a throwaway project around the fixture notebooks."""

import json
import re
import shutil
import textwrap
from pathlib import Path

import nbformat
from robustreach.batch import run_batch

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "tests/fixtures/notebooks"

# Two runs pass (n = 1, 2), one fails on request (n = 3).
ECHO_PARAMS = """
notebooks: [notebooks/echo.qmd]
base: {cfg: {scale: 2, label: batch}}
grid:
  cfg.n: [1, 2]
sets:
  - {cfg.n: 3, cfg.fail: true}
"""


def make_project(root: Path, params: str = ECHO_PARAMS, notebooks=("echo.qmd",)) -> Path:
    """`root` with copies of fixture notebooks under notebooks/ and params/demo.yml."""
    (root / "notebooks").mkdir(parents=True, exist_ok=True)
    for name in notebooks:
        shutil.copy(NOTEBOOKS / name, root / "notebooks" / name)
    (root / "params").mkdir(exist_ok=True)
    (root / "params/demo.yml").write_text(textwrap.dedent(params))
    return root


def batch(project: Path, **kw):
    """`run_batch` of the project's params/demo.yml into project/results, without a progress bar."""
    return run_batch(project / "params/demo.yml", results=project / "results", root=project, progress=False, **kw)


def report(executed: Path) -> dict:
    """The JSON the echo notebook prints about the parameters it received."""
    nb = nbformat.read(executed, as_version=4)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            match = re.search(r"REPORT (.*)", output.get("text", ""))
            if match:
                return json.loads(match.group(1))
    raise AssertionError(f"no REPORT line in {executed}")
