"""Training conditions that can share one compiled step, as stacked arrays.

Conditions trained together differ only in values that enter the step as arrays
(`BATCHABLE_FIELDS`: perturbation std and fraction, context values, loss weights); every
other hyperparameter (architecture, noise, task timing, training schedule) must be equal.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from robustreach.config import Hyperparameters
from robustreach.loss import LossWeights
from robustreach.store.query import flatten_record
from robustreach.tasks import TrialSpec

BATCHABLE_FIELDS: dict[str, tuple[str, ...]] = {
    "perturbation": ("std", "p_perturbed"),
    "context": ("on_value", "off_value"),
    "loss": (
        "position",
        "final_velocity",
        "controller_output",
        "hidden",
        "readout_norm",
        "readout_norm_target",
        "discount_exponent",
    ),
}


class ConditionArrays(eqx.Module):
    """What differs between conditions, as arrays (stacked along a leading axis for several)."""

    trial_spec: TrialSpec
    loss_weights: LossWeights
    readout_norm_weight: Float[Array, ""]
    readout_norm_target: Float[Array, ""]

    @classmethod
    def from_hyperparameters(cls, hp: Hyperparameters) -> ConditionArrays:
        return cls(
            trial_spec=TrialSpec.from_hyperparameters(hp),
            loss_weights=LossWeights.from_config(hp.loss),
            readout_norm_weight=jnp.asarray(hp.loss.readout_norm, float),
            readout_norm_target=jnp.asarray(hp.loss.readout_norm_target, float),
        )


def shared_part(hp: Hyperparameters) -> dict[str, Any]:
    """The hyperparameters that must agree between conditions trained together."""
    values = hp.to_dict()
    for section, names in BATCHABLE_FIELDS.items():
        for name in names:
            values[section].pop(name)
    return values


def group_conditions(conditions: list[Hyperparameters]) -> list[list[int]]:
    """Indices of conditions grouped so that each group can be trained in one step."""
    groups: dict[str, list[int]] = {}
    for index, hp in enumerate(conditions):
        groups.setdefault(repr(sorted(flatten_record(shared_part(hp)).items())), []).append(index)
    return list(groups.values())


def check_compatible(conditions: list[Hyperparameters]) -> None:
    """Raise naming the first field that differs where conditions must agree."""
    reference = flatten_record(shared_part(conditions[0]))
    for index, hp in enumerate(conditions[1:], start=1):
        other = flatten_record(shared_part(hp))
        for key in sorted(set(reference) | set(other)):
            if reference.get(key) != other.get(key):
                raise ValueError(
                    f"conditions 0 and {index} differ in {key} ({reference.get(key)!r} vs {other.get(key)!r}); "
                    "only perturbation std/p_perturbed, context values and loss weights may differ within one run"
                )


def stack_conditions(conditions: list[Hyperparameters]) -> ConditionArrays:
    """`ConditionArrays` of every condition stacked along a new leading axis."""
    check_compatible(conditions)
    arrays = [ConditionArrays.from_hyperparameters(hp) for hp in conditions]
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *arrays)
