"""Figures: files written (offline HTML), found by params, annotated, exported by readable names."""

import re
import warnings
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
import pytest
from plotly.offline import get_plotlyjs
from robustreach.store import OneOf, ResultsStore

IDENT = "aligned_trajectories/compare_train_conditions"


def make_fig(y):
    return go.Figure(go.Scatter(x=[0, 1, 2], y=y, name="trace"), layout={"title": {"text": "t"}})


@pytest.fixture
def store(tmp_path):
    return ResultsStore(tmp_path / "results")


@pytest.fixture
def four(store):
    """std in {0, 0.5} x amplitude in {1, 2} for IDENT, plus one figure of another identifier."""
    records = {}
    for std in (0.0, 0.5):
        for amp in (1, 2):
            records[std, amp] = store.save_figure(
                make_fig([std, amp, 0]),
                IDENT,
                train={"perturbation": {"std": std}, "n_batches": 100},
                test={"amplitude": amp},
                figure={"colour": "red"},
                model_hashes=["a" * 64],
            )
    store.save_figure(make_fig([9, 9, 9]), "fixed_points/eigenvalues", train={}, test={}, figure={"n": 3})
    return records


def script_srcs(html):
    return re.findall(r'<script[^>]*src="([^"]+)"', html)


def test_files_and_offline_html(store, four):
    rec = four[0.5, 2]
    short = rec["hash"][:12]
    assert rec["files"] == {
        "json": f"figures/{IDENT}/{short}.json",
        "html": f"figures/{IDENT}/{short}.html",
    }
    html_path = store.root / rec["files"]["html"]
    html = html_path.read_text()
    (src,) = script_srcs(html)
    assert src == "../../plotly.min.js"
    assert (html_path.parent / src).resolve() == (store.root / "figures" / "plotly.min.js").resolve()
    assert (store.root / "figures" / "plotly.min.js").read_text() == get_plotlyjs()
    assert "cdn" not in src
    assert rec["hyperparameters"]["train"]["perturbation"]["std"] == 0.5
    assert rec["model_hashes"] == ["a" * 64]


def test_load_round_trip(store, four):
    fig = store.load_figure(four[0.5, 1])
    assert list(fig.data[0].y) == [0.5, 1, 0]
    assert fig.layout.title.text == "t"
    assert not fig.layout.annotations
    assert list(store.load_figure(four[0.0, 2]["hash"]).data[0].y) == [0.0, 2, 0]


def test_json_always_written_and_images_need_kaleido(store):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = store.save_figure(make_fig([1, 2, 3]), "x/y", train={}, test={}, figure={}, formats=("html", "png"))
    assert "json" in rec["formats"] and "html" in rec["formats"]
    assert (store.root / rec["files"]["json"]).exists()
    try:
        import kaleido  # noqa: F401
    except ImportError:
        assert "png" not in rec["formats"]
        assert any("kaleido" in str(w.message) for w in caught)
    with pytest.raises(ValueError, match="pdf"):
        store.save_figure(make_fig([1]), "x/y", train={}, test={}, figure={}, formats=("pdf",))
    with pytest.raises(ValueError, match="identifier"):
        store.save_figure(make_fig([1]), "../escape", train={}, test={}, figure={})


def test_redraw_replaces_other_models_add(store, four):
    n = len(store.find("figures"))
    again = store.save_figure(
        make_fig([7, 7, 7]),
        IDENT,
        train={"perturbation": {"std": 0.5}, "n_batches": 100},
        test={"amplitude": 2},
        figure={"colour": "red"},
        model_hashes=["a" * 64],
    )
    assert again["hash"] == four[0.5, 2]["hash"]
    assert len(store.find("figures")) == n
    assert list(store.load_figure(again).data[0].y) == [7, 7, 7]
    other = store.save_figure(
        make_fig([1, 1, 1]),
        IDENT,
        train={"perturbation": {"std": 0.5}, "n_batches": 100},
        test={"amplitude": 2},
        figure={"colour": "red"},
        model_hashes=["b" * 64],
    )
    assert other["hash"] != again["hash"]
    assert len(store.find("figures")) == n + 1


def test_find_figures(store, four):
    assert len(store.find_figures()) == 5
    assert len(store.find_figures(identifier="aligned_trajectories")) == 4
    assert len(store.find_figures(identifier=IDENT)) == 4
    assert len(store.find_figures(identifier="aligned")) == 0
    got = store.find_figures(IDENT, train={"perturbation.std": 0.5}, test={"amplitude": OneOf([2, 3])})
    assert [r["hash"] for r in got] == [four[0.5, 2]["hash"]]
    assert store.find_figures(train={"perturbation": {"std": 0.5}}, figure={"colour": "blue"}) == []


def test_varying_per_figure_type(store, four):
    assert store.varying("figures", type="aligned_trajectories") == {
        "test.amplitude": [1, 2],
        "train.perturbation.std": [0, 0.5],
    }


def test_annotate(store, four):
    fig = store.load_figure(four[0.5, 2], annotate=True)
    (note,) = fig.layout.annotations
    assert note.text == "train.perturbation.std = 0.5<br>test.amplitude = 2"
    (single,) = store.find_figures("fixed_points")
    assert not store.load_figure(single, annotate=True).layout.annotations


def test_export_names(store, four, tmp_path):
    out = tmp_path / "export"
    paths = store.export_figures(store.find_figures(IDENT, test={"amplitude": 2}), out, annotate=True)
    expected = {
        f"aligned_trajectories-compare_train_conditions__train.perturbation.std={std}__test.amplitude=2.{ext}"
        for std in ("0", "0.5")
        for ext in ("html", "json")
    }
    assert {p.name for p in paths} == expected
    assert {p.name for p in out.iterdir()} == expected | {"plotly.min.js"}
    html = (
        out / "aligned_trajectories-compare_train_conditions__train.perturbation.std=0.5__test.amplitude=2.html"
    ).read_text()
    assert script_srcs(html) == ["plotly.min.js"]
    assert "train.perturbation.std = 0.5" in html
    # deterministic: the same export again gives the same names
    assert store.export_figures(store.find_figures(IDENT, test={"amplitude": 2}), out, annotate=True) == paths


def test_export_names_among_the_exported_figures(store, four, tmp_path):
    """Named among the index, the amplitude-2 figures carry test.amplitude (it varies in the
    index); named among themselves, only the training std, which is what tells them apart."""
    records = store.find_figures(IDENT, test={"amplitude": 2})
    paths = store.export_figures(records, tmp_path / "e", formats=("json",), names_among_exported=True)
    base = "aligned_trajectories-compare_train_conditions__train.perturbation.std="
    assert sorted(p.name for p in paths) == sorted(f"{base}{std}.json" for std in ("0", "0.5"))
    for path in paths:  # each name holds its own figure (make_fig's first y is the std)
        std = float(path.name.removeprefix(base).removesuffix(".json"))
        assert pio.read_json(path).data[0].y[0] == std


def test_export_disambiguates_same_params(store, four, tmp_path):
    extra = store.save_figure(
        make_fig([1, 1, 1]),
        IDENT,
        train={"perturbation": {"std": 0.5}, "n_batches": 100},
        test={"amplitude": 2},
        figure={"colour": "red"},
        model_hashes=["b" * 64],
    )
    records = [four[0.5, 2], extra]
    paths = store.export_figures(records, tmp_path / "e", formats=("json",))
    base = "aligned_trajectories-compare_train_conditions__train.perturbation.std=0.5__test.amplitude=2"
    assert sorted(p.name for p in paths) == sorted(f"{base}__{r['hash'][:12]}.json" for r in records)
    assert all(Path(p).exists() for p in paths)
