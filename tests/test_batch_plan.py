"""`robustreach batch FILE --plan`: calibrated training estimates for every run, nothing recorded."""

import shutil
import textwrap

import pytest
from batch_helpers import REPO
from robustreach.batch.estimate import estimate_batch, format_duration
from robustreach.batch.runs import plan_runs
from robustreach.cli.main import app
from robustreach.paramfiles import file_models, load_paramfile
from robustreach.store import ResultsStore
from robustreach.train.runner import train_parameter_sets
from typer.testing import CliRunner

# Two sets (curl, constant fields): two training groups of different shape, trained by the
# train runs; the behaviour runs reuse their models.
PARAMS = """
notebooks: [notebooks/part1/train.qmd, notebooks/part1/behaviour.qmd]
base:
  controller: {hidden_size: 4}
  task: {n_steps: 8}
  train: {n_replicates: 2, batch_size: 4, n_batches: 40, constant_lr_batches: 20, validation_every: 10}
grid:
  perturbation.type: [curl, constant]
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "notebooks/part1").mkdir(parents=True)
    for name in ("train.qmd", "behaviour.qmd"):
        shutil.copy(REPO / "notebooks/part1" / name, tmp_path / "notebooks/part1" / name)
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "params").mkdir()
    (tmp_path / "params/small.yml").write_text(textwrap.dedent(PARAMS))
    return tmp_path


def test_plan_estimates_every_run_and_records_nothing(project, monkeypatch):
    monkeypatch.delenv("ROBUSTREACH_COMPILE_CACHE", raising=False)  # later calibrations load the steps
    paramfile, results = project / "params/small.yml", project / "results"
    result = CliRunner().invoke(app, ["batch", str(paramfile), "--plan", "--results", str(results)])
    assert result.exit_code == 0, result.output
    planned = plan_runs(load_paramfile(paramfile), results)
    assert len(planned) == 4
    for spec in planned:
        assert f"run {spec.hash[:12]}" in result.output
    assert "total:" in result.output

    store = ResultsStore(results)
    assert store.find("models") == [] and store.find("runs") == []
    assert not (results / "models").exists() or not any((results / "models").iterdir())

    estimate = estimate_batch(paramfile, results=results, calibration_batches=2)
    assert [run.hash for run in estimate.runs] == [spec.hash for spec in planned]
    trains = [run for run in estimate.runs if run.notebook.endswith("train.qmd")]
    analyses = [run for run in estimate.runs if run.notebook.endswith("behaviour.qmd")]
    # The models a train run's kernel will train (those `robustreach train` lists for its set;
    # the behaviour run of the same set looks up the same ones).
    models = file_models(load_paramfile(paramfile))
    n_models = [sum(index in m.sets for m in models) for index in range(2)]  # sets: curl, then constant
    assert [run.n_models for run in trains] == n_models and all(n > 0 for n in n_models)
    assert all(run.training_s > 0 for run in trains)
    assert [run.n_models for run in analyses] == [0, 0]  # their models are paid by the train runs
    assert len(estimate.groups) == 2
    for group in estimate.groups:
        assert group.s_per_batch > 0 and group.compile_s >= 0
    assert estimate.total_s == pytest.approx(sum(g.compile_s + 40 * g.s_per_batch for g in estimate.groups))

    # A model already in the index costs nothing: train the curl set's, then plan again.
    curl_set = next(s for s in planned if s.notebook.endswith("train.qmd")
                    and s.parameters["hyperparameters"]["perturbation"]["type"] == "curl")
    train_parameter_sets([m.hyperparameters.to_dict() for m in models if 0 in m.sets], ResultsStore(results), progress=False)
    again = estimate_batch(paramfile, results=results, calibration_batches=2)
    by_hash = {run.hash: run for run in again.runs}
    assert by_hash[curl_set.hash].n_models == 0 and by_hash[curl_set.hash].training_s == 0
    others = [run for run in again.runs if run.notebook.endswith("train.qmd") and run.hash != curl_set.hash]
    assert [run.n_models for run in others] == [n_models[1]] and others[0].training_s > 0


def test_format_duration():
    assert format_duration(3725) == "1 h 02 min"
    assert format_duration(185) == "3 min 05 s"
    assert format_duration(12.4) == "12 s"
