"""The `robustreach db` and `robustreach figures` commands, through typer's CliRunner."""

import csv
import io
import json

import plotly.graph_objects as go
import pytest
from robustreach.cli.db import parse_where
from robustreach.cli.main import app
from robustreach.store import ResultsStore
from typer.testing import CliRunner

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    store = ResultsStore(root)
    for std in (0.0, 0.5):
        for n in (100, 200):
            store.insert("models", {"hyperparameters": {"perturbation": {"std": std}, "train": {"n_batches": n}}})
    store.insert("models", {"hyperparameters": {"perturbation": {"std": 1.0}, "train": {"n_batches": "100"}}})
    for std in (0.0, 0.5):
        store.save_figure(
            go.Figure(go.Bar(y=[std])),
            "aligned_trajectories/by_std",
            train={"perturbation": {"std": std}},
            test={"amplitude": 2},
            figure={},
        )
    return root


def test_parse_where_yaml_scalars():
    assert parse_where(["a=100", "b=0.5", "c=true", "d=1e-3", "e=abc", "f=[1, 2]", "g=null", "h=a=b"]) == {
        "a": 100,
        "b": 0.5,
        "c": True,
        "d": 0.001,
        "e": "abc",
        "f": [1, 2],
        "g": None,
        "h": "a=b",
    }
    assert type(parse_where(["a=100"])["a"]) is int


def test_ls_where_matches_int(results):
    out = invoke("db", "ls", "models", "--where", "train.n_batches=100", "--format", "json", "--results", results)
    assert out.exit_code == 0, out.output
    records = json.loads(out.stdout)
    assert sorted(r["hyperparameters"]["perturbation"]["std"] for r in records) == [0.0, 0.5]  # not the "100" string
    assert all(r["hyperparameters"]["train"]["n_batches"] == 100 for r in records)


def test_ls_formats(results):
    table = invoke("db", "ls", "models", "-w", "perturbation.std=0.5", "--results", results)
    assert table.exit_code == 0, table.output
    lines = table.stdout.strip().splitlines()
    assert len(lines) == 3  # header + two models
    assert "train.n_batches" in lines[0] and "perturbation.std" not in lines[0]
    expected_hashes = {r["hash"][:12] for r in ResultsStore(results).find("models", {"perturbation.std": 0.5})}
    assert {line.split()[0] for line in lines[1:]} == expected_hashes

    out = invoke("db", "ls", "models", "--format", "csv", "--results", results)
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert len(rows) == 5 and "hyperparameters.train.n_batches" in rows[0]

    none = invoke("db", "ls", "models", "-w", "perturbation.sd=0.5", "--results", results)
    # nothing matched is an error (as for `figures get`), naming the misspelt key and a known one
    assert none.exit_code == 1 and "perturbation.sd" in none.stderr
    assert "did you mean perturbation.std" in none.stderr


def test_show(results):
    rec = ResultsStore(results).find("models")[2]
    out = invoke("db", "show", rec["hash"][:10], "--results", results)
    assert out.exit_code == 0, out.output
    shown = json.loads(out.stdout)
    assert shown["table"] == "models" and shown["hash"] == rec["hash"]
    missing = invoke("db", "show", "fffffffffff", "--results", results)
    assert missing.exit_code == 1 and "fffffffffff" in missing.stderr


def test_varying(results):
    out = invoke("db", "varying", "models", "--results", results)
    assert out.exit_code == 0, out.output
    # values as JSON, so the string "100" is told apart from the int 100
    assert out.stdout.splitlines() == ["perturbation.std: 0.0, 0.5, 1.0", 'train.n_batches: 100, 200, "100"']
    figs = invoke("db", "varying", "figures", "--type", "aligned_trajectories", "--results", results)
    assert figs.stdout.splitlines() == ["train.perturbation.std: 0.0, 0.5"]


def test_gc_modes(results):
    stray = results / "models" / "deadbeefdead.eqx"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"x")
    dry = invoke("db", "gc", "--min-age", "0", "--results", results)
    assert dry.exit_code == 0 and "models/deadbeefdead.eqx" in dry.stdout and stray.exists()
    both = invoke("db", "gc", "--archive", "--delete", "--results", results)
    assert both.exit_code != 0 and stray.exists()
    arch = invoke("db", "gc", "--archive", "--min-age", "0", "--results", results)
    assert arch.exit_code == 0 and not stray.exists()
    assert (results / "archive" / "models" / "deadbeefdead.eqx").read_bytes() == b"x"


def test_export_and_restore_after_corruption(results, tmp_path):
    before = ResultsStore(results).find("models")
    out = invoke("db", "export", "--dir", tmp_path / "dump", "--results", results)
    assert out.exit_code == 0
    assert sorted(p.rsplit("/", 1)[-1] for p in out.stdout.split()) == [
        "figures.csv",
        "figures.yml",
        "models.csv",
        "models.yml",
    ]

    (results / "index.json").write_text('{"models": {"1": {"hash": ')
    broken = invoke("db", "ls", "models", "--results", results)
    assert broken.exit_code == 1
    assert "robustreach db restore" in broken.stderr and "index.json" in broken.stderr
    restored = invoke("db", "restore", "--results", results)
    assert restored.exit_code == 0, restored.output
    assert "models: 5 record(s)" in restored.stdout
    assert ResultsStore(results).find("models") == before


def test_figures_get(results, tmp_path):
    listed = invoke("figures", "get", "--identifier", "aligned_trajectories", "--results", results)
    assert listed.exit_code == 0 and len(listed.stdout.strip().splitlines()) == 3
    out = invoke(
        "figures",
        "get",
        "-w",
        "train.perturbation.std=0.5",
        "--save-dir",
        tmp_path / "figs",
        "--annotate",
        "--results",
        results,
    )
    assert out.exit_code == 0, out.output
    name = "aligned_trajectories-by_std__train.perturbation.std=0.5"
    assert sorted(p.rsplit("/", 1)[-1] for p in out.stdout.split()) == [f"{name}.html", f"{name}.json"]
    fig = json.loads((tmp_path / "figs" / f"{name}.json").read_text())
    assert fig["layout"]["annotations"][0]["text"] == "train.perturbation.std = 0.5"
    nothing = invoke("figures", "get", "-w", "train.perturbation.std=9", "--results", results)
    assert nothing.exit_code == 1
