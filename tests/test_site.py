"""The website: nbconvert pages and index from the records, offline Plotly, Quarto configuration."""

import io
import json
import re
import shutil
from pathlib import Path, PurePosixPath

import nbformat

import plotly
import pytest
import yaml
from batch_helpers import REPO, batch, make_project
from site_helpers import SITE_PARAMS as PARAMS
from robustreach.batch.runs import RunSpec
from robustreach.cli.main import app
from robustreach.batch.progress import last_progress_line
from robustreach.site import (
    LISTING,
    PAGES,
    SITE,
    STATE,
    _profile_part,
    build_nbconvert_site,
    build_site,
    localize_plotly,
    localize_site,
    offline_page,
    page_path,
    sync_pages,
    write_listing,
)
from robustreach.store import ResultsStore
from typer.testing import CliRunner

PLOTLY_JS = Path(plotly.__file__).parent / "package_data/plotly.min.js"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Figure runs for n = 2, 4 (and 1); echo runs for n = 2, 4 (ok) and 1 (failed)."""
    root = make_project(tmp_path_factory.mktemp("site"), PARAMS, notebooks=("figure.qmd", "echo.qmd"))
    summary = batch(root)
    assert (len(summary.ok), len(summary.failed)) == (5, 1)
    return root


def scripts(page: str) -> list[str]:
    return re.findall(r'<script[^>]*\bsrc="([^"]*)"', page)


def test_nbconvert_site_has_a_page_per_run_loading_local_plotly(project):
    results = project / "results"
    site = build_nbconvert_site(results)
    assert site == results / "site"
    records = ResultsStore(results).find("runs")
    asset = site / "assets/plotly.min.js"
    assert asset.read_bytes() == PLOTLY_JS.read_bytes()
    index = (site / "index.html").read_text()
    for record in records:
        page = site / Path(record["files"]["notebook"]).with_suffix(".html")
        text = page.read_text()
        assert f'href="{page.relative_to(site).as_posix()}"' in index
        assert record["hash"][:12] in text
        assert "cdn.plot.ly" not in text
        if record["notebook"].endswith("figure.qmd"):
            local = [s for s in scripts(text) if s.endswith("plotly.min.js")]
            assert local == ["../../../assets/plotly.min.js"]
            assert (page.parent / local[0]).resolve() == asset.resolve()
            assert text.index(local[0]) < text.index("Plotly.newPlot")
            assert "Plotly.newPlot" in text
        else:
            assert not [s for s in scripts(text) if "plotly" in s]  # no figure, no plotly.js
    # The index lists both notebooks of the part with their varying parameter and statuses.
    assert "Part: demo" in index
    assert index.count('<span class="failed">failed</span>') == 1
    assert index.count('<span class="ok">ok</span>') == 5
    assert "RuntimeError: asked to fail (label a)" in index
    assert "<th>cfg.n</th>" in index and "<th>cfg.fail</th>" in index
    assert "No models recorded yet." in index
    assert not list(results.glob(".site*"))  # built aside, swapped in whole


def test_failed_run_page_shows_the_error(project):
    results = project / "results"
    build_nbconvert_site(results)
    (failed,) = ResultsStore(results).find("runs", where={"status": "failed"})
    page = (results / "site" / Path(failed["files"]["notebook"]).with_suffix(".html")).read_text()
    assert "failed" in page and "asked to fail" in page


def test_localize_plotly_rewrites_cdn_references():
    figure = '<div class="plotly-graph-div" id="x"></div><script>Plotly.newPlot("x", [])</script>'
    page = (
        '<html><head><meta charset="utf-8"><script src="require.min.js"></script></head><body>'
        '<script type="module">import "https://cdn.plot.ly/plotly-3.0.1.min"</script>'
        '<script charset="utf-8" crossorigin="anonymous" integrity="sha256-abc" '
        'src="https://cdn.plot.ly/plotly-3.0.1.min.js"></script>'
        "<script>require.config({paths: {plotly: 'https://cdn.plot.ly/plotly-2.35.2.min'}});</script>"
        f"{figure}</body></html>"
    )
    out = localize_plotly(page, "../assets/plotly.min.js")
    assert "cdn.plot.ly" not in out and "integrity" not in out
    assert out.startswith('<html><head><script src="../assets/plotly.min.js" charset="utf-8"></script><meta')
    assert "paths: {plotly: '../assets/plotly.min'}" in out  # require.js path, without .js
    assert out.endswith(f"{figure}</body></html>")
    plain = "<html><head></head><body><p>no figure</p></body></html>"
    assert localize_plotly(plain, "x.js") == plain


def test_localize_site_serves_plotly_from_the_site(project, tmp_path):
    """What `robustreach site offline` does to Quarto's output: every page, once."""
    from nbconvert import HTMLExporter

    (record,) = ResultsStore(project / "results").find(
        "runs", where={"notebook": "notebooks/figure.qmd", "hyperparameters.cfg.n": 2}
    )
    cdn_page, _ = HTMLExporter(template_name="lab").from_filename(
        str(project / "results" / record["files"]["notebook"])
    )
    assert "cdn.plot.ly" in cdn_page
    (tmp_path / "out/results/runs").mkdir(parents=True)
    (tmp_path / "out/results/runs/figure.html").write_text(cdn_page)
    (tmp_path / "out/index.html").write_text("<html><head></head><body>no figure</body></html>")
    changed = localize_site(tmp_path / "out")
    assert changed == [tmp_path / "out/results/runs/figure.html"]
    page = changed[0].read_text()
    assert "cdn.plot.ly" not in page
    assert [s for s in scripts(page) if "plotly" in s] == ["../../assets/plotly.min.js"]
    assert (tmp_path / "out/assets/plotly.min.js").read_bytes() == PLOTLY_JS.read_bytes()
    assert localize_site(tmp_path / "out") == []  # idempotent


def test_listing_yaml_points_at_the_page_notebooks(project):
    results = project / "results"
    written = sync_pages(results)
    path = write_listing(results, project)
    assert path == results / "listing/runs.yml"
    items = yaml.safe_load(path.read_text())
    records = ResultsStore(results).find("runs")
    assert len(items) == len(records) == 6
    assert sorted(project / item["path"].lstrip("/") for item in items) == sorted(written)
    for item in items:
        assert item["path"].startswith(f"/results/{PAGES}/runs/")
        assert item["status"] in ("ok", "failed")
        assert bool(item["error"]) == (item["status"] == "failed")
    titles = {item["title"] for item in items}
    assert any(t.startswith("Figure (test fixture) (") for t in titles)
    assert {item["params"] for item in items if item["notebook"].endswith("figure.qmd")} == {
        "cfg.n=2",
        "cfg.n=4",
        "cfg.n=1",
    }
    assert (results / "db-yaml/runs.yml").is_file()  # the whole index, exported too


def test_cli_site_build(project, monkeypatch):
    monkeypatch.chdir(project)
    result = CliRunner().invoke(app, ["site", "build", "--engine", "nbconvert"])
    assert result.exit_code == 0, result.output
    assert (project / "results/site/index.html").is_file()
    result = CliRunner().invoke(app, ["site", "build", "--engine", "quarto", "--results", "elsewhere"])
    assert result.exit_code == 2 and "quarto" in result.output.lower()
    # `run demo`: the batch (only the failed run is not up to date), then the site.
    (project / "results/site/index.html").unlink()
    result = CliRunner().invoke(app, ["run", "demo", "--engine", "nbconvert"])
    assert result.exit_code == 1, result.output
    assert "0 ok, 1 failed, 5 up to date" in result.output
    assert (project / "results/site/index.html").is_file()
    assert CliRunner().invoke(app, ["run", "part9"]).exit_code == 2


def test_build_site_without_quarto_uses_nbconvert(project, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # no quarto
    assert build_site(project / "results", project=project) == (project / "results/site").resolve()


def test_quarto_configuration_matches_the_run_layout():
    config = yaml.safe_load((REPO / "_quarto.yml").read_text())
    project = config["project"]
    assert project["type"] == "website"
    assert project["output-dir"] == f"results/{SITE}"
    assert config["execute"]["enabled"] is False
    globs = project["render"]
    spec = RunSpec(
        notebook="notebooks/part1/train.qmd",
        notebook_path="/x",
        parameters={},
        hash="ab" * 32,
        results="/r",
        part="part1",
    )
    record = {"files": spec.files}
    page = PurePosixPath(f"results/{PAGES}/{page_path(record)}.ipynb")
    assert any(page.match(g) for g in globs)  # the page notebooks of current runs ...
    assert not any(PurePosixPath(f"results/{spec.files['notebook']}").match(g) for g in globs)  # ... not every run
    assert not any(PurePosixPath("notebooks/part1/train.qmd").match(g) for g in globs)  # Quarto never executes
    assert (REPO / "index.qmd").is_file() and "index.qmd" in globs
    step = "lib/robustreach/site_assets/quarto_step.py"
    assert project["pre-render"] == f"{step} pre-render" and project["post-render"] == f"{step} post-render"
    assert (REPO / step).is_file()
    listing = yaml.safe_load((REPO / "index.qmd").read_text().split("---")[1])["listing"]
    assert listing["contents"] == f"results/{LISTING}"
    assert set(listing["fields"]) >= {"part", "notebook", "params", "title", "status"}
    for part in ("demo", "part1", "part2"):
        profile = yaml.safe_load((REPO / f"_quarto-{part}.yml").read_text())
        assert "project" not in profile  # lists would be appended to the base's steps
        assert profile["website"]["title"].startswith("robustreach: ")
        assert _profile_part(f"{part},local") == part


def test_nbconvert_site_rebuilds_only_the_pages_whose_run_changed(project, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(project / "results", results, ignore=shutil.ignore_patterns("site"))
    site = build_nbconvert_site(results)
    state = json.loads((site / STATE).read_text())
    assert sorted(state["built"]) == sorted(state["pages"]) and len(state["pages"]) == 6
    assert json.loads((build_nbconvert_site(results) / STATE).read_text())["built"] == []  # nothing changed
    # One run's executed notebook changes (as when it is run again): only its page is rebuilt.
    (record,) = ResultsStore(results).find("runs", where={"notebook": "notebooks/echo.qmd", "hyperparameters.cfg.n": 2})
    executed = results / record["files"]["notebook"]
    nb = nbformat.read(executed, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("A note added later."))
    nbformat.write(nb, executed)
    state = json.loads((build_nbconvert_site(results) / STATE).read_text())
    assert state["built"] == [f"{page_path(record)}.html"]
    assert "A note added later." in (site / state["built"][0]).read_text()


def test_batch_kernels_write_progress_bars_as_text_to_the_log(tmp_path):
    """No widget in the executed notebook (it would need a widget manager from the network);
    the bar is text in the run's log, where the batch reads it for the terminal."""
    root = make_project(tmp_path / "project", "notebooks: [notebooks/progress.qmd]\n", notebooks=("progress.qmd",))
    summary = batch(root)
    (record,) = summary.ok
    nb = nbformat.read(root / "results" / record["files"]["notebook"], as_version=4)
    assert "widgets" not in nb.metadata
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert any("total 780" in o.get("text", "") for o in outputs)  # sum(range(40))
    assert not any("counting" in o.get("text", "") for o in outputs)
    line = last_progress_line(root / "results" / record["files"]["log"])
    assert line is not None and line.startswith("counting: 100%") and "40/40" in line


def test_progress_bar_modes(monkeypatch):
    from robustreach.progress import TextBar, progress_bar

    monkeypatch.setenv("ROBUSTREACH_PROGRESS", "text")
    bar = progress_bar(range(3), file=io.StringIO())
    assert isinstance(bar, TextBar) and not bar.disable
    assert list(bar) == [0, 1, 2] and "3/3" in bar.fp.getvalue()
    monkeypatch.setenv("ROBUSTREACH_PROGRESS", "off")
    assert progress_bar(range(3)).disable
    monkeypatch.setenv("ROBUSTREACH_PROGRESS", "text")
    assert progress_bar(range(3), disable=True).disable  # a caller's disable still holds


def test_index_lists_models_with_their_varying_hyperparameters(tmp_path):
    store = ResultsStore(tmp_path / "results")
    hashes = [
        store.insert("models", {"hyperparameters": {"train": {"lr": lr, "n_batches": 10}}})["hash"]
        for lr in (0.01, 0.1)
    ]
    index = (build_nbconvert_site(tmp_path / "results") / "index.html").read_text()
    assert "0 notebook runs (0 failed), 2 models" in index
    assert "<th>train.lr</th>" in index and "train.n_batches" not in index  # only what varies
    for h in hashes:
        assert f"<code>{h[:12]}</code>" in index
    assert "No runs recorded yet" in index


def test_offline_page_removes_scripts_and_styles_from_other_sites():
    page = (
        '<head><script src="https://cdnjs.cloudflare.com/ajax/libs/require.js/2.1.10/require.min.js"></script>\n'
        "<script src='//cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js' async></script>"
        '<link rel="stylesheet" href="https://cdn.example.org/x.css">'
        '<script src="../site_libs/quarto.js"></script><link rel="stylesheet" href="site.css">'
        '<a href="https://quarto.org">a link stays</a></head>'
    )
    assert offline_page(page) == (
        '<head><script src="../site_libs/quarto.js"></script><link rel="stylesheet" href="site.css">'
        '<a href="https://quarto.org">a link stays</a></head>'
    )
