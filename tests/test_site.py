"""The website: nbconvert pages and index from the records, offline Plotly, Quarto configuration."""

import re
from pathlib import Path, PurePosixPath

import plotly
import pytest
import yaml
from batch_helpers import REPO, batch, make_project
from robustreach.batch.runs import RunSpec
from robustreach.cli.main import app
from robustreach.site import build_nbconvert_site, build_site, localize_plotly, localize_site, write_listing
from robustreach.store import ResultsStore
from typer.testing import CliRunner

PARAMS = """
notebooks: [notebooks/figure.qmd, notebooks/echo.qmd]
grid:
  cfg.n: [2, 4]
sets:
  - {cfg.n: 1, cfg.fail: true}
"""
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


def test_listing_yaml_points_at_executed_notebooks(project):
    results = project / "results"
    path = write_listing(results, project)
    assert path == results / "listing/runs.yml"
    items = yaml.safe_load(path.read_text())
    records = ResultsStore(results).find("runs")
    assert len(items) == len(records) == 6
    for item in items:
        assert item["path"].startswith("/results/runs/")
        assert (project / item["path"].lstrip("/")).is_file()
        assert item["status"] in ("ok", "failed")
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
    assert project["output-dir"].startswith("results/")
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
    executed = PurePosixPath(f"results/{spec.files['notebook']}")
    assert any(executed.match(g) for g in globs)
    assert not any(PurePosixPath("notebooks/part1/train.qmd").match(g) for g in globs)  # Quarto never executes
    assert (REPO / "index.qmd").is_file() and "index.qmd" in globs
    assert "robustreach site offline" in project["post-render"]
    listing = yaml.safe_load((REPO / "index.qmd").read_text().split("---")[1])["listing"]
    assert listing["contents"] == "results/listing/runs.yml"
    for part in ("demo", "part1", "part2"):
        profile = yaml.safe_load((REPO / f"_quarto-{part}.yml").read_text())
        pre = profile["project"]["pre-render"]
        assert pre[0].startswith(f"robustreach batch params/{part}.yml")
        assert pre[1] == "robustreach site listing"


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
