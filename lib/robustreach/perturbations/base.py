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

import inspect
from abc import abstractmethod
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from robustreach.registry import registrar

REGISTRY: dict[str, type["AbstractPerturbation"]] = {}
register = registrar(REGISTRY, "perturbation")  # class decorator: the kind is found by its `name`


def perturbation_kind(name: str) -> type["AbstractPerturbation"]:
    """The registered class called `name`, or an error listing the known names."""
    if name not in REGISTRY:
        raise ValueError(f"unknown perturbation {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def settings_of(kind: type["AbstractPerturbation"]) -> dict[str, Any]:
    """The kind's settings (keyword-only arguments of `fixed`) with their defaults."""
    parameters = inspect.signature(kind.fixed).parameters.values()
    return {p.name: p.default for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}


def check_settings(name: str, settings: dict[str, Any]) -> None:
    """Raise a `ValueError` naming the problem if `settings` do not suit the kind called `name`.

    Unknown names are listed with the kind's own; values are checked by building one trial.
    "none" (no perturbation) takes no settings.
    """
    if name == "none":
        if settings:
            raise ValueError(f"settings {sorted(settings)} need a perturbation, not 'none'")
        return
    kind = perturbation_kind(name)
    known = settings_of(kind)
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise ValueError(f"perturbation {name!r} has no setting(s) {unknown}; its settings: {sorted(known) or 'none'}")
    try:
        kind.fixed(1.0, jnp.zeros((1, 2)), jnp.ones((1, 2)), **settings)
    except (TypeError, ValueError) as error:
        raise ValueError(f"perturbation {name!r}: invalid settings {settings}: {error}") from None


def static_settings(settings: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Settings as a hashable, sorted tuple (nested lists become tuples), for static fields."""
    freeze = lambda v: tuple(freeze(x) for x in v) if isinstance(v, (list, tuple)) else v
    return tuple(sorted((key, freeze(value)) for key, value in settings.items()))


class AbstractPerturbation(eqx.Module):
    """A force at the hand with per-trial parameters (see the module docstring).

    `test_amplitudes` are the amplitudes the behaviour notebooks test by default
    (`options.EvaluationOptions`), in the kind's own units.
    """

    name: ClassVar[str]
    test_amplitudes: ClassVar[tuple[float, ...]]

    @classmethod
    @abstractmethod
    def draw(
        cls,
        key: PRNGKeyArray,
        amplitude: Float[Array, " trials"],
        start: Float[Array, "trials 2"],
        target: Float[Array, "trials 2"],
        **settings,
    ) -> "AbstractPerturbation":
        """Training trials: parameters from `key` and a signed amplitude per trial (zero: unperturbed)."""

    @classmethod
    @abstractmethod
    def fixed(
        cls, amplitude: float, start: Float[Array, "trials 2"], target: Float[Array, "trials 2"], **settings
    ) -> "AbstractPerturbation":
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
