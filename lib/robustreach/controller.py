"""The controller: a recurrent cell (GRU or leaky tanh) with a linear readout to a 2D force.

```python
controller = Controller(n_inputs=9, hidden_size=50, key=key)
hidden = jnp.zeros(50)
hidden = controller.cell(network_input, hidden)   # F(h, u), the map whose fixed points we study
force = controller.readout(hidden)
```
"""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


class LeakyTanhCell(eqx.Module):
    """Leaky tanh RNN cell: `h' = (1 - leak) * h + leak * tanh(W_ih x + W_hh h + b)`."""

    weight_ih: Float[Array, "hidden input"]
    weight_hh: Float[Array, "hidden hidden"]
    bias: Float[Array, " hidden"]
    leak: float = eqx.field(static=True)
    input_size: int = eqx.field(static=True)
    hidden_size: int = eqx.field(static=True)

    def __init__(self, input_size: int, hidden_size: int, leak: float, *, key: PRNGKeyArray):
        """**Arguments:** input size; hidden size; leak in (0, 1]; PRNG key (keyword-only)."""
        ih_key, hh_key = jax.random.split(key)
        bound = 1.0 / jnp.sqrt(hidden_size)  # same scale as equinox's GRUCell initialisation
        self.weight_ih = jax.random.uniform(ih_key, (hidden_size, input_size), minval=-bound, maxval=bound)
        self.weight_hh = jax.random.uniform(hh_key, (hidden_size, hidden_size), minval=-bound, maxval=bound)
        self.bias = jnp.zeros(hidden_size)
        self.leak = leak
        self.input_size = input_size
        self.hidden_size = hidden_size

    def __call__(self, input: Float[Array, " input"], hidden: Float[Array, " hidden"]) -> Float[Array, " hidden"]:
        drive = jnp.tanh(self.weight_ih @ input + self.weight_hh @ hidden + self.bias)
        return (1.0 - self.leak) * hidden + self.leak * drive


class Controller(eqx.Module):
    """Recurrent cell plus linear readout to the plant's controls; the readout bias starts at zero."""

    cell: eqx.nn.GRUCell | LeakyTanhCell
    readout: eqx.nn.Linear

    def __init__(
        self,
        n_inputs: int,
        hidden_size: int,
        *,
        cell: Literal["gru", "leaky_tanh"] = "gru",
        orthogonal_recurrent_init: bool = False,
        leak: float = 0.1,
        n_outputs: int = 2,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `n_inputs`: size of the network input vector.
        - `hidden_size`: number of recurrent units.
        - `cell`: "gru" (equinox's GRUCell) or "leaky_tanh".
        - `orthogonal_recurrent_init`: draw each recurrent weight block as an orthogonal matrix.
        - `leak`: leak rate of the leaky tanh cell.
        - `n_outputs`: size of the readout, what the plant takes (`plant.n_controls`).
        - `key`: PRNG key for the initialisation (keyword-only).
        """
        cell_key, readout_key, orthogonal_key = jax.random.split(key, 3)
        if cell == "gru":
            recurrent = eqx.nn.GRUCell(n_inputs, hidden_size, key=cell_key)
        elif cell == "leaky_tanh":
            recurrent = LeakyTanhCell(n_inputs, hidden_size, leak, key=cell_key)
        else:
            raise ValueError(f"controller.cell must be 'gru' or 'leaky_tanh', got {cell!r}")
        if orthogonal_recurrent_init:
            n_blocks = recurrent.weight_hh.shape[0] // hidden_size  # 3 gates for the GRU, 1 for tanh
            orthogonal = jax.nn.initializers.orthogonal()
            blocks = [orthogonal(k, (hidden_size, hidden_size)) for k in jax.random.split(orthogonal_key, n_blocks)]
            recurrent = eqx.tree_at(lambda c: c.weight_hh, recurrent, jnp.concatenate(blocks, axis=0))
        readout = eqx.nn.Linear(hidden_size, n_outputs, key=readout_key)
        self.cell = recurrent
        self.readout = eqx.tree_at(lambda r: r.bias, readout, jnp.zeros(n_outputs))

    @property
    def hidden_size(self) -> int:
        return self.cell.hidden_size

    def step(self, hidden: Float[Array, " hidden"], input: Float[Array, " input"]) -> Float[Array, " hidden"]:
        """The recurrent map `F(h, u)` (argument order of the fixed-point finder)."""
        return self.cell(input, hidden)
