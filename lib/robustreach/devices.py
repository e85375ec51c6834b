"""Every CPU core for training: the host split into several XLA devices, the step sharded over them.

On a CPU, XLA runs the training step's many small operations (the rollout's scan) on little
more than one core. Split into several host devices (`--xla_force_host_platform_device_count`),
a group's conditions (or else its replicates) are sharded over them and train on the cores in
parallel, with the same results up to float32 rounding (`benchmarks/train.py`, path "sharded").

```python
os.environ.update(cpu_device_environment())     # before JAX starts (CLI, notebook kernels)
sharding = training_sharding(n_conditions=4, n_replicates=5)   # None: nothing to shard
```
The flag must be set before JAX starts its CPU backend, so the command line sets it for itself
and for the notebook kernels it starts. `$ROBUSTREACH_CPU_DEVICES` sets the number of devices
(default: the cores this process may use, at most 4); 1 turns the split off.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

ENV_VAR = "ROBUSTREACH_CPU_DEVICES"
FLAG = "--xla_force_host_platform_device_count"
MAX_DEFAULT_DEVICES = 4  # a group has at most a few conditions; more devices would idle


def cpu_device_count() -> int:
    """How many host devices to ask for: `$ROBUSTREACH_CPU_DEVICES`, else the usable cores (at most 4)."""
    value = os.environ.get(ENV_VAR, "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{ENV_VAR} must be a whole number of at least 1, got {value!r}")
        return int(value)
    return max(1, min(len(os.sched_getaffinity(0)), MAX_DEFAULT_DEVICES))


def cpu_device_environment() -> dict[str, str]:
    """`XLA_FLAGS` splitting the host into `cpu_device_count()` devices; empty when one device
    is asked for or the flag is already set (a user's own choice wins)."""
    flags = os.environ.get("XLA_FLAGS", "")
    count = cpu_device_count()
    if FLAG in flags or count == 1:
        return {}
    return {"XLA_FLAGS": f"{flags} {FLAG}={count}".strip()}


@dataclass(frozen=True)
class TrainingSharding:
    """Where the trainer's arrays live: `state` for arrays with (condition, replicate, ...)
    leading axes (parameters, optimiser state), `conditions` for (condition, ...) arrays."""

    state: Any  # jax.sharding.NamedSharding
    conditions: Any
    axis: str  # "condition" or "replicate": the axis split over the devices
    n_devices: int


def training_sharding(n_conditions: int, n_replicates: int) -> TrainingSharding | None:
    """How to split a group over this process's CPU devices: over its conditions if their
    number divides evenly, else over its replicates, else not at all (None; also with one
    device, or on a GPU, where one device already runs the whole step)."""
    import jax
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    devices = jax.devices()
    if len(devices) == 1 or devices[0].platform != "cpu":
        return None
    mesh = Mesh(np.array(devices), ("devices",))
    split = PartitionSpec("devices")
    if n_conditions % len(devices) == 0:
        return TrainingSharding(NamedSharding(mesh, split), NamedSharding(mesh, split), "condition", len(devices))
    if n_replicates % len(devices) == 0:
        return TrainingSharding(
            NamedSharding(mesh, PartitionSpec(None, "devices")), NamedSharding(mesh, PartitionSpec()), "replicate", len(devices)
        )
    return None
