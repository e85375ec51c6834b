"""Helpers for the site tests: the pages a site holds, and the offline check of every page."""

import os
from pathlib import Path

from browser import check_site_offline
from robustreach.site import current_runs, page_path
from robustreach.store import ResultsStore

# The fixture notebooks' parameter file of the site tests: two ok runs of each notebook and
# one that fails (its page shows the error).
SITE_PARAMS = """
notebooks: [notebooks/figure.qmd, notebooks/echo.qmd]
grid:
  cfg.n: [2, 4]
sets:
  - {cfg.n: 1, cfg.fail: true}
"""


def html_pages(site: Path) -> set[str]:
    """The run pages of a site, as `runs/<stem>/<hash>/<stem>` (either engine's layout)."""
    return {p.relative_to(site).as_posix().split("pages/", 1)[-1][: -len(".html")] for p in site.rglob("runs/**/*.html")}


def expected_pages(results: Path) -> set[str]:
    """One page per current run (the newest of each notebook and parameter set)."""
    return {page_path(r) for r in current_runs(ResultsStore(results).find("runs"))}


def assert_offline(site: Path, tmp_path: Path, prefix: str) -> dict:
    """Every page of `site` loads nothing from outside it, draws all its Plotly figures and
    shows no "Unable to display output"; screenshots go to `$ROBUSTREACH_SCREENSHOT_DIR`
    (for CI to keep) or `tmp_path`. Returns what `check_site_offline` found."""
    shots = Path(os.environ.get("ROBUSTREACH_SCREENSHOT_DIR", tmp_path / "shots"))
    checked = check_site_offline(site, sorted(site.rglob("*.html")), tmp_path / "chromium", shots, prefix)
    assert checked["blocked"] == [], checked["blocked"]
    for page, seen in checked["pages"].items():
        assert not seen["unable"], page
        assert seen["drawn"] == seen["figures"], (page, seen)
        assert seen["shot"].stat().st_size > 10_000
    if any(seen["figures"] for seen in checked["pages"].values()):
        assert any(url.endswith("/assets/plotly.min.js") for url in checked["requested"])
    return checked
