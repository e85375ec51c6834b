"""Plants: the controlled bodies, one `AbstractPlant` subclass per file, found by name in `PLANTS`.

- `base`: the interface (`AbstractPlant`), the integrator (`euler_step`) and the registry;
- `point_mass`: the reference point mass (`plant.type: point_mass`);
- `arm`: a two-link arm in the horizontal plane driven by joint torques (`two_link_arm`).

Every module of this package is imported here, so adding a plant is adding one file whose
class is decorated with `@register_plant`.
"""

import importlib
import pkgutil

from robustreach.plants.arm import TwoLinkArm, TwoLinkArmState
from robustreach.plants.base import PLANTS, AbstractPlant, as_float_array, euler_step, register_plant
from robustreach.plants.point_mass import PointMass, PointMassState

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def build_plant(config) -> AbstractPlant:
    """The plant of a `config.PlantConfig` section (`plant.type` and its parameters)."""
    return PLANTS[config.type].from_config(config)


__all__ = [
    "PLANTS",
    "AbstractPlant",
    "PointMass",
    "PointMassState",
    "TwoLinkArm",
    "TwoLinkArmState",
    "as_float_array",
    "build_plant",
    "euler_step",
    "register_plant",
]
