"""Hyperparameter validation and JSON round trip."""

import json

import pytest
from robustreach.config import ConfigError, Hyperparameters, load_hyperparameters
from robustreach.model import network_input_size


def test_defaults_are_the_reference_values_and_round_trip_through_json():
    hp = load_hyperparameters()
    assert (hp.plant.mass, hp.plant.dt, hp.task.n_steps, hp.controller.hidden_size) == (1.0, 0.05, 100, 50)
    assert network_input_size(hp) == 8
    again = load_hyperparameters(json.loads(json.dumps(hp.to_dict())))
    assert again == hp


@pytest.mark.parametrize(
    "values, field",
    [
        ({"plant": {"dt": -0.01}}, "plant.dt"),
        ({"perturbation": {"type": "gravity"}}, "perturbation.type"),
        ({"task": {"workspace": [[-1, -1, 0], [1, 1]]}}, "task.workspace"),
        ({"feedback": {"variables": ["pos", "pos"]}}, "feedback.variables"),
        ({"plant": {"mas": 1.0}}, "plant.mas"),
        ({"train": {"n_batches": 100, "opt_reset_batches": [50, 100]}}, "train"),
    ],
)
def test_invalid_values_are_rejected_naming_the_field(values, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_hyperparameters(values, source="params/x.yml")


def test_error_names_the_source_file():
    with pytest.raises(ConfigError, match="params/x.yml"):
        load_hyperparameters({"plant": {"dt": 0}}, source="params/x.yml")


def test_replace_revalidates():
    hp = Hyperparameters()
    assert hp.replace(plant={"dt": 0.01}).plant.dt == 0.01
    with pytest.raises(ConfigError, match="plant.dt"):
        hp.replace(plant={"dt": 0.0})
