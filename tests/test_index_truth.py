"""The results index never lies (issue 12): one test per fault found by trying it as a user.

Training here is tiny (hidden size 4, 8 steps, a few batches) so that each test takes seconds.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import equinox as eqx
import jax
import nbformat
import numpy as np
import pytest
from typer.testing import CliRunner

from robustreach.cli.main import app
from robustreach.config import load_hyperparameters
from robustreach.hashing import params_hash
from robustreach.store import ResultsStore
from robustreach.store.training import checkpoint_file, training_lock
from robustreach.train import runner as train_runner
from robustreach.train import trainer
from robustreach.train.trainer import DIVERGENCE_GROWTH, divergence, train_conditions

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = {
    "controller": {"hidden_size": 4},
    "task": {"n_steps": 8},
    "train": {"n_replicates": 2, "batch_size": 4, "n_batches": 3, "validation_every": 3, "n_snapshots": 2},
}
PARAMS = """
notebooks: [notebooks/part1/train.qmd]
base:
  controller: {hidden_size: 4}
  task: {n_steps: 8}
  train: {n_replicates: 2, batch_size: 4, n_batches: 3, validation_every: 3, n_snapshots: 2%s}
  conditions.perturbation.std: %s
"""


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def paramfile(tmp_path):
    """Write a parameter file under params/ (notebooks resolve from the repository)."""
    made = []

    def write(train_extra="", stds="[0.0, 1.0]"):
        path = ROOT / "params" / f"_test_{tmp_path.name}_{len(made)}.yml"
        path.write_text(PARAMS % (train_extra, stds))
        made.append(path)
        return path

    yield write
    for path in made:
        path.unlink(missing_ok=True)


def hp(**train):
    return load_hyperparameters({**SECTIONS, "train": {**SECTIONS["train"], **train}})


# 1. A missing model file no longer counts as trained --------------------------------------------
def test_missing_model_file_is_retrained_alone_with_a_message(tmp_path, paramfile):
    params, results = paramfile(), tmp_path / "results"
    assert invoke("train", params, "--results", results).exit_code == 0
    store = ResultsStore(results)
    first, second = store.find("models")
    gone = results / first["files"]["model"]
    gone.unlink()

    listing = invoke("db", "ls", "models", "--results", results)
    assert listing.exit_code == 0
    line = next(x for x in listing.stdout.splitlines() if x.startswith(first["hash"][:12]))
    assert "missing files" in line
    assert "missing files" not in next(x for x in listing.stdout.splitlines() if x.startswith(second["hash"][:12]))
    as_json = json.loads(invoke("db", "ls", "models", "-f", "json", "--results", results).stdout)
    assert [r.get("missing_files") for r in as_json] == [[first["files"]["model"]], None]

    second_mtime = (results / second["files"]["model"]).stat().st_mtime_ns
    again = invoke("train", params, "--results", results)
    assert again.exit_code == 0, again.output
    assert "1 trained, 1 skipped, 0 failed" in again.stdout
    assert str(gone) in again.stderr and "trained again" in again.stderr
    assert (results / second["files"]["model"]).stat().st_mtime_ns == second_mtime  # the other set untouched
    fresh = train_runner.existing_model(store, load_hyperparameters(first["hyperparameters"]))
    assert fresh is not None and f"trained  {fresh['hash'][:12]}" in again.stdout
    store.load_model(fresh)  # on disk and matching its hash (retrained alone: bytes may differ from the group's)

    # the notebooks' way in (experiment.trained_models) retrains it too
    from robustreach.experiment import trained_models

    (results / fresh["files"]["model"]).unlink()
    models = trained_models(store, [load_hyperparameters(first["hyperparameters"])], progress=False)
    assert store.model_problem(models[0].record) is None


# 2. Divergence is a failure, recorded once ----------------------------------------------------------
def test_diverging_learning_rate_fails_is_recorded_and_not_retrained(tmp_path, paramfile):
    params, results = paramfile(", learning_rate: 1.0e+30", "[0.0]"), tmp_path / "results"
    first = invoke("train", params, "--results", results)
    assert first.exit_code == 1, first.output
    assert "0 trained, 0 skipped, 1 failed (1 diverged)" in first.stdout
    assert "All-NaN" not in first.output and "RuntimeWarning" not in first.output
    (record,) = ResultsStore(results).find("models")
    assert record["status"] == "diverged" and record["diverged"]["batch"] == 0 and record["diverged"]["reason"]

    again = invoke("train", params, "--results", results)
    assert again.exit_code == 1 and "earlier" in again.stderr and "--force" in again.stderr
    assert len(ResultsStore(results).find("models")) == 1  # not trained again
    forced = invoke("train", params, "--results", results, "--force")
    assert forced.exit_code == 1 and "1 failed (1 diverged)" in forced.stdout


def test_validation_growth_beyond_the_limit_is_divergence():
    finite = np.ones((1, 2), bool)
    first = np.array([[2.0, 4.0]])
    assert divergence(finite, None, first, 5) is None  # not validated at this batch
    assert divergence(finite, np.array([[2.0 * DIVERGENCE_GROWTH, 1.0]]), first, 5) is None  # at the limit
    grown = divergence(finite, np.array([[1.0, 4.0 * DIVERGENCE_GROWTH * 1.01]]), first, 5)
    assert grown == {"batch": 5, "condition": 0, "replicate": 1, "reason": grown["reason"]}
    assert "validation" in grown["reason"]
    assert divergence(finite, np.array([[np.nan, 1.0]]), first, 5)["replicate"] == 0
    assert divergence(np.array([[True, False]]), None, first, 2)["reason"] == "non-finite loss or parameters"


def test_large_finite_learning_rate_is_caught_by_validation_growth():
    result = train_conditions([hp(learning_rate=1e6, n_batches=8, validation_every=1)], progress=False)
    assert result.diverged is not None, "a learning rate of 1e6 should blow the validation loss up"
    assert "validation loss above" in result.diverged["reason"]  # finite, just far too large
    history = result.conditions[0].history
    r, b = result.diverged["replicate"], result.diverged["batch"]
    assert result.n_batches_run == b + 1 and history["validation/total"][b, r] > DIVERGENCE_GROWTH * history["loss/total"][0, r]


# 3. Checkpoints: versioned names, unreadable ones set aside -----------------------------------------
def test_corrupt_checkpoint_is_set_aside_and_training_starts_over(tmp_path, caplog):
    store = ResultsStore(tmp_path / "results")
    reference = train_conditions([hp()], progress=False)
    group = hp()
    checkpoint = checkpoint_file(store.root, params_hash([group.to_dict()]))
    assert checkpoint.name.endswith(".layout2.eqx")
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"\x00garbage")
    summary = train_runner.train_parameter_sets([group.to_dict()], store, progress=False)
    assert not summary.failed and len(summary.trained) == 1
    (aside,) = checkpoint.parent.glob(checkpoint.name + ".bad-*")
    assert aside.read_bytes() == b"\x00garbage" and not checkpoint.exists()
    assert str(checkpoint) in caplog.text and "starts over" in caplog.text
    model, _ = store.load_model(summary.trained[0], skeleton=lambda _: reference.conditions[0].model)
    for a, b in zip(jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array)),
                    jax.tree_util.tree_leaves(eqx.filter(reference.conditions[0].model, eqx.is_array))):
        np.testing.assert_array_equal(a, b)  # trained from scratch, as without a checkpoint

    # gc removes set-aside and older-layout checkpoints, keeps resumable ones
    old_layout = checkpoint.parent / "0123456789ab.eqx"
    old_layout.write_bytes(b"old")
    current = checkpoint.parent / "0123456789ab.layout2.eqx"
    current.write_bytes(b"resumable")
    dry = store.gc(min_age_s=0)
    assert sorted(dry.orphan_files) == sorted(["checkpoints/0123456789ab.eqx", f"checkpoints/{aside.name}"])
    store.gc("delete", min_age_s=0)
    assert current.exists() and not old_layout.exists() and not aside.exists()


# 4. An empty or lost index: gc refuses, rebuild restores --------------------------------------------
def _save_two(store):
    model = eqx.nn.Linear(2, 3, key=jax.random.PRNGKey(0))
    history = {"validation": np.array([1.0, np.nan], np.float32)}
    return [
        store.save_model(model, {"a": 1}, side_files={"history": history}, extra={"status": "ok", "best": [np.nan, 1.0]}),
        store.save_model(eqx.nn.Linear(2, 3, key=jax.random.PRNGKey(1)), {"a": 2}, extra={"status": "diverged"}),
    ]


@pytest.mark.parametrize("loss", ["index and backup deleted", "index emptied"])
def test_gc_refuses_without_model_records_and_rebuild_restores_them(tmp_path, loss):
    results = tmp_path / "results"
    store = ResultsStore(results)
    saved = _save_two(store)
    if loss == "index emptied":
        store.remove("models", saved[0]["hash"])
        store.remove("models", saved[1]["hash"])
    else:
        (results / "index.json").unlink()
        for path in (results / "db-csv").glob("*"):
            path.unlink()
    model_files = sorted(p.name for p in (results / "models").iterdir())
    run_hash = "9f" * 32  # an executed run as `batch.execute` leaves it
    run_dir = results / "runs" / "echo" / run_hash[:12]
    run_dir.mkdir(parents=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1/0", outputs=[
        nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero", traceback=[])])])
    nb.metadata["robustreach"] = {"run_hash": run_hash, "part": "demo", "notebook": "notebooks/echo.qmd"}
    nbformat.write(nb, run_dir / "echo.ipynb")
    (run_dir / "parameters.json").write_text('{"n": 1}')

    for mode in ("--delete", "--archive"):
        refused = invoke("db", "gc", mode, "--min-age", "0", "--results", results)
        assert refused.exit_code == 1 and "db rebuild" in refused.stderr
    assert sorted(p.name for p in (results / "models").iterdir()) == model_files

    rebuilt = invoke("db", "rebuild", "--results", results)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "models: 2 added" in rebuilt.stdout and "runs: 1 added" in rebuilt.stdout
    (run,) = ResultsStore(results).find("runs")
    assert (run["hash"], run["status"], run["hyperparameters"], run["error"]["ename"]) == (run_hash, "failed", {"n": 1}, "ZeroDivisionError")
    assert run["files"] == {"notebook": f"runs/echo/{run_hash[:12]}/echo.ipynb", "parameters": f"runs/echo/{run_hash[:12]}/parameters.json"}
    again = ResultsStore(results).find("models")
    keep = ("hash", "params_hash", "hyperparameters", "files", "status", "best")
    def by_hash(records):
        return sorted(({k: r.get(k) for k in keep} for r in records), key=lambda r: r["hash"])

    assert by_hash(again) == by_hash(saved)
    assert by_hash(again)[[r["hash"] for r in by_hash(again)].index(saved[0]["hash"])]["best"] == [None, 1.0]
    assert invoke("db", "rebuild", "--results", results).stdout.strip().endswith("0 added, 2 already recorded, 0 unreadable")
    assert ResultsStore(results).gc("delete", min_age_s=0).orphan_files == []


# 5. One process trains a set at a time --------------------------------------------------------------
def test_two_concurrent_trainings_of_one_set_train_it_once(tmp_path, paramfile):
    params, results = paramfile(stds="[0.5]"), tmp_path / "results"
    (only,) = train_runner.hyperparameters_of({**SECTIONS, "conditions": {"perturbation": {"std": [0.5]}}})
    lock = training_lock(results, params_hash(only.to_dict()))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib"), "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "-m", "robustreach", "train", str(params), "--results", str(results)]
    lock.acquire()  # as if a third process were training it: both must wait, then one trains
    logs = [tmp_path / f"p{i}.err" for i in range(2)]
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True) for log in logs]
    try:
        deadline = time.time() + 240
        while not all("waiting for another process" in log.read_text() for log in logs):
            assert time.time() < deadline and all(p.poll() is None for p in procs), [log.read_text() for log in logs]
            time.sleep(0.2)
    finally:
        lock.release()
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [log.read_text() for log in logs]
    summaries = sorted(line for out in outs for line in out.splitlines() if "trained," in line)
    assert summaries == ["0 trained, 1 skipped, 0 failed", "1 trained, 0 skipped, 0 failed"]
    assert len(ResultsStore(results).find("models")) == 1


# 6. An interrupt as validation returns leaves no hole --------------------------------------------------
def test_interrupt_as_validation_returns_resumes_to_the_same_history_and_model(tmp_path, monkeypatch):
    # snapshots at batches 0, 1, 2, 5; validation at 0, 1, 2, 3, 5: stop right after batch 2's validation
    hps = [hp(n_batches=6, validation_every=2, n_snapshots=4)]
    reference = train_conditions(hps, progress=False)
    make_validation = trainer.make_validation
    calls = []

    def interrupting(*args):
        validate = make_validation(*args)

        def wrapped(*a):
            out = validate(*a)
            calls.append(1)
            if len(calls) == 3:
                raise KeyboardInterrupt
            return out

        return wrapped

    monkeypatch.setattr(trainer, "make_validation", interrupting)
    checkpoint = tmp_path / "run.eqx"
    with pytest.raises(KeyboardInterrupt):
        train_conditions(hps, checkpoint_path=checkpoint, progress=False)
    monkeypatch.setattr(trainer, "make_validation", make_validation)
    resumed = train_conditions(hps, checkpoint_path=checkpoint, progress=False)
    ref, res = reference.conditions[0], resumed.conditions[0]
    for key in ("validation/total", "loss/total", "best_batch", "snapshot_batches"):
        np.testing.assert_array_equal(ref.history[key], res.history[key], err_msg=key)
    assert not np.isnan(res.history["validation/total"][2]).any()
    for a, b in zip(jax.tree_util.tree_leaves(eqx.filter(ref.model, eqx.is_array)),
                    jax.tree_util.tree_leaves(eqx.filter(res.model, eqx.is_array))):
        np.testing.assert_array_equal(a, b)


# 7. Temporary run folders ---------------------------------------------------------------------------
SLEEPER = """\
---
title: "Sleeper (test fixture)"
jupyter: python3
---

```{python}
import pathlib, time
pathlib.Path(%r).write_text("started")
time.sleep(60)
```
"""


def test_sigterm_during_a_run_leaves_no_temporary_folder(tmp_path):
    marker = tmp_path / "started"
    notebook = tmp_path / "sleeper.qmd"
    notebook.write_text(SLEEPER % str(marker))
    results = tmp_path / "results"
    script = textwrap.dedent(f"""
        from robustreach.batch.execute import ensure_kernel, execute_run
        from robustreach.batch.runs import RunSpec
        ensure_kernel()
        execute_run(RunSpec(notebook="sleeper.qmd", notebook_path={str(notebook)!r}, parameters={{}},
                            hash="ab" * 32, results={str(results)!r}, part="demo"))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib")}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not marker.exists():
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() is not None else "slow"
        time.sleep(0.2)
    assert list((results / "runs" / "sleeper").glob(".*.tmp-*"))  # the run is under way in its temp folder
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert list((results / "runs" / "sleeper").iterdir()) == []


def test_gc_removes_run_folders_left_by_kill_9_only(tmp_path):
    store = ResultsStore(tmp_path / "results")
    store.insert("runs", {"hash": "cd" * 32})
    stem = store.root / "runs" / "train"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    left = stem / f".{'ab' * 6}.tmp-{host}-{dead.pid}-0123abcd"
    live = stem / f".{'ab' * 6}.tmp-{host}-{os.getpid()}-4567abcd"
    foreign = stem / f".{'ab' * 6}.tmp-elsewhere-{dead.pid}-89abcdef"  # another host: kept for a day
    for folder in (left, live, foreign):
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "train.log").write_text("x")
    assert store.gc(min_age_s=0).orphan_files == [left.relative_to(store.root).as_posix()]
    store.gc("delete", min_age_s=0)
    assert not left.exists() and live.exists() and foreign.exists()


# 8. Smaller lies ------------------------------------------------------------------------------------
def _strict(text):
    def refuse(token):
        raise ValueError(f"non-JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_nan_is_never_written_as_json(tmp_path):
    results = tmp_path / "results"
    store = ResultsStore(results)
    saved = _save_two(store)
    store.insert("runs", {"hash": "ef" * 32, "metrics": {"nan": float("nan"), "inf": [float("-inf"), 1.5]}})
    store.export()
    for path in [results / "index.json", *results.rglob("*.json"), *results.joinpath("db-csv").glob("*.csv")]:
        assert "NaN" not in path.read_text() and "Infinity" not in path.read_text(), path
    _strict((results / "index.json").read_text())
    header = (results / saved[0]["files"]["model"]).read_bytes().split(b"\n", 1)[0]
    assert _strict(header)["record"]["best"] == [None, 1.0]
    listed = invoke("db", "ls", "runs", "-f", "json", "--results", results)
    assert _strict(listed.stdout)[0]["metrics"] == {"nan": None, "inf": [None, 1.5]}
    assert np.isnan(store.load_side_file(saved[0], "history")["validation"][1])  # float arrays: null -> NaN

    # an index written by an older version, with NaN tokens, is still read, and listed strictly
    (results / "index.json").write_text('{"runs": {"1": {"hash": "%s", "x": NaN}}}' % ("12" * 32))
    assert np.isnan(store.find("runs")[0]["x"])
    assert _strict(invoke("db", "ls", "runs", "-f", "json", "--results", results).stdout)[0]["x"] is None


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.json", "figures/link/passwd"])
def test_restore_rejects_paths_outside_results(tmp_path, path):
    results = tmp_path / "results"
    store = ResultsStore(results)
    (results / "figures").mkdir(parents=True)
    (results / "figures" / "link").symlink_to("/etc")
    store.insert("figures", {"hash": "ab" * 32, "files": {"json": "figures/a.json"}})
    store.export()
    csv_path = results / "db-csv" / "figures.csv"
    csv_path.write_text(csv_path.read_text().replace('"figures/a.json"', json.dumps(path)))
    before = (results / "index.json").read_bytes()
    out = invoke("db", "restore", "--results", results)
    assert out.exit_code == 1 and path in out.stderr and "figures.csv" in out.stderr
    assert (results / "index.json").read_bytes() == before


def test_read_only_commands_fail_without_an_index_and_create_nothing(tmp_path):
    missing = tmp_path / "nowhere"
    for args in (["db", "ls", "models"], ["db", "gc"], ["db", "show", "abc"], ["figures", "get"], ["db", "varying", "runs"]):
        out = invoke(*args, "--results", missing)
        assert out.exit_code == 1 and "no results folder" in out.stderr, (args, out.output)
    assert not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    out = invoke("db", "gc", "--results", empty)
    assert out.exit_code == 1 and "no index" in out.stderr
    assert list(empty.iterdir()) == []
