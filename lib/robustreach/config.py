"""Hyperparameters: one validated, JSON-serialisable configuration object.

Every number that shapes a model, its task, its loss or its training lives in
`Hyperparameters`, nested in sections exactly as in the parameter files (`params/*.yml`) and
in the records of the results index. Defaults are the reference values of the model spec
(feedbax's point-mass reaching setup).

```python
hp = load_hyperparameters({"plant": {"dt": 0.05}, "perturbation": {"type": "curl", "std": 1.0}})
hp.to_dict()   # plain JSON-able nested dict, all defaults filled in
```
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

NonNegative = Annotated[float, Field(ge=0.0)]
Positive = Annotated[float, Field(gt=0.0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class ConfigError(ValueError):
    """Invalid hyperparameters; the message names every offending field by its dotted path."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)


class PlantConfig(_Section):
    """The controlled body (`robustreach.plants`), integrated with explicit Euler at step `dt`.

    `type` names a plant of `plants.PLANTS`: `point_mass` (its `mass` and linear `damping`) or
    `two_link_arm` (Li & Todorov's human-arm parameters; `mass` and `damping` stay unset).
    """

    type: str = "point_mass"
    mass: Positive = 1.0  # point mass only
    damping: NonNegative = 0.0  # point mass only
    dt: Positive = 0.05

    @field_validator("type")
    @classmethod
    def _known_plant(cls, value: str) -> str:
        from robustreach.plants import PLANTS  # the registry imports JAX; config does not need it otherwise

        if value not in PLANTS:
            raise ValueError(f"unknown plant {value!r}; known: {', '.join(sorted(PLANTS))}")
        return value

    @model_validator(mode="after")
    def _point_mass_fields(self) -> PlantConfig:
        defaults = {name: PlantConfig.model_fields[name].default for name in ("mass", "damping")}
        changed = [name for name, default in defaults.items() if getattr(self, name) != default]
        if self.type != "point_mass" and changed:
            raise ValueError(f"plant.{' and plant.'.join(changed)} only describe the point mass, not plant type {self.type!r}")
        return self


class FeedbackConfig(_Section):
    """Sensory feedback channel: which plant variables, delay in steps, Gaussian noise std."""

    variables: list[Literal["pos", "vel"]] = ["pos", "vel"]
    delay: Annotated[int, Field(ge=0)] = 0
    noise_std: NonNegative = 0.025

    @field_validator("variables")
    @classmethod
    def _ordered_unique(cls, value: list[str]) -> list[str]:
        if not value or len(set(value)) != len(value):
            raise ValueError("must list 'pos' and/or 'vel' once each")
        return [v for v in ("pos", "vel") if v in value]  # input order is fixed: pos, then vel


class MotorConfig(_Section):
    """Motor channel noise: `u + std * u * e1 + 1.8 * std * e2` (feedbax's reference form)."""

    noise_std: NonNegative = 0.01


class ControllerConfig(_Section):
    """Recurrent cell and linear readout to a 2D force."""

    cell: Literal["gru", "leaky_tanh"] = "gru"
    hidden_size: Annotated[int, Field(ge=1)] = 50
    orthogonal_recurrent_init: bool = False
    hidden_noise_std: NonNegative = 0.0
    leak: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1  # only for the leaky tanh cell


class TaskConfig(_Section):
    """Trial timing and the workspace `[[x_min, y_min], [x_max, y_max]]`."""

    n_steps: Annotated[int, Field(ge=2)] = 100
    workspace: list[list[float]] = [[-1.0, -1.0], [1.0, 1.0]]

    @field_validator("workspace")
    @classmethod
    def _bounds(cls, value: list[list[float]]) -> list[list[float]]:
        if len(value) != 2 or any(len(corner) != 2 for corner in value):
            raise ValueError("must be [[x_min, y_min], [x_max, y_max]] (two vectors of length 2)")
        if not all(lo < hi for lo, hi in zip(value[0], value[1])):
            raise ValueError("lower corner must be below the upper corner in x and y")
        return value


class PerturbationConfig(_Section):
    """Training perturbation: per-trial amplitude `std * N(0, 1)` on a fraction of trials.

    `type` is `none` or a kind of `perturbations.REGISTRY` (curl, constant, viscous, channel,
    ...); `settings` are that kind's keyword arguments that are not drawn (a viscous field's
    `matrix`, a channel's `stiffness`), their defaults in the kind's own file.
    """

    type: str = "none"
    std: NonNegative = 0.0
    p_perturbed: Probability = 1.0
    settings: dict[str, Any] = {}

    @field_validator("type")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        from robustreach.perturbations import REGISTRY  # the registry imports JAX; config does not need it otherwise

        if value != "none" and value not in REGISTRY:
            raise ValueError(f"unknown perturbation {value!r}; known: none, {', '.join(sorted(REGISTRY))}")
        return value

    @model_validator(mode="after")
    def _settings_of_the_kind(self) -> PerturbationConfig:
        from robustreach.perturbations import check_settings

        check_settings(self.type, self.settings)
        return self


class ContextConfig(_Section):
    """Context input telling the network about this trial's perturbation (part 2).

    - none: no context input.
    - binary: `on_value` on perturbed trials, `off_value` otherwise.
    - amplitude: the field's amplitude before the std scaling (the N(0, 1) draw).
    - std_scaled: field = std * U(0, 1) * N(0, 1) and the network receives the U(0, 1) draw.
    """

    variant: Literal["none", "binary", "amplitude", "std_scaled"] = "none"
    on_value: float = 1.0
    off_value: float = 0.0

    @property
    def n_inputs(self) -> int:
        return 0 if self.variant == "none" else 1


class LossConfig(_Section):
    """Weights of the loss terms (model spec); `discount_exponent` shapes the position term."""

    position: NonNegative = 1.0
    final_velocity: NonNegative = 1.0
    controller_output: NonNegative = 1e-5
    hidden: NonNegative = 1e-5
    readout_norm: NonNegative = 0.0  # training-only term (||W_readout||_F - target)^2
    readout_norm_target: NonNegative = 2.0
    discount_exponent: NonNegative = 6.0


# A schedule length: a number of batches, or a fraction of `n_batches` (0 < x < 1), so that a
# shorter run keeps the same shape of schedule. Fractions become batches when validated
# (rounded, `round(x * n_batches)`), so records and hashes hold batches only.
_Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]
Batches = Annotated[int, Field(ge=0)] | _Fraction
BatchIndex = Annotated[int, Field(ge=1)] | _Fraction
SCHEDULE_FIELDS = ("constant_lr_batches", "opt_reset_batches", "pretrain_batches", "ramp_batches", "train_from")


def _is_fraction(value: Any) -> bool:
    return isinstance(value, float) and 0.0 < value < 1.0


class TrainConfig(_Section):
    """Ensemble training: optimiser, schedules, validation, snapshots and checkpoints.

    Schedule lengths (`SCHEDULE_FIELDS`) are batches, or fractions of `n_batches` such as
    `pretrain_batches: 0.1` (10 % of the run), converted to batches on validation.
    """

    seed: Annotated[int, Field(ge=0)] = 0
    n_replicates: Annotated[int, Field(ge=1)] = 5
    batch_size: Annotated[int, Field(ge=1)] = 250
    n_batches: Annotated[int, Field(ge=1)] = 2000
    optimizer: Literal["adam", "adamw"] = "adam"
    learning_rate: Positive = 0.01
    weight_decay: NonNegative = 0.0
    constant_lr_batches: Batches | None = None  # None: constant throughout
    cosine_alpha: Probability = 0.01
    opt_reset_batches: list[BatchIndex] = []
    pretrain_batches: Batches = 0
    ramp_batches: Batches = 0
    ramp_shape: Literal["linear", "cosine"] = "linear"
    train_from: dict[Literal["cell", "readout"], Batches] = {}
    shared_trials: bool = False
    validation_every: Annotated[int, Field(ge=1)] = 50
    validation_directions: Annotated[int, Field(ge=1)] = 7
    n_snapshots: Annotated[int, Field(ge=1)] = 20
    checkpoint_every: Annotated[int, Field(ge=0)] = 0  # 0: no checkpoints
    exclusion_k: NonNegative = 2.0

    @model_validator(mode="before")
    @classmethod
    def _fractions_to_batches(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        n = data.get("n_batches", cls.model_fields["n_batches"].default)
        if isinstance(n, bool) or not isinstance(n, (int, float)) or n != int(n) or n < 1:
            return data  # field validation reports it

        def batches(value: Any, least: int = 0) -> Any:
            return max(least, round(value * int(n))) if _is_fraction(value) else value

        data = dict(data)
        for name in ("constant_lr_batches", "pretrain_batches", "ramp_batches"):
            if name in data:
                data[name] = batches(data[name])
        if isinstance(data.get("opt_reset_batches"), list):
            data["opt_reset_batches"] = [batches(b, 1) for b in data["opt_reset_batches"]]
        if isinstance(data.get("train_from"), dict):
            data["train_from"] = {k: batches(v) for k, v in data["train_from"].items()}
        return data

    @model_validator(mode="after")
    def _schedule_within_run(self) -> TrainConfig:
        late = [b for b in self.opt_reset_batches if b >= self.n_batches]
        if late:
            raise ValueError(
                f"opt_reset_batches {late} are at or beyond n_batches={self.n_batches} and would never fire"
            )
        if self.pretrain_batches >= self.n_batches and self.pretrain_batches > 0:
            raise ValueError(f"pretrain_batches={self.pretrain_batches} leaves no perturbed training")
        return self


class Hyperparameters(_Section):
    """Everything that defines one trained model (an ensemble of replicates) and its task."""

    plant: PlantConfig = PlantConfig()
    feedback: FeedbackConfig = FeedbackConfig()
    motor: MotorConfig = MotorConfig()
    controller: ControllerConfig = ControllerConfig()
    task: TaskConfig = TaskConfig()
    perturbation: PerturbationConfig = PerturbationConfig()
    context: ContextConfig = ContextConfig()
    loss: LossConfig = LossConfig()
    train: TrainConfig = TrainConfig()

    @model_validator(mode="after")
    def _consistent(self) -> Hyperparameters:
        if self.context.variant == "std_scaled" and self.perturbation.type == "none":
            raise ValueError("context.variant 'std_scaled' needs a perturbation.type other than 'none'")
        from robustreach.plants import PLANTS

        problem = PLANTS[self.plant.type].workspace_problem(self.task.workspace)
        if problem:
            raise ValueError(f"task.workspace {self.task.workspace} does not suit plant {self.plant.type!r}: {problem}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON types only), every default filled in."""
        return self.model_dump(mode="json")

    def replace(self, **sections: dict[str, Any]) -> Hyperparameters:
        """A copy with some fields of some sections changed, validated again."""
        merged = self.to_dict()
        for section, values in sections.items():
            merged[section] = {**merged.get(section, {}), **values}
        return load_hyperparameters(merged)


def load_hyperparameters(values: dict[str, Any] | Hyperparameters | None = None, *, source: str = "") -> Hyperparameters:
    """Validate a nested dict into `Hyperparameters`; errors name each field's dotted path."""
    if isinstance(values, Hyperparameters):
        return values
    try:
        return Hyperparameters.model_validate(values or {})
    except ValidationError as error:
        where = f"{source}: " if source else ""
        problems = []
        for item in error.errors():
            path = ".".join(str(part) for part in item["loc"]) or "(top level)"
            got = f" (got {item['input']!r})" if "input" in item and not isinstance(item["input"], dict) else ""
            problems.append(f"{path}: {item['msg']}{got}")
        raise ConfigError(f"{where}invalid hyperparameters:\n  " + "\n  ".join(problems)) from None
