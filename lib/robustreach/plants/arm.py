"""A two-link arm (shoulder and elbow) moving in the horizontal plane, driven by joint torques.

Equations of motion (no gravity in the horizontal plane), Li & Todorov (2004):
```
M(θ) θ'' + C(θ, θ') + B θ' = τ + J(θ)^T f_hand
M(θ) = [[a1 + 2 a2 cos θ2, a3 + a2 cos θ2],
        [a3 + a2 cos θ2,   a3           ]]
C(θ, θ') = a2 sin θ2 (-θ2' (2 θ1' + θ2'), θ1'^2)
a1 = I1 + I2 + m2 l1^2,   a2 = m2 l1 s2,   a3 = I2
```
`θ1` is the shoulder angle from the x axis, `θ2` the elbow angle relative to the upper arm;
`I1`, `I2` are the segments' moments of inertia about their proximal joints (so `m1` and `s1`
enter only through `I1`). The shoulder is at the origin; the hand is at
`l1 (cos θ1, sin θ1) + l2 (cos(θ1 + θ2), sin(θ1 + θ2))`, and an external force at the hand acts
on the joints through the Jacobian transpose.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from robustreach.plants.base import AbstractPlant, as_float_array, register_plant


class TwoLinkArmState(eqx.Module):
    """Joint angles (shoulder, elbow; radians) and their velocities."""

    angle: Float[Array, "2"]
    d_angle: Float[Array, "2"]


@register_plant
class TwoLinkArm(AbstractPlant[TwoLinkArmState]):
    """Two-link arm with the human-arm parameters of Li & Todorov (2004), as in feedbax and MotorNet.

    The controller's output is the pair of joint torques; the feedback channel observes the
    hand's position and velocity (plus joint angles and velocities with `observe_joints`).
    """

    name = "two_link_arm"

    length: Float[Array, "2"] = eqx.field(converter=as_float_array, default=(0.30, 0.33))  # m
    mass: Float[Array, "2"] = eqx.field(converter=as_float_array, default=(1.4, 1.0))  # kg
    inertia: Float[Array, "2"] = eqx.field(converter=as_float_array, default=(0.025, 0.045))  # kg m^2
    centre_of_mass: Float[Array, "2"] = eqx.field(converter=as_float_array, default=(0.11, 0.16))  # m
    viscosity: Float[Array, "2 2"] = eqx.field(
        converter=as_float_array, default=((0.05, 0.025), (0.025, 0.05))
    )  # kg m^2 / s
    dt: Float[Array, ""] = eqx.field(converter=as_float_array, default=0.01)  # s
    observe_joints: bool = eqx.field(static=True, default=False)

    @classmethod
    def from_config(cls, config) -> TwoLinkArm:
        return cls(dt=config.dt)

    @classmethod
    def workspace_problem(cls, workspace: list[list[float]]) -> str | None:
        # The farthest point of the rectangle from the shoulder is a corner, the nearest the
        # origin clipped into it: both must lie inside the ring the hand reaches.
        (x0, y0), (x1, y1) = workspace
        corners = jnp.array([[x0, y0], [x0, y1], [x1, y0], [x1, y1]], float)
        nearest = jnp.array([[min(max(0.0, x0), x1), min(max(0.0, y0), y1)]])
        arm = cls()
        if bool(arm.reachable(corners).all() and arm.reachable(nearest).all()):
            return None
        l1, l2 = arm.length
        return (f"the hand reaches radii {float(abs(l1 - l2)):.2f} to {float(l1 + l2):.2f} m from the shoulder "
                "at the origin; give a workspace inside that ring, e.g. [[-0.15, 0.25], [0.15, 0.55]]")

    def hand_position(self, angle: Float[Array, "2"]) -> Float[Array, "2"]:
        """Forward kinematics: the hand's position for these joint angles."""
        l1, l2 = self.length
        total = angle[0] + angle[1]
        return jnp.stack([
            l1 * jnp.cos(angle[0]) + l2 * jnp.cos(total),
            l1 * jnp.sin(angle[0]) + l2 * jnp.sin(total),
        ])

    def jacobian(self, angle: Float[Array, "2"]) -> Float[Array, "2 2"]:
        """`d hand_position / d angle`: maps joint velocities to hand velocity."""
        l1, l2 = self.length
        total = angle[0] + angle[1]
        s1, c1, s12, c12 = jnp.sin(angle[0]), jnp.cos(angle[0]), jnp.sin(total), jnp.cos(total)
        return jnp.array([
            [-l1 * s1 - l2 * s12, -l2 * s12],
            [l1 * c1 + l2 * c12, l2 * c12],
        ])

    def mass_matrix(self, angle: Float[Array, "2"]) -> Float[Array, "2 2"]:
        """`M(θ)`: joint-space inertia (kinetic energy is `θ'^T M θ' / 2`)."""
        a1, a2, a3 = self._inertia_constants()
        cos_elbow = jnp.cos(angle[1])
        off_diagonal = a3 + a2 * cos_elbow
        return jnp.array([[a1 + 2 * a2 * cos_elbow, off_diagonal], [off_diagonal, a3]])

    def kinetic_energy(self, state: TwoLinkArmState) -> Float[Array, ""]:
        """`θ'^T M(θ) θ' / 2`."""
        return 0.5 * state.d_angle @ self.mass_matrix(state.angle) @ state.d_angle

    def reachable(self, pos: Float[Array, "*batch 2"]) -> Bool[Array, "*batch"]:
        """Whether the hand can be at `pos` (strictly inside the annulus the arm sweeps)."""
        l1, l2 = self.length
        radius = jnp.linalg.norm(pos, axis=-1)
        return (radius > jnp.abs(l1 - l2)) & (radius < l1 + l2)

    def initial_state(self, effector_pos: Float[Array, "2"], effector_vel: Float[Array, "2"]) -> TwoLinkArmState:
        """Inverse kinematics with the elbow flexed (`0 < θ2 < π`, the right arm's posture)."""
        l1, l2 = self.length
        x, y = effector_pos[0], effector_pos[1]
        cos_elbow = (x**2 + y**2 - l1**2 - l2**2) / (2 * l1 * l2)
        elbow = jnp.arccos(jnp.clip(cos_elbow, -1.0, 1.0))
        shoulder = jnp.arctan2(y, x) - jnp.arctan2(l2 * jnp.sin(elbow), l1 + l2 * jnp.cos(elbow))
        angle = jnp.stack([shoulder, elbow])
        d_angle = _solve_2x2(self.jacobian(angle), jnp.asarray(effector_vel, float))
        return TwoLinkArmState(angle, d_angle)

    def vector_field(
        self, state: TwoLinkArmState, control: Float[Array, "2"], hand_force: Float[Array, "2"]
    ) -> TwoLinkArmState:
        _, a2, _ = self._inertia_constants()
        angle, d_angle = state.angle, state.d_angle
        coriolis = a2 * jnp.sin(angle[1]) * jnp.stack([-d_angle[1] * (2 * d_angle[0] + d_angle[1]), d_angle[0] ** 2])
        torque = control + self.jacobian(angle).T @ hand_force - coriolis - self.viscosity @ d_angle
        dd_angle = _solve_2x2(self.mass_matrix(angle), torque)
        return TwoLinkArmState(d_angle, dd_angle)

    def effector(self, state: TwoLinkArmState) -> tuple[Float[Array, "2"], Float[Array, "2"]]:
        return self.hand_position(state.angle), self.jacobian(state.angle) @ state.d_angle

    def observation(self, state: TwoLinkArmState) -> Float[Array, " n_observed"]:
        pos, vel = self.effector(state)
        parts = [pos, vel] + ([state.angle, state.d_angle] if self.observe_joints else [])
        return jnp.concatenate(parts)

    @property
    def observation_labels(self) -> tuple[str, ...]:
        hand = ("pos_x", "pos_y", "vel_x", "vel_y")
        joints = ("angle_shoulder", "angle_elbow", "d_angle_shoulder", "d_angle_elbow")
        return hand + joints if self.observe_joints else hand

    @property
    def n_controls(self) -> int:
        return 2

    def _inertia_constants(self) -> tuple[Float[Array, ""], Float[Array, ""], Float[Array, ""]]:
        m2, l1, s2 = self.mass[1], self.length[0], self.centre_of_mass[1]
        return self.inertia[0] + self.inertia[1] + m2 * l1**2, m2 * l1 * s2, self.inertia[1]


def _solve_2x2(matrix: Float[Array, "2 2"], rhs: Float[Array, "2"]) -> Float[Array, "2"]:
    """`matrix^-1 rhs` by Cramer's rule: exact for 2x2 and cheaper than a general solve in a scan."""
    (a, b), (c, d) = matrix
    det = a * d - b * c
    return jnp.stack([d * rhs[0] - b * rhs[1], a * rhs[1] - c * rhs[0]]) / det
