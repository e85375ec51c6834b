"""The perturbation interface and its registry.

A perturbation is a force at the hand, computed each step from the hand's state (and, for
some, the trial's start and target). An instance holds the per-trial parameters as array
leaves: batched along the trials' leading axis inside `Trials`, one trial inside the rollout.
Each kind knows how to make those parameters:

- `draw(key, amplitude, start, target)` for training: from a key and a signed amplitude per
  trial (`std * N(0, 1)`, zero on unperturbed trials; `training_amplitude` draws it, or the
  task does when a context input needs the same draw);
- `fixed(amplitude, start, target)` for evaluation: every trial at one amplitude.

Settings that are not drawn (a viscous field's matrix, a channel's stiffness) are keyword
arguments of both, with their defaults in the kind's own file. A new kind is one file in this
package with a class decorated by `@register`; the package imports every module it holds.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar, Self

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

REGISTRY: dict[str, type["AbstractPerturbation"]] = {}


def register(cls: type["AbstractPerturbation"]) -> type["AbstractPerturbation"]:
    """Class decorator: make a perturbation kind available under its `name`."""
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ValueError(f"perturbation name {cls.name!r} is already registered by {REGISTRY[cls.name].__qualname__}")
    REGISTRY[cls.name] = cls
    return cls


def perturbation_kind(name: str) -> type["AbstractPerturbation"]:
    """The registered class called `name`, or an error listing the known names."""
    if name not in REGISTRY:
        raise ValueError(f"unknown perturbation {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


class AbstractPerturbation(eqx.Module):
    """A force at the hand with per-trial parameters (see the module docstring)."""

    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def draw(
        cls,
        key: PRNGKeyArray,
        amplitude: Float[Array, " trials"],
        start: Float[Array, "trials 2"],
        target: Float[Array, "trials 2"],
        **settings,
    ) -> Self:
        """Training trials: parameters from `key` and a signed amplitude per trial (zero: unperturbed)."""

    @classmethod
    @abstractmethod
    def fixed(
        cls, amplitude: float, start: Float[Array, "trials 2"], target: Float[Array, "trials 2"], **settings
    ) -> Self:
        """Evaluation trials: every trial at this amplitude."""

    @abstractmethod
    def force(
        self, pos: Float[Array, "2"], vel: Float[Array, "2"], start: Float[Array, "2"], target: Float[Array, "2"]
    ) -> Float[Array, "2"]:
        """The force on the hand of one trial, given the hand's position and velocity."""


def training_amplitude(
    key: PRNGKeyArray, n_trials: int, std: Float[Array, ""] | float, p_perturbed: Float[Array, ""] | float
) -> tuple[Float[Array, " trials"], Bool[Array, " trials"]]:
    """Per-trial amplitude `std * N(0, 1)` on a fraction `p_perturbed` of trials (zero elsewhere)."""
    perturbed_key, amplitude_key = jax.random.split(key)
    perturbed = jax.random.bernoulli(perturbed_key, p_perturbed, (n_trials,))
    amplitude = std * jax.random.normal(amplitude_key, (n_trials,))
    return jnp.where(perturbed, amplitude, 0.0), perturbed


def total_force(
    perturbations: tuple[AbstractPerturbation, ...],
    pos: Float[Array, "2"],
    vel: Float[Array, "2"],
    start: Float[Array, "2"],
    target: Float[Array, "2"],
) -> Float[Array, "2"]:
    """Sum of the forces of several perturbations acting together (zero for none)."""
    return sum((p.force(pos, vel, start, target) for p in perturbations), jnp.zeros(2))


def per_trial(amplitude: float | Float[Array, "..."], start: Float[Array, "trials 2"]) -> Float[Array, " trials"]:
    """`amplitude` as a float array with one entry per trial of `start`."""
    return jnp.broadcast_to(jnp.asarray(amplitude, float), start.shape[:-1])
