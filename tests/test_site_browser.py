"""A built page draws its Plotly figure in headless Chromium with no network.

The DOM is dumped after the page's scripts ran (`--virtual-time-budget`); Plotly's rendered
figure holds an `<svg class="main-svg">`. The screenshot goes to `$ROBUSTREACH_SCREENSHOT_DIR`
(for CI to keep) or the test's temporary directory. The same page as nbconvert writes it, loading
plotly.js from the CDN, draws nothing here (the control that shows the test can fail).
"""

import os
from pathlib import Path

import pytest
from batch_helpers import batch, make_project
from browser import chromium, needs_chromium
from robustreach.site import build_nbconvert_site
from robustreach.store import ResultsStore

pytestmark = pytest.mark.browser

PARAMS = """
notebooks: [notebooks/figure.qmd]
base: {cfg.n: 5, style.color: crimson}
"""


@needs_chromium
def test_figure_renders_offline_in_chromium(tmp_path):
    project = make_project(tmp_path / "project", PARAMS, notebooks=("figure.qmd",))
    assert not batch(project).failed
    site = build_nbconvert_site(project / "results")
    (record,) = ResultsStore(project / "results").find("runs")
    page = site / Path(record["files"]["notebook"]).with_suffix(".html")

    dom = chromium(page, tmp_path / "chromium", "--dump-dom")
    assert 'class="main-svg"' in dom
    assert "crimson" in dom or "rgb(220, 20, 60)" in dom  # the figure's own line colour
    shot = Path(os.environ.get("ROBUSTREACH_SCREENSHOT_DIR", tmp_path)) / "site-figure.png"  # CI may keep it
    shot.parent.mkdir(parents=True, exist_ok=True)
    chromium(page, tmp_path / "chromium", "--window-size=1000,900", f"--screenshot={shot}")
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")

    # Control: the executed notebook's own HTML (CDN plotly.js) draws nothing offline.
    from nbconvert import HTMLExporter

    raw, _ = HTMLExporter(template_name="lab").from_filename(str(project / "results" / record["files"]["notebook"]))
    control = tmp_path / "cdn.html"
    control.write_text(raw)
    assert "cdn.plot.ly" in raw
    assert 'class="main-svg"' not in chromium(control, tmp_path / "chromium", "--dump-dom")
