"""Training schedules as pure functions of the batch index (traceable inside the step).

- learning rate: constant for `constant_lr_batches`, then cosine-annealed to `alpha * lr`;
- perturbation scale: 0 during pre-training, then a linear or raised-cosine ramp to 1,
  `0.5 * (1 - cos(pi * min(max(i - start, 0) / n, 1)))`;
- snapshot batches: geometrically spaced (dense early, sparse later), always the last batch.
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int

from robustreach.config import TrainConfig

Schedule = Callable[[Int[Array, ""]], Float[Array, ""]]


def learning_rate_schedule(config: TrainConfig) -> Schedule:
    """Constant learning rate, then cosine annealing to `cosine_alpha * learning_rate`."""
    constant = optax.constant_schedule(config.learning_rate)
    if config.constant_lr_batches is None or config.constant_lr_batches >= config.n_batches:
        return constant
    cosine = optax.cosine_decay_schedule(
        config.learning_rate, config.n_batches - config.constant_lr_batches, alpha=config.cosine_alpha
    )
    return optax.join_schedules([constant, cosine], [config.constant_lr_batches])


def perturbation_scale_schedule(config: TrainConfig) -> Schedule:
    """0 before `pretrain_batches`, then a ramp over `ramp_batches` (instant if 0), then 1."""
    start, length = config.pretrain_batches, config.ramp_batches

    def scale(batch: Int[Array, ""]) -> Float[Array, ""]:
        if length == 0:
            return jnp.where(batch >= start, 1.0, 0.0)
        progress = jnp.clip((batch - start) / length, 0.0, 1.0)
        if config.ramp_shape == "cosine":
            return 0.5 * (1.0 - jnp.cos(jnp.pi * progress))
        return progress

    return scale


def snapshot_batches(config: TrainConfig) -> np.ndarray:
    """Batch indices (0-based, after that batch's update) at which parameters are kept."""
    spaced = np.unique(np.round(np.geomspace(1, config.n_batches, config.n_snapshots)).astype(int)) - 1
    return np.unique(np.append(spaced, config.n_batches - 1))


def validation_batches(config: TrainConfig) -> np.ndarray:
    """Batches after which the validation loss is computed: every `validation_every`-th and
    every snapshot batch (so that the best snapshot can be chosen by validation loss)."""
    regular = np.arange(config.validation_every - 1, config.n_batches, config.validation_every)
    return np.union1d(regular, snapshot_batches(config))
