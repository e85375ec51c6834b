"""Perturbations: forces at the hand, one kind per file, found by name in `REGISTRY`.

Every module of this package is imported here, so adding a kind is adding one file whose
class is decorated with `@register` (see `base`).
"""

import importlib
import pkgutil

from robustreach.perturbations.base import (
    REGISTRY,
    AbstractPerturbation,
    check_settings,
    perturbation_kind,
    register,
    settings_of,
    static_settings,
    total_force,
    training_amplitude,
)
from robustreach.perturbations.channel import Channel, channel_normal, lateral_component
from robustreach.perturbations.constant import Constant
from robustreach.perturbations.curl import Curl
from robustreach.perturbations.viscous import Viscous

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "REGISTRY",
    "AbstractPerturbation",
    "Channel",
    "Constant",
    "Curl",
    "Viscous",
    "check_settings",
    "channel_normal",
    "lateral_component",
    "perturbation_kind",
    "register",
    "settings_of",
    "static_settings",
    "total_force",
    "training_amplitude",
]
