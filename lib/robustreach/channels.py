"""Feedback and motor channels: delay and noise between plant and controller.

Feedback: a FIFO of `delay` entries, initially `delay` copies of the initial feedback; each
step outputs the oldest entry and appends the newest (`delay = 0` passes through). Gaussian
noise is added after the delay. Motor: `u + std * u * e1 + 1.8 * std * e2` elementwise.

Channels take standard-normal samples rather than keys, so that a rollout draws all of a
trial's noise in one vectorised call before its time loop. Noise levels are array leaves (a
study can `vmap` over them); whether a source is on at all (`noisy`) is static, so that a
silent source costs no random draws.
"""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from robustreach.plants.base import as_float_array


def is_noisy(noise_std: float | Float[Array, ""]) -> bool:
    """Whether a noise source with this std draws samples (decided once, when a model is built)."""
    return bool(jnp.any(jnp.asarray(noise_std) > 0))


class FeedbackChannel(eqx.Module):
    """Delay line plus additive Gaussian noise on what the plant's observation gives."""

    noise_std: Float[Array, ""] = eqx.field(converter=as_float_array)
    delay: int = eqx.field(static=True)
    noisy: bool = eqx.field(static=True)

    def __init__(self, delay: int, noise_std: float | Float[Array, ""]):
        self.delay, self.noise_std, self.noisy = delay, noise_std, is_noisy(noise_std)

    def init_queue(self, initial: Float[Array, " n"]) -> Float[Array, "delay n"]:
        """The FIFO before the first step: `delay` copies of the initial feedback."""
        return jnp.broadcast_to(initial, (self.delay, initial.shape[-1]))

    def __call__(
        self, queue: Float[Array, "delay n"], newest: Float[Array, " n"], standard_noise: Float[Array, " n"]
    ) -> tuple[Float[Array, "delay n"], Float[Array, " n"]]:
        """Push `newest`, pop the oldest, add `noise_std * standard_noise`; returns (queue, output)."""
        if self.delay == 0:
            delayed = newest
        else:
            delayed = queue[0]
            queue = jnp.concatenate([queue[1:], newest[None]], axis=0)
        return queue, delayed + self.noise_std * standard_noise


class MotorChannel(eqx.Module):
    """Signal-dependent plus constant motor noise (feedbax's reference form)."""

    noise_std: Float[Array, ""] = eqx.field(converter=as_float_array)
    noisy: bool = eqx.field(static=True)

    def __init__(self, noise_std: float | Float[Array, ""]):
        self.noise_std, self.noisy = noise_std, is_noisy(noise_std)

    def __call__(
        self, command: Float[Array, " n_controls"], e1: Float[Array, " n_controls"], e2: Float[Array, " n_controls"]
    ) -> Float[Array, " n_controls"]:
        """`e1`, `e2`: independent standard-normal samples."""
        return command + self.noise_std * command * e1 + 1.8 * self.noise_std * e2
