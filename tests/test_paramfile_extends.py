"""Parameter files that build on others (`extends`), and schedules given as fractions of the run."""

import os
import textwrap
from pathlib import Path

import pytest
from robustreach.config import TrainConfig, load_hyperparameters
from robustreach.hashing import params_hash
from robustreach.paramfiles import ParamFileError, expand, file_models, load_paramfile

REPO = Path(__file__).resolve().parent.parent
ECHO = (REPO / "tests/fixtures/notebooks/echo.qmd").read_text()


@pytest.fixture
def project(tmp_path):
    """A project folder with the echo notebook; files written into it by `put`."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / "echo.qmd").write_text(ECHO)
    return tmp_path


def put(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body))
    return path


def test_a_child_merges_over_its_parent(project):
    put(project, "params/parent.yml", """\
        description: parent
        notebooks: [nb/echo.qmd]
        base: {cfg: {n: 1, label: p}, repeats: 2}
        grid: {cfg.scale: [0.5, 1.0]}
        when:
          - if: {cfg.label: p}
            set: {cfg.fail: true}
        sets:
          - {cfg.n: 9}
        """)
    child = put(project, "params/short/child.yml", """\
        extends: ../parent.yml        # relative to this file
        base: {cfg.n: 5}              # merged into the parent's base, key by key
        grid: {cfg.scale: [2.0]}      # replaces the parent's values of this key
        when:
          - if: {cfg.scale: 2.0}
            set: {repeats: 7}
        """)
    pf = load_paramfile(child)
    assert pf.description == "parent" and [nb.name for nb in pf.notebooks] == ["nb/echo.qmd"]
    assert pf.extends == ((project / "params" / "parent.yml").resolve(),)
    assert expand(pf) == [
        {"cfg": {"n": 5, "label": "p", "scale": 2.0, "fail": True}, "repeats": 7},  # both rules, parent's first
        {"cfg": {"n": 9, "label": "p", "fail": True}, "repeats": 2},  # the parent's set, over the merged base
    ]
    # a child's own `sets` replace the parent's; `sets: []` removes them
    put(project, "params/short/child.yml", "extends: ../parent.yml\nsets: []\n")
    assert len(expand(load_paramfile(child))) == 2


def test_only_the_files_own_when_rules_warn_when_they_match_nothing(project):
    """Narrowing a parent's grid leaves the parent's rules for the dropped values unmatched, as
    meant; a rule written in the child that matches nothing is still worth a warning."""
    from robustreach.paramfiles import ParamFileWarning

    put(project, "params/parent.yml", """\
        notebooks: [nb/echo.qmd]
        grid: {cfg.label: [a, b]}
        when:
          - if: {cfg.label: b}
            set: {repeats: 3}
        """)
    child = put(project, "params/child.yml", """\
        extends: parent.yml
        grid: {cfg.label: [a]}
        when:
          - if: {cfg.n: 99}
            set: {repeats: 4}
        """)
    with pytest.warns(ParamFileWarning) as caught:
        pf = load_paramfile(child)
    assert [str(w.message) for w in caught] == list(pf.warnings)
    assert len(pf.warnings) == 1 and pf.warnings[0].startswith(f"{child}, line 4: when[1] matches no parameter set")
    assert expand(pf) == [{"cfg": {"label": "a"}}]


def test_extends_chains_and_refuses_cycles_and_the_outside(project, tmp_path_factory):
    put(project, "a.yml", "extends: b.yml\nbase: {repeats: 3}\n")
    put(project, "b.yml", "extends: c.yml\nbase: {cfg.n: 4}\n")
    put(project, "c.yml", "notebooks: [nb/echo.qmd]\nbase: {cfg.n: 1, repeats: 1}\n")
    assert expand(load_paramfile(project / "a.yml")) == [{"cfg": {"n": 4}, "repeats": 3}]

    put(project, "c.yml", "extends: a.yml\nnotebooks: [nb/echo.qmd]\n")
    with pytest.raises(ParamFileError, match=r"c\.yml, line 1: extends: 'a\.yml' makes a cycle: .*a\.yml -> .*b\.yml -> .*c\.yml -> .*a\.yml"):
        load_paramfile(project / "a.yml")
    put(project, "self.yml", "notebooks: [nb/echo.qmd]\nextends: ./self.yml\n")
    with pytest.raises(ParamFileError, match=r"self\.yml, line 2: extends: './self\.yml' makes a cycle"):
        load_paramfile(project / "self.yml")

    elsewhere = tmp_path_factory.mktemp("elsewhere")
    put(elsewhere, "other.yml", "notebooks: [nb/echo.qmd]\n")
    for target in (os.path.relpath(elsewhere / "other.yml", project), str(elsewhere / "other.yml")):
        put(project, "out.yml", f"extends: {target}\n")
        with pytest.raises(ParamFileError, match="is outside the project"):
            load_paramfile(project / "out.yml", root=project)
    put(project, "missing.yml", "extends: nope.yml\n")
    with pytest.raises(ParamFileError, match=r"nope\.yml not found"):
        load_paramfile(project / "missing.yml")


def test_errors_name_the_file_that_gives_the_key(project):
    parent = put(project, "parent.yml", "notebooks: [nb/echo.qmd]\nbase:\n  cfg.n: 1\n  cfg.scale: x\n")
    child = put(project, "child.yml", "extends: parent.yml\nbase: {repeats: 2}\n")
    with pytest.raises(ParamFileError, match=rf"^{parent}, line 4: base: 'cfg.scale' should be float"):
        load_paramfile(child)
    put(project, "parent.yml", "notebooks: [nb/echo.qmd]\n")
    put(project, "child.yml", "extends: parent.yml\nbase:\n  repeats: two\n")
    with pytest.raises(ParamFileError, match=rf"^{child}, line 3: base: 'repeats' should be int"):
        load_paramfile(child)


def test_schedule_fractions_become_batches_of_this_run():
    train = TrainConfig(n_batches=2000, constant_lr_batches=0.5, opt_reset_batches=[0.05, 0.5], pretrain_batches=0.1,
                        ramp_batches=0.1, train_from={"readout": 0.25})
    assert (train.constant_lr_batches, train.opt_reset_batches, train.pretrain_batches, train.ramp_batches) == (1000, [100, 1000], 200, 200)
    assert train.train_from == {"readout": 500}
    assert TrainConfig(n_batches=7, opt_reset_batches=[0.01]).opt_reset_batches == [1]  # a reset at batch 0 never fires
    # the same model, however its schedule is written: one hash
    as_batches = load_hyperparameters({"train": {"n_batches": 300, "pretrain_batches": 30, "ramp_batches": 60}})
    as_fractions = load_hyperparameters({"train": {"n_batches": 300, "pretrain_batches": 0.1, "ramp_batches": 0.2}})
    assert params_hash(as_batches.to_dict()) == params_hash(as_fractions.to_dict())
    # a whole number of batches is still a number of batches, and 1.5 is neither
    assert TrainConfig(pretrain_batches=5.0).pretrain_batches == 5
    with pytest.raises(ValueError, match="pretrain_batches"):
        TrainConfig(pretrain_batches=1.5)


def test_a_shortened_real_part_keeps_the_shape_of_its_schedule():
    short = REPO / "params" / "_test_part1_short.yml"  # beside part1.yml, inside the project
    short.write_text("extends: part1.yml\nbase:\n  train.n_batches: 2000\n")
    try:
        full, shortened = file_models(load_paramfile(REPO / "params" / "part1.yml")), file_models(load_paramfile(short))
    finally:
        short.unlink()
    assert len(full) == len(shortened) == 8
    for long_run, short_run in zip(full, shortened):
        a, b = long_run.hyperparameters.train, short_run.hyperparameters.train
        assert (a.n_batches, b.n_batches) == (10000, 2000)
        for name in ("constant_lr_batches", "pretrain_batches", "ramp_batches"):
            assert getattr(b, name) / b.n_batches == getattr(a, name) / a.n_batches
        assert [r / b.n_batches for r in b.opt_reset_batches] == [r / a.n_batches for r in a.opt_reset_batches] == [0.05, 0.5]
        assert long_run.hyperparameters.perturbation == short_run.hyperparameters.perturbation
        assert (b.pretrain_batches, b.ramp_batches, b.opt_reset_batches) == (200, 200, [100, 1000])


def test_every_part_has_its_parameter_file_and_quarto_profile():
    """`robustreach run PART` reads params/PART.yml; `quarto render --profile PART` needs
    _quarto-PART.yml: each part the CLI accepts has both, and each file is valid."""
    from robustreach.cli.batch import PARTS

    root = Path(__file__).resolve().parents[1]
    for part in PARTS:
        assert (root / f"_quarto-{part}.yml").is_file(), part
        assert load_paramfile(root / "params" / f"{part}.yml", root=root).notebooks
