"""The demo's site as users build it, offline: `quarto render --profile demo` from the
demo's results (`robustreach run demo` ran first: the session fixture `demo_project`), and the
nbconvert site of the same results. Every page is opened in headless Chromium with all
requests outside the site blocked and recorded; screenshots are saved.
"""

import shutil
import subprocess

import pytest
from browser import needs_chromium
from robustreach.site import build_nbconvert_site
from robustreach.store import ResultsStore
from site_helpers import assert_offline, expected_pages, html_pages

QUARTO = shutil.which("quarto")
pytestmark = [pytest.mark.slow, pytest.mark.browser]


def demo_notebooks(results):
    return {r["notebook"] for r in ResultsStore(results).find("runs")}


@needs_chromium
@pytest.mark.skipif(QUARTO is None, reason="needs quarto on PATH (../shared/tools/quarto/install)")
def test_quarto_demo_site_works_offline(demo_project, tmp_path):
    done = subprocess.run([QUARTO, "render", "--profile", "demo"], cwd=demo_project, capture_output=True, text=True,
                          timeout=1800)  # fmt: skip
    print(done.stdout[-3000:], done.stderr[-3000:])
    assert done.returncode == 0, done.stderr[-3000:]
    assert " 0 failed" in done.stdout  # the pre-render batch (runs up to date are skipped)
    results = demo_project / "results"
    site = results / "site"
    assert html_pages(site) == expected_pages(results)
    checked = assert_offline(site, tmp_path, "quarto-demo")
    with_figures = {page.parent.parent.name for page, seen in checked["pages"].items() if seen["figures"]}
    # every notebook of the demo shows figures (the figures page those the others saved)
    assert with_figures == {n.rsplit("/", 1)[-1].removesuffix(".qmd") for n in demo_notebooks(results)}


@needs_chromium
def test_nbconvert_demo_site_works_offline(demo_project, tmp_path):
    results = tmp_path / "results"  # a copy, so that this site does not replace Quarto's
    shutil.copytree(demo_project / "results", results, ignore=shutil.ignore_patterns("site", "pages"))
    site = build_nbconvert_site(results, project=demo_project, profile="demo")
    assert html_pages(site) == expected_pages(results)
    checked = assert_offline(site, tmp_path, "nbconvert-demo")
    with_figures = {page.parent.parent.name for page, seen in checked["pages"].items() if seen["figures"]}
    assert with_figures == {n.rsplit("/", 1)[-1].removesuffix(".qmd") for n in demo_notebooks(results)}
