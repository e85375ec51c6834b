"""The notebooks and `robustreach train` agree on the models, and defaults live in one place.

The notebooks' own code is the independent side: each notebook's cells run in this process
(its parameters cell, then what papermill would inject, then its code) until it asks the
results index for models, and the hyperparameters it asks for are compared with what
`robustreach train FILE --dry-run` lists. Nothing is trained.
"""

from pathlib import Path

import pytest
from papermill.translators import PythonTranslator
from typer.testing import CliRunner

from robustreach import experiment
from robustreach.cli.main import app
from robustreach.fixed_points.cache import SWEEP_DEFAULTS, sweep_options
from robustreach.hashing import params_hash
from robustreach.options import (
    PART_DEFAULTS,
    EvaluationOptions,
    FiguresPage,
    ImpulseOptions,
    JacobianOptions,
    OneStepOptions,
    SECTIONS,
    ReplicateSelection,
    SweepOptions,
)
from robustreach.paramfiles import expand, file_models, load_paramfile
from robustreach.qmd import read_notebook

ROOT = Path(__file__).resolve().parents[1]


class _Requested(Exception):
    """Raised by the stand-in for `trained_models`: the notebook has said what it needs."""

    def __init__(self, hps):
        self.hps = hps


def run_until_models(notebook: Path, injected: dict, monkeypatch) -> tuple[dict, list]:
    """Run a notebook's code cells until it asks for trained models; its namespace and request."""

    def requested(store, hps, **kwargs):
        raise _Requested(hps)

    monkeypatch.setattr(experiment, "trained_models", requested)
    namespace: dict = {}
    ran_setup = False
    for cell in read_notebook(notebook).cells:
        if cell.cell_type != "code":
            continue
        if "parameters" in cell.metadata.get("tags", []):
            exec(compile(cell.source, f"{notebook} parameters", "exec"), namespace)  # noqa: S102 -- our own notebooks
            exec(PythonTranslator.codify(injected), namespace)  # noqa: S102 -- what papermill injects
            continue
        if ran_setup and "trained_models(" not in cell.source:
            break  # later cells (figures, tables) need the models
        try:
            exec(compile(cell.source, f"{notebook} cell", "exec"), namespace)  # noqa: S102
        except _Requested as request:
            return namespace, request.hps
        ran_setup = True
    return namespace, []


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBUSTREACH_RESULTS", str(tmp_path / "results"))
    return tmp_path / "results"


@pytest.mark.parametrize("part", ["demo", "part1", "part2"])
def test_train_trains_exactly_the_models_the_notebooks_request(part, results, monkeypatch):
    pf = load_paramfile(ROOT / "params" / f"{part}.yml")
    requested = {}
    for pset in expand(pf):
        for nb in pf.notebooks:
            _, hps = run_until_models(nb.path, nb.parameters_for(pset), monkeypatch)
            requested.update({params_hash(hp.to_dict()): hp for hp in hps})
    planned = {m.hash: m.hyperparameters for m in file_models(pf)}
    assert set(planned) == set(requested)
    # the command lists the same hashes, and trains nothing in a dry run
    out = CliRunner().invoke(app, ["train", str(pf.path), "--dry-run", "--results", str(results)])
    assert out.exit_code == 0, out.output
    listed = {line.split()[0] for line in out.output.splitlines()[1:]}
    assert listed == {h[:12] for h in requested}
    assert not (results / "models").exists()
    # what the models are, stated independently of both
    kinds = sorted((hp.context.variant, hp.perturbation.type, hp.perturbation.std) for hp in requested.values())
    expected = {
        "demo": [("binary", "curl", 1.0), ("none", "curl", 0.0), ("none", "curl", 1.0)],
        "part1": sorted([("none", "curl", s) for s in (0.0, 0.5, 1.0, 1.5)] + [("none", "constant", s) for s in (0.0, 0.01, 0.1, 1.0)]),
        "part2": sorted([(v, "curl", s) for v in ("binary", "binary", "amplitude", "std_scaled") for s in (0.8, 1.6)]),
    }[part]
    assert kinds == expected


def _defaults(model, part, name):
    """The library's defaults of an option set, with the part's own values over them."""
    return model(**PART_DEFAULTS[part].get(name, {})).model_dump(mode="json")


def test_notebooks_use_the_library_defaults_when_the_file_is_silent(results, monkeypatch):
    pf = load_paramfile(ROOT / "params" / "demo.yml")
    silent = {}
    effective = {}
    for nb in pf.notebooks:
        namespace, _ = run_until_models(nb.path, nb.parameters_for(silent), monkeypatch)
        effective[nb.path.relative_to(ROOT).as_posix()] = namespace
    behaviour1, behaviour2 = effective["notebooks/part1/behaviour.qmd"], effective["notebooks/part2/behaviour.qmd"]
    impulses, figures = effective["notebooks/part1/impulses.qmd"], effective["notebooks/figures.qmd"]
    fixed_points, jacobians = effective["notebooks/part2/fixed-points.qmd"], effective["notebooks/part2/jacobians.qmd"]

    assert behaviour1["p"]["evaluation"] == _defaults(EvaluationOptions, "part1", "evaluation")
    assert behaviour1["p"]["evaluation"]["amplitudes"]["curl"] == [0.0, 0.5, 1.0, 2.0, 4.0]
    assert behaviour2["p"]["evaluation"] == _defaults(EvaluationOptions, "part2", "evaluation")
    assert impulses["p"]["impulses"] == ImpulseOptions().model_dump(mode="json")
    assert impulses["p"]["evaluation"] == behaviour1["p"]["evaluation"]  # replicate selection sees the same reaches
    for namespace in (behaviour1, behaviour2, impulses):
        assert namespace["p"]["replicate_selection"] == ReplicateSelection().model_dump() == {"measure": "endpoint_error", "k": 2.0}
    # the goal sweep: one definition, shared by both notebooks, and what the cache fills in
    assert fixed_points["options"] == jacobians["options"] == sweep_options(_defaults(SweepOptions, "part2", "fixed_points"))
    assert SWEEP_DEFAULTS == SweepOptions().model_dump() == sweep_options({}) == sweep_options(None)
    assert jacobians["p"]["one_step"] == OneStepOptions().model_dump()
    assert jacobians["slow_tau"] == pytest.approx(JacobianOptions().slow_tau_steps * 0.05)
    assert fixed_points["p"]["show_replicates"] == jacobians["p"]["show_replicates"] == [0]
    assert figures["page"] == FiguresPage().model_dump()
    # every notebook of a part sees the same hyperparameters: the part's
    for part, names in {"part1": ["train", "behaviour", "impulses"], "part2": ["train", "behaviour", "fixed-points", "jacobians"]}.items():
        sections = [{k: v for k, v in effective[f"notebooks/{part}/{n}.qmd"]["p"].items() if k in SECTIONS}
                    for n in names]
        assert all(s == sections[0] for s in sections)
        assert sections[0] == {k: v for k, v in experiment.part_defaults(part).items() if k in SECTIONS}


def test_an_analysis_option_given_by_a_file_reaches_the_notebook(results, monkeypatch):
    pf = load_paramfile(ROOT / "params" / "part1.yml")
    (pset, *_) = expand(pf)
    nb = next(nb for nb in pf.notebooks if nb.path.name == "behaviour.qmd")
    namespace, hps = run_until_models(nb.path, nb.parameters_for(pset), monkeypatch)
    evaluation = namespace["p"]["evaluation"]
    assert (evaluation["n_directions"], evaluation["n_realisations"]) == (24, 2)  # params/part1.yml
    assert evaluation["seed"] == EvaluationOptions().seed  # the rest: library defaults
    assert {hp.controller.hidden_size for hp in hps} == {50}
    assert len(hps) == 4


SIDE_EFFECT = """---
title: side effect
---

```{{python}}
#| tags: [parameters]
part = "part1"
hyperparameters = {{}}
import pathlib; pathlib.Path({marker!r}).write_text("the cell ran")
```
"""


@pytest.mark.parametrize("command", [["train"], ["batch", "--dry-run"], ["batch"]])
def test_a_parameters_cell_with_a_side_effect_is_never_run(tmp_path, command):
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    marker = tmp_path / "marker.txt"
    (project / "nb.qmd").write_text(SIDE_EFFECT.format(marker=str(marker)))
    params = project / "p.yml"
    params.write_text("notebooks: [nb.qmd]\nbase: {train.n_batches: 3}\n")
    out = CliRunner().invoke(app, [*command, str(params), "--results", str(tmp_path / "results")])
    assert out.exit_code == 2, out.output
    assert "parameters cell, line 4: only assignments of plain values" in out.output
    assert not marker.exists()
    assert not (tmp_path / "results" / "runs").exists()


def test_batch_dry_run_lists_sets_models_and_runs_and_does_nothing(results):
    from robustreach.store import ResultsStore

    pf = load_paramfile(ROOT / "params" / "demo.yml")
    planned = file_models(pf)
    trained = planned[0]  # pretend this one is in the index
    store = ResultsStore(results)
    store.insert("models", {"params_hash": trained.hash, "status": "ok", "hyperparameters": trained.hyperparameters.to_dict()})
    out = CliRunner().invoke(app, ["batch", str(pf.path), "--dry-run", "--results", str(results)])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].endswith("demo.yml: 1 parameter set(s)")
    assert lines[1].startswith("  set 0: ") and '"n_batches": 300' in lines[1]
    models = [line.split() for line in lines if line.startswith("  ") and line.split()[0] in {m.hash[:12] for m in planned}]
    assert {m[0]: m[1] for m in models} == {m.hash[:12]: "exists" if m is trained else "missing" for m in planned}
    runs = [line for line in lines if line.startswith("  notebooks/")]
    assert [r.split()[0] for r in runs] == [nb.name for nb in pf.notebooks]  # one set: one run per notebook, in order
    assert all(r.endswith("to run") for r in runs)
    assert not (results / "runs").exists() and not (results / "models").exists()
