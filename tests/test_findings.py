"""The findings tables and figures, regenerated from the demo's results index (conftest's
`demo_project`): runs with their minutes, models by hash, PNG copies of the figures."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from browser import needs_chromium
from robustreach.findings import (
    export_part_figures,
    figure_summaries,
    findings_markdown,
    part_findings,
    saved_summaries,
    summarise_points,
)
from robustreach.paramfiles import file_models, load_paramfile
from robustreach.plots.traces import trace_table
from robustreach.store import ResultsStore

pytestmark = pytest.mark.slow


def test_runs_and_models_are_those_of_the_index(demo_project):
    results = demo_project / "results"
    findings = part_findings(demo_project / "params/demo.yml", results, root=demo_project)
    store = ResultsStore(results)
    for row in findings.runs.itertuples():
        record = store.get("runs", row.run)  # the short hash names the record
        assert (row.status, row.minutes) == (record["status"], round(record["duration_s"] / 60, 1))
        assert record["notebook"] == row.notebook
    assert set(findings.runs["notebook"]) == {nb.name for nb in load_paramfile(demo_project / "params/demo.yml").notebooks}

    planned = file_models(load_paramfile(demo_project / "params/demo.yml", root=demo_project))
    assert len(findings.models) == len(planned) == len(findings.model_hashes)
    for row, full_hash in zip(findings.models.itertuples(), findings.model_hashes):
        record = store.get("models", full_hash)
        assert full_hash.startswith(row.model) and record["status"] == row.status == "ok"
        assert (results / record["files"]["model"]).is_file()
        assert row.batches == record["n_batches_run"]
    # the training condition: what differs among the demo's models
    assert sorted(findings.models["perturbation.std"]) == sorted(m.hyperparameters.perturbation.std for m in planned)
    page = findings_markdown(findings, [], relative_to=demo_project)
    assert all(h in page for h in [*findings.runs["run"], *findings.models["model"]])


def test_a_run_the_index_lacks_shows_as_not_run(demo_project, tmp_path):
    params = yaml.safe_load((demo_project / "params/demo.yml").read_text())
    params.setdefault("base", {})["jacobians.slow_tau_steps"] = 17.0  # run by no one
    changed = demo_project / "params" / "demo-findings.yml"
    changed.write_text(yaml.safe_dump(params))
    try:
        findings = part_findings(changed, demo_project / "results", root=demo_project)
    finally:
        changed.unlink()
    status = dict(zip(findings.runs["notebook"], findings.runs["status"]))
    assert status.pop("notebooks/part2/jacobians.qmd") == "not run"
    assert set(status.values()) == {"ok"}


@needs_chromium
def test_figures_of_the_part_are_exported_as_png(demo_project, tmp_path):
    results = demo_project / "results"
    findings = part_findings(demo_project / "params/demo.yml", results, root=demo_project)
    paths = export_part_figures(findings, results, tmp_path / "figures", ["behaviour/aligned_trajectories"])
    records = [r for r in ResultsStore(results).find_figures("behaviour/aligned_trajectories")
               if set(r["model_hashes"]) <= set(findings.model_hashes)]
    assert len(paths) == len(records) >= 1
    for path in paths:
        assert path.suffix == ".png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = findings_markdown(findings, paths, relative_to=tmp_path)
    assert all(f"(figures/{Path(p).name})" in page for p in paths)


def test_measures_are_read_back_from_every_figure_of_the_part(demo_project):
    results = demo_project / "results"
    findings = part_findings(demo_project / "params/demo.yml", results, root=demo_project)
    identifier = "behaviour/distributions/endpoint_error"
    summaries = figure_summaries(findings, results, [identifier])
    records = [r for r in ResultsStore(results).find_figures(identifier) if set(r["model_hashes"]) <= set(findings.model_hashes)]
    assert len(summaries) == len(records) >= 1
    for summary in summaries:
        # one row per training condition and test amplitude, each over every trial drawn
        fig = ResultsStore(results).load_figure(next(r for r in records if r["identifier"] == summary.identifier))
        assert set(summary.table["trace"]) == {trace.name for trace in fig.data}
        assert (summary.table["n"] > 0).all() and (summary.table["q25"] <= summary.table["median"]).all()
    page = findings_markdown(findings, [], relative_to=demo_project, numbers=summaries)
    assert page.count("### ") == len(summaries)


def test_recorded_summaries_agree_with_the_figures_drawn_from_the_same_trials(demo_project):
    """Two routes to one number: the behaviour notebook's recorded summary (`behaviour/measures`)
    and the endpoint-error violins read back from its figure (the included replicates' trials)."""
    results = demo_project / "results"
    store = ResultsStore(results)
    findings = part_findings(demo_project / "params/demo.yml", results, root=demo_project)
    recorded = saved_summaries(findings, results, ["behaviour/measures"])
    assert len(recorded) >= 1
    figures = store.find_figures("behaviour/distributions/endpoint_error")
    for summary_record in store.find_summaries("behaviour/measures"):
        (figure,) = [f for f in figures if f["hyperparameters"]["test"] == summary_record["hyperparameters"]["test"]
                     and f["model_hashes"] == summary_record["model_hashes"]]
        drawn = summarise_points(trace_table(store.load_figure(figure)))
        summary = store.load_summary(summary_record)
        summary = summary[summary["measure"] == "endpoint_error"].set_index(["condition", "amplitude"])
        assert len(drawn) == len(summary)
        for row in drawn.itertuples():
            expected = summary.loc[(row.trace, row.x)]
            assert row.n == expected["n"]
            assert row.median == pytest.approx(expected["median"], rel=1e-6)
            assert (row.q25, row.q75) == pytest.approx((expected["q25"], expected["q75"]), rel=1e-6)
    page = findings_markdown(findings, [], relative_to=demo_project, numbers=recorded)
    assert page.count("`behaviour/measures`") == len(recorded)


def test_long_tables_go_to_csv_files_that_the_page_links(tmp_path):
    """A table longer than the limit is written as CSV (read back equal) and linked, not printed;
    a short one stays inline."""
    from robustreach.findings import NumbersTable, PartFindings, export_long_tables

    long = pd.DataFrame({"goal": range(7), "value": np.linspace(0.0, 1.0, 7)})
    short = pd.DataFrame({"goal": [0, 1], "value": [0.25, 0.5]})
    numbers = [NumbersTable("jacobians/input_singular_values", "sv", [("context", 1.0)], long),
               NumbersTable("fixed_points/continuum", "continuum", [], short)]
    exported = export_long_tables(numbers, tmp_path / "part", max_rows=5)
    assert exported[1].file is None
    path = exported[0].file
    assert path == tmp_path / "part" / "jacobians-input_singular_values__context=1.0.csv"
    pd.testing.assert_frame_equal(pd.read_csv(path), long)
    empty = PartFindings("part", tmp_path / "part.yml", pd.DataFrame(), pd.DataFrame(), [])
    page = findings_markdown(empty, [], relative_to=tmp_path, numbers=exported)
    assert "(part/jacobians-input_singular_values__context=1.0.csv)" in page and "| 0.8333 |" not in page
    assert "| 1 | 0.5 |" in page  # the short table, inline
