"""The .qmd reader/writer: structure of the parsed notebook, lossless round trips, errors."""

import json
from pathlib import Path

import nbformat
import papermill
import pytest
from robustreach.qmd import (
    QmdError,
    front_matter,
    parameters_cell,
    read_notebook,
    read_qmd,
    reads_qmd,
    write_qmd,
    writes_qmd,
)

REPO = Path(__file__).resolve().parent.parent
QMD_FILES = sorted([*REPO.glob("notebooks/**/*.qmd"), *REPO.glob("tests/fixtures/**/*.qmd")])


def test_there_are_documents_to_round_trip():
    assert len(QMD_FILES) >= 3  # the fixtures at least


@pytest.mark.parametrize("path", QMD_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_round_trip_through_ipynb_is_lossless(path, tmp_path):
    text = path.read_text(encoding="utf-8")
    nb = read_qmd(path)
    nbformat.validate(nb)
    ipynb = tmp_path / "nb.ipynb"
    nbformat.write(nb, ipynb)  # through the JSON file format, as papermill would see it
    back = nbformat.read(ipynb, as_version=4)
    assert writes_qmd(back) == text
    write_qmd(back, tmp_path / "copy.qmd")
    assert (tmp_path / "copy.qmd").read_text(encoding="utf-8") == text


def test_edge_cases_parse_into_the_expected_cells():
    nb = read_qmd(REPO / "tests/fixtures/qmd/edge_cases.qmd")
    kinds = [c.cell_type for c in nb.cells]
    assert kinds == ["raw", "markdown", "code", "code", "code", "markdown", "code", "markdown"]
    raw, text, first, second, params, plain, empty, closing = nb.cells
    assert raw.source.startswith("---\ntitle:") and raw.source.endswith("\n---")
    # Chunks inside markdown code blocks (four backticks, tildes) stay markdown text.
    assert '```{python}\nprint("not a cell' in text.source
    assert "also not a cell" in text.source
    assert first.metadata["tags"] == ["setup", "remove-input"]
    assert first.metadata["quarto"] == {"label": "first", "echo": False}
    assert first.source.startswith("#| label: first\n#| echo: false\n")  # options stay for Quarto
    assert first.source.endswith("x = 1\n\n\ny = x + 1")
    assert second.source.startswith("# a chunk straight after another")
    assert params.metadata["tags"] == ["parameters"]
    assert params.source.endswith('doc = """\n```\n"""')  # triple backticks inside a 4-tick chunk
    assert plain.source.startswith("```python")
    assert empty.source == ""
    assert closing.source == "Closing words."
    assert parameters_cell(nb) is params
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_blank_lines_and_missing_final_newline_are_kept():
    text = "\n\nLeading blank lines.\n```{python}\nx = 1\n```\n\n\n\nText after three blank lines\n\n```{python}\ny = 2\n```"
    nb = reads_qmd(text)
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "markdown", "code"]
    assert writes_qmd(nb) == text


def test_tags_added_in_the_notebook_are_written_as_options():
    nb = read_qmd(REPO / "tests/fixtures/qmd/edge_cases.qmd")
    injected = nbformat.v4.new_code_cell('# Parameters\ncfg = {"n": 2}')
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(5, injected)
    nb.cells[2].metadata["tags"] = ["setup"]  # a block-style list in the source, now changed
    text = writes_qmd(nb)
    assert '```{python}\n#| tags: [injected-parameters]\n# Parameters\ncfg = {"n": 2}\n```' in text
    again = reads_qmd(text)
    assert again.cells[5].metadata["tags"] == ["injected-parameters"]
    assert again.cells[2].metadata["tags"] == ["setup"]
    assert again.cells[2].metadata["quarto"] == {"label": "first", "echo": False}
    assert "remove-input" not in again.cells[2].source


def test_papermill_finds_the_parameters_cell(tmp_path):
    nb = read_notebook(REPO / "tests/fixtures/notebooks/echo.qmd")
    nbformat.write(nb, tmp_path / "echo.ipynb")
    declared = papermill.inspect_notebook(str(tmp_path / "echo.ipynb"))
    assert set(declared) == {"cfg", "repeats"}
    assert declared["repeats"]["default"] == "1"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("Intro\n\n```{python}\nx = 1\n", 3, "never closed"),
        ("---\ntitle: x\n\nno closing\n", 1, "front matter"),
        ("```{python}\n#| tags: [a\nx = 1\n```\n", 2, "not valid YAML"),
        ("```{python}\n#| tags: {a: 1}\nx = 1\n```\n", 2, "list of strings"),
    ],
)
def test_malformed_documents_name_file_and_line(text, line, message):
    with pytest.raises(QmdError) as error:
        reads_qmd(text, name="bad.qmd")
    assert f"bad.qmd, line {line}" in str(error.value)
    assert message in str(error.value)


def test_parameters_cell_must_be_unique():
    none = reads_qmd("```{python}\nx = 1\n```\n")
    with pytest.raises(QmdError, match="no cell tagged `parameters`"):
        parameters_cell(none, name="n.qmd")
    two = reads_qmd(
        "```{python}\n#| tags: [parameters]\nx = 1\n```\n\n```{python}\n#| tags: [parameters]\ny = 1\n```\n"
    )
    with pytest.raises(QmdError, match="2 cells tagged"):
        parameters_cell(two, name="t.qmd")


def test_ipynb_files_are_read_as_they_are(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("a = 1", metadata={"tags": ["parameters"]})])
    nbformat.write(nb, tmp_path / "x.ipynb")
    read = read_notebook(tmp_path / "x.ipynb")
    assert json.loads(nbformat.writes(read)) == json.loads(nbformat.writes(nb))
    with pytest.raises(QmdError, match=r"x\.txt: expected a \.qmd or \.ipynb"):
        read_notebook(tmp_path / "x.txt")


def test_front_matter_is_read_from_the_first_raw_cell():
    nb = read_qmd(REPO / "tests/fixtures/qmd/edge_cases.qmd")
    assert front_matter(nb) == {
        "title": "Reader edge cases (test fixture)",
        "format": {"html": {"code-fold": True}},
        "jupyter": "python3",
    }
    assert front_matter(reads_qmd("No front matter.\n")) == {}
