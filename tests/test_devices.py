"""The host split into several CPU devices: the environment that asks for it, and training
sharded over the devices against the same training on one device."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import small_hyperparameters
from robustreach.devices import ENV_VAR, FLAG, cpu_device_count, cpu_device_environment
from robustreach.train.trainer import train_conditions

LIB = str(Path(__file__).resolve().parents[1] / "lib")
TESTS = str(Path(__file__).resolve().parent)

SCRIPT = """
import json, sys
import jax
import numpy as np
from conftest import small_hyperparameters
from robustreach.devices import training_sharding
from robustreach.train.trainer import train_conditions

hps = [small_hyperparameters(perturbation={"type": "curl", "std": s}) for s in (0.0, 1.0)]
result = train_conditions(hps, progress=False)
leaves = [np.asarray(x).tolist() for c in result.conditions for x in jax.tree_util.tree_leaves(c.final_model)]
choice = {f"{c}x{r}": getattr(training_sharding(c, r), "axis", None) for c, r in [(4, 5), (2, 5), (1, 4), (1, 5)]}
print(json.dumps({"devices": len(jax.devices()), "choice": choice, "leaves": leaves,
                  "compilations": result.compilations}))
"""


def test_environment_asks_for_the_devices_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.setenv(ENV_VAR, "3")
    assert cpu_device_count() == 3
    assert cpu_device_environment() == {"XLA_FLAGS": f"{FLAG}=3"}
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")  # a user's other flags are kept
    assert cpu_device_environment() == {"XLA_FLAGS": f"--xla_dump_to=/tmp/x {FLAG}=3"}
    monkeypatch.setenv("XLA_FLAGS", f"{FLAG}=2")  # a user's own split wins
    assert cpu_device_environment() == {}
    monkeypatch.delenv("XLA_FLAGS")
    monkeypatch.setenv(ENV_VAR, "1")  # off
    assert cpu_device_environment() == {}
    monkeypatch.delenv(ENV_VAR)
    assert cpu_device_count() == max(1, min(len(os.sched_getaffinity(0)), 4))
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(ENV_VAR, bad)
        with pytest.raises(ValueError, match=ENV_VAR):
            cpu_device_count()


def test_training_sharded_over_two_devices_matches_one_device():
    assert len(jax.devices()) == 1  # this process: one device, the reference
    hps = [small_hyperparameters(perturbation={"type": "curl", "std": s}) for s in (0.0, 1.0)]
    reference = train_conditions(hps, progress=False)
    expected = [np.asarray(x) for c in reference.conditions for x in jax.tree_util.tree_leaves(c.final_model)]

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([LIB, TESTS]), "XLA_FLAGS": f"{FLAG}=2", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    sharded = json.loads(done.stdout.strip().splitlines()[-1])

    assert sharded["devices"] == 2
    # conditions split when they divide evenly, else replicates, else nothing
    assert sharded["choice"] == {"4x5": "condition", "2x5": "condition", "1x4": "replicate", "1x5": None}
    assert sharded["compilations"] == reference.compilations == {"train_step": 1, "validation": 1}
    for got, want in zip(sharded["leaves"], expected, strict=True):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-6)

