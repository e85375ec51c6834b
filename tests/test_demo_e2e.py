"""The README's main command end to end: `robustreach run demo` on fresh results.

Checks what a new user sees: every run succeeds and has its page, a second run skips
everything, and changing one analysis parameter reruns only the notebooks that declare it (and perhaps the
figures page, which shows what they saved). Takes a few minutes: it trains the demo models.
That every page draws its figures offline is checked, for both engines, in `test_site_demo.py`.
"""

import time
from pathlib import Path

import pytest
import yaml
from robustreach.batch import run_batch
from robustreach.paramfiles import load_paramfile, notebook_defaults
from robustreach.store import ResultsStore

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo(demo_project):
    """The results of `robustreach run demo` (shared with the Quarto demo test: conftest.py)."""
    return demo_project / "results"


def test_every_demo_notebook_ran_and_has_a_page(demo):
    runs = ResultsStore(demo).find("runs")
    listed = {nb.name for nb in load_paramfile(ROOT / "params/demo.yml").notebooks}
    assert {r["notebook"] for r in runs} == listed
    assert all(r["status"] == "ok" for r in runs), [(r["notebook"], r["error"]) for r in runs if r["status"] != "ok"]
    for record in runs:
        assert (demo / "site" / Path(record["files"]["notebook"]).with_suffix(".html")).is_file()
    assert (demo / "site" / "index.html").is_file()


def test_second_run_skips_everything(demo):
    start = time.perf_counter()
    summary = run_batch(ROOT / "params/demo.yml", results=demo, root=ROOT, progress=False)
    print(f"second run: {time.perf_counter() - start:.1f} s")
    assert not summary.ok and not summary.failed and summary.skipped


def test_changing_one_parameter_reruns_only_the_notebooks_that_take_it(demo, tmp_path):
    # A section that one cheap notebook declares (the Jacobians').
    params = yaml.safe_load((ROOT / "params/demo.yml").read_text())
    params.setdefault("base", {})["jacobians.slow_tau_steps"] = 12.5
    changed = tmp_path / "demo-changed.yml"
    changed.write_text(yaml.safe_dump(params))
    pf = load_paramfile(changed, root=ROOT)
    takes_it = {nb.name for nb in pf.notebooks if "jacobians" in notebook_defaults(nb.path)}
    assert takes_it == {"notebooks/part2/jacobians.qmd"}
    summary = run_batch(changed, results=demo, root=ROOT, progress=False)
    rerun = {r["notebook"] for r in summary.ok}
    assert not summary.failed
    assert rerun - {"notebooks/figures.qmd"} == takes_it
