"""Summary tables in the results index: round trip, replaced when saved again, found by
identifier, and kept or collected by `gc` like figures."""

import numpy as np
import pandas as pd
import pytest
from robustreach.store import ResultsStore


@pytest.fixture
def store(tmp_path):
    return ResultsStore(tmp_path / "results")


def table(scale: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame({
        "condition": ["std 0", "std 0", "std 1"],
        "amplitude": [0.0, 2.0, 2.0],
        "mean": scale * np.array([0.01, 0.25, 0.125]),
        "stable": [True, False, True],
        "label": ["2 × 1", "never", "a, b"],  # text with a comma and a non-ASCII sign survives CSV
    })


def test_round_trip_and_identity(store):
    record = store.save_summary(table(), "behaviour/measures", train={"std": [0, 1]}, test={"field": "curl"},
                                model_hashes=["a" * 64, "b" * 64])
    assert record["files"]["csv"].startswith("summaries/behaviour/measures/")
    loaded = store.load_summary(record["hash"])
    pd.testing.assert_frame_equal(loaded, table())
    assert record["columns"] == list(table().columns)
    # the same summary from the same models replaces the earlier one; another test is another record
    store.save_summary(table(2.0), "behaviour/measures", train={"std": [0, 1]}, test={"field": "curl"},
                       model_hashes=["a" * 64, "b" * 64])
    store.save_summary(table(), "behaviour/measures", train={"std": [0, 1]}, test={"field": "constant"},
                       model_hashes=["a" * 64, "b" * 64])
    found = store.find_summaries("behaviour/measures")
    assert len(found) == 2
    replaced = next(r for r in found if r["hyperparameters"]["test"] == {"field": "curl"})
    np.testing.assert_allclose(store.load_summary(replaced)["mean"], table(2.0)["mean"])
    assert store.find_summaries("behaviour") == found  # a parent identifier finds its children
    assert store.find_summaries("jacobians") == []


def test_a_named_index_becomes_columns(store):
    grouped = table().set_index(["condition", "amplitude"])
    record = store.save_summary(grouped, "x/y", train={}, test={})
    pd.testing.assert_frame_equal(store.load_summary(record), table())


def test_bad_identifier_is_refused_before_writing(store):
    with pytest.raises(ValueError, match="summary identifier '../x'"):
        store.save_summary(table(), "../x", train={}, test={})
    assert not (store.root / "summaries").exists()


def test_gc_keeps_recorded_summaries_and_collects_the_rest(store):
    kept = store.save_summary(table(), "a/b", train={}, test={})
    lost = store.save_summary(table(3.0), "a/c", train={}, test={})
    (store.root / lost["files"]["csv"]).unlink()
    (store.root / "summaries" / "a" / "b" / "stray.csv").write_text("x\n1\n")
    report = store.gc(min_age_s=0)
    assert report.orphan_files == ["summaries/a/b/stray.csv"]
    assert [(m["table"], m["hash"]) for m in report.missing_files] == [("summaries", lost["hash"])]
    with pytest.raises(FileNotFoundError, match="summary file"):
        store.load_summary(lost)
    store.gc("delete", min_age_s=0)
    assert [r["hash"] for r in store.find_summaries()] == [kept["hash"]]
    assert (store.root / kept["files"]["csv"]).is_file()
