"""Shared test helpers: small hyperparameters and models (sizes kept tiny for the CPU)."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import equinox as eqx
import jax.numpy as jnp
import psutil
import pytest
from robustreach.config import load_hyperparameters
from robustreach.model import ReachingModel


def small_hyperparameters(**sections):
    """Hyperparameters at test size (hidden 8, 20 steps) with some sections overridden."""
    base = {
        "controller": {"hidden_size": 8},
        "task": {"n_steps": 20},
        "train": {"n_replicates": 2, "batch_size": 8, "n_batches": 10, "validation_every": 5},
    }
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    return load_hyperparameters(base)


def silent_controller(model: ReachingModel, bias=(0.0, 0.0)) -> ReachingModel:
    """The model with a readout that ignores the hidden state and outputs a constant force."""
    readout = model.controller.readout
    return eqx.tree_at(
        lambda m: (m.controller.readout.weight, m.controller.readout.bias),
        model,
        (jnp.zeros_like(readout.weight), jnp.asarray(bias, float)),
    )


@pytest.fixture
def hp_small():
    return small_hyperparameters()


ROOT = Path(__file__).resolve().parents[1]
# What a clone holds that the demo and its site need (results/ is made by the run).
DEMO_FILES = ("notebooks", "params", "_quarto.yml", "_quarto-demo.yml", "index.qmd", ".gitignore",
              "lib/robustreach/site_assets/quarto_step.py")  # fmt: skip


@pytest.fixture(scope="session")
def demo_project(tmp_path_factory):
    """A copy of the project after the README's `robustreach run demo` (nbconvert site), run
    once for every test module that needs the demo's results (it trains the demo models)."""
    project = tmp_path_factory.mktemp("demo") / "project"
    for name in DEMO_FILES:
        source, target = ROOT / name, project / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target)
    command = [sys.executable, "-m", "robustreach", "run", "demo", "--engine", "nbconvert"]
    start = time.perf_counter()
    returncode, stdout, stderr = run_with_diagnostics(command, project, timeout=1200)
    print(f"robustreach run demo: {time.perf_counter() - start:.0f} s\n{stdout[-2000:]}\n{stderr[-3000:]}")
    assert returncode == 0, stderr[-3000:]
    return project


def run_with_diagnostics(command: list[str], project: Path, timeout: float) -> tuple[int, str, str]:
    """Run `command` in `project`; past `timeout`, fail with what every process was doing.

    On timeout each process of the command (notebook kernels included) dumps its Python
    stacks (faulthandler, on SIGABRT) before the failure shows them with the runs' logs, so a
    run that hangs in CI says where.
    """
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    process = subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
        return process.returncode, stdout, stderr
    except subprocess.TimeoutExpired:
        for child in [*psutil.Process(process.pid).children(recursive=True), psutil.Process(process.pid)]:
            with contextlib.suppress(psutil.Error):
                child.send_signal(signal.SIGABRT)
        time.sleep(2)
        process.kill()
        stdout, stderr = process.communicate()
        logs = "\n".join(f"--- {log}\n{log.read_text(errors='replace')[-4000:]}" for log in sorted(project.glob("results/runs/*/.*tmp*/*.log")))
        pytest.fail(f"{' '.join(command[2:])} still running after {timeout:.0f} s\n--- stderr\n{stderr[-6000:]}\n{logs}")
