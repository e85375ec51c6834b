"""Generic records: insert/get/find/upsert/remove, the where language, varying, errors, backups."""

import itertools
import json
import math

import pytest
from robustreach.hashing import params_hash
from robustreach.store import (
    AmbiguousQueryError,
    DuplicateRecordError,
    IndexCorruptError,
    NoMatchError,
    OneOf,
    Range,
    ResultsStore,
)


def grid_records():
    """Twelve hyperparameter sets: std x n_batches x lr (independently known values)."""
    return [
        {"perturbation": {"std": std}, "train": {"n_batches": n, "lr": lr}, "plant": {"mass": 1.0}}
        for std, n, lr in itertools.product([0.0, 0.5, 1.0], [100, 200], [1e-3, 1e-2])
    ]


@pytest.fixture
def store(tmp_path):
    return ResultsStore(tmp_path / "results")


@pytest.fixture
def filled(store):
    store.insert_many("models", [{"hyperparameters": hp} for hp in grid_records()])
    return store


def test_index_created_lazily(store):
    assert store.find("models") == []
    assert not store.index_path.exists()
    store.insert("runs", {"hash": "ab" * 32, "notebook": "a.qmd"})
    assert store.index_path.exists()


def test_insert_fills_record_fields(store):
    hp = {"train": {"n_batches": 100}}
    rec = store.insert("models", {"hyperparameters": hp, "files": {"model": "models/x.eqx"}})
    assert rec["hash"] == params_hash(hp)
    assert rec["status"] == "complete"
    assert rec["created"] == rec["provenance"]["created"]
    assert set(rec["provenance"]) == {"created", "versions", "git", "device", "hostname"}
    assert store.get("models", rec["hash"]) == rec
    assert store.get("models", rec["hash"][:6]) == rec


def test_generic_record_needs_hash_or_hyperparameters(store):
    rec = store.insert("runs", {"hash": "0123456789abcdef", "notebook": "n.qmd", "params": {"a": 1}})
    assert store.get("runs", "0123456789ab")["notebook"] == "n.qmd"
    with pytest.raises(ValueError, match="'hyperparameters' or its own 'hash'"):
        store.insert("runs", {"notebook": "n.qmd"})
    with pytest.raises(ValueError, match="lowercase hex"):
        store.insert("runs", {"hash": "not-a-hash"})
    assert rec["status"] == "complete"


def test_bad_records_rejected_before_writing(store):
    with pytest.raises(ValueError, match="'a.b'"):
        store.insert("runs", {"hash": "ab" * 8, "a.b": 1})
    with pytest.raises(ValueError, match=r"'\.\./x'"):
        store.insert("runs", {"hash": "ab" * 8, "files": {"log": "../x"}})
    with pytest.raises(ValueError, match="table name"):
        store.insert("bad name", {"hash": "ab" * 8})
    assert not store.index_path.exists()


def test_duplicate_insert_refused_upsert_replaces(store):
    store.insert("runs", {"hash": "cd" * 32, "status": "running", "n": 1})
    with pytest.raises(DuplicateRecordError, match="upsert"):
        store.insert("runs", {"hash": "cd" * 32})
    first = store.get("runs", "cd" * 32)
    updated = store.upsert("runs", {"hash": "cd" * 32, "status": "failed", "error": "boom"})
    assert updated["status"] == "failed" and updated["error"] == "boom" and updated["n"] == 1
    assert updated["created"] == first["created"] and "updated" in updated
    assert store.get("runs", "cd" * 32) == updated
    assert len(store.find("runs")) == 1


def test_upsert_by_other_key(store):
    store.upsert("runs", {"hash": "ef" * 32, "name": "a", "status": "running"}, key="name")
    store.upsert("runs", {"hash": "ef" * 32, "name": "a", "status": "complete"}, key="name")
    (rec,) = store.find("runs")
    assert rec["status"] == "complete"


def test_get_missing_and_ambiguous_prefix(filled):
    with pytest.raises(NoMatchError, match=r"'ffffffff'.*'models'"):
        filled.get("models", "ffffffff")
    hashes = [r["hash"] for r in filled.find("models")]
    common = next(h[0] for h in hashes if sum(x[0] == h[0] for x in hashes) > 1)
    with pytest.raises(AmbiguousQueryError):
        filled.get("models", common)


def test_unknown_table(store):
    with pytest.raises(ValueError, match="no table 'modles'"):
        store.find("modles")


def brute(records, predicate):
    return sorted(r["hash"] for r in records if predicate(r["hyperparameters"]))


def test_queries_on_nested_params(filled):
    records = filled.find("models")
    assert len(records) == 12

    def hashes(where):
        return sorted(r["hash"] for r in filled.find("models", where))

    # equality: nested dict, dotted key, explicit hyperparameters prefix, 1 == 1.0
    expected = brute(records, lambda hp: hp["perturbation"]["std"] == 0.5)
    assert len(expected) == 4
    assert hashes({"perturbation": {"std": 0.5}}) == expected
    assert hashes({"perturbation.std": 0.5}) == expected
    assert hashes({"hyperparameters.perturbation.std": 0.5}) == expected
    assert hashes({"train.n_batches": 100.0}) == brute(records, lambda hp: hp["train"]["n_batches"] == 100)
    # OneOf and Range
    expected = brute(records, lambda hp: hp["perturbation"]["std"] in (0.0, 1.0) and hp["train"]["lr"] == 1e-3)
    assert hashes({"perturbation.std": OneOf([0, 1]), "train.lr": 1e-3}) == expected
    assert len(expected) == 4
    expected = brute(records, lambda hp: 0.25 <= hp["perturbation"]["std"] <= 1.0 and hp["train"]["n_batches"] >= 150)
    assert hashes({"perturbation.std": Range(0.25, 1.0), "train.n_batches": Range(150, None)}) == expected
    assert len(expected) == 4
    # no match: wrong value, missing field, bool is not 1
    assert hashes({"plant.mass": True}) == []
    assert hashes({"plant.nothing": 1}) == []
    assert hashes({"plant.mass": 1}) == brute(records, lambda hp: True)


def test_query_top_level_fields_and_created_range(filled):
    recs = filled.find("models")
    assert filled.find("models", {"status": "complete"}) == recs
    created = recs[0]["created"]
    assert filled.find("models", {"created": Range(created, None)}) == recs
    assert filled.find("models", {"created": Range(None, "2000-01-01")}) == []


def test_find_one_errors_name_fields(filled):
    rec = filled.find_one("models", {"perturbation.std": 0.5, "train.n_batches": 200, "train.lr": 1e-2})
    assert rec["hyperparameters"]["train"]["lr"] == 1e-2
    with pytest.raises(AmbiguousQueryError) as info:
        filled.find_one("models", {"perturbation.std": 0.5})
    assert set(info.value.fields) == {"train.n_batches", "train.lr"}
    assert info.value.fields["train.n_batches"] == [100, 200]
    assert "train.n_batches" in str(info.value) and "train.lr" in str(info.value)
    assert "perturbation.std" not in info.value.fields and "hash" not in info.value.fields
    with pytest.raises(NoMatchError, match="perturbation.sd"):
        filled.find_one("models", {"perturbation.sd": 0.5})


def test_ambiguity_between_identical_params_lists_hashes(store):
    hp = {"a": 1}
    store.insert("models", {"hyperparameters": hp, "hash": "1" * 64})
    store.insert("models", {"hyperparameters": hp, "hash": "2" * 64})
    with pytest.raises(AmbiguousQueryError, match="only in bookkeeping") as info:
        store.find_one("models", {"a": 1})
    assert info.value.fields == {}
    assert sorted(info.value.hashes) == ["1" * 64, "2" * 64]


def test_varying(filled):
    assert filled.varying("models") == {
        "perturbation.std": [0, 0.5, 1.0],
        "train.lr": [1e-3, 1e-2],
        "train.n_batches": [100, 200],
    }
    assert filled.varying("models", {"perturbation.std": 0.5, "train.lr": 1e-3}) == {"train.n_batches": [100, 200]}


def test_varying_by_type(store):
    for ident, x in [("a/one", 1), ("a/two", 2), ("b/one", 3)]:
        store.insert("figures", {"hash": params_hash([ident, x]), "identifier": ident, "hyperparameters": {"x": x}})
    assert store.varying("figures", type="a") == {"identifier": ["a/one", "a/two"], "x": [1, 2]}
    assert store.varying("figures", type="b/one") == {}
    store.insert("models", {"hyperparameters": {"x": 1}})
    with pytest.raises(ValueError, match="identifier"):
        store.varying("models", type="a")


def test_dataframe(filled):
    frame = filled.dataframe("models", {"train.n_batches": 100})
    assert list(frame.columns[:1]) == ["hash"]
    assert len(frame) == 6
    assert sorted(frame["hyperparameters.perturbation.std"]) == [0.0, 0.0, 0.5, 0.5, 1.0, 1.0]
    assert set(frame["hyperparameters.train.n_batches"]) == {100}
    assert list(filled.dataframe("models", {"train.n_batches": 5}).columns) == ["hash"]


def test_remove(filled):
    rec = filled.find("models")[3]
    filled.remove("models", rec["hash"])
    assert rec["hash"] not in [r["hash"] for r in filled.find("models")]
    assert len(filled.find("models")) == 11
    with pytest.raises(NoMatchError):
        filled.remove("models", rec["hash"])


def test_returned_records_are_copies(filled):
    rec = filled.find("models")[0]
    rec["hyperparameters"]["train"]["n_batches"] = -1
    assert filled.find("models")[0]["hyperparameters"]["train"]["n_batches"] != -1


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "wrong_shape"])
def test_corrupt_index_raises_and_is_not_overwritten(filled, damage):
    raw = filled.index_path.read_bytes()
    broken = {
        "truncate": raw[: len(raw) // 2],
        "garbage": b"\x00\xff not json",
        "empty": b"",
        "wrong_shape": b'{"models": [1, 2]}',
    }[damage]
    filled.index_path.write_bytes(broken)
    with pytest.raises(IndexCorruptError, match="db restore") as info:
        filled.find("models")
    assert str(filled.index_path) in str(info.value)
    with pytest.raises(IndexCorruptError):
        filled.insert("models", {"hyperparameters": {"new": 1}})
    assert filled.index_path.read_bytes() == broken
    # the CSV backup restores every record
    counts = filled.restore()
    assert counts == {"models": 12}
    assert len(filled.find("models")) == 12
    backups = list(filled.index_path.parent.glob("index.json.bak-*"))
    assert [b.read_bytes() for b in backups] == [broken]


def test_csv_written_after_every_write(store):
    store.insert("runs", {"hash": "ab" * 32, "n": 1})
    assert (store.csv_dir / "runs.csv").read_text().count("\n") == 2
    store.insert("runs", {"hash": "cd" * 32, "n": 2})
    assert (store.csv_dir / "runs.csv").read_text().count("\n") == 3
    store.remove("runs", "ab" * 32)
    assert (store.csv_dir / "runs.csv").read_text().count("\n") == 2


TRICKY = {
    "hyperparameters": {
        "int": 1,
        "float_integral": 1.0,
        "float": 0.1,
        "big": 2**62,
        "neg": -3.5e-12,
        "bool": True,
        "none": None,
        "empty_str": "",
        "text": 'quote " comma , newline \n unicode é',
        "list": [1, 2.0, [None, False], {"k": "v"}],
        "empty_list": [],
        "empty_dict": {},
        "nested": {"deep": {"deeper": {"x": 1}}},
        "dotted": {"a.b": 1, "c": 2},
    },
    "metrics": {"nan": math.nan, "inf": -math.inf},
}


def test_csv_export_restore_exact(store, tmp_path):
    store.insert("models", TRICKY)
    store.insert("runs", {"hash": "ab" * 32, "only_top": [1, {"a": None}]})
    store.insert("runs", {"hash": "cd" * 32, "only_top": 3, "other": {"x": 1}})
    store.remove("runs", "ab" * 32)
    store.insert("runs", {"hash": "ef" * 32, "late": True})
    before = {t: store.find(t) for t in ("models", "runs")}
    ids_before = {t: sorted(docs) for t, docs in json.loads(store.index_path.read_text()).items()}
    assert ids_before["runs"] == ["2", "3"]
    paths = store.export()
    assert {p.name for p in paths} == {"models.csv", "models.yml", "runs.csv", "runs.yml"}
    store.index_path.unlink()
    assert store.restore() == {"models": 1, "runs": 2}
    after = {t: store.find(t) for t in ("models", "runs")}
    # json.dumps with sorted keys distinguishes 1 from 1.0 and True from 1
    assert json.dumps(after, sort_keys=True) == json.dumps(before, sort_keys=True)
    restored = after["models"][0]["hyperparameters"]
    assert type(restored["float_integral"]) is float and type(restored["int"]) is int
    assert after["models"][0]["metrics"] == {"nan": None, "inf": None}  # strict JSON: non-finite -> null
    # TinyDB's document ids survive too
    ids_after = {t: sorted(docs) for t, docs in json.loads(store.index_path.read_text()).items()}
    assert ids_after == ids_before


def test_export_to_directory_and_yaml(filled, tmp_path):
    import yaml

    paths = filled.export(tmp_path / "out")
    assert sorted(p.name for p in paths) == ["models.csv", "models.yml"]
    items = yaml.safe_load((tmp_path / "out" / "models.yml").read_text())
    assert len(items) == 12
    assert {i["hyperparameters.perturbation.std"] for i in items} == {0.0, 0.5, 1.0}


def test_lost_index_does_not_overwrite_backup(filled):
    backup = (filled.csv_dir / "models.csv").read_text()
    filled.index_path.unlink()
    with pytest.raises(IndexCorruptError, match="missing"):
        filled.insert("models", {"hyperparameters": {"new": 1}})
    with pytest.raises(IndexCorruptError, match="db restore"):
        filled.find("models")
    assert (filled.csv_dir / "models.csv").read_text() == backup
    assert filled.restore() == {"models": 12}


def test_restore_without_backup(store):
    with pytest.raises(FileNotFoundError, match="db-csv"):
        store.restore()
