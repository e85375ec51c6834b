"""Parameter files: expansion (grid product, conditional additions, extra sets) and validation."""

import itertools
import textwrap
from pathlib import Path

import pytest
from robustreach.paramfiles import ParamFileError, expand, load_paramfile, notebook_defaults

REPO = Path(__file__).resolve().parent.parent
ECHO = "tests/fixtures/notebooks/echo.qmd"
FIGURE = "tests/fixtures/notebooks/figure.qmd"


def write(tmp_path: Path, body: str, notebooks=(ECHO, FIGURE)) -> Path:
    path = tmp_path / "part.yml"
    path.write_text(f"notebooks: [{', '.join(notebooks)}]\n" + textwrap.dedent(body))
    return path


def load(tmp_path, body, **kw):
    return load_paramfile(write(tmp_path, body, **kw), root=REPO)


def test_notebook_defaults_come_from_the_parameters_cell():
    assert notebook_defaults(REPO / ECHO) == {
        "cfg": {"n": 3, "scale": 0.5, "label": "a", "fail": False, "sizes": [1, 2]},
        "repeats": 1,
    }


def test_grid_is_the_cartesian_product_over_base(tmp_path):
    pf = load(
        tmp_path,
        """
        base: {cfg: {label: b}, style.width: 300}
        grid:
          cfg.n: [1, 2, 3]
          cfg.scale: [0.5, 2]
          style.color: [red, blue]
        """,
    )
    sets = expand(pf)
    expected = [
        {"cfg": {"label": "b", "n": n, "scale": s}, "style": {"width": 300, "color": c}}
        for n, s, c in itertools.product([1, 2, 3], [0.5, 2], ["red", "blue"])
    ]
    assert sets == expected


def test_no_grid_gives_base_alone_and_sets_are_added(tmp_path):
    pf = load(
        tmp_path,
        """
        base: {cfg.n: 4}
        sets:
          - {cfg.fail: true}
          - {cfg: {n: 5, label: z}}
          - {cfg.n: 4}            # the same as base: dropped
        """,
    )
    assert expand(pf) == [
        {"cfg": {"n": 4}},
        {"cfg": {"n": 4, "fail": True}},
        {"cfg": {"n": 5, "label": "z"}},
    ]


def test_when_rules_apply_in_order_and_see_notebook_defaults(tmp_path):
    pf = load(
        tmp_path,
        """
        grid:
          cfg.n: [1, 2]
          cfg.fail: [false, true]
        when:
          - if: {cfg.n: 2, cfg.fail: false}
            set: {cfg.label: two}
          - if: {cfg.label: two}          # matches what the previous rule set
            set: {repeats: 5}
          - if: {cfg.label: a}            # the notebook default label is "a"
            set: {style.color: green}
        """,
    )
    sets = expand(pf)
    by_key = {(s["cfg"]["n"], s["cfg"]["fail"]): s for s in sets}
    assert len(sets) == 4
    assert by_key[(2, False)] == {"cfg": {"n": 2, "fail": False, "label": "two"}, "repeats": 5}
    for key in [(1, False), (1, True), (2, True)]:
        assert by_key[key] == {"cfg": {"n": key[0], "fail": key[1]}, "style": {"color": "green"}}


def test_parameters_for_merges_defaults_and_keeps_types(tmp_path):
    pf = load(tmp_path, "base: {cfg: {scale: 2, n: 7}, style.width: 100, repeats: 3}\n")
    (pset,) = expand(pf)
    echo, figure = pf.notebooks
    injected = echo.parameters_for(pset)
    assert injected == {"cfg": {"n": 7, "scale": 2.0, "label": "a", "fail": False, "sizes": [1, 2]}, "repeats": 3}
    assert type(injected["cfg"]["scale"]) is float  # int given where the default is a float
    assert type(injected["cfg"]["n"]) is int
    # figure.qmd declares cfg.n and cfg.scale, and style; it gets no `repeats` or `cfg.label`.
    assert figure.parameters_for(pset) == {"cfg": {"n": 7, "scale": 2.0}, "style": {"color": "royalblue", "width": 100}}


def test_exponent_floats_are_numbers(tmp_path):
    (pset,) = expand(load(tmp_path, "base: {cfg.scale: 1e-3}\n"))
    assert pset["cfg"]["scale"] == pytest.approx(0.001)


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ("base: {cfg: {nn: 1}}\n", ["base", "unknown parameter 'cfg.nn'", "'cfg' has"]),
        ("base: {zzz: 1}\n", ["base", "unknown parameter 'zzz'", "cfg, repeats, style"]),
        ("base: {cfg.n: 1.5}\n", ["base", "'cfg.n' should be int", "float 1.5"]),
        ("base: {cfg.fail: 1}\n", ["'cfg.fail' should be bool", "int 1"]),
        ("base: {cfg.scale: true}\n", ["'cfg.scale' should be float", "bool True"]),
        ("base: {cfg.sizes: [1, x]}\n", ["'cfg.sizes' should be list"]),
        ("base: {cfg: 3}\n", ["'cfg' is a section", "got 3"]),
        ("grid: {cfg.n: []}\n", ["grid", "'cfg.n'", "empty list"]),
        ("grid: {cfg.n: 3}\n", ["grid", "'cfg.n' should be a list"]),
        ("grid: {cfg.n: [1, two]}\n", ["grid.cfg.n", "'cfg.n' should be int", "str 'two'"]),
        ("grid: {style.width.px: [1]}\n", ["'style.width.px'", "not a section"]),
        ("when: [{if: {cfg.n: 1}}]\n", ["when[0]", "'if' and 'set'"]),
        ("when: [{if: {cfg.m: 1}, set: {repeats: 2}}]\n", ["when[0].if", "'cfg.m'"]),
        ("when: [{if: {cfg.n: 1}, set: {repeats: x}}]\n", ["when[0].set", "'repeats' should be int"]),
        ("sets: [{cfg.label: 5}]\n", ["sets[0]", "'cfg.label' should be str"]),
        ("base: {cfg.n: 1, cfg: {n: 2}}\n", ["base", "'cfg.n' is given twice"]),
        ("base: {cfg.n: 1, cfg.n.x: 2}\n", ["base", "'cfg.n' is given twice"]),
        ("when: [{if: {cfg.fail: 0}, set: {repeats: 2}}]\n", ["when[0].if", "'cfg.fail' should be bool", "int 0"]),
        ("bsae: {}\n", ["unknown top-level key", "'bsae'"]),
    ],
)
def test_validation_errors_name_file_and_key(tmp_path, body, fragments):
    path = write(tmp_path, body)
    with pytest.raises(ParamFileError) as error:
        load_paramfile(path, root=REPO)
    message = str(error.value)
    assert message.startswith(str(path))
    for fragment in fragments:
        assert fragment in message


def test_notebook_problems_are_reported(tmp_path):
    with pytest.raises(ParamFileError, match="'notebooks/nope.qmd' not found"):
        load(tmp_path, "base: {}\n", notebooks=["notebooks/nope.qmd"])
    bare = tmp_path / "bare.qmd"
    bare.write_text("```{python}\nx = 1\n```\n")
    with pytest.raises(ParamFileError, match="no cell tagged `parameters`"):
        load_paramfile(write(tmp_path, "base: {}\n", notebooks=["bare.qmd"]), root=tmp_path)
    broken = tmp_path / "broken.qmd"
    broken.write_text("```{python}\n#| tags: [parameters]\nx = undefined_name\n```\n")
    with pytest.raises(ParamFileError, match=r"broken\.qmd: parameters cell, line 2: 'undefined_name' is not a plain value"):
        load_paramfile(write(tmp_path, "base: {}\n", notebooks=["broken.qmd"]), root=tmp_path)
    with pytest.raises(ParamFileError, match="expected a non-empty list"):
        load_paramfile(write(tmp_path, "", notebooks=[]), root=tmp_path)


def test_unparsable_yaml_names_the_file(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("notebooks: [a\n")
    with pytest.raises(ParamFileError, match=r"bad\.yml: not valid YAML"):
        load_paramfile(path, root=REPO)


# --- issue 11: read as data, contained, and every mistake named with its line -----------------

SIDE_EFFECT_CELL = """---
title: side effect
---

```{{python}}
#| tags: [parameters]
cfg = {{"n": 3}}
open({marker!r}, "w").write("executed")
```
"""


def test_the_parameters_cell_is_parsed_not_executed(tmp_path):
    marker = tmp_path / "marker.txt"
    nb = tmp_path / "nb.qmd"
    nb.write_text(SIDE_EFFECT_CELL.format(marker=str(marker)))
    with pytest.raises(ParamFileError, match=r"nb\.qmd: parameters cell, line 3: only assignments of plain values"):
        notebook_defaults(nb)
    with pytest.raises(ParamFileError, match="only assignments of plain values"):
        load_paramfile(write(tmp_path, "base: {}\n", notebooks=["nb.qmd"]), root=tmp_path)
    assert not marker.exists()
    # plain values of every kind are read, tuples as lists, private names left out
    nb.write_text('```{python}\n#| tags: [parameters]\n"""doc"""\na = b = {"x": (1, 2.5)}\nc: int = -3\n_hidden = None\n```\n')
    assert notebook_defaults(nb) == {"a": {"x": [1, 2.5]}, "b": {"x": [1, 2.5]}, "c": -3}


@pytest.mark.parametrize("name", ["../outside.qmd", "{abs}", "tests/../../outside.qmd"])
def test_notebooks_outside_the_project_are_rejected(tmp_path, name):
    project = tmp_path / "project"
    project.mkdir()
    outside = tmp_path / "outside.qmd"
    outside.write_text((REPO / ECHO).read_text())
    name = name.format(abs=outside)
    path = project / "p.yml"
    path.write_text(f"notebooks: [{name}]\n")
    with pytest.raises(ParamFileError, match="is outside the project"):
        load_paramfile(path, root=project)


def _error(tmp_path, body, **kw) -> str:
    path = write(tmp_path, body, **kw)
    with pytest.raises(ParamFileError) as error:
        load_paramfile(path, root=REPO)
    return str(error.value)


def test_duplicate_keys_are_errors_with_their_line(tmp_path):
    message = _error(tmp_path, "base:\n  cfg:\n    n: 20\n    n: 5000\n")
    assert message.startswith(f"{tmp_path / 'part.yml'}, line 5: duplicate key 'n' (first given on line 4)")
    message = _error(tmp_path, "base: {cfg.n: 1}\ngrid: {cfg.scale: [1.0]}\nbase: {repeats: 2}\n")
    assert "line 4: duplicate key 'base' (first given on line 2)" in message


@pytest.mark.parametrize("value", [".nan", ".inf", "-.Inf", ".NaN"])
def test_nan_and_infinity_are_errors_with_their_line(tmp_path, value):
    message = _error(tmp_path, f"base:\n  cfg.n: 1\n  cfg.scale: {value}\n")
    assert message.startswith(f"{tmp_path / 'part.yml'}, line 4: {value!r} is not a finite number")


def test_a_when_rule_that_matches_nothing_warns_with_its_line(tmp_path):
    from robustreach.paramfiles import ParamFileWarning

    path = write(tmp_path, "grid: {cfg.n: [1, 2]}\nwhen:\n  - if: {cfg.n: 1}\n    set: {repeats: 2}\n  - if: {cfg.n: 7}\n    set: {repeats: 3}\n")
    with pytest.warns(ParamFileWarning) as caught:
        pf = load_paramfile(path, root=REPO)
    expected = f"{path}, line 6: when[1] matches no parameter set"
    assert [str(w.message) for w in caught if expected in str(w.message)]
    assert len(pf.warnings) == 1 and pf.warnings[0].startswith(expected)  # when[0] matches: no warning


def test_schema_errors_name_file_line_key_and_value(tmp_path):
    nb = "notebooks/part1/train.qmd"
    message = _error(tmp_path, "base:\n  train:\n    n_batches: 50\n    learning_rate: -1\n", notebooks=[nb])
    assert f"{tmp_path / 'part.yml'}, line 5: base" in message
    assert "train.learning_rate = -1" in message and "greater than 0" in message
    message = _error(tmp_path, "base: {train.lr: 0.1}\n", notebooks=[nb])
    assert "line 2: base" in message and "unknown parameter 'train.lr'" in message and "learning_rate" in message
    message = _error(tmp_path, "grid:\n  controller.hidden_size: [8, many]\n", notebooks=[nb])
    assert "line 3: grid.controller.hidden_size" in message and "'many'" in message
    # a rule across fields, checked on the whole set as the notebook resolves it
    message = _error(tmp_path, "base: {train.n_batches: 100}\nsets:\n  - {train.pretrain_batches: 200}\n", notebooks=[nb])
    assert "line 4 (sets[0])" in message and "pretrain_batches=200 leaves no perturbed training" in message
    message = _error(tmp_path, "base: {hyperparameters.train.n_batches: 5}\n", notebooks=[nb])
    assert "write the hyperparameter sections at the top level" in message


@pytest.mark.parametrize(("key", "value"), [("train.batch_size", 100_000_000), ("task.n_steps", 100_000_000),
                                            ("train.n_batches", 1_000_000_000_000)])
def test_oversize_sets_are_refused_with_a_memory_estimate(tmp_path, key, value):
    from robustreach.options import physical_memory_bytes

    message = _error(tmp_path, f"base:\n  train.n_replicates: 2\n  {key}: {value}\n", notebooks=["notebooks/part1/train.qmd"])
    assert message.startswith(f"{tmp_path / 'part.yml'}, line 4 (base): set 0 for notebooks/part1/train.qmd: {key}")
    estimate = float(message.split("need about ")[1].split(" GiB")[0].replace(",", ""))
    assert estimate * 2**30 > physical_memory_bytes()
    assert f"{physical_memory_bytes() / 2**30:,.1f} GiB of memory" in message
