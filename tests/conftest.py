"""Shared test helpers: small hyperparameters and models (sizes kept tiny for the CPU)."""

import equinox as eqx
import jax.numpy as jnp
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
