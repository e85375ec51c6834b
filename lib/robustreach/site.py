"""The results website: the executed notebooks as pages, and an index of what was run.

With Quarto on the PATH, `quarto render` builds the project (`_quarto.yml`), rendering the
executed notebooks under `results/runs/` without executing them again. Without Quarto,
nbconvert turns each executed notebook into a page under `results/site/runs/...` and an index
page is generated from the records of the results index (parts, runs with status and the
parameters that vary, models).

Either way pages show Plotly figures offline: notebooks executed by papermill carry figures
whose HTML loads plotly.js from a CDN, and the machines have no internet, so every page
that draws a figure gets a `<script>` loading the site's own copy of `plotly.min.js`
(copied from the plotly package) and the CDN references are removed (`localize_plotly`).

```python
build_site("results")                    # Quarto if present, else nbconvert
build_site("results", engine="nbconvert")
```
"""

from __future__ import annotations

import html
import itertools
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import nbformat
import yaml

from robustreach.batch.execute import replace_directory
from robustreach.hashing import params_hash, short_hash
from robustreach.qmd import chunk_options, front_matter
from robustreach.store import ResultsStore
from robustreach.store.figures import plotly_js_asset
from robustreach.store.files import atomic_write
from robustreach.store.query import flatten_record, varying_fields

__all__ = [
    "SiteError",
    "build_nbconvert_site",
    "build_site",
    "localize_plotly",
    "localize_site",
    "notebook_title",
    "render_quarto",
    "write_listing",
]

Engine = Literal["auto", "quarto", "nbconvert"]
SITE = "site"
ASSETS = "assets"
LISTING = "listing/runs.yml"

_CDN = r"https://cdn\.plot\.ly/plotly-[\w.\-]*?\.min"
_CDN_SCRIPT = re.compile(rf'<script\b[^>]*\bsrc="{_CDN}(?:\.js)?"[^>]*>\s*</script>', re.IGNORECASE)
_CDN_IMPORT = re.compile(
    rf'<script\b[^>]*type="module"[^>]*>\s*import\s+"{_CDN}(?:\.js)?"\s*;?\s*</script>', re.IGNORECASE
)
_CDN_URL = re.compile(rf"{_CDN}(?:\.js)?")
_DRAWS_FIGURE = re.compile(r"Plotly\.newPlot|plotly-graph-div")
_HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)


class SiteError(RuntimeError):
    """The site cannot be built as asked (e.g. Quarto requested but missing)."""


# -- offline Plotly ---------------------------------------------------------------------------
def localize_plotly(page: str, plotly_src: str) -> str:
    """`page` with plotly.js loaded from `plotly_src` (a relative URL) instead of a CDN.

    Pages without a Plotly figure are returned unchanged. The local script goes first in
    `<head>`, before any require.js, so that plotly.js defines the global `Plotly`.
    """
    if not _DRAWS_FIGURE.search(page):
        return page
    page = _CDN_IMPORT.sub("", _CDN_SCRIPT.sub("", page))
    page = _CDN_URL.sub(plotly_src.removesuffix(".js"), page)  # e.g. a require.js path config
    tag = f'<script src="{html.escape(plotly_src)}" charset="utf-8"></script>'
    if tag in page:  # localized before
        return page
    head = _HEAD.search(page)
    at = head.end() if head else 0
    return page[:at] + tag + page[at:]


def localize_site(directory: str | Path) -> list[Path]:
    """Make every HTML page under `directory` load plotly.js from `directory/assets`.

    Used after `quarto render` (a post-render step); returns the pages changed.
    """
    directory = Path(directory)
    asset = plotly_js_asset(directory / ASSETS)
    changed = []
    for page in sorted(directory.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        new = localize_plotly(text, _relative(asset, page))
        if new != text:
            atomic_write(page, new)
            changed.append(page)
    return changed


def _relative(target: Path, page: Path) -> str:
    return Path(os.path.relpath(target, start=page.parent)).as_posix()


# -- notebook pages -----------------------------------------------------------------------------
def notebook_title(path: str | Path) -> str:
    """The `title` of a notebook's front matter, or its file stem."""
    nb = nbformat.read(path, as_version=4)
    return str(front_matter(nb).get("title") or Path(path).stem)


def _params_text(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def _page_header(record: Mapping[str, Any], title: str, varying: Mapping[str, Any]) -> str:
    lines = [
        f"# {title}",
        "",
        f"Run `{short_hash(record['hash'])}` of `{record['notebook']}` ({record.get('part', '')}): **{record['status']}**",
    ]
    if varying:
        lines += ["", f"Parameters: {_params_text(varying)}"]
    error = record.get("error")
    if error:
        lines += ["", f"Error in cell {error.get('cell_index')}: `{error.get('ename')}: {error.get('evalue')}`"]
    return "\n".join(lines)


def _notebook_page(
    exporter: Any, path: Path, record: Mapping[str, Any], varying: Mapping[str, Any], plotly_src: str
) -> str:
    nb = nbformat.read(path, as_version=4)
    meta = front_matter(nb)
    title = str(meta.get("title") or path.stem)
    if meta:
        nb.cells = nb.cells[1:]  # the front matter becomes the header below
    nb.cells = _apply_chunk_options(nb.cells)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(_page_header(record, title, varying)))
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return localize_plotly(body, plotly_src)


def _apply_chunk_options(cells: list[Any]) -> list[Any]:
    """What Quarto does with a code cell's `#|` options, for pages built without it:
    `include: false` drops the cell, `echo: false` its input, `output: false` its outputs;
    the option lines themselves are not shown."""
    kept = []
    for cell in cells:
        if cell.cell_type != "code":
            kept.append(cell)
            continue
        options = chunk_options(cell.source)
        if options.get("include") is False:
            continue
        if options.get("output") is False:
            cell.outputs = []
        lines = cell.source.split("\n")
        cell.source = "\n".join(lines[sum(1 for _ in itertools.takewhile(lambda line: line.startswith("#|"), lines)):])
        if options.get("echo") is False:
            cell.metadata.setdefault("tags", []).append("remove_input")
        kept.append(cell)
    return kept


def current_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest run of each (notebook, injected parameters): runs of earlier versions of a
    notebook or of the library stay in the index but are not pages of the site."""
    keys = [(r["notebook"], params_hash(r.get("hyperparameters") or {})) for r in runs]
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for key, record in zip(keys, runs):
        if key not in newest or record.get("created", "") > newest[key].get("created", ""):
            newest[key] = record
    return [record for key, record in zip(keys, runs) if newest[key] is record]


# -- index page -----------------------------------------------------------------------------------
def _varying_by_record(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """For each record's hash, the hyperparameters that differ among `records`."""
    names = list(varying_fields([r.get("hyperparameters") or {} for r in records], exclude=()))
    out = {}
    for record in records:
        flat = flatten_record(record.get("hyperparameters") or {})
        out[record["hash"]] = {name: flat.get(name) for name in names}
    return out


def _table(headers: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.7rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
.ok { color: #1a7f37; } .failed { color: #cf222e; font-weight: bold; }
code { font-size: 0.85rem; }
"""


def _index_page(runs: list[dict[str, Any]], models: list[dict[str, Any]], pages: Mapping[str, str]) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    n_failed = sum(r.get("status") != "ok" for r in runs)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>robustreach results</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>robustreach results</h1>",
        f"<p>{len(runs)} notebook runs ({n_failed} failed), {len(models)} models. Built {stamp}.</p>",
    ]
    if not runs:
        parts.append("<p>No runs recorded yet: run <code>robustreach batch params/&lt;part&gt;.yml</code>.</p>")
    for part in sorted({r.get("part", "") for r in runs}):
        parts.append(f"<h2>Part: {html.escape(part)}</h2>")
        in_part = [r for r in runs if r.get("part", "") == part]
        for notebook in sorted({r["notebook"] for r in in_part}):
            records = [r for r in in_part if r["notebook"] == notebook]
            varying = _varying_by_record(records)
            names = list(next(iter(varying.values())))
            rows = []
            for r in records:
                status = html.escape(str(r.get("status")))
                link = pages.get(r["hash"])
                run = f'<a href="{html.escape(link)}">{short_hash(r["hash"])}</a>' if link else short_hash(r["hash"])
                error = r.get("error") or {}
                problem = (
                    f"cell {error.get('cell_index')}: <code>{html.escape(str(error.get('ename')))}: "
                    f"{html.escape(str(error.get('evalue')))}</code>"
                    if error
                    else ""
                )
                duration = r.get("duration_s")
                rows.append(
                    [
                        run,
                        f'<span class="{status}">{status}</span>',
                        f"{duration:.1f} s" if duration is not None else "",
                    ]
                    + [html.escape(repr(varying[r["hash"]][n])) for n in names]
                    + [problem]
                )
            parts.append(f"<h3><code>{html.escape(notebook)}</code> ({len(records)} runs)</h3>")
            parts.append(_table(["run", "status", "duration", *names, "error"], rows))
    parts.append("<h2>Models</h2>")
    if models:
        varying = _varying_by_record(models)
        names = list(next(iter(varying.values())))
        rows = [
            [f"<code>{short_hash(m['hash'])}</code>", html.escape(str(m.get("created", "")))]
            + [html.escape(repr(varying[m["hash"]][n])) for n in names]
            for m in models
        ]
        parts.append(_table(["model", "created", *names], rows))
    else:
        parts.append("<p>No models recorded yet.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


# -- builders -------------------------------------------------------------------------------------
def build_nbconvert_site(results: str | Path = "results") -> Path:
    """Build `results/site/` with nbconvert (no re-execution) and a generated index page.

    The site is built in a temporary directory and swapped into place when complete.
    """
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    results = Path(results)
    store = ResultsStore(results)
    runs, models = current_runs(store.find("runs")), store.find("models")
    final = results / SITE
    tmp = results / f".{SITE}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        asset = plotly_js_asset(tmp / ASSETS)
        exporter = HTMLExporter(template_name="lab")
        exporter.register_preprocessor(TagRemovePreprocessor(remove_input_tags={"remove_input"}), enabled=True)
        pages: dict[str, str] = {}
        for notebook in sorted({r["notebook"] for r in runs}):
            records = [r for r in runs if r["notebook"] == notebook]
            varying = _varying_by_record(records)
            for record in records:
                source = results / record["files"]["notebook"]
                if not source.is_file():
                    continue
                page = tmp / Path(record["files"]["notebook"]).with_suffix(".html")
                text = _notebook_page(exporter, source, record, varying[record["hash"]], _relative(asset, page))
                atomic_write(page, text)
                pages[record["hash"]] = page.relative_to(tmp).as_posix()
        atomic_write(tmp / "index.html", _index_page(runs, models, pages))
        replace_directory(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def write_listing(results: str | Path = "results", project: str | Path = ".") -> Path:
    """Write `results/listing/runs.yml` for Quarto listing pages, and export the index as YAML.

    Items carry `title`, `path` (the executed notebook, project-relative, which Quarto links
    to its page), `part`, `notebook`, `status`, `params` (the parameters that vary among the
    runs of that notebook) and `duration`.
    """
    results, project = Path(results).resolve(), Path(project).resolve()
    store = ResultsStore(results)
    store.export()
    runs = current_runs(store.find("runs"))
    items = []
    for notebook in sorted({r["notebook"] for r in runs}):
        records = [r for r in runs if r["notebook"] == notebook]
        varying = _varying_by_record(records)
        for r in records:
            source = results / r["files"]["notebook"]
            if not source.is_file():
                continue
            items.append(
                {
                    "title": f"{notebook_title(source)} ({short_hash(r['hash'])})",
                    "path": "/" + source.relative_to(project).as_posix(),
                    "part": r.get("part", ""),
                    "notebook": notebook,
                    "status": r.get("status"),
                    "params": _params_text(varying[r["hash"]]),
                    "duration": r.get("duration_s"),
                }
            )
    path = results / LISTING
    atomic_write(path, yaml.safe_dump(items, sort_keys=False, allow_unicode=True))
    return path


def render_quarto(project: str | Path = ".", *, profile: str | None = None) -> Path:
    """`quarto render` the project (executed notebooks only, no execution); returns the output dir.

    `_quarto.yml` sends output to `results/site` and runs `robustreach site offline` after
    rendering, so the pages load plotly.js locally.
    """
    quarto = shutil.which("quarto")
    if quarto is None:
        raise SiteError("quarto is not on the PATH; install it (conda-forge `quarto`) or use engine='nbconvert'")
    project = Path(project)
    command = [quarto, "render"] + (["--profile", profile] if profile else [])
    completed = subprocess.run(command, cwd=project, check=False)
    if completed.returncode != 0:
        raise SiteError(f"`{' '.join(command)}` failed in {project} with exit code {completed.returncode}")
    return project / "results" / SITE


def build_site(
    results: str | Path = "results",
    *,
    engine: Engine = "auto",
    project: str | Path = ".",
    profile: str | None = None,
) -> Path:
    """Build the website; returns its directory.

    `engine="auto"` uses Quarto when it is on the PATH and `results` is the project's own
    `results/` (the one `_quarto.yml` renders), nbconvert otherwise.
    """
    results, project = Path(results).resolve(), Path(project).resolve()
    quarto_ok = (
        shutil.which("quarto") is not None and results == project / "results" and (project / "_quarto.yml").is_file()
    )
    if engine == "quarto" or (engine == "auto" and quarto_ok):
        if results != project / "results":
            raise SiteError(
                f"Quarto renders {project / 'results'} (see _quarto.yml), not {results}; use engine='nbconvert'"
            )
        write_listing(results, project)
        return render_quarto(project, profile=profile)
    if engine not in ("auto", "nbconvert"):
        raise SiteError(f"unknown site engine {engine!r}; choose auto, quarto or nbconvert")
    return build_nbconvert_site(results)
