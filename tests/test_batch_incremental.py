"""Incremental batches: finished runs are skipped; changed parameters or notebooks rerun."""

import pytest
from batch_helpers import batch, make_project


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path)


def test_up_to_date_runs_are_skipped_and_changes_rerun(project):
    first = batch(project)
    ok_hashes = {r["hash"] for r in first.ok}
    again = batch(project)
    # Finished runs are skipped; failed ones are tried again.
    assert {r["hash"] for r in again.skipped} == ok_hashes
    assert len(again.failed) == 1 and not again.ok

    # A changed parameter file: only the new set runs.
    (project / "params/demo.yml").write_text(
        "notebooks: [notebooks/echo.qmd]\nbase: {cfg: {scale: 2, label: batch}}\ngrid: {cfg.n: [1, 2, 4]}\n"
    )
    third = batch(project)
    assert [r["hyperparameters"]["cfg"]["n"] for r in third.ok] == [4]
    assert {r["hash"] for r in third.skipped} == ok_hashes

    # A deleted executed notebook makes its run out of date.
    record = third.ok[0]
    (project / "results" / record["files"]["notebook"]).unlink()
    fourth = batch(project)
    assert [r["hash"] for r in fourth.ok] == [record["hash"]]

    # A changed notebook source changes every hash: all run again (and the old runs stay).
    nb = project / "notebooks/echo.qmd"
    nb.write_text(nb.read_text().replace("A tiny notebook", "A small notebook"))
    fifth = batch(project)
    assert len(fifth.ok) == 3 and not fifth.skipped
    assert not {r["hash"] for r in fifth.ok} & ok_hashes

    # --force reruns what is up to date.
    forced = batch(project, force=True)
    assert {r["hash"] for r in forced.ok} == {r["hash"] for r in fifth.ok}
