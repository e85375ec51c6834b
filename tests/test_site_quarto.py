"""The site as users build it: `quarto render --profile demo` and `robustreach run demo`.

A small project (the fixture notebooks: figure runs that draw a Plotly figure, echo runs, one
of which fails) is rendered by Quarto, pre- and post-render steps included, and built by
nbconvert. Both sites are opened in headless Chromium with every request outside the site
blocked (`browser.check_site_offline`). Skipped only without `quarto` on the PATH (CI
installs it: `.ci/run`).
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from batch_helpers import REPO, batch, make_project
from browser import needs_chromium
from robustreach.site import STATE, build_nbconvert_site, build_site, page_path
from site_helpers import SITE_PARAMS as PARAMS
from site_helpers import assert_offline, expected_pages, html_pages
from robustreach.store import ResultsStore

QUARTO = shutil.which("quarto")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(QUARTO is None, reason="needs quarto on PATH (../shared/tools/quarto/install)"),
]

CONFIG = ["_quarto.yml", "_quarto-demo.yml", "index.qmd", "lib/robustreach/site_assets/quarto_step.py", ".gitignore"]
TITLE = "robustreach: the quick demo"


def quarto_project(root: Path) -> Path:
    """A git repository with the fixture notebooks, params/demo.yml and the site configuration."""
    make_project(root, PARAMS, notebooks=("figure.qmd", "echo.qmd"))
    for name in CONFIG:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, root / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "project"], cwd=root, check=True)
    return root


def quarto_render(project: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [QUARTO, "render", *args], cwd=project, capture_output=True, text=True, timeout=900, env=env or os.environ
    )
    print(done.stdout[-3000:], done.stderr[-3000:])
    return done


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The project after `quarto render --profile demo` on a fresh clone (the batch runs in
    the pre-render step)."""
    project = quarto_project(tmp_path_factory.mktemp("quarto") / "project")
    done = quarto_render(project, "--profile", "demo")
    assert done.returncode == 0, done.stderr[-3000:]
    return project, done


def test_quarto_render_runs_the_batch_and_renders_current_runs(rendered):
    project, done = rendered
    results = project / "results"
    runs = ResultsStore(results).find("runs")
    assert (len(runs), sum(r["status"] == "failed" for r in runs)) == (6, 1)
    assert "demo runs" in done.stderr  # the batch's progress in the terminal
    assert "1 failed" in done.stdout
    site = results / "site"
    assert html_pages(site) == expected_pages(results) and len(expected_pages(results)) == 6
    index = (site / "index.html").read_text()
    assert TITLE in index
    for record in runs:  # the listing links every page, by part, notebook and parameters
        assert f'href="./results/pages/{page_path(record)}.html"' in index
    (failed,) = [r for r in runs if r["status"] == "failed"]
    page = (site / f"results/pages/{page_path(failed)}.html").read_text()
    assert "asked to fail" in page and "failed" in page


def test_render_leaves_the_checkout_clean(rendered):
    project, _ = rendered
    status = subprocess.run(["git", "status", "--porcelain"], cwd=project, capture_output=True, text=True, check=True)
    assert status.stdout == ""  # .gitignore not rewritten, nothing outside results/ written
    assert (project / ".gitignore").read_bytes() == (REPO / ".gitignore").read_bytes()


@needs_chromium
def test_quarto_site_needs_no_network(rendered, tmp_path):
    project, _ = rendered
    site = project / "results/site"
    checked = assert_offline(site, tmp_path, "quarto")
    assert sum(seen["figures"] for seen in checked["pages"].values()) == 3  # one per figure run


@needs_chromium
def test_nbconvert_site_needs_no_network(rendered, tmp_path, monkeypatch):
    project, _ = rendered
    scratch = tmp_path / "copy"
    shutil.copytree(project / "results", scratch / "results", ignore=shutil.ignore_patterns("site"))
    site = build_nbconvert_site(scratch / "results", project=project, profile="demo")
    assert html_pages(site) == expected_pages(project / "results")
    assert TITLE in (site / "index.html").read_text()
    checked = assert_offline(site, tmp_path, "nbconvert")
    assert sum(seen["figures"] for seen in checked["pages"].values()) == 3


def test_superseded_runs_are_pages_of_neither_engine(rendered, tmp_path):
    """Editing a notebook supersedes its runs: they stay in the index, but not in the site."""
    project, _ = rendered
    results = project / "results"
    old = {r["hash"] for r in ResultsStore(results).find("runs", where={"notebook": "notebooks/figure.qmd"})}
    with open(project / "notebooks/figure.qmd", "a") as notebook:
        notebook.write("\nThe figure's notebook, edited.\n")
    summary = batch(project)
    assert len(summary.ok) == 3  # the figure runs again, for each parameter set
    figure_runs = ResultsStore(results).find("runs", where={"notebook": "notebooks/figure.qmd"})
    assert len(figure_runs) == 6
    new = {r["hash"] for r in figure_runs} - old
    done = quarto_render(project, "--profile", "demo")
    assert done.returncode == 0
    scratch = tmp_path / "results"  # the nbconvert site of a copy: results/site stays Quarto's
    shutil.copytree(results, scratch, ignore=shutil.ignore_patterns("site", "pages"))
    for site in (results / "site", build_nbconvert_site(scratch, project=project)):
        pages = html_pages(site)
        assert pages == expected_pages(results)
        assert {p.split("/")[2] for p in pages if p.startswith("runs/figure/")} == {h[:12] for h in new}
        assert not any(h[:12] in p for h in old for p in pages)
        assert not any(h[:12] in (site / "index.html").read_text() for h in old)


def test_quarto_render_without_the_environment_fails_before_writing_pages(tmp_path):
    project = quarto_project(tmp_path / "project")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "QUARTO_PYTHON", "CONDA_PREFIX")}
    env["PATH"] = f"{Path(QUARTO).parent}:/usr/bin:/bin"
    python3 = shutil.which("python3", path=env["PATH"])
    probe = subprocess.run([python3, "-c", "import robustreach"], env=env, capture_output=True, cwd=tmp_path)
    if probe.returncode == 0:
        pytest.skip(f"{python3} has robustreach installed system-wide")
    done = quarto_render(project, "--profile", "demo", env=env)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "needs the robustreach environment" in output and "activate" in output
    assert not (project / "results/site").exists()
    assert not list(project.rglob("*.html"))
    assert not (project / "results/runs").exists()  # the batch did not start either


def test_robustreach_run_gives_the_quarto_site_and_skips_what_is_up_to_date(rendered, monkeypatch):
    """`robustreach run demo` after `quarto render --profile demo`: nothing to render."""
    project, _ = rendered
    site = project / "results/site"
    before = json.loads((site / STATE).read_text())
    stamp = (site / "index.html").stat().st_mtime_ns
    monkeypatch.chdir(project)
    built = build_site(project / "results", project=project, profile="demo")
    assert built == site
    assert (site / "index.html").stat().st_mtime_ns == stamp  # not rendered again
    assert json.loads((site / STATE).read_text()) == before
    assert TITLE in (site / "index.html").read_text()
