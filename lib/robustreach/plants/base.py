"""The plant interface: what a controlled body must provide to the closed loop.

A plant is an `eqx.Module` whose numeric parameters (masses, lengths, damping, `dt`) are
array leaves, so that a study can `vmap` over them without recompiling; only structure
(which variables are observed) is static. `dt` is a leaf too: array shapes depend on the
number of steps, not on `dt`, so a new `dt` needs no recompilation. Its state is itself a
module (a PyTree).

The physics (`vector_field`) is kept apart from the integrator (`euler_step`), as in
Diffrax: `step` applies one explicit Euler update, in which every state variable advances
with the derivative at the *old* state (positions move with the old velocity), the
semantics of feedbax and of `robustreach.plant.PointMass`.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Callable, ClassVar, Generic, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PyTree

from robustreach.registry import registrar

StateT = TypeVar("StateT", bound=PyTree)
PLANTS: dict[str, type["AbstractPlant"]] = {}
register_plant = registrar(PLANTS, "plant")  # class decorator: `plant.type: <its name>` selects it


def as_float_array(value) -> Float[Array, "..."]:
    """Converter for numeric parameters: an array leaf of the default float type."""
    return jnp.asarray(value, dtype=float)


def euler_step(
    vector_field: Callable[[StateT], StateT], state: StateT, dt: Float[Array, ""]
) -> StateT:
    """One explicit Euler step, `y' = y + dt * f(y)`, leaf by leaf over the state PyTree."""
    derivative = vector_field(state)
    return jax.tree.map(lambda y, dy: y + dt * dy, state, derivative)


class AbstractPlant(eqx.Module, Generic[StateT]):
    """A controlled body moving a hand (effector) in the plane.

    Subclasses implement the physics and the views of the state that the loop needs:

    ```python
    state = plant.initial_state(start_pos, jnp.zeros(2))
    for control in controls:                       # what the controller outputs
        hand_pos, hand_vel = plant.effector(state)
        hand_force = perturbation.force(hand_pos, hand_vel, start_pos, target_pos)
        state = plant.step(state, control, hand_force)
    feedback = plant.observation(state)            # what the feedback channel reads
    ```
    """

    name: ClassVar[str]
    dt: eqx.AbstractVar[Float[Array, ""]]

    @classmethod
    @abstractmethod
    def from_config(cls, config) -> "AbstractPlant":
        """The plant described by a `config.PlantConfig` section."""

    @classmethod
    def workspace_problem(cls, workspace: list[list[float]]) -> str | None:
        """Why the hand cannot reach the whole workspace `[[x_min, y_min], [x_max, y_max]]`
        (None: it can). Checked when hyperparameters are validated."""
        return None

    @abstractmethod
    def initial_state(self, effector_pos: Float[Array, "2"], effector_vel: Float[Array, "2"]) -> StateT:
        """The state whose hand is at `effector_pos` moving with `effector_vel`."""

    @abstractmethod
    def vector_field(
        self, state: StateT, control: Float[Array, " n_controls"], hand_force: Float[Array, "2"]
    ) -> StateT:
        """Time derivative of the state under the controller's output and an external force at the hand."""

    @abstractmethod
    def effector(self, state: StateT) -> tuple[Float[Array, "2"], Float[Array, "2"]]:
        """Position and velocity of the hand: what tasks, loss, measures and figures use."""

    @abstractmethod
    def observation(self, state: StateT) -> Float[Array, " n_observed"]:
        """What the feedback channel reads, in the order of `observation_labels`."""

    @property
    @abstractmethod
    def observation_labels(self) -> tuple[str, ...]:
        """Names of the observed variables (e.g. `pos_x`), one per entry of `observation`."""

    @property
    @abstractmethod
    def n_controls(self) -> int:
        """Size of the controller's output that drives the plant (forces or torques)."""

    @property
    def n_observed(self) -> int:
        """Size of `observation`, from which the network's input size follows."""
        return len(self.observation_labels)

    def step(self, state: StateT, control: Float[Array, " n_controls"], hand_force: Float[Array, "2"]) -> StateT:
        """Advance one time step `dt` with explicit Euler, inputs held over the step."""
        return euler_step(lambda y: self.vector_field(y, control, hand_force), state, self.dt)
