"""Garbage collection: orphan files (not side files), records with missing files; three modes."""

import json
import os
import time

import equinox as eqx
import jax
import plotly.graph_objects as go
import pytest
from robustreach.store import ResultsStore

HP = {"controller": {"hidden": 3}}


def model(seed):
    return eqx.nn.Linear(2, 3, key=jax.random.PRNGKey(seed))


def layout(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture
def scene(tmp_path):
    """A kept model with side files, a removed model (files become orphans), a model whose file
    vanished, a figure, an evaluation, and a stray file."""
    store = ResultsStore(tmp_path / "results")
    kept = store.save_model(model(0), HP, side_files={"history": {"loss": [1.0]}, "replicates": {"n": 2}})
    gone = store.save_model(model(1), {**HP, "x": 1}, side_files={"history": {"loss": [2.0]}})
    store.remove("models", gone["hash"])
    broken = store.save_model(model(2), {**HP, "x": 2}, side_files={"history": {"loss": [3.0]}})
    (store.root / broken["files"]["model"]).unlink()
    store.save_figure(go.Figure(), "a/b", train={}, test={}, figure={})
    store.cached_evaluation(kept["hash"], {"n": 1}, lambda: {"x": [1.0]})
    (store.root / "figures" / "a" / "stray.json").write_text("{}")
    # temp files of writes killed mid-way
    (store.root / ".index.json.k1ll3d.tmp").write_text('{"runs": {"1"')
    (store.root / "db-csv" / ".models.csv.x9.tmp").write_text("_doc_id")
    (store.root / "models" / f".{kept['hash'][:12]}.eqx.abc.tmp").write_bytes(b"")
    expected_orphans = sorted(
        [
            gone["files"]["model"],
            gone["files"]["history"],
            broken["files"]["history"],  # its record goes, so its remaining side file is an orphan
            "figures/a/stray.json",
            ".index.json.k1ll3d.tmp",
            "db-csv/.models.csv.x9.tmp",
            f"models/.{kept['hash'][:12]}.eqx.abc.tmp",
        ]
    )
    return store, kept, gone, broken, expected_orphans


def test_dry_run_reports_and_changes_nothing(scene):
    store, kept, _, broken, expected = scene
    before = layout(store.root)
    index_before = store.index_path.read_bytes()
    report = store.gc(min_age_s=0)
    assert report.mode == "dry-run"
    assert sorted(report.orphan_files) == expected
    assert report.removed_records == [{"table": "models", "hash": broken["hash"]}]
    assert report.missing_files == [{"table": "models", "hash": broken["hash"], "file": broken["files"]["model"]}]
    assert kept["files"]["history"] not in report.orphan_files  # side files of a recorded model
    assert layout(store.root) == before
    assert store.index_path.read_bytes() == index_before
    assert "would remove" in str(report)


def test_archive_moves_files_and_records(scene):
    store, kept, _, broken, expected = scene
    before = set(layout(store.root))
    report = store.gc("archive", min_age_s=0)
    assert sorted(report.orphan_files) == expected and report.archive_dir == store.root / "archive"
    after = set(layout(store.root))
    archived = {f"archive/{p}" for p in expected}
    assert archived <= after
    assert not (set(expected) & after)
    assert before - after == set(expected)
    assert [r["hash"] for r in store.find("models")] == [kept["hash"]]
    lines = (store.root / "archive" / "records" / "models.jsonl").read_text().splitlines()
    assert [json.loads(line)["hash"] for line in lines] == [broken["hash"]]
    # what is left is clean, and the kept model still loads with its side files
    assert store.gc(min_age_s=0).orphan_files == []
    assert store.load_side_file(kept, "replicates") == {"n": 2}
    assert (store.csv_dir / "models.csv").read_text().count("\n") == 2


def test_delete_removes_for_good(scene):
    store, kept, _, _, expected = scene
    before = set(layout(store.root))
    report = store.gc("delete", min_age_s=0)
    after = set(layout(store.root))
    assert before - after == set(expected)
    assert not any(p.startswith("archive/") for p in after)
    assert [r["hash"] for r in store.find("models")] == [kept["hash"]]
    assert sorted(report.orphan_files) == expected
    loaded, _ = store.load_model(kept, skeleton=lambda hp: model(5))
    assert loaded.weight.shape == (3, 2)


def test_young_files_are_left_alone(scene):
    store, _, _, _, expected = scene
    old = time.time() - 3600
    for rel in expected[:2]:
        os.utime(store.root / rel, (old, old))
    report = store.gc(min_age_s=600)
    assert sorted(report.orphan_files) == sorted(expected[:2])


def test_bad_mode(tmp_path):
    with pytest.raises(ValueError, match="gc mode"):
        ResultsStore(tmp_path).gc("everything")
