"""Everything a parameter file can say, as one typed schema with its defaults defined here.

`Parameters` is the schema of one parameter set: the hyperparameter sections of
`config.Hyperparameters` (`plant`, ..., `train`), the training `conditions`, and one options
model per analysis. Each analysis option set has its defaults here and nowhere else; a
part's own values (`experiment.PART_DEFAULTS`) and a parameter file override them.

| name | model | used by |
|---|---|---|
| `evaluation` | `EvaluationOptions` | behaviour notebooks; replicate selection's reaches (all analyses) |
| `impulses` | `ImpulseOptions` | feedback impulses |
| `fixed_points` | `SweepOptions` | goal steady-state sweep (fixed points and Jacobians share it) |
| `continuation` | `ContinuationOptions` | continuation of the hold points |
| `one_step` | `OneStepOptions` | one-step linearisation check |
| `replicate_selection` | `ReplicateSelection` | every analysis |
| `jacobians` | `JacobianOptions` | Jacobian notebook |
| `show_replicates` | list of replicate indices | fixed-point and Jacobian figures |
| `figures_page` | `FiguresPage` | the figures page |

```python
Parameters.model_validate({"train": {"n_batches": 500}, "evaluation": {"n_directions": 16}})
schema_field(["train", "learning_rate"])   # (TypeAdapter of that field, 2): checks one value alone
```
"""

from __future__ import annotations

import copy
import itertools
import os
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from robustreach.config import Hyperparameters, load_hyperparameters
from robustreach.perturbations import REGISTRY, perturbation_kind

__all__ = [
    "ANALYSES",
    "PART_DEFAULTS",
    "SECTIONS",
    "ContinuationOptions",
    "EvaluationOptions",
    "FiguresPage",
    "ImpulseOptions",
    "JacobianOptions",
    "OneStepOptions",
    "Parameters",
    "ParametersError",
    "ReplicateSelection",
    "SweepOptions",
    "check_options",
    "condition_label",
    "expand_conditions",
    "resolve",
    "resolve_parameters",
    "schema_field",
    "validation_messages",
]

SECTIONS = tuple(Hyperparameters.model_fields)
_NO_NAN = ConfigDict(allow_inf_nan=False)
_FieldFloats = list[Annotated[float, Field(allow_inf_nan=False)]]


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)


def _registered_kinds(amplitudes: dict[str, list[float]]) -> dict[str, list[float]]:
    for name in amplitudes:
        perturbation_kind(name)  # a ValueError listing the known kinds
    return amplitudes


class EvaluationOptions(_Options):
    """Centre-out test conditions: the amplitudes per perturbation kind (default: each kind's
    `test_amplitudes`; the notebook uses the one named by `perturbation.type`), context-input values held during the reaches (None: the
    model's own), reach directions, noise realisations and the PRNG seed of the noise."""

    amplitudes: Annotated[dict[str, _FieldFloats], AfterValidator(_registered_kinds)] = Field(
        default_factory=lambda: {name: list(kind.test_amplitudes) for name, kind in sorted(REGISTRY.items())}
    )
    context: _FieldFloats | None = Field(None, min_length=1)
    n_directions: int = Field(8, ge=1)
    n_realisations: int = Field(1, ge=1)
    seed: int = Field(0, ge=0)


class ImpulseOptions(_Options):
    """Feedback impulses: the fed-back variable's offset for `duration` updates from `onset`,
    amplitudes per variable, on hold trials (an `n_grid` x `n_grid` grid of goals) or
    centre-out reaches, in a fixed or random direction."""

    trial_set: Literal["hold", "centre_out"] = "hold"
    n_grid: int = Field(3, ge=1)
    onset: int = Field(30, ge=1)
    duration: int = Field(5, ge=1)
    direction: Literal["x", "y", "random"] = "random"
    amplitudes: dict[Literal["pos", "vel"], _FieldFloats] = {"pos": [0.0, 0.6, 1.2, 1.8], "vel": [0.0, 0.4, 0.8, 1.2]}
    n_realisations: int = Field(1, ge=1)
    seed: int = Field(0, ge=0)


def _contexts(value: list[float] | list[list[float]] | None) -> list[float] | list[list[float]] | None:
    if value and isinstance(value[0], list) and len({len(row) for row in value}) != 1:
        raise ValueError("the context vectors must all have the same length")
    return value


def _odd(value: int) -> int:
    if value % 2 == 0:
        raise ValueError(f"must be odd (so that the workspace centre is a goal); got {value}")
    return value


class SweepOptions(_Options):
    """Goal steady-state sweep (`fixed_points.sweep.goal_sweep`): goals on an `n_grid` x
    `n_grid` grid (odd, so the workspace centre is one), context values held during the hold
    trials (None: models without a context input; a list of lists: several context inputs),
    `n_starts` noisy starting states per goal and context, the finder's tolerance `tol_q` on
    q = 1/2 ||F(h, u) - h||^2 and the de-duplication distance on [h, u]."""

    n_grid: Annotated[int, Field(ge=1), AfterValidator(_odd)] = 5
    contexts: Annotated[
        list[Annotated[float, Field(allow_inf_nan=False, strict=False)]] | list[list[float]] | None,
        Field(min_length=1),
        AfterValidator(_contexts),
    ] = None
    n_steps: int = Field(100, ge=2)
    n_starts: int = Field(16, ge=1)
    noise_std: float = Field(0.1, ge=0.0)
    tol_q: float = Field(1e-10, gt=0.0)
    dedup_tol: float = Field(1e-3, ge=0.0)
    seed: int = Field(0, ge=0)



class ContinuationOptions(_Options):
    """Continuation of the hold points (`fixed_points.hold_branches`): the goal line through
    the centre (`x`: the grid's row, `y`: its column), the largest step in arclength of
    [h, u], the points kept per branch, and how many leading |lambda| the figures draw."""

    line: Literal["x", "y"] = "x"
    max_step: float = Field(0.05, gt=0.0)
    max_points: int = Field(400, ge=2)
    n_moduli: int = Field(3, ge=1)


class OneStepOptions(_Options):
    """One-step linearisation check: perturbation norms, random directions per norm, PRNG seed."""

    scales: list[Annotated[float, Field(gt=0.0)]] = Field([0.001, 0.01, 0.1, 0.5], min_length=1)
    n_samples: int = Field(8, ge=1)
    seed: int = Field(0, ge=0)


class ReplicateSelection(_Options):
    """Which replicates the analyses keep: per training condition, those whose `measure` on
    unperturbed centre-out reaches is within best + `k` std of the best replicate."""

    measure: Literal["endpoint_error", "max_lateral_deviation", "path_length", "max_force"] = "endpoint_error"
    k: float = Field(2.0, ge=0.0)


class JacobianOptions(_Options):
    """Jacobian analysis: a stable mode is "slow" when its time constant exceeds
    `slow_tau_steps` plant steps."""

    slow_tau_steps: float = Field(10.0, gt=0.0)


class FiguresPage(_Options):
    """The figures page: a figure type (None: all), filters on the models' hyperparameters
    (`train`), the test condition (`test`) and the figure's own options (`figure`), whether to
    annotate each figure with its distinguishing parameters, and how many to show per type."""

    identifier: str | None = None
    train_filter: dict[str, Any] = {}
    test_filter: dict[str, Any] = {}
    figure_filter: dict[str, Any] = {}
    annotate: bool = True
    limit: int = Field(6, ge=1)


def _check_conditions(conditions: dict[str, dict[str, list[Any]]]) -> dict[str, dict[str, list[Any]]]:
    """Each condition is a hyperparameter field with a non-empty list of values valid for it."""
    for section, fields in conditions.items():
        for name, values in fields.items():
            try:
                adapter, used = schema_field([section, name])
            except KeyError as error:
                raise ValueError(f"unknown field {section}.{name}; {error.args[0]}") from None
            if used != 2:
                raise ValueError(f"{section}.{name} is a section, not a field")
            if not values:
                raise ValueError(f"{section}.{name}: needs at least one value")
            for value in values:
                try:
                    adapter.validate_python(value)
                except ValidationError as error:
                    raise ValueError(f"{section}.{name}: {value!r}: {error.errors()[0]['msg']}") from None
    return conditions


Conditions = Annotated[
    dict[Literal[SECTIONS], dict[str, list[Any]]], AfterValidator(_check_conditions)  # type: ignore[valid-type]
]


class Parameters(Hyperparameters):
    """One parameter set: hyperparameter sections, training conditions and analysis options."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)

    conditions: Conditions = {}
    evaluation: EvaluationOptions = EvaluationOptions()
    impulses: ImpulseOptions = ImpulseOptions()
    fixed_points: SweepOptions = SweepOptions()
    continuation: ContinuationOptions = ContinuationOptions()
    one_step: OneStepOptions = OneStepOptions()
    replicate_selection: ReplicateSelection = ReplicateSelection()
    jacobians: JacobianOptions = JacobianOptions()
    show_replicates: list[Annotated[int, Field(ge=0)]] = Field([0], min_length=1)
    figures_page: FiguresPage = FiguresPage()

    def hyperparameters(self) -> dict[str, Any]:
        """The hyperparameter sections alone, every field filled in (plain JSON types)."""
        return {name: getattr(self, name).model_dump(mode="json") for name in SECTIONS}


# The analyses: parameters beside the hyperparameter sections and `conditions`.
ANALYSES = tuple(name for name in Parameters.model_fields if name not in (*SECTIONS, "conditions"))


def schema_field(path: list[str]) -> tuple[TypeAdapter, int]:
    """The validator of the field a dotted path reaches, and how many of its parts name it.

    Walks `Parameters` through nested models; stops at the first field that is not a model
    (a list, a dict such as `conditions` or `evaluation.amplitudes`), whose value covers the
    rest of the path. Raises `KeyError` (message: the known names) for an unknown part.
    """
    model: type[BaseModel] = Parameters
    for depth, part in enumerate(path):
        info = model.model_fields.get(part)
        if info is None:
            where = ".".join(path[:depth]) or "a parameter set"
            raise KeyError(f"{where} has {', '.join(model.model_fields)}")
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            continue
        typ = Annotated[annotation, *info.metadata] if info.metadata else annotation
        return TypeAdapter(typ, config=_NO_NAN), depth + 1
    return TypeAdapter(model), len(path)


# Parts of pydantic's error locations that name a union member or validator, not a key.
_UNION_TAGS = ("function-", "list[", "dict[", "constrained-")


def validation_messages(error: ValidationError) -> list[tuple[str, str, Any]]:
    """(dotted location, message, offending value) of each problem pydantic found."""
    out = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"] if not (isinstance(p, str) and p.startswith(_UNION_TAGS)))
        out.append((loc, item["msg"], item.get("input")))
    return out


# --- part defaults and resolution ------------------------------------------------------------

# What each part sets differently from the library's defaults above, in parameter-file layout
# (demo sizes: the parameter files give the real ones). The one place a part's defaults live.
_DEMO_TRAIN = {
    "n_replicates": 2, "batch_size": 64, "n_batches": 300, "constant_lr_batches": 150, "validation_every": 25,
}
PART_DEFAULTS: dict[str, dict[str, Any]] = {
    "part1": {
        "controller": {"hidden_size": 32},
        "perturbation": {"type": "curl"},
        "train": _DEMO_TRAIN,
        "conditions": {"perturbation": {"std": [0.0, 1.0]}},
    },
    "part2": {
        "controller": {"hidden_size": 32},
        "perturbation": {"type": "curl", "std": 1.0, "p_perturbed": 0.5},
        "context": {"variant": "binary", "on_value": 1.0, "off_value": 0.0},
        "train": _DEMO_TRAIN,
        "conditions": {"perturbation": {"std": [1.0]}},
        # test fields: every combination of field amplitude and context-input value
        "evaluation": {
            "amplitudes": {"curl": [0.0, 2.0], "constant": [0.0, 0.2]},
            "context": [-4.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 4.0],
        },
        # context values of the goal sweep, on the binary variant's 0/1 scale
        "fixed_points": {"contexts": [-1.0, 0.0, 1.0, 2.0]},
    },
}


def check_options(options_type: type[_Options], params: Mapping[str, Any] | _Options | None, name: str) -> dict[str, Any]:
    """One analysis's options as plain values, defaults filled in, checked before any work;
    errors name each key as `<name>.<key>` (e.g. `fixed_points.n_grid`) and list the known keys."""
    if isinstance(params, options_type):
        return params.model_dump()
    params = dict(params or {})
    unknown = sorted(set(params) - set(options_type.model_fields))
    if unknown:
        raise ValueError(f"{name}.{unknown[0]}: unknown key; known: {', '.join(options_type.model_fields)}")
    try:
        return options_type.model_validate(params).model_dump()
    except ValidationError as error:
        problems = [f"{name}.{loc or '(options)'}: {message} (got {value!r})"
                    for loc, message, value in validation_messages(error)]
        raise ValueError("; ".join(problems)) from None


class ParametersError(ValueError):
    """Invalid notebook parameters; the message names each offending key and value.

    `problems` holds (dotted key, message, value) of each, for callers that say where the
    key was given."""

    def __init__(self, message: str, problems: list[tuple[str, str, Any]] | None = None):
        super().__init__(message)
        self.problems = problems or []


def deep_merge(base: dict[str, Any], update: Any) -> dict[str, Any]:
    """`base` with `update` merged in key by key (nested mappings merged, anything else replaced)."""
    out = copy.deepcopy(base)
    for key, value in (update or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def part_layer(part: str | None) -> dict[str, Any]:
    """What `part` sets over the library defaults (`{}` for no part)."""
    if part is None:
        return {}
    if part not in PART_DEFAULTS:
        raise ParametersError(f"part: unknown part {part!r}; known: {', '.join(PART_DEFAULTS)}")
    return copy.deepcopy(PART_DEFAULTS[part])


def resolve(part: str | None, given: Mapping[str, Any] | None = None, *, source: str = "") -> Parameters:
    """The full parameter set: library defaults, then `part`'s, then `given` (file layout:
    sections at the top), merged key by key. `conditions`, when given (not None), replace the
    part's conditions as a whole: they list the models compared, not fields to patch."""
    given = dict(given or {})
    layer = part_layer(part)
    conditions = given.pop("conditions", None)
    merged = deep_merge({k: v for k, v in layer.items() if k != "conditions"}, given)
    merged["conditions"] = layer.get("conditions", {}) if conditions is None else conditions
    try:
        return Parameters.model_validate(merged)
    except ValidationError as error:
        where = f"{source}: " if source else ""
        found = validation_messages(error)
        problems = [f"{loc or '(top level)'}: {message}" + ("" if isinstance(value, dict) else f" (got {value!r})")
                    for loc, message, value in found]
        raise ParametersError(f"{where}invalid parameters:\n  " + "\n  ".join(problems), found) from None


def resolve_parameters(
    part: str | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    conditions: Mapping[str, Any] | None = None,
    **analyses: Any,
) -> dict[str, Any]:
    """What a notebook works with, from the values of its parameters cell (after papermill's
    injection): every section and option filled in from the one place defaults live, checked.

    `hyperparameters` holds sections to override (`{"train": {"n_batches": 500}}`), `conditions`
    the training conditions (None: the part's), and each analysis its options (None or `{}`:
    the defaults). Returns plain nested values (sections at the top, as in parameter files).
    """
    hyperparameters = dict(hyperparameters or {})
    unknown = sorted(set(hyperparameters) - set(SECTIONS))
    if unknown:
        raise ParametersError(f"hyperparameters: unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    given = {**hyperparameters, **{name: value for name, value in analyses.items() if value is not None}}
    if conditions is not None:
        given["conditions"] = conditions
    return resolve(part, given).model_dump(mode="json")


# --- memory ----------------------------------------------------------------------------------

# Floats kept per trial, time step and replicate while training: the GRU's gates and state
# (about 6 x hidden) plus the plant, feedback and input vectors (about 24).
_FLOATS_PER_UNIT, _FLOATS_EXTRA = 6, 24
# Reverse-mode differentiation keeps the forward pass's intermediates and builds their
# cotangents, and XLA holds some temporaries besides: roughly 3x the forward activations.
BACKWARD_FACTOR = 3.0


def training_bytes(hp: Hyperparameters, n_conditions: int = 1) -> float:
    """A rough estimate of the largest memory one training run of `n_conditions` conditions
    needs: the activations of one batch through the whole trial (forward and backward, see
    `BACKWARD_FACTOR`), and the per-batch history arrays (one float32 per metric, batch,
    condition and replicate). An order of magnitude to refuse impossible sizes early, not a
    measurement."""
    trials = float(hp.train.batch_size) * hp.train.n_replicates * n_conditions
    per_step = _FLOATS_PER_UNIT * hp.controller.hidden_size + _FLOATS_EXTRA
    activations = trials * hp.task.n_steps * per_step * 4 * BACKWARD_FACTOR
    history = float(hp.train.n_batches) * n_conditions * hp.train.n_replicates * 16 * 4
    return activations + history


def physical_memory_bytes() -> int:
    """The machine's physical memory (bytes)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


# --- training conditions: a grid of hyperparameter values, one model each ------------------


def _condition_keys(conditions: dict[str, dict[str, list[Any]]]) -> list[tuple[str, str]]:
    keys = []
    for section, fields in conditions.items():
        if section not in SECTIONS or not isinstance(fields, dict):
            raise ValueError(f"conditions.{section}: must be a hyperparameter section ({', '.join(SECTIONS)}) mapping fields to lists")
        for field, values in fields.items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"conditions.{section}.{field}: must be a non-empty list of values, got {values!r}")
            keys.append((section, field))
    return keys


def condition_values(
    sections: dict[str, Any], conditions: dict[str, dict[str, list[Any]]] | None = None
) -> Iterator[tuple[str, dict[str, dict[str, Any]]]]:
    """Each combination of the `conditions` values, not yet validated: its label (e.g.
    "perturbation.std=0.5", empty without conditions) and the hyperparameter sections with
    those values set."""
    conditions = conditions or {}
    keys = _condition_keys(conditions)
    for combination in itertools.product(*(conditions[s][f] for s, f in keys)):
        merged = {name: dict(sections[name]) for name in SECTIONS if name in sections}
        for (section, field), value in zip(keys, combination):
            merged.setdefault(section, {})[field] = value
        yield ", ".join(f"{s}.{f}={v}" for (s, f), v in zip(keys, combination)), merged


def expand_conditions(sections: dict[str, Any], conditions: dict[str, dict[str, list[Any]]] | None = None) -> list[Hyperparameters]:
    """One validated `Hyperparameters` per combination of the `conditions` values."""
    return [load_hyperparameters(merged, source=f"condition {label}" if label else "")
            for label, merged in condition_values(sections, conditions)]


def condition_label(hp: Hyperparameters, conditions: dict[str, dict[str, list[Any]]] | None) -> str:
    """A short label naming the condition's values of the varied fields, e.g. 'std=0.5'."""
    keys = _condition_keys(conditions or {})
    if not keys:
        return "model"
    values = hp.to_dict()
    return ", ".join(f"{field}={values[section][field]:g}" if isinstance(values[section][field], float)
                     else f"{field}={values[section][field]}" for section, field in keys)
