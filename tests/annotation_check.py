"""Run by `test_annotations.py` in a fresh interpreter: the core modules imported under
jaxtyping's import hook (beartype checks every annotated argument and return, shapes
included), then rollouts of both plants under every perturbation kind, with feedback impulses.
Prints one line per checked case and `mismatch caught` when a wrong shape is refused."""

import jaxtyping

CORE = ["robustreach.plants", "robustreach.perturbations", "robustreach.channels", "robustreach.trials",
        "robustreach.tasks", "robustreach.model", "robustreach.controller", "robustreach.loss"]
with jaxtyping.install_import_hook(CORE, "beartype.beartype"):
    import robustreach.controller
    import robustreach.loss
    import robustreach.model
    import robustreach.perturbations
    import robustreach.plants
    import robustreach.tasks  # noqa: F401

import jax
import jax.numpy as jnp
from robustreach.config import load_hyperparameters
from robustreach.loss import LossWeights, loss_terms
from robustreach.model import build_ensemble, build_model, simulate, simulate_replicates, steady_state_input
from robustreach.perturbations import REGISTRY
from robustreach.plants import PLANTS
from robustreach.tasks import TrialSpec, centre_out_trials, training_trials, with_feedback_impulse, with_perturbation
from robustreach.trials import unperturbed_trials

PLANT_SECTIONS = {
    "point_mass": {},
    "two_link_arm": {"plant": {"type": "two_link_arm", "dt": 0.01}, "task": {"workspace": [[-0.15, 0.25], [0.15, 0.55]]}},
}
key = jax.random.PRNGKey(0)
for plant in sorted(PLANTS):
    for kind in sorted(REGISTRY):
        sections = PLANT_SECTIONS[plant]
        hp = load_hyperparameters({
            **sections,
            "controller": {"hidden_size": 8},
            "task": {"n_steps": 12, **sections.get("task", {})},
            "perturbation": {"type": kind, "std": 1.0},
            "context": {"variant": "binary"},
        })
        trials = training_trials(TrialSpec.from_hyperparameters(hp), key, 4)
        simulate_replicates(build_ensemble(hp, key, 2), trials, key)
        model = build_model(hp, key)
        loss_terms(simulate(model, trials, key), trials, LossWeights.from_config(hp.loss))
        test = centre_out_trials(12, hp.task.workspace, n_directions=3, n_context=1)
        test = with_feedback_impulse(with_perturbation(test, kind, 0.5), variable="vel", onset=2, duration=3, amplitude=0.1)
        simulate(model, test, key)
        steady_state_input(model, jnp.asarray(hp.task.workspace[0]) + 0.05, jnp.zeros(1))
        print(f"checked {plant} {kind}")

try:
    unperturbed_trials(jnp.zeros((3, 2)), jnp.zeros((4, 2)), 5)  # "batch 2" twice: 3 != 4
except Exception as error:  # noqa: BLE001 - beartype's violation class is what the hook raises
    print("mismatch caught:", type(error).__name__)
