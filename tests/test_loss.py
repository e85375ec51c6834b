"""Loss terms against a direct NumPy computation."""

import jax
import jax.numpy as jnp
import numpy as np
from conftest import small_hyperparameters
from robustreach.loss import LossWeights, loss_terms, readout_norm_penalty
from robustreach.model import build_model, simulate
from robustreach.tasks import TrialSpec, training_trials


def test_loss_terms_match_numpy():
    hp = small_hyperparameters(loss={"controller_output": 0.3, "hidden": 0.02, "final_velocity": 2.0})
    model = build_model(hp, jax.random.PRNGKey(0))
    trials = training_trials(TrialSpec.from_hyperparameters(hp), jax.random.PRNGKey(1), 6)
    trajectory = simulate(model, trials, jax.random.PRNGKey(2))
    terms = loss_terms(trajectory, trials, LossWeights.from_config(hp.loss))

    pos, vel = np.asarray(trajectory.pos, np.float64), np.asarray(trajectory.vel, np.float64)
    force, hidden = np.asarray(trajectory.force, np.float64), np.asarray(trajectory.hidden, np.float64)
    target = np.asarray(trials.target_pos, np.float64)
    n = hp.task.n_steps
    discount = np.array([((k + 1) / (n - 1)) ** 6 for k in range(n - 1)])  # 1/(N-1), 2/(N-1), ..., 1
    expected = {"position": 0.0, "final_velocity": 0.0, "controller_output": 0.0, "hidden": 0.0}
    for i in range(6):
        for t in range(1, n):
            expected["position"] += discount[t - 1] * np.sum((pos[i, t] - target[i]) ** 2) / 6
            expected["controller_output"] += 0.3 * np.sum(force[i, t] ** 2) / 6
            expected["hidden"] += 0.02 * np.sum(hidden[i, t] ** 2) / 6
        expected["final_velocity"] += 2.0 * np.sum(vel[i, -1] ** 2) / 6
    for name, value in expected.items():
        np.testing.assert_allclose(terms[name], value, rtol=1e-5)
    np.testing.assert_allclose(terms["total"], sum(expected.values()), rtol=1e-5)


def test_readout_norm_penalty():
    weight = jnp.array([[3.0, 0.0], [0.0, 4.0]])  # Frobenius norm 5
    np.testing.assert_allclose(readout_norm_penalty(weight, 2.0, 0.01), 0.01 * 9.0)
