"""Read and write Quarto `.qmd` documents as nbformat notebooks, without Quarto.

jupytext can read `.qmd` only through the `quarto` binary, which may be absent, so the batch
runner uses this small reader/writer instead:

- YAML front matter (`---` ... `---` at the top) becomes a raw cell, kept first (Quarto reads
  the front matter of an `.ipynb` from its first raw cell);
- each ```` ```{python} ```` chunk becomes a code cell; its leading `#|` option lines stay in
  the source (so Quarto still sees them) and are also parsed: `tags` go to the cell's
  `metadata.tags` (papermill finds the `parameters` cell there), other options to
  `metadata.quarto`;
- everything else becomes markdown cells.

Round trip `writes_qmd(reads_qmd(text)) == text` holds for every document: blank lines
between cells (when not exactly one) and non-standard chunk fences are kept in `metadata.qmd`.

```python
nb = read_notebook("notebooks/part1/train.qmd")   # .qmd or .ipynb
cell = parameters_cell(nb)                        # the cell tagged `parameters`
write_qmd(nb, "copy.qmd")
```
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import yaml
from nbformat import NotebookNode

__all__ = [
    "QmdError",
    "chunk_options",
    "front_matter",
    "parameters_cell",
    "read_notebook",
    "read_qmd",
    "reads_qmd",
    "write_qmd",
    "writes_qmd",
]

_CHUNK_OPEN = re.compile(r"^(?P<ticks>`{3,})\{python(?:[\s,][^}]*)?\}\s*$")
_FENCE_OPEN = re.compile(r"^(?P<fence>`{3,}|~{3,})")
_OPTION = re.compile(r"^#\|(?P<rest>.*)$")
_STANDARD_FENCE = "```{python}"
_DEFAULT_KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


class QmdError(ValueError):
    """A `.qmd` document that cannot be read; the message names the file and line."""


def _where(name: str | None, line: int) -> str:
    return f"{name or '<qmd text>'}, line {line}"


def chunk_options(source: str, *, name: str | None = None, first_line: int = 1) -> dict[str, Any]:
    """The `#|` options at the top of a code cell's source, parsed as YAML (`{}` if none)."""
    option_lines = []
    for line in source.split("\n"):
        match = _OPTION.match(line)
        if match is None:
            break
        option_lines.append(match.group("rest").removeprefix(" "))
    if not option_lines:
        return {}
    try:
        options = yaml.safe_load("\n".join(option_lines))
    except yaml.YAMLError as error:
        raise QmdError(f"{_where(name, first_line)}: chunk options are not valid YAML: {error}") from None
    if not isinstance(options, dict):
        raise QmdError(f"{_where(name, first_line)}: chunk options must be `#| key: value` lines")
    tags = options.get("tags", [])
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise QmdError(f"{_where(name, first_line)}: `#| tags:` must be a list of strings, got {tags!r}")
    if "tags" in options:
        options["tags"] = tags
    return options


def _code_cell(lines: list[str], fence: str, close: str, *, name: str | None, first_line: int) -> NotebookNode:
    source = "".join(lines).removesuffix("\n")
    options = chunk_options(source, name=name, first_line=first_line)
    cell = nbformat.v4.new_code_cell(source)
    tags = options.pop("tags", [])
    if tags:
        cell.metadata["tags"] = tags
    if options:
        cell.metadata["quarto"] = options
    if fence != _STANDARD_FENCE or close != "```":
        cell.metadata["qmd"] = {"fence": fence, "close": close}
    return cell


def _split_blank(lines: list[str]) -> tuple[int, list[str], int]:
    """Blank lines before, the content between, and blank lines after, of a markdown region."""
    start, stop = 0, len(lines)
    while start < stop and lines[start] == "\n":
        start += 1
    while stop > start and lines[stop - 1] == "\n":
        stop -= 1
    return start, lines[start:stop], len(lines) - stop


def reads_qmd(text: str, *, name: str | None = None) -> NotebookNode:
    """Parse `.qmd` text into an nbformat v4 notebook (`name` is used in error messages)."""
    lines = text.splitlines(keepends=True)
    cells: list[NotebookNode] = []
    gaps: list[int] = []  # blank lines after each cell
    leading = 0  # blank lines before the first cell
    front: dict[str, Any] = {}
    i = 0
    if lines and lines[0].rstrip("\r\n") == "---":
        end = next((j for j in range(1, len(lines)) if lines[j].rstrip("\r\n") in ("---", "...")), None)
        if end is None:
            raise QmdError(f"{_where(name, 1)}: front matter opened with '---' is never closed")
        try:
            front = yaml.safe_load("".join(lines[1:end])) or {}
        except yaml.YAMLError as error:
            raise QmdError(f"{_where(name, 1)}: front matter is not valid YAML: {error}") from None
        if not isinstance(front, dict):
            raise QmdError(f"{_where(name, 1)}: front matter must be a YAML mapping")
        cells.append(nbformat.v4.new_raw_cell("".join(lines[: end + 1]).removesuffix("\n")))
        gaps.append(0)
        i = end + 1

    region: list[str] = []  # markdown lines since the last cell

    def end_region() -> None:
        nonlocal leading
        before, content, after = _split_blank(region)
        if cells:
            gaps[-1] = before
        else:
            leading = before
        if content:
            cells.append(nbformat.v4.new_markdown_cell("".join(content).removesuffix("\n")))
            gaps.append(after)
        region.clear()

    while i < len(lines):
        line = lines[i]
        bare = line.rstrip("\r\n")
        chunk = _CHUNK_OPEN.match(bare)
        if chunk is not None:
            end_region()
            ticks = len(chunk.group("ticks"))
            j = i + 1
            while j < len(lines) and not re.fullmatch(rf"`{{{ticks},}}\s*", lines[j].rstrip("\r\n")):
                j += 1
            if j == len(lines):
                raise QmdError(f"{_where(name, i + 1)}: code chunk opened here is never closed")
            close = lines[j].rstrip("\r\n")
            cells.append(_code_cell(lines[i + 1 : j], bare, close, name=name, first_line=i + 2))
            gaps.append(0)
            i = j + 1
            continue
        region.append(line)
        i += 1
        fence = _FENCE_OPEN.match(bare)
        if fence is not None:  # a markdown code block: copy it whole, chunks inside are text
            char, width = fence.group("fence")[0], len(fence.group("fence"))
            while i < len(lines):
                region.append(lines[i])
                closing = lines[i].strip()
                i += 1
                if closing and set(closing) == {char} and len(closing) >= width:
                    break
    end_region()

    for k, (cell, gap) in enumerate(zip(cells, gaps)):
        if gap != (1 if k < len(cells) - 1 else 0):  # what the writer emits by default
            cell.metadata.setdefault("qmd", {})["blank_after"] = gap
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    if leading:
        nb.metadata.setdefault("qmd", {})["blank_before"] = leading
    if text and not text.endswith("\n"):
        nb.metadata.setdefault("qmd", {})["final_newline"] = False
    jupyter = front.get("jupyter")
    kernel = jupyter if isinstance(jupyter, str) else "python3"
    nb.metadata["kernelspec"] = {**_DEFAULT_KERNELSPEC, "name": kernel}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def read_qmd(path: str | Path) -> NotebookNode:
    """Read a `.qmd` file into a notebook (see `reads_qmd`)."""
    path = Path(path)
    return reads_qmd(path.read_text(encoding="utf-8"), name=str(path))


def _with_tags(source: str, tags: list[str]) -> str:
    """`source` whose `#| tags:` option says `tags` (papermill adds tagged cells of its own)."""
    lines = source.split("\n")
    n_options = 0
    while n_options < len(lines) and _OPTION.match(lines[n_options]):
        n_options += 1
    kept: list[str] = []
    skipping = False
    for line in lines[:n_options]:
        rest = _OPTION.match(line).group("rest").removeprefix(" ")
        if re.match(r"tags\s*:", rest):
            skipping = True
            continue
        if skipping and (rest.startswith((" ", "-")) or not rest):
            continue  # continuation of a block-style tags list
        skipping = False
        kept.append(line)
    tag_line = "#| tags: " + yaml.safe_dump(list(tags), default_flow_style=True).strip()
    return "\n".join(kept + ([tag_line] if tags else []) + lines[n_options:])


def writes_qmd(nb: NotebookNode) -> str:
    """Write a notebook as `.qmd` text; outputs are dropped (a `.qmd` holds none)."""
    meta = nb.metadata.get("qmd", {})
    parts: list[str] = ["\n" * meta.get("blank_before", 0)]
    n = len(nb.cells)
    for k, cell in enumerate(nb.cells):
        qmd = cell.metadata.get("qmd", {})
        source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
        if cell.cell_type == "code":
            tags = list(cell.metadata.get("tags", []))
            if chunk_options(source).get("tags", []) != tags:
                source = _with_tags(source, tags)
            body = source + "\n" if source else ""
            parts.append(f"{qmd.get('fence', _STANDARD_FENCE)}\n{body}{qmd.get('close', '```')}\n")
        else:
            parts.append(source + "\n")
        parts.append("\n" * qmd.get("blank_after", 1 if k < n - 1 else 0))
    text = "".join(parts)
    if meta.get("final_newline") is False:
        text = text.removesuffix("\n")
    return text


def write_qmd(nb: NotebookNode, path: str | Path) -> None:
    """Write a notebook to a `.qmd` file (atomically: temp file, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(writes_qmd(nb), encoding="utf-8")
    tmp.replace(path)


def read_notebook(path: str | Path) -> NotebookNode:
    """Read a `.qmd` or `.ipynb` file as an nbformat v4 notebook."""
    path = Path(path)
    if path.suffix == ".qmd":
        return read_qmd(path)
    if path.suffix == ".ipynb":
        return nbformat.read(path, as_version=4)
    raise QmdError(f"{path}: expected a .qmd or .ipynb notebook")


def front_matter(nb: NotebookNode) -> dict[str, Any]:
    """The YAML front matter of a notebook's first cell (a raw `---` cell), or `{}`."""
    first = nb.cells[0] if nb.cells else None
    if first is None or first.cell_type != "raw" or not first.source.startswith("---"):
        return {}
    try:
        meta = yaml.safe_load(first.source.strip().strip("-"))
    except yaml.YAMLError:
        return {}
    return meta if isinstance(meta, dict) else {}


def parameters_cell(nb: NotebookNode, *, name: str | None = None) -> NotebookNode:
    """The one code cell tagged `parameters` (papermill's convention); error if none or several."""
    found = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if len(found) != 1:
        what = "no cell" if not found else f"{len(found)} cells"
        raise QmdError(
            f"{name or 'notebook'}: {what} tagged `parameters`; expected exactly one (`#| tags: [parameters]`)"
        )
    return found[0]
