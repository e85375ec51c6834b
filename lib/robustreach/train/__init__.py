"""Ensemble training of reaching controllers (see `trainer.train_conditions`)."""

from robustreach.train.conditions import group_conditions
from robustreach.train.trainer import TrainedCondition, TrainingResult, train_conditions

__all__ = ["TrainedCondition", "TrainingResult", "group_conditions", "train_conditions"]
