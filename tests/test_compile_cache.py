"""The persistent compilation cache: a second process loads the training step, not compiles it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from robustreach.compile_cache import ENV_VAR, compile_cache_dir, compile_cache_environment

LIB = str(Path(__file__).resolve().parents[1] / "lib")

# One training step at test size; JAX's own log names each module found in, or missing
# from, the persistent cache (the counts do not depend on timing).
SCRIPT = """
import json, logging, sys
import jax, jax.numpy as jnp
from robustreach.compile_cache import enable_compile_cache
events = {"hit": [], "miss": []}
class Record(logging.Handler):
    def emit(self, record):
        text = record.getMessage()
        if text.startswith("Persistent compilation cache hit for"):
            events["hit"].append(text.split("'")[1])
        elif text.startswith("PERSISTENT COMPILATION CACHE MISS for"):
            events["miss"].append(text.split("'")[1])
compiler_log = logging.getLogger("jax._src.compiler")
compiler_log.setLevel(logging.DEBUG)
compiler_log.addHandler(Record())
if sys.argv[1] == "library":
    enable_compile_cache(sys.argv[2], min_compile_time_s=0.0)
from robustreach.config import load_hyperparameters
from robustreach.train.trainer import prepare_training
hp = load_hyperparameters({"controller": {"hidden_size": 4}, "task": {"n_steps": 6},
                           "train": {"n_replicates": 2, "batch_size": 4, "n_batches": 2}})
setup = prepare_training([hp])
jax.block_until_ready(setup.run_step(setup.params, setup.opt_state, setup.conditions, jnp.int32(0),
                                     setup.train_key, setup.replicate_ids))
print(json.dumps(events))
"""


def _run(how: str, results: Path, env: dict[str, str]) -> dict[str, list[str]]:
    inherited = {k: v for k, v in os.environ.items() if k != ENV_VAR and not k.startswith("JAX_")}
    environment = {**inherited, "PYTHONPATH": LIB, **env}
    done = subprocess.run([sys.executable, "-c", SCRIPT, how, str(results)], env=environment,
                          capture_output=True, text=True, timeout=600, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_second_process_loads_the_training_step_instead_of_compiling_it(tmp_path):
    # First a notebook kernel (cache set by environment only), then the trainer (library call).
    kernel_env = compile_cache_environment(tmp_path)
    kernel_env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    first = _run("environment", tmp_path, kernel_env)
    assert "jit_StepFunction" in first["miss"] and "jit_StepFunction" not in first["hit"]
    assert any((tmp_path / "jax-cache").iterdir())

    second = _run("library", tmp_path, {})
    assert "jit_StepFunction" in second["hit"] and "jit_StepFunction" not in second["miss"]


def test_cache_folder_follows_results_and_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert compile_cache_dir(tmp_path) == tmp_path / "jax-cache"
    assert compile_cache_environment(tmp_path)["JAX_COMPILATION_CACHE_DIR"] == str((tmp_path / "jax-cache").resolve())
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "elsewhere"))
    assert compile_cache_dir(tmp_path) == tmp_path / "elsewhere"
    for off in ("off", "0", "False"):
        monkeypatch.setenv(ENV_VAR, off)
        assert compile_cache_dir(tmp_path) is None
        assert compile_cache_environment(tmp_path)["JAX_ENABLE_COMPILATION_CACHE"] == "false"


@pytest.mark.parametrize("flag", [True, False])
def test_cli_flag_turns_the_cache_off_for_the_process_and_its_kernels(flag, monkeypatch):
    from robustreach.cli.main import app
    from typer.testing import CliRunner

    monkeypatch.delenv(ENV_VAR, raising=False)
    result = CliRunner().invoke(app, [*(["--no-compile-cache"] if flag else []), "db", "--help"])
    assert result.exit_code == 0, result.output
    assert (os.environ.get(ENV_VAR) == "off") is flag
    monkeypatch.delenv(ENV_VAR, raising=False)
