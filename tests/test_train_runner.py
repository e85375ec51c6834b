"""`robustreach train PARAMS.yml`: every condition of every set trained, then skipped."""

from pathlib import Path

from typer.testing import CliRunner

from robustreach.cli.main import app
from robustreach.store import ResultsStore

ROOT = Path(__file__).resolve().parents[1]
PARAMS = """
notebooks: [notebooks/part1/train.qmd]
base:
  controller: {hidden_size: 4}
  task: {n_steps: 8}
  train: {n_replicates: 2, batch_size: 4, n_batches: 3, validation_every: 3, n_snapshots: 2}
  conditions.perturbation.std: [0.0, 1.0]
grid:
  feedback.delay: [0, 1]
"""


def test_train_cli_trains_each_condition_once(tmp_path):
    params = ROOT / "params" / f"_test_{tmp_path.name}.yml"  # notebooks resolve from the repository
    params.write_text(PARAMS)
    results = tmp_path / "results"
    runner = CliRunner()
    try:
        first = runner.invoke(app, ["train", str(params), "--results", str(results)])
        assert first.exit_code == 0, first.output
        models = ResultsStore(results).find("models")
        # 2 feedback delays x 2 training stds, each an ensemble of 2 replicates
        combos = {(m["hyperparameters"]["feedback"]["delay"], m["hyperparameters"]["perturbation"]["std"]) for m in models}
        assert combos == {(0, 0.0), (0, 1.0), (1, 0.0), (1, 1.0)}
        assert all(m["status"] == "ok" and len(m["best_batch"]) == 2 for m in models)

        again = runner.invoke(app, ["train", str(params), "--results", str(results)])
        assert again.exit_code == 0 and "0 trained, 4 skipped, 0 failed" in again.output
        forced = runner.invoke(app, ["train", str(params), "--results", str(results), "--force"])
        assert forced.exit_code == 0 and "4 trained, 0 skipped" in forced.output
    finally:
        params.unlink()


def test_train_cli_rejects_invalid_values_naming_the_field(tmp_path):
    params = ROOT / "params" / f"_test_{tmp_path.name}.yml"
    params.write_text(PARAMS.replace("n_steps: 8", "n_steps: 1"))
    try:
        result = CliRunner().invoke(app, ["train", str(params), "--results", str(tmp_path / "results")])
        assert result.exit_code == 2
        assert "task.n_steps" in result.output and params.name in result.output
        assert not (tmp_path / "results" / "models").exists()
    finally:
        params.unlink()
