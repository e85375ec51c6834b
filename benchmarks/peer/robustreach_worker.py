"""Worker run with this project's interpreter: train robustreach's reference setup (point mass,
GRU hidden 50, 100 steps, batch 250, no perturbation, no checkpoints) for `n_batches` and print
the seconds from the call to the trained model, as one JSON line. The CPU split and the
compilation cache are as `robustreach train` sets them, except that the cache is off (a cold
start, like feedbax's). Usage: python robustreach_worker.py N_REPLICATES N_BATCHES"""

import json
import os
import sys
import time

from robustreach.devices import cpu_device_environment

os.environ.update(cpu_device_environment())  # before JAX starts, as the CLI does

import jax  # noqa: E402
from robustreach.config import load_hyperparameters  # noqa: E402
from robustreach.train import train_conditions  # noqa: E402

n_replicates, n_batches = int(sys.argv[1]), int(sys.argv[2])
hp = load_hyperparameters({
    "controller": {"hidden_size": 50},
    "task": {"n_steps": 100},
    "train": {"n_replicates": n_replicates, "batch_size": 250, "n_batches": n_batches,
              "validation_every": n_batches, "checkpoint_every": 0},
})
start = time.perf_counter()
result = train_conditions([hp], progress=False)
jax.block_until_ready(jax.tree_util.tree_leaves(result.conditions[0].final_model.controller))
seconds = time.perf_counter() - start
print(json.dumps({"library": "robustreach", "jax": jax.__version__, "replicates": n_replicates, "batches": n_batches,
                  "seconds": seconds}))
