"""Plants: the controlled bodies. Each file adds one `AbstractPlant` subclass.

- `base`: the interface (`AbstractPlant`) and the integrator (`euler_step`);
- `point_mass`: the reference point mass;
- `arm`: a two-link arm in the horizontal plane driven by joint torques.
"""

from robustreach.plants.arm import TwoLinkArm, TwoLinkArmState
from robustreach.plants.base import AbstractPlant, euler_step
from robustreach.plants.point_mass import PointMass, PointMassState

__all__ = ["AbstractPlant", "PointMass", "PointMassState", "TwoLinkArm", "TwoLinkArmState", "euler_step"]
