"""The ensemble trainer: one compilation, schedules applied, loop agreement, resets, NaN, resume."""

import equinox as eqx
import jax
import numpy as np
import pytest
from conftest import small_hyperparameters
from robustreach.loss import readout_norm_penalty
from robustreach.model import build_ensemble
from robustreach.train import train_conditions


def tiny(n_batches=12, **train):
    return {
        "controller": {"hidden_size": 6},
        "task": {"n_steps": 12},
        "perturbation": {"type": "curl", "std": 1.0},
        "train": {"n_replicates": 2, "batch_size": 4, "n_batches": n_batches, "validation_every": 4, "n_snapshots": 4, **train},
    }


def leaves(model):
    """The trained arrays (the controller's), each with its leading replicate axis."""
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(eqx.filter(model.controller, eqx.is_array))]


@pytest.fixture(scope="module")
def schedule_run():
    """One run crossing pre-training end, a ramp, an optimiser reset and the cosine start."""
    train = {"pretrain_batches": 3, "ramp_batches": 4, "opt_reset_batches": [8], "constant_lr_batches": 9}
    conditions = [small_hyperparameters(**tiny(**train)), small_hyperparameters(**{**tiny(**train), "perturbation": {"type": "curl", "std": 0.5}})]
    return conditions, train_conditions(conditions, progress=False)


def test_one_compilation_across_every_schedule_boundary(schedule_run):
    _, result = schedule_run
    assert result.n_batches_run == 12
    assert result.compilations == {"train_step": 1, "validation": 1}


def test_history_records_applied_schedule_and_nan_for_missing_validation(schedule_run):
    _, result = schedule_run
    history = result.conditions[0].history
    np.testing.assert_allclose(history["perturbation_scale"], [0, 0, 0, 0, 0.25, 0.5, 0.75, 1, 1, 1, 1, 1])
    np.testing.assert_allclose(history["learning_rate"][:9], 0.01)
    assert np.all(np.diff(history["learning_rate"][9:]) < 0)
    validation = history["validation/total"]
    computed = ~np.isnan(validation[:, 0])
    # every 4th batch (3, 7, 11) and the snapshots round(geomspace(1, 12, 4)) - 1 = 0, 1, 4, 11
    assert np.flatnonzero(computed).tolist() == [0, 1, 3, 4, 7, 11]
    assert history["loss/total"].shape == (12, 2) and np.all(np.isfinite(history["loss/total"]))
    best = history["best_batch"]
    for r in range(2):
        assert validation[best[r], r] == np.nanmin(validation[history["snapshot_batches"], r])


def test_vmapped_step_matches_the_python_loop_reference():
    conditions = [small_hyperparameters(**tiny(n_batches=3)), small_hyperparameters(**{**tiny(n_batches=3), "perturbation": {"type": "curl", "std": 0.3}})]
    vmapped = train_conditions(conditions, progress=False)
    looped = train_conditions(conditions, method="loop", progress=False)
    for c in range(2):
        for a, b in zip(leaves(vmapped.conditions[c].final_model), leaves(looped.conditions[c].final_model)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert looped.compilations["train_step"] == 1


def test_optimizer_reset_restarts_adam():
    # Adam's first update after a reset is lr * g / (|g| + eps): every weight moves by ~lr.
    before = train_conditions([small_hyperparameters(**tiny(n_batches=6, opt_reset_batches=[]))], progress=False)
    with_reset = train_conditions([small_hyperparameters(**tiny(n_batches=7, opt_reset_batches=[6]))], progress=False)
    without = train_conditions([small_hyperparameters(**tiny(n_batches=7, opt_reset_batches=[]))], progress=False)
    step = lambda after: np.concatenate([np.abs(a - b).ravel() for a, b in zip(leaves(after.conditions[0].final_model), leaves(before.conditions[0].final_model))])
    reset_step, plain_step = step(with_reset) / 0.01, step(without) / 0.01
    assert np.median(reset_step) > 0.99 and reset_step.max() < 1.0 + 1e-4
    assert np.median(plain_step) < 0.9


def test_parameters_frozen_until_their_start_batch():
    hp = small_hyperparameters(**tiny(n_batches=3, train_from={"readout": 3}))
    result = train_conditions([hp], progress=False)
    initial = build_ensemble(hp, jax.random.split(jax.random.PRNGKey(0), 3)[0])
    final = result.conditions[0].final_model
    np.testing.assert_array_equal(final.controller.readout.weight, initial.controller.readout.weight)
    assert not np.allclose(final.controller.cell.weight_hh, initial.controller.cell.weight_hh)


def test_custom_training_loss_adds_readout_norm_but_validation_is_task_loss():
    hp = small_hyperparameters(**{**tiny(n_batches=2), "loss": {"readout_norm": 0.5, "readout_norm_target": 2.0}})
    result = train_conditions([hp], progress=False)
    history = result.conditions[0].history
    initial = build_ensemble(hp, jax.random.split(jax.random.PRNGKey(0), 3)[0])
    penalty = jax.vmap(lambda w: readout_norm_penalty(w, 2.0, 0.5))(initial.controller.readout.weight)
    np.testing.assert_allclose(history["loss/training"][0] - history["loss/total"][0], penalty, rtol=1e-4)
    plain = train_conditions([small_hyperparameters(**tiny(n_batches=2))], progress=False)
    # validation at batch 0 uses the parameters after the first update; the task loss of the two runs
    # differs only through that update, and neither includes the penalty (which is ~ 0.5 * 1.5^2)
    assert abs(history["validation/total"][0, 0] - plain.conditions[0].history["validation/total"][0, 0]) < 0.1


def test_nan_stops_training_and_keeps_last_finite_parameters():
    # After 3 unperturbed pre-training batches, a curl field of amplitude ~1e30 overflows the plant.
    hp = small_hyperparameters(**{**tiny(n_batches=10, pretrain_batches=3), "perturbation": {"type": "curl", "std": 1e30}})
    result = train_conditions([hp], progress=False)
    assert result.diverged is not None and result.diverged["batch"] == 3
    assert result.n_batches_run == 4
    final = result.conditions[0].final_model
    assert all(np.all(np.isfinite(leaf)) for leaf in leaves(final))
    # the failing replicate keeps its parameters after batch 2: those of a 3-batch unperturbed run
    calm = train_conditions([hp.replace(train={"n_batches": 3, "pretrain_batches": 0}, perturbation={"std": 0.0})], progress=False)
    replicate = result.diverged["replicate"]
    for a, b in zip(leaves(final), leaves(calm.conditions[0].final_model)):
        np.testing.assert_allclose(a[replicate], b[replicate], rtol=1e-6, atol=1e-7)


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("signal", ["ctrl-c", "kill"])
def test_interrupted_run_resumes_to_identical_parameters(tmp_path, signal):
    hp = small_hyperparameters(**tiny(n_batches=10, checkpoint_every=3, opt_reset_batches=[7]))
    reference = train_conditions([hp], progress=False)
    checkpoint = tmp_path / "run.eqx"

    def stop(batch):
        if batch == 6:
            raise KeyboardInterrupt if signal == "ctrl-c" else Interrupt  # kill: no save, last checkpoint at 6 batches
    with pytest.raises(KeyboardInterrupt if signal == "ctrl-c" else Interrupt):
        train_conditions([hp], checkpoint_path=checkpoint, progress=False, on_batch=stop)
    assert checkpoint.exists()
    resumed = train_conditions([hp], checkpoint_path=checkpoint, progress=False)
    for a, b in zip(leaves(reference.conditions[0].final_model), leaves(resumed.conditions[0].final_model)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(reference.conditions[0].history["loss/total"], resumed.conditions[0].history["loss/total"])
