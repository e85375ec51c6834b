"""Parameter files: which notebooks to run, with which parameter sets; validated as data.

A parameter file (`params/<part>.yml`) has

```yaml
extends: part1.yml                        # optional: build on another file (path relative to this one)
notebooks: [notebooks/part1/train.qmd, notebooks/part1/behaviour.qmd]  # inside the project
base: {train: {n_batches: 2000}}          # nested values shared by every set
grid:                                     # dotted key -> values; the Cartesian product
  perturbation.std: [0.0, 0.5, 1.0]
  train.seed: [0, 1]
when:                                     # conditional additions, applied in order
  - if: {perturbation.std: 0.0}
    set: {train.n_batches: 1000}
sets:                                     # explicit extra sets (merged over base, no grid)
  - {perturbation.type: random, perturbation.std: 0.5}
```

With `extends`, the other file is read first (it may extend another; cycles and files outside
the project are errors) and this one applies over it: `base` merged key by key, `grid` keys
added or replaced, `when` rules appended after the other's, `sets`, `notebooks` and
`description` replaced when given. Schedule lengths in `train` may be fractions of
`train.n_batches` (`pretrain_batches: 0.1`), so a shorter run built on a real one keeps the
shape of its schedule.

Keys are those of `options.Parameters` (hyperparameter sections at the top, `conditions`,
one options mapping per analysis), plus whatever other plain parameters a notebook declares.
A notebook declares its parameters in one cell tagged `parameters` of plain assignments,
which is parsed, never executed: `part` (whose defaults apply), `hyperparameters` (it takes
the sections; a parameter file writes them at the top level and they are injected grouped
under this name), `conditions` and the analyses' option names.

Everything is checked before any work, and errors name the file, the line, the key and the
value: duplicate YAML keys, NaN or infinite numbers, unknown keys, wrong types or ranges
(each value alone, then every parameter set as each notebook resolves it), notebooks outside
the project, and sizes whose training memory estimate exceeds the machine's. A `when` rule
that matches no set is a warning (`ParamFileWarning`, also in `ParamFile.warnings`).

```python
pf = load_paramfile("params/part1.yml")
for pset in expand(pf):                       # nested dicts, one per parameter set
    for nb in pf.notebooks:
        injected = nb.parameters_for(pset)    # what papermill injects into that notebook
file_models(pf)                               # the models the notebooks look up, with hashes
```
"""

from __future__ import annotations

import ast
import copy
import itertools
import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from robustreach.config import Hyperparameters
from robustreach.hashing import canonical_json, params_hash
from robustreach.options import (
    ANALYSES,
    SECTIONS,
    ParametersError,
    condition_values,
    deep_merge,
    physical_memory_bytes,
    resolve,
    schema_field,
    training_bytes,
    validation_messages,
)
from robustreach.qmd import QmdError, parameters_cell, read_notebook
from robustreach.store.query import flatten_record

__all__ = [
    "NotebookParams",
    "ParamFile",
    "ParamFileError",
    "ParamFileWarning",
    "PlannedModel",
    "expand",
    "file_models",
    "load_paramfile",
    "load_yaml",
    "notebook_defaults",
]

_TOP_KEYS = {"extends", "notebooks", "base", "grid", "when", "sets", "description"}
_SCHEMA_NAMES = {*SECTIONS, "conditions", *ANALYSES}
_MISSING = object()
_GIB = 2**30


class ParamFileError(ValueError):
    """An invalid parameter file; the message names the file, line and offending key."""


class ParamFileWarning(UserWarning):
    """Something in a parameter file that is probably a mistake but not an error."""


# --- YAML: 1.2 floats, no duplicate keys, no NaN, line numbers ------------------------------


class _Lined(dict):
    """A YAML mapping that remembers the line (1-based) of each key."""

    lines: dict[Any, int]


class _Loader(yaml.SafeLoader):
    """YAML 1.2 floats (PyYAML reads `1e-3` as a string; researchers mean 0.001), duplicate
    keys and NaN/inf refused, each mapping's key lines kept (`_Lined`)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _construct_map(loader: _Loader, node: yaml.MappingNode):
    data = _Lined()
    yield data
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise ParamFileError(
                f"{loader.name}, line {line}: duplicate key {key!r} (first given on line {seen[key]}); "
                "YAML would silently keep only the last one"
            )
        seen[key] = line
    data.update(loader.construct_mapping(node, deep=True))
    data.lines = seen


def _construct_float(loader: _Loader, node: yaml.ScalarNode) -> float:
    value = loader.construct_yaml_float(node)
    if not math.isfinite(value):
        raise ParamFileError(
            f"{loader.name}, line {node.start_mark.line + 1}: {node.value!r} is not a finite number; "
            "parameters must be finite"
        )
    return value


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def load_yaml(path: str | Path) -> Any:
    """Load a YAML file: `1e-3` is a float (YAML 1.2); duplicate keys and NaN/inf are errors
    naming the file and line; mappings remember their keys' lines."""
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=_Loader)  # noqa: S506 -- a SafeLoader subclass


Location = tuple[Path, int]  # (file, line) where a key is given


def _line_map(mapping: Any, file: Path, prefix: str = "") -> dict[str, Location]:
    """Dotted key -> (file, line), for every key of a loaded mapping and the mappings inside it."""
    out: dict[str, Location] = {}
    if not isinstance(mapping, Mapping):
        return out
    lines = getattr(mapping, "lines", {})
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        if key in lines:
            out[dotted] = (file, lines[key])
        out.update(_line_map(value, file, f"{dotted}."))
    return out


# --- notebooks: the parameters cell read as data ---------------------------------------------


def notebook_defaults(path: str | Path) -> dict[str, Any]:
    """The parameters a notebook declares and their values in its cell tagged `parameters`.

    The cell is parsed, never executed: it may hold only assignments of plain values
    (numbers, strings, booleans, None, lists, dicts, tuples), comments and docstrings.
    """
    path = Path(path)
    try:
        source = parameters_cell(read_notebook(path), name=str(path)).source
    except (QmdError, OSError) as error:
        raise ParamFileError(str(error)) from None
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise ParamFileError(f"{path}: parameters cell, line {error.lineno}: not valid Python: {error.msg}") from None
    values: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            continue  # a docstring
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        if not targets or not all(isinstance(t, ast.Name) for t in targets) or node.value is None:
            raise ParamFileError(
                f"{path}: parameters cell, line {node.lineno}: only assignments of plain values to names are "
                f"allowed (the cell is read as data, never run); found {ast.unparse(node)[:80]!r}"
            )
        try:
            value = ast.literal_eval(node.value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise ParamFileError(
                f"{path}: parameters cell, line {node.lineno}: {ast.unparse(node.value)[:80]!r} is not a plain value "
                "(numbers, strings, booleans, None, lists, dicts); the cell is read as data, never run"
            ) from None
        for target in targets:
            values[target.id] = _plain(value)
    return {name: value for name, value in values.items() if not name.startswith("_")}


def _plain(value: Any) -> Any:
    """Tuples as lists (as JSON and papermill carry them)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class NotebookParams:
    """A notebook named in a parameter file, with the parameters it declares."""

    path: Path  # absolute
    name: str  # as written in the parameter file, relative to the repository root
    defaults: dict[str, Any]

    @property
    def part(self) -> str | None:
        """The part whose defaults this notebook resolves against (its `part` value), if any."""
        return self.defaults.get("part")

    @property
    def uses_models(self) -> bool:
        """Whether the notebook trains or loads models: it takes the hyperparameter sections."""
        return "hyperparameters" in self.defaults

    def takes(self, name: str) -> bool:
        """Whether a top-level parameter-file key reaches this notebook."""
        return name in self.defaults if name not in SECTIONS else self.uses_models

    def parameters_for(self, pset: Mapping[str, Any]) -> dict[str, Any]:
        """What papermill injects for `pset`: the names this notebook declares that `pset`
        sets, merged over the cell's values (hyperparameter sections grouped under
        `hyperparameters`; keys the notebook does not take are left out).

        Options of the schema are merged key by key (their defaults come from the library);
        for a notebook's own plain parameters, nested dicts keep the cell's other keys and
        ints given where the cell has a float arrive as floats.
        """
        out: dict[str, Any] = {}
        sections = {name: pset[name] for name in SECTIONS if name in pset}
        if sections and self.uses_models:
            out["hyperparameters"] = deep_merge(self.defaults["hyperparameters"] or {}, sections)
        for key, value in pset.items():
            if key in SECTIONS or key not in self.defaults:
                continue
            default = self.defaults[key]
            if key in _SCHEMA_NAMES:
                both = isinstance(default, dict) and isinstance(value, Mapping) and key != "conditions"
                out[key] = deep_merge(default, value) if both else copy.deepcopy(value)
            else:
                out[key] = _merge_typed(default, value)
        return out

    def environment(self, pset: Mapping[str, Any]) -> dict[str, Any]:
        """The notebook's parameter values after injection: its cell, then `parameters_for`."""
        return {**copy.deepcopy(self.defaults), **self.parameters_for(pset)}

    def resolve(self, pset: Mapping[str, Any]) -> dict[str, Any] | None:
        """Everything the notebook works with for `pset` (`options.resolve_parameters` of its
        parameters after injection), or None for a notebook that takes no schema parameters."""
        from robustreach.options import resolve_parameters

        env = self.environment(pset)
        names = {"part", "hyperparameters", "conditions", *ANALYSES}
        if not any(name in env for name in names):
            return None
        return resolve_parameters(**{name: env[name] for name in names if name in env})


@dataclass(frozen=True)
class ParamFile:
    """A loaded and validated parameter file (see the module docstring)."""

    path: Path
    root: Path
    notebooks: tuple[NotebookParams, ...]
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    when: list[tuple[dict[str, Any], dict[str, Any]]]
    sets: list[dict[str, Any]]
    description: str | None = None
    warnings: tuple[str, ...] = ()
    # where (base, grid.KEY, when[k].set, sets[k]) -> dotted key -> (file, line)
    lines: dict[str, dict[str, Location]] = field(default_factory=dict, compare=False)
    extends: tuple[Path, ...] = ()  # the files this one builds on, the furthest first


def _is_open(default: Any) -> bool:
    """Defaults that accept any nested content: None, or an empty dict."""
    return default is None or (isinstance(default, dict) and not default)


def _merge_typed(default: Any, value: Any) -> Any:
    if isinstance(default, dict) and default and isinstance(value, Mapping):
        return {k: _merge_typed(d, value[k]) if k in value else copy.deepcopy(d) for k, d in default.items()}
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return copy.deepcopy(value)


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _compatible(value: Any, default: Any) -> bool:
    if _is_open(default):
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        if not isinstance(value, list):
            return False
        kinds = {type(d) for d in default}
        return len(kinds) != 1 or all(_compatible(v, default[0]) for v in value)
    return isinstance(value, type(default))


def _nest(mapping: Any, where: str, file: Path) -> dict[str, Any]:
    """A nested dict from one whose keys may be dotted (`train.lr: 1` -> `{train: {lr: 1}}`)."""
    if not isinstance(mapping, Mapping):
        raise ParamFileError(f"{file}: {where}: expected a mapping of parameters, got {_type_name(mapping)}")
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
            raise ParamFileError(f"{file}: {where}: {key!r} is not a parameter name")
        value = _nest(value, f"{where}.{key}", file) if isinstance(value, Mapping) else value
        for part in reversed(key.split(".")):
            value = {part: value}
        _add(out, value, "", where, file)
    return out


def _add(into: dict[str, Any], new: Mapping[str, Any], prefix: str, where: str, file: Path) -> None:
    """Merge `new` into `into`, refusing a key given twice (`cfg.n` and `cfg: {n: ...}`)."""
    for key, value in new.items():
        dotted = f"{prefix}{key}"
        if key not in into:
            into[key] = value
        elif isinstance(into[key], dict) and isinstance(value, Mapping):
            _add(into[key], value, f"{dotted}.", where, file)
        else:
            raise ParamFileError(f"{file}: {where}: {dotted!r} is given twice")


def _get(nested: Mapping[str, Any], dotted: str) -> Any:
    node: Any = nested
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _nest_path(parts: list[str], value: Any) -> Any:
    for part in reversed(parts):
        value = {part: value}
    return value


class _Validator:
    """Checks dotted keys and values, each alone: against the schema (`options.Parameters`)
    for its names, against the values the notebooks declare for their own parameters."""

    def __init__(self, file: Path, notebooks: tuple[NotebookParams, ...], lines: dict[str, dict[str, Location]]):
        self.file = file
        self.notebooks = notebooks
        self.lines = lines

    def where(self, where: str, dotted: str) -> str:
        found = _line_for(self.lines.get(where, {}), dotted)
        return f"{found[0]}, line {found[1]}: {where}" if found else f"{self.file}: {where}"

    def check(self, where: str, nested: Mapping[str, Any]) -> None:
        for dotted, value in flatten_record(nested).items():
            self.check_value(where, dotted, value)

    def check_value(self, where: str, dotted: str, value: Any) -> None:
        top, *rest = dotted.split(".")
        if top == "hyperparameters":
            raise ParamFileError(
                f"{self.where(where, dotted)}: {dotted!r}: write the hyperparameter sections at the top level "
                f"({'.'.join(rest) or 'train.n_batches'}); notebooks receive them grouped as `hyperparameters`"
            )
        if top == "part":
            raise ParamFileError(
                f"{self.where(where, dotted)}: 'part' is each notebook's own (it says whose defaults apply); "
                "set the parameters themselves instead"
            )
        declaring = [nb for nb in self.notebooks if nb.takes(top)]
        if not declaring:
            known = sorted({k for nb in self.notebooks for k in nb.defaults if k not in ("part", "hyperparameters")}
                           | ({*SECTIONS} if any(nb.uses_models for nb in self.notebooks) else set()))
            raise ParamFileError(
                f"{self.where(where, dotted)}: unknown parameter {dotted!r}; "
                f"the notebooks take {', '.join(known) or 'nothing'}"
            )
        if top in _SCHEMA_NAMES:
            self.check_schema(where, dotted, value)
        else:
            self.check_declared(where, dotted, value, declaring)

    def check_schema(self, where: str, dotted: str, value: Any) -> None:
        parts = dotted.split(".")
        try:
            adapter, used = schema_field(parts)
        except KeyError as error:
            raise ParamFileError(
                f"{self.where(where, dotted)}: unknown parameter {dotted!r}; {error.args[0]}"
            ) from None
        if used == len(parts) and isinstance(value, Mapping) and not value:
            return  # an empty mapping for a section: nothing in it to check
        is_section = used == len(parts) and adapter.core_schema.get("type") == "model"
        if is_section and not isinstance(value, Mapping):
            raise ParamFileError(f"{self.where(where, dotted)}: {dotted!r} is a section, got {value!r}")
        try:
            adapter.validate_python(_nest_path(parts[used:], value))
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join([*parts[:used], loc]) if loc else '.'.join(parts[:used])}: {message}"
                for loc, message, _ in validation_messages(error)
            )
            raise ParamFileError(f"{self.where(where, dotted)}: {dotted} = {value!r}: {problems}") from None

    def check_declared(self, where: str, dotted: str, value: Any, declaring: list[NotebookParams]) -> None:
        top, *rest = dotted.split(".")
        matched = False
        for nb in declaring:
            default, parts = nb.defaults[top], [top]
            for part in rest:
                if _is_open(default):
                    break
                if not isinstance(default, dict):
                    raise ParamFileError(
                        f"{self.where(where, dotted)}: {dotted!r}: {'.'.join(parts)!r} is a "
                        f"{_type_name(default)} in {nb.name}, not a section"
                    )
                if part not in default:
                    default = _MISSING
                    break
                default, parts = default[part], [*parts, part]
            if default is _MISSING:
                continue
            matched = True
            if isinstance(default, dict) and default and not isinstance(value, Mapping):
                raise ParamFileError(
                    f"{self.where(where, dotted)}: {dotted!r} is a section in {nb.name} "
                    f"(keys {', '.join(default)}), got {value!r}"
                )
            if isinstance(default, dict) and isinstance(value, Mapping):
                continue  # an empty mapping: nothing to check below it
            if not _compatible(value, default):
                raise ParamFileError(
                    f"{self.where(where, dotted)}: {dotted!r} should be {_type_name(default)} like the default "
                    f"{default!r} in {nb.name}, got {_type_name(value)} {value!r}"
                )
        if not matched:
            section = ".".join(dotted.split(".")[:-1])
            known = sorted({k for nb in declaring for k in _keys(_get(nb.defaults, section))})
            raise ParamFileError(
                f"{self.where(where, dotted)}: unknown parameter {dotted!r}"
                + (f"; {section!r} has {', '.join(known)}" if known else "")
            )


def _keys(value: Any) -> list[str]:
    return list(value) if isinstance(value, dict) else []


def _line_for(lines: Mapping[str, Location], dotted: str) -> Location | None:
    """Where `dotted` is given, or the nearest key above it (a section given as a whole)."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in lines:
            return lines[".".join(parts[:n])]
    below = [line for key, line in lines.items() if key.startswith(dotted + ".")]
    return min(below) if below else None


def _find_root(path: Path) -> Path:
    for parent in path.resolve().parents:
        if (parent / "pyproject.toml").exists() or (parent / "_quarto.yml").exists():
            return parent
    return Path.cwd()


def _notebook(path: Path, root: Path, name: str) -> NotebookParams:
    """A listed notebook, inside the project, with its parameters read as data."""
    nb_path = (root / name).resolve()
    if Path(name).is_absolute() or not nb_path.is_relative_to(root):
        raise ParamFileError(
            f"{path}: notebooks: {name!r} is outside the project ({root}); list notebooks by their path inside it"
        )
    if not nb_path.is_file():
        raise ParamFileError(f"{path}: notebooks: {name!r} not found (looked for {nb_path})")
    if nb_path.suffix not in (".qmd", ".ipynb"):
        raise ParamFileError(f"{path}: notebooks: {name!r} is not a .qmd or .ipynb notebook")
    return NotebookParams(path=nb_path, name=name, defaults=notebook_defaults(nb_path))


def _read_layers(path: Path, root: Path, chain: tuple[Path, ...] = ()) -> list[tuple[Path, dict[str, Any]]]:
    """The file and the files it `extends`, each read and checked at the top level, ancestors
    first. `extends` is a path relative to the file, inside the project; cycles are errors."""
    if not path.is_file():
        raise ParamFileError(f"{chain[-1] if chain else path}: parameter file {path} not found")
    try:
        raw = load_yaml(path)
    except yaml.YAMLError as error:
        raise ParamFileError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ParamFileError(f"{path}: expected a mapping with keys {', '.join(sorted(_TOP_KEYS))}")
    lines = getattr(raw, "lines", {})
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise ParamFileError(
            f"{path}, line {lines.get(unknown[0], '?')}: unknown top-level key(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(_TOP_KEYS))}"
        )
    parent = raw.get("extends")
    if parent is None:
        return [(path, raw)]
    where = f"{path}, line {lines.get('extends', '?')}: extends"
    if not isinstance(parent, str) or not parent:
        raise ParamFileError(f"{where}: expected the path of one parameter file, got {parent!r}")
    resolved = (path.parent / parent).resolve()
    if Path(parent).is_absolute() or not resolved.is_relative_to(root):
        raise ParamFileError(f"{where}: {parent!r} is outside the project ({root})")
    here = path.resolve()
    if resolved in (*chain, here):
        cycle = " -> ".join(str(p) for p in (*chain, here, resolved))
        raise ParamFileError(f"{where}: {parent!r} makes a cycle: {cycle}")
    return [*_read_layers(resolved, root, (*chain, here)), (path, raw)]


def load_paramfile(path: str | Path, *, root: str | Path | None = None) -> ParamFile:
    """Load and validate a parameter file completely (see the module docstring).

    `root` is the project directory that notebook paths are relative to (and must stay in);
    by default the nearest parent of the file holding `pyproject.toml` or `_quarto.yml`.
    With `extends: other.yml`, the other file (path relative to this one) is read first and
    this one applies over it: `base` merged key by key, `grid` keys added or replaced, `when`
    rules appended, `sets`, `notebooks` and `description` replaced when given.
    """
    path = Path(path)
    if not path.is_file():
        raise ParamFileError(f"{path}: parameter file not found")
    root = Path(root).resolve() if root is not None else _find_root(path)
    layers = _read_layers(path, root)

    names, names_file = None, path
    description = None
    for file, raw in layers:
        if "notebooks" in raw:
            names, names_file = raw["notebooks"], file
        if raw.get("description") is not None:
            description = raw["description"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ParamFileError(f"{names_file}: notebooks: expected a non-empty list of notebook paths, got {names!r}")
    if len(set(names)) != len(names):
        raise ParamFileError(f"{names_file}: notebooks: a notebook is listed twice")
    notebooks = tuple(_notebook(names_file, root, name) for name in names)

    lines: dict[str, dict[str, Location]] = {"base": {}}
    check = _Validator(path, notebooks, lines)

    base: dict[str, Any] = {}
    for file, raw in layers:
        base = deep_merge(base, _nest(raw.get("base") or {}, "base", file))
        lines["base"].update(_dotted_lines(raw.get("base"), file))
    check.check("base", base)

    grid: dict[str, list[Any]] = {}
    for file, raw in layers:
        grid_raw = raw.get("grid") or {}
        if not isinstance(grid_raw, Mapping):
            raise ParamFileError(f"{file}: grid: expected a mapping of dotted keys to lists of values")
        grid_lines = getattr(grid_raw, "lines", {})
        for key, values in grid_raw.items():
            at = f"{file}, line {grid_lines.get(key, '?')}: grid"
            if not isinstance(values, list):
                raise ParamFileError(f"{at}: {key!r} should be a list of values, got {values!r}")
            if not values:
                raise ParamFileError(f"{at}: {key!r} has an empty list of values; the grid would hold no sets")
            lines[f"grid.{key}"] = {str(key): (file, grid_lines.get(key, 0))}
            grid[str(key)] = values
    for key, values in grid.items():
        for value in values:
            check.check(f"grid.{key}", _nest({key: value}, "grid", path))

    when = []
    for file, raw in layers:
        when_raw = raw.get("when") or []
        if not isinstance(when_raw, list):
            raise ParamFileError(f"{file}: when: expected a list of {{if: ..., set: ...}} rules")
        for rule in when_raw:
            where = f"when[{len(when)}]"
            if not isinstance(rule, Mapping) or set(rule) != {"if", "set"}:
                raise ParamFileError(f"{file}: {where}: each rule needs exactly the keys 'if' and 'set', got {rule!r}")
            lines[f"{where}.if"] = _dotted_lines(rule["if"], file)
            lines[f"{where}.set"] = _dotted_lines(rule["set"], file)
            lines[where] = {"if": (file, rule.lines["if"])} if isinstance(rule, _Lined) else {}
            condition = _nest(rule["if"], f"{where}.if", file)
            if not condition:
                raise ParamFileError(f"{file}: {where}.if: empty condition")
            check.check(f"{where}.if", condition)
            addition = _nest(rule["set"], f"{where}.set", file)
            check.check(f"{where}.set", addition)
            when.append((flatten_record(condition), addition))

    sets_file, sets_raw = path, []
    for file, raw in layers:
        if "sets" in raw:
            sets_file, sets_raw = file, raw["sets"] or []
    if not isinstance(sets_raw, list):
        raise ParamFileError(f"{sets_file}: sets: expected a list of parameter sets")
    sets = []
    for k, extra in enumerate(sets_raw):
        lines[f"sets[{k}]"] = _dotted_lines(extra, sets_file)
        nested = _nest(extra, f"sets[{k}]", sets_file)
        check.check(f"sets[{k}]", nested)
        sets.append(nested)

    if description is not None and not isinstance(description, str):
        raise ParamFileError(f"{path}: description: expected text")
    fields = dict(path=path, root=root, notebooks=notebooks, base=base, grid=grid, when=when, sets=sets,
                  description=description, lines=lines, extends=tuple(file for file, _ in layers[:-1]))
    expanded, matches = _expand(ParamFile(**fields))
    _check_sets(ParamFile(**fields), expanded)
    notes = []
    for k, ((condition, _), n) in enumerate(zip(when, matches)):
        file, line = lines[f"when[{k}]"].get("if", (path, "?"))
        # a rule of a file this one extends may rightly match nothing once the grid is narrowed
        if n == 0 and file == path:
            notes.append(f"{file}, line {line}: when[{k}] matches no parameter set (if {condition}); "
                         "its additions are never applied")
    for note in notes:
        warnings.warn(note, ParamFileWarning, stacklevel=2)
    return ParamFile(**fields, warnings=tuple(notes))


def _dotted_lines(mapping: Any, file: Path) -> dict[str, Location]:
    """Dotted key -> (file, line) for a fragment whose keys may be dotted themselves."""
    return _line_map(mapping, file) if isinstance(mapping, Mapping) else {}


# --- expansion, with where each value came from ---------------------------------------------


@dataclass
class _Set:
    values: dict[str, Any]
    sources: list[str]  # fragments applied, in order (keys of ParamFile.lines)


def _defaults_of(notebooks: tuple[NotebookParams, ...]):
    """dotted key -> the value the notebooks have when a set is silent (first notebook wins)."""
    resolved: dict[str | None, dict[str, Any]] = {}

    def lookup(dotted: str) -> Any:
        top = dotted.split(".")[0]
        for nb in notebooks:
            if top in _SCHEMA_NAMES and nb.takes(top):
                if nb.part not in resolved:
                    resolved[nb.part] = resolve(nb.part).model_dump(mode="json")
                value = _get(resolved[nb.part], dotted)
            else:
                value = _get(nb.defaults, dotted)
            if value is not _MISSING:
                return value
        return _MISSING

    return lookup


def _applies(condition: dict[str, Any], pset: dict[str, Any], default) -> bool:
    """Whether every dotted value of `condition` holds in `pset` (falling back on defaults)."""
    for dotted, wanted in condition.items():
        value = _get(pset, dotted)
        if value is _MISSING:
            value = default(dotted)
        if value is _MISSING or canonical_json(value) != canonical_json(wanted):
            return False
    return True


def _expand(pf: ParamFile) -> tuple[list[_Set], list[int]]:
    """The parameter sets with their sources, and how many candidate sets each rule matched."""
    combos = [dict(zip(pf.grid, values)) for values in itertools.product(*pf.grid.values())]
    candidates = [_Set(deep_merge(pf.base, _nest(c, "grid", pf.path)), ["base", *(f"grid.{k}" for k in c)])
                  for c in combos]
    candidates += [_Set(deep_merge(pf.base, extra), ["base", f"sets[{k}]"]) for k, extra in enumerate(pf.sets)]
    default = _defaults_of(pf.notebooks)
    matches = [0] * len(pf.when)
    out, seen = [], set()
    for candidate in candidates:
        for k, (condition, addition) in enumerate(pf.when):
            if _applies(condition, candidate.values, default):
                candidate.values = deep_merge(candidate.values, addition)
                candidate.sources.append(f"when[{k}].set")
                matches[k] += 1
        key = canonical_json(candidate.values)
        if key not in seen:
            seen.add(key)
            out.append(candidate)
    return out, matches


def expand(pf: ParamFile) -> list[dict[str, Any]]:
    """The parameter sets of a file: grid product over base, then explicit sets; `when` applied.

    Sets are nested dicts holding only what the file gives (the notebooks and the library
    fill in the rest). Duplicates (the same set reached twice) are dropped, order kept.
    """
    return [s.values for s in _expand(pf)[0]]


def _origin(pf: ParamFile, pset: _Set, dotted: str) -> str:
    """'FILE, line N (where)' for the fragment that last gave `dotted` (or a key above/below it)."""
    for source in reversed(pset.sources):
        found = _line_for(pf.lines.get(source, {}), dotted)
        if found:
            return f"{found[0]}, line {found[1]} ({source})"
    return f"{pf.path} (the notebooks' defaults)"


_SIZE_KEYS = ("train.batch_size", "train.n_batches", "train.n_replicates", "task.n_steps", "controller.hidden_size")


def _check_sets(pf: ParamFile, expanded: list[_Set]) -> None:
    """Every set as each notebook resolves it: whole-set rules, each training condition, memory."""
    memory = physical_memory_bytes()
    for index, pset in enumerate(expanded):
        for nb in pf.notebooks:
            try:
                resolved = nb.resolve(pset.values)
            except ParametersError as error:
                loc, message, value = error.problems[0] if error.problems else ("", str(error), None)
                shown = "" if isinstance(value, dict) or value is None else f" = {value!r}"
                raise ParamFileError(
                    f"{_origin(pf, pset, loc)}: set {index} for {nb.name}: {loc}{shown}: {message}"
                ) from None
            if resolved is None or not nb.uses_models:
                continue
            hps = _conditions(pf, pset, index, nb, resolved)
            need = max(training_bytes(hp, len(hps)) for hp in hps)
            if need > memory:
                given = [key for key in _SIZE_KEYS if _get(pset.values, key) is not _MISSING]
                sizes = ", ".join(f"{key} = {_get(pset.values, key)!r} ({_origin(pf, pset, key)})" for key in given)
                key = _furthest_above(given, pset.values, resolve(nb.part).model_dump(mode="json"))
                raise ParamFileError(
                    f"{_origin(pf, pset, key)}: set {index} for {nb.name}: {key}: training would need about "
                    f"{need / _GIB:,.1f} GiB (estimate), more than this machine's {memory / _GIB:,.1f} GiB of memory"
                    + (f"; sizes given: {sizes}" if sizes else "")
                )


def _furthest_above(keys: list[str], values: dict[str, Any], usual: dict[str, Any]) -> str:
    """The size key whose value is the most times its usual (default) value: the one to name."""
    if not keys:
        return "train.batch_size"
    return max(keys, key=lambda k: _get(values, k) / max(_get(usual, k), 1))


def _conditions(
    pf: ParamFile, pset: _Set, index: int, nb: NotebookParams, resolved: dict[str, Any]
) -> list[Hyperparameters]:
    """The hyperparameters of each training condition of a resolved set, each validated."""
    out = []
    for label, values in condition_values(resolved, resolved["conditions"]):
        try:
            out.append(Hyperparameters.model_validate(values))
        except ValidationError as error:
            loc, message, value = validation_messages(error)[0]
            shown = "" if isinstance(value, dict) else f" = {value!r}"
            raise ParamFileError(
                f"{_origin(pf, pset, loc)}: set {index} for {nb.name}, condition {label or '(only one)'}: "
                f"{loc}{shown}: {message}"
            ) from None
    return out


# --- the models a file's notebooks look up ---------------------------------------------------


@dataclass(frozen=True)
class PlannedModel:
    """A model (an ensemble) the notebooks of a parameter file look up, by hyperparameter hash."""

    hash: str  # params_hash of the hyperparameters (the index's `params_hash`)
    hyperparameters: Hyperparameters
    notebooks: tuple[str, ...]  # the notebooks that look it up
    sets: tuple[int, ...]  # the parameter sets (indices of `expand`) it comes from


def file_models(pf: ParamFile) -> list[PlannedModel]:
    """Every model the notebooks of `pf` will look up (train or load), each once, in order:
    per parameter set and notebook taking the hyperparameter sections, the set as that
    notebook resolves it (its part's defaults, then the file), one model per training
    condition. This is what `robustreach train FILE` trains."""
    found: dict[str, dict[str, Any]] = {}
    for index, pset in enumerate(expand(pf)):
        for nb in pf.notebooks:
            if not nb.uses_models:
                continue
            resolved = nb.resolve(pset)
            for hp in _conditions(pf, _Set(pset, []), index, nb, resolved):
                entry = found.setdefault(params_hash(hp.to_dict()), {"hp": hp, "notebooks": [], "sets": []})
                entry["notebooks"] += [nb.name] if nb.name not in entry["notebooks"] else []
                entry["sets"] += [index] if index not in entry["sets"] else []
    return [PlannedModel(h, e["hp"], tuple(e["notebooks"]), tuple(e["sets"])) for h, e in found.items()]
