"""The batch runner, sequential executor: failure isolation, records, skips, reruns, the CLI.

Each run executes a tiny fixture notebook (no JAX) in a fresh kernel, about a second each.
"""

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from batch_helpers import batch, make_project, report
from robustreach.batch import execute
from robustreach.batch.runs import plan_runs, run_hash
from robustreach.cli.main import app
from robustreach.paramfiles import ParamFileError, load_paramfile
from robustreach.store import ResultsStore
from typer.testing import CliRunner


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path)


def test_failures_are_isolated_recorded_and_summarised(project):
    summary = batch(project)
    assert (len(summary.ok), len(summary.failed), len(summary.skipped)) == (2, 1, 0)
    assert summary.exit_code == 1
    results = project / "results"
    records = ResultsStore(results).find("runs")
    assert sorted((r["hyperparameters"]["cfg"]["n"], r["status"]) for r in records) == [
        (1, "ok"),
        (2, "ok"),
        (3, "failed"),
    ]
    for record in records:
        fail = record["hyperparameters"]["cfg"]["fail"]
        assert record["status"] == ("failed" if fail else "ok")
        executed = results / record["files"]["notebook"]
        assert executed.is_file()  # kept for failed runs too
        assert json.loads((results / record["files"]["parameters"]).read_text()) == record["hyperparameters"]
        log = (results / record["files"]["log"]).read_text()
        assert "REPORT " in log  # the kernel's stdout
        if fail:
            error = record["error"]
            assert (error["ename"], error["evalue"]) == ("RuntimeError", "asked to fail (label batch)")
            nb = nbformat.read(executed, as_version=4)
            failing = nb.cells[error["cell_index"]]
            assert any(o.output_type == "error" for o in failing.outputs)
            assert failing.source.startswith('if cfg["fail"]:')
            assert "RuntimeError: asked to fail" in log
            assert f"cell {error['cell_index']}" in summary.report()
        else:
            assert record["error"] is None
    assert summary.report().count("FAILED") == 1
    # Nothing half-written is left behind: no temporary run directories.
    assert not [p for p in (results / "runs").rglob(".*")]


def test_parameters_arrive_typed_with_the_kernel_environment(project):
    pf = load_paramfile(project / "params/demo.yml", root=project)
    spec = next(s for s in plan_runs(pf, project / "results") if not s.parameters["cfg"]["fail"])
    result = execute.execute_run(spec)
    assert result["status"] == "ok"
    got = report(project / "results" / result["files"]["notebook"])
    assert got["cfg"] == {"n": 1, "scale": 2.0, "label": "batch", "fail": False, "sizes": [1, 2]}
    # scale was written `2` in YAML: the notebook's default is a float, so a float arrives.
    assert got["types"] == {"n": "int", "scale": "float", "label": "str", "fail": "bool", "sizes": "list"}
    assert got["env"] == {
        "ROBUSTREACH_RESULTS": str((project / "results").resolve()),
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        "PLOTLY_RENDERER": "plotly_mimetype+notebook_connected",
    }
    assert got["cwd"] == str(project / "notebooks")  # as Quarto would run it
    # Unix sockets in a folder of the run's own, not TCP ports another process can take
    connection = got["connection"]
    assert connection["transport"] == "ipc" and os.path.isabs(connection["ip"]), connection
    assert not Path(connection["ip"]).parent.exists()  # removed with the run
    assert not list((project / "notebooks").glob("kernel-ipc*"))
    assert got["parent_pid"] == os.getpid()  # sequential: the kernel is this process's child
    executed = nbformat.read(project / "results" / result["files"]["notebook"], as_version=4)
    assert executed.metadata["papermill"]["input_path"] == "notebooks/echo.qmd"
    assert f'subtitle: "Run {spec.hash[:12]} (demo)"' in executed.cells[0].source


def test_run_hash_covers_source_parameters_and_version():
    base = run_hash("src", {"a": {"b": 1}}, "0.1.0")
    assert base == run_hash("src", {"a": {"b": 1.0}}, "0.1.0")  # canonical numbers
    assert (
        len(
            {
                base,
                run_hash("src2", {"a": {"b": 1}}, "0.1.0"),
                run_hash("src", {"a": {"b": 2}}, "0.1.0"),
                run_hash("src", {"a": {"b": 1}}, "0.2.0"),
            }
        )
        == 4
    )


def test_invalid_parameter_file_fails_before_any_run(project):
    params = project / "params/demo.yml"
    params.write_text(params.read_text().replace("cfg.n:", "cfg.nn:"))
    with pytest.raises(ParamFileError, match="cfg.nn"):
        batch(project)
    assert not (project / "results").exists()


def test_port_race_is_retried_once(project, monkeypatch):
    pf = load_paramfile(project / "params/demo.yml", root=project)
    spec = next(s for s in plan_runs(pf, project / "results") if not s.parameters["cfg"]["fail"])
    real = execute.papermill.execute_notebook
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("Kernel died before replying to kernel_info: zmq.error.ZMQError: Address already in use")
        return real(*args, **kwargs)

    monkeypatch.setattr(execute.papermill, "execute_notebook", flaky)
    result = execute.execute_run(spec)
    assert (result["status"], len(calls)) == ("ok", 2)
    assert "retrying once" in (project / "results" / result["files"]["log"]).read_text()

    def always(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("Address already in use")

    calls.clear()
    monkeypatch.setattr(execute.papermill, "execute_notebook", always)
    result = execute.execute_run(spec)
    assert (result["status"], len(calls)) == ("failed", 2)
    assert result["error"]["evalue"] == "Address already in use"


def test_cli_batch_exit_codes(project, monkeypatch):
    monkeypatch.chdir(project)
    runner = CliRunner()
    result = runner.invoke(app, ["batch", "params/demo.yml", "--results", "results"])
    assert result.exit_code == 1, result.output
    assert "2 ok, 1 failed, 0 up to date" in result.output
    assert "RuntimeError: asked to fail" in result.output
    result = runner.invoke(app, ["batch", "params/demo.yml", "--allow-failures"])
    assert result.exit_code == 0, result.output
    assert "0 ok, 1 failed, 2 up to date" in result.output
    (project / "params/bad.yml").write_text("notebooks: [notebooks/echo.qmd]\nbase: {cfg.zz: 1}\n")
    result = runner.invoke(app, ["batch", "params/bad.yml"])
    assert result.exit_code == 2
    assert "bad.yml" in result.output and "cfg.zz" in result.output


def _kernelspec(share: Path, name: str, python: str) -> None:
    spec = share / "jupyter/kernels" / name
    spec.mkdir(parents=True)
    argv = [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": name, "language": "python"}))


def test_ensure_kernel_installs_a_spec_for_this_python(tmp_path, monkeypatch):
    first, later = tmp_path / "first/share", tmp_path / "later/share"
    monkeypatch.setenv("JUPYTER_PATH", f"{first}/jupyter:{later}/jupyter")
    _kernelspec(later, "rr-test", "/usr/bin/some-other-python")
    execute.ensure_kernel("rr-test", prefix=tmp_path / "first")
    installed = json.loads((first / "jupyter/kernels/rr-test/kernel.json").read_text())
    assert Path(installed["argv"][0]).resolve() == Path(sys.executable).resolve()

    # A foreign spec earlier on the path than where we may install: a clear error.
    _kernelspec(first, "rr-shadow", "/usr/bin/some-other-python")
    with pytest.raises(RuntimeError, match="rr-shadow.*shadowed"):
        execute.ensure_kernel("rr-shadow", prefix=tmp_path / "elsewhere")
    # A spec that says `python` runs this interpreter (jupyter_client substitutes it).
    _kernelspec(later, "rr-plain", "python")
    execute.ensure_kernel("rr-plain", prefix=tmp_path / "unused")
    assert not (tmp_path / "unused").exists()


def test_interrupted_run_leaves_nothing_behind(project, monkeypatch):
    pf = load_paramfile(project / "params/demo.yml", root=project)
    spec = plan_runs(pf, project / "results")[0]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(execute.papermill, "execute_notebook", interrupted)
    with pytest.raises(KeyboardInterrupt):
        execute.execute_run(spec)
    assert list((project / "results/runs/echo").iterdir()) == []
