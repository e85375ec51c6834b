"""Pages built without Quarto follow Quarto's chunk options; stale runs are not pages."""

import nbformat
from robustreach.site import _apply_chunk_options, current_runs


def test_chunk_options_hide_what_quarto_hides():
    cells = [
        nbformat.v4.new_markdown_cell("text"),
        nbformat.v4.new_code_cell("#| include: false\nimport os"),
        nbformat.v4.new_code_cell("#| echo: false\nprint(1)"),
        nbformat.v4.new_code_cell("#| output: false\nx = 2\nx"),
        nbformat.v4.new_code_cell("y = 3"),
    ]
    cells[3].outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "2"}, execution_count=1)]
    kept = _apply_chunk_options(cells)
    assert [c.source for c in kept] == ["text", "print(1)", "x = 2\nx", "y = 3"]
    assert kept[1].metadata["tags"] == ["remove_input"]
    assert kept[2].outputs == []
    assert "tags" not in kept[3].metadata


def test_only_the_newest_run_of_each_notebook_and_parameters_is_current():
    runs = [
        {"hash": "a", "notebook": "nb.qmd", "hyperparameters": {"x": 1}, "created": "2026-01-01"},
        {"hash": "b", "notebook": "nb.qmd", "hyperparameters": {"x": 1.0}, "created": "2026-01-02"},  # 1 == 1.0
        {"hash": "c", "notebook": "nb.qmd", "hyperparameters": {"x": 2}, "created": "2026-01-01"},
        {"hash": "d", "notebook": "other.qmd", "hyperparameters": {"x": 1}, "created": "2025-12-31"},
    ]
    assert [r["hash"] for r in current_runs(runs)] == ["b", "c", "d"]
