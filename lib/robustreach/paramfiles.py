"""Parameter files: which notebooks to run, with which parameter sets.

A parameter file (`params/<part>.yml`) has

```yaml
notebooks: [notebooks/part1/train.qmd, notebooks/part1/analysis.qmd]   # relative to the repo
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

Every key is checked before any work against the parameters the notebooks declare: each
notebook has one cell tagged `parameters` assigning top-level names (`train = {...}`) whose
default values give the allowed nested keys and their types. Mistakes raise `ParamFileError`
naming the file and the dotted key.

```python
pf = load_paramfile("params/part1.yml")
for pset in expand(pf):                       # nested dicts, one per parameter set
    for nb in pf.notebooks:
        injected = nb.parameters_for(pset)    # what papermill injects into that notebook
```
"""

from __future__ import annotations

import ast
import builtins
import copy
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from robustreach.hashing import canonical_json
from robustreach.qmd import QmdError, parameters_cell, read_notebook
from robustreach.store.query import flatten_record

__all__ = [
    "NotebookParams",
    "ParamFile",
    "ParamFileError",
    "expand",
    "load_paramfile",
    "load_yaml",
    "notebook_defaults",
]

_TOP_KEYS = {"notebooks", "base", "grid", "when", "sets", "description"}
_MISSING = object()


class ParamFileError(ValueError):
    """An invalid parameter file; the message names the file and the offending key."""


class _Loader(yaml.SafeLoader):
    """YAML 1.2 floats: PyYAML (YAML 1.1) reads `1e-3` as a string, researchers mean 0.001."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(path: str | Path) -> Any:
    """Load a YAML file, reading `1e-3` as a float (YAML 1.2) rather than a string."""
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=_Loader)


def notebook_defaults(path: str | Path) -> dict[str, Any]:
    """The parameters a notebook declares and their default values.

    Runs the notebook's cell tagged `parameters` in an empty namespace (as its kernel would)
    and keeps the names it assigns at top level.
    """
    path = Path(path)
    try:
        source = parameters_cell(read_notebook(path), name=str(path)).source
    except (QmdError, OSError) as error:
        raise ParamFileError(str(error)) from None
    try:
        tree = ast.parse(source)
        namespace: dict[str, Any] = {"__builtins__": builtins}
        exec(compile(tree, f"{path} (parameters cell)", "exec"), namespace)  # noqa: S102
    except Exception as error:  # noqa: BLE001 -- any failure of the notebook's own code
        raise ParamFileError(f"{path}: the parameters cell fails to run: {type(error).__name__}: {error}") from None
    return {name: namespace[name] for name in _assigned_names(tree) if not name.startswith("_")}


def _assigned_names(tree: ast.Module) -> list[str]:
    """Names a cell assigns at top level (`x = ...`, `x: int = ...`), in order."""
    names = []
    for node in tree.body:
        if isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return names


@dataclass(frozen=True)
class NotebookParams:
    """A notebook named in a parameter file, with the parameters it declares."""

    path: Path  # absolute
    name: str  # as written in the parameter file, relative to the repository root
    defaults: dict[str, Any]

    def parameters_for(self, pset: Mapping[str, Any]) -> dict[str, Any]:
        """What papermill injects for `pset`: the declared names `pset` sets, merged over defaults.

        Nested dicts are merged key by key (a set giving `train.lr` keeps the other `train`
        defaults), keys this notebook does not declare are left out, and ints given where the
        default is a float arrive as floats.
        """
        return {k: _merge_typed(self.defaults[k], v) for k, v in pset.items() if k in self.defaults}


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


def _deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _get(nested: Mapping[str, Any], dotted: str) -> Any:
    node: Any = nested
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


class _Validator:
    """Checks dotted keys and values against the defaults the notebooks declare."""

    def __init__(self, file: Path, notebooks: tuple[NotebookParams, ...]):
        self.file = file
        self.notebooks = notebooks

    def check(self, where: str, nested: Mapping[str, Any]) -> None:
        for dotted, value in flatten_record(nested).items():
            self.check_value(where, dotted, value)

    def check_value(self, where: str, dotted: str, value: Any) -> None:
        top, *rest = dotted.split(".")
        declaring = [nb for nb in self.notebooks if top in nb.defaults]
        if not declaring:
            known = sorted({k for nb in self.notebooks for k in nb.defaults})
            raise ParamFileError(
                f"{self.file}: {where}: unknown parameter {dotted!r}; the notebooks declare {', '.join(known) or 'nothing'}"
            )
        matched = False
        for nb in declaring:
            default, parts = nb.defaults[top], [top]
            for part in rest:
                if _is_open(default):
                    break
                if not isinstance(default, dict):
                    raise ParamFileError(
                        f"{self.file}: {where}: {dotted!r}: {'.'.join(parts)!r} is a {_type_name(default)} in {nb.name}, not a section"
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
                    f"{self.file}: {where}: {dotted!r} is a section in {nb.name} (keys {', '.join(default)}), got {value!r}"
                )
            if isinstance(default, dict) and isinstance(value, Mapping):
                continue  # an empty mapping: nothing to check below it
            if not _compatible(value, default):
                raise ParamFileError(
                    f"{self.file}: {where}: {dotted!r} should be {_type_name(default)} like the default "
                    f"{default!r} in {nb.name}, got {_type_name(value)} {value!r}"
                )
        if not matched:
            section = ".".join(dotted.split(".")[:-1])
            known = sorted({k for nb in declaring for k in _keys(_get(nb.defaults, section))})
            raise ParamFileError(
                f"{self.file}: {where}: unknown parameter {dotted!r}"
                + (f"; {section!r} has {', '.join(known)}" if known else "")
            )


def _keys(value: Any) -> list[str]:
    return list(value) if isinstance(value, dict) else []


def _find_root(path: Path) -> Path:
    for parent in path.resolve().parents:
        if (parent / "pyproject.toml").exists() or (parent / "_quarto.yml").exists():
            return parent
    return Path.cwd()


def load_paramfile(path: str | Path, *, root: str | Path | None = None) -> ParamFile:
    """Load and validate a parameter file.

    `root` is the directory notebook paths are relative to; by default the nearest parent
    of the file holding `pyproject.toml` or `_quarto.yml` (the repository).
    """
    path = Path(path)
    if not path.is_file():
        raise ParamFileError(f"{path}: parameter file not found")
    root = Path(root).resolve() if root is not None else _find_root(path)
    try:
        raw = load_yaml(path)
    except yaml.YAMLError as error:
        raise ParamFileError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ParamFileError(f"{path}: expected a mapping with keys {', '.join(sorted(_TOP_KEYS))}")
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise ParamFileError(
            f"{path}: unknown top-level key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(sorted(_TOP_KEYS))}"
        )

    names = raw.get("notebooks")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ParamFileError(f"{path}: notebooks: expected a non-empty list of notebook paths, got {names!r}")
    if len(set(names)) != len(names):
        raise ParamFileError(f"{path}: notebooks: a notebook is listed twice")
    notebooks = []
    for name in names:
        nb_path = root / name
        if not nb_path.is_file():
            raise ParamFileError(f"{path}: notebooks: {name!r} not found (looked for {nb_path})")
        if nb_path.suffix not in (".qmd", ".ipynb"):
            raise ParamFileError(f"{path}: notebooks: {name!r} is not a .qmd or .ipynb notebook")
        notebooks.append(NotebookParams(path=nb_path, name=name, defaults=notebook_defaults(nb_path)))
    notebooks_t = tuple(notebooks)
    check = _Validator(path, notebooks_t)

    base = _nest(raw.get("base") or {}, "base", path)
    check.check("base", base)

    grid_raw = raw.get("grid") or {}
    if not isinstance(grid_raw, Mapping):
        raise ParamFileError(f"{path}: grid: expected a mapping of dotted keys to lists of values")
    grid: dict[str, list[Any]] = {}
    for key, values in grid_raw.items():
        if not isinstance(values, list):
            raise ParamFileError(f"{path}: grid: {key!r} should be a list of values, got {values!r}")
        if not values:
            raise ParamFileError(f"{path}: grid: {key!r} has an empty list of values; the grid would hold no sets")
        for value in values:
            check.check(f"grid.{key}", _nest({key: value}, "grid", path))
        grid[str(key)] = values

    when_raw = raw.get("when") or []
    if not isinstance(when_raw, list):
        raise ParamFileError(f"{path}: when: expected a list of {{if: ..., set: ...}} rules")
    when = []
    for k, rule in enumerate(when_raw):
        where = f"when[{k}]"
        if not isinstance(rule, Mapping) or set(rule) != {"if", "set"}:
            raise ParamFileError(f"{path}: {where}: each rule needs exactly the keys 'if' and 'set', got {rule!r}")
        condition = _nest(rule["if"], f"{where}.if", path)
        if not condition:
            raise ParamFileError(f"{path}: {where}.if: empty condition")
        check.check(f"{where}.if", condition)
        addition = _nest(rule["set"], f"{where}.set", path)
        check.check(f"{where}.set", addition)
        when.append((flatten_record(condition), addition))

    sets_raw = raw.get("sets") or []
    if not isinstance(sets_raw, list):
        raise ParamFileError(f"{path}: sets: expected a list of parameter sets")
    sets = []
    for k, extra in enumerate(sets_raw):
        nested = _nest(extra, f"sets[{k}]", path)
        check.check(f"sets[{k}]", nested)
        sets.append(nested)

    description = raw.get("description")
    if description is not None and not isinstance(description, str):
        raise ParamFileError(f"{path}: description: expected text")
    return ParamFile(
        path=path,
        root=root,
        notebooks=notebooks_t,
        base=base,
        grid=grid,
        when=when,
        sets=sets,
        description=description,
    )


def _applies(condition: dict[str, Any], pset: dict[str, Any], notebooks: tuple[NotebookParams, ...]) -> bool:
    """Whether every dotted value of `condition` holds in `pset` (falling back on notebook defaults)."""
    for dotted, wanted in condition.items():
        value = _get(pset, dotted)
        if value is _MISSING:
            value = next((v for nb in notebooks if (v := _get(nb.defaults, dotted)) is not _MISSING), _MISSING)
        if value is _MISSING or canonical_json(value) != canonical_json(wanted):
            return False
    return True


def expand(pf: ParamFile) -> list[dict[str, Any]]:
    """The parameter sets of a file: grid product over base, then explicit sets; `when` applied.

    Sets are nested dicts holding only what the file gives (notebooks fill in their
    defaults). Duplicates (the same set reached twice) are dropped, order kept.
    """
    combos = [dict(zip(pf.grid, values)) for values in itertools.product(*pf.grid.values())]
    candidates = [_deep_merge(pf.base, _nest(c, "grid", pf.path)) for c in combos]
    candidates += [_deep_merge(pf.base, extra) for extra in pf.sets]
    out, seen = [], set()
    for pset in candidates:
        for condition, addition in pf.when:
            if _applies(condition, pset, pf.notebooks):
                pset = _deep_merge(pset, addition)
        key = canonical_json(pset)
        if key not in seen:
            seen.add(key)
            out.append(pset)
    return out
