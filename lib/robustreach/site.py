"""The results website: the executed notebooks as pages, and an index of what was run.

The pages are the current runs only (`current_runs`: the newest run of each notebook and
parameter set), one per (notebook, parameter set), failed runs included with their error.
Both engines make the same pages from the same page notebooks (`page_notebook`: the
executed notebook with its run, status, varying parameters and error in the header):

- Quarto (`quarto render --profile PART`, `_quarto.yml`): the pre-render step
  (`quarto_step`) runs the part's batch, writes the page notebooks to `results/pages/`
  (`sync_pages`, removing pages of runs no longer current) and the listing of the home page;
  Quarto renders them without executing anything; the post-render step makes the pages load
  every script from the site itself.
- nbconvert (no Quarto on the PATH): each page notebook becomes `results/site/runs/...html`,
  and an index page is generated from the records of the results index.

Pages need nothing from the network: Plotly figures load the site's own `plotly.min.js`
(copied from the plotly package; `localize_plotly`), no page loads MathJax, require.js,
jQuery or a widget manager (executed notebooks hold no widgets: `robustreach.progress`), and
any other reference to a CDN is removed (`offline_page`).

Incremental: a page is rebuilt only when its page notebook changed (a hash per page, kept in
the site's `.pages.json`); `robustreach run PART` with nothing changed rebuilds nothing.

```python
build_site("results")                    # Quarto if present, else nbconvert
build_site("results", engine="nbconvert")
quarto_step(["pre-render"])              # what `quarto render` runs before and after rendering
```
"""

from __future__ import annotations

import html
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import nbformat
import yaml

from robustreach.batch.execute import replace_directory
from robustreach.hashing import params_hash, short_hash
from robustreach.qmd import chunk_options, front_matter
from robustreach.store import ResultsStore
from robustreach.store.figures import PLOTLY_JS, plotly_js_asset
from robustreach.store.files import atomic_write
from robustreach.store.query import flatten_record, varying_fields

__all__ = [
    "Page",
    "SiteError",
    "build_nbconvert_site",
    "build_quarto_site",
    "build_site",
    "current_runs",
    "localize_plotly",
    "localize_site",
    "notebook_title",
    "offline_page",
    "page_notebook",
    "page_path",
    "quarto_step",
    "render_quarto",
    "sync_pages",
    "write_listing",
]

Engine = Literal["auto", "quarto", "nbconvert"]
SITE = "site"
ASSETS = "assets"
LISTING = "listing/runs.yml"
PAGES = "pages"  # results/pages/: the page notebooks Quarto renders (current runs only)
PAGES_IN_SITE = f"results/{PAGES}"  # where Quarto puts their HTML in the site
STATE = ".pages.json"  # in the site: what each page was built from
KEYS = ".keys.json"  # in results/pages/: what each page notebook was made from
PAGE_FORMAT = 2  # bump when what a page shows changes, to rebuild every page

_CDN = r"https://cdn\.plot\.ly/plotly-[\w.\-]*?\.min"
_CDN_SCRIPT = re.compile(rf'<script\b[^>]*\bsrc="{_CDN}(?:\.js)?"[^>]*>\s*</script>', re.IGNORECASE)
_CDN_IMPORT = re.compile(
    rf'<script\b[^>]*type="module"[^>]*>\s*import\s+"{_CDN}(?:\.js)?"\s*;?\s*</script>', re.IGNORECASE
)
_CDN_URL = re.compile(rf"{_CDN}(?:\.js)?")
_DRAWS_FIGURE = re.compile(r"Plotly\.newPlot|plotly-graph-div")
_HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)
_LOCAL_PLOTLY = re.compile(r"""<script\b[^>]*\bsrc=["'](?![a-z]+:|//)[^"']*plotly\.min\.js["']""", re.IGNORECASE)


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
    if _LOCAL_PLOTLY.search(page):  # a page notebook's own header loads it (Quarto pages)
        return page
    tag = f'<script src="{html.escape(plotly_src)}" charset="utf-8"></script>'
    if tag in page:  # localized before
        return page
    head = _HEAD.search(page)
    at = head.end() if head else 0
    return page[:at] + tag + page[at:]


_REMOTE = r"""(?:https?:)?//[^"']+"""
_REMOTE_SCRIPT = re.compile(rf"""<script\b[^>]*\bsrc=["']{_REMOTE}["'][^>]*>\s*</script>\s*""", re.IGNORECASE)
_REMOTE_LINK = re.compile(
    rf"""<link\b(?=[^>]*\brel=["']?(?:stylesheet|preload|modulepreload)\b)[^>]*\bhref=["']{_REMOTE}["'][^>]*>\s*""",
    re.IGNORECASE,
)


def offline_page(page: str) -> str:
    """`page` without any script or style sheet loaded from another site.

    Pages are made not to need them (no widgets, no MathJax, local plotly.js); this removes
    what a template adds regardless (nbconvert's require.js and MathJax from a CDN), so a
    page never waits on the network.
    """
    return _REMOTE_LINK.sub("", _REMOTE_SCRIPT.sub("", page))


def localize_site(directory: str | Path) -> list[Path]:
    """Make every HTML page under `directory` load its scripts from the site itself:
    plotly.js from `directory/assets`, nothing from elsewhere (`offline_page`).

    Used after `quarto render` (a post-render step); returns the pages changed.
    """
    directory = Path(directory)
    asset = plotly_js_asset(directory / ASSETS)
    changed = []
    for page in sorted(directory.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        new = offline_page(localize_plotly(text, _relative(asset, page)))
        if new != text:
            atomic_write(page, new)
            changed.append(page)
    return changed


def _relative(target: Path, page: Path) -> str:
    return Path(os.path.relpath(target, start=page.parent)).as_posix()


# -- page notebooks -----------------------------------------------------------------------------
def notebook_title(path: str | Path) -> str:
    """The `title` of a notebook's front matter, or its file stem."""
    nb = nbformat.read(path, as_version=4)
    return str(front_matter(nb).get("title") or Path(path).stem)


def _params_text(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def page_path(record: Mapping[str, Any]) -> str:
    """A run's page, relative to the site (and to `results/pages/`), without suffix:
    `runs/<notebook stem>/<short run hash>/<notebook stem>`, as its run folder."""
    return Path(record["files"]["notebook"]).with_suffix("").as_posix()


def _run_line(record: Mapping[str, Any]) -> str:
    return f"Run {short_hash(record['hash'])} of {record['notebook']} ({record.get('part', '')}): {record['status']}"


def _error_line(record: Mapping[str, Any]) -> str | None:
    error = record.get("error")
    if not error:
        return None
    return f"Error in cell {error.get('cell_index')}: {error.get('ename')}: {error.get('evalue')}"


_WIDGET = "application/vnd.jupyter.widget-view+json"


def _without_widgets(nb: Any) -> Any:
    """Drop Jupyter widget outputs (drawing them needs a widget manager from the network);
    an output that also has plain text keeps that."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        kept = []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if _WIDGET in data:
                data.pop(_WIDGET)
                if not any(k != "text/plain" or v.strip() for k, v in data.items()):
                    continue
            kept.append(output)
        if "outputs" in cell:
            cell.outputs = kept
    return nb


def _without_cdn_plotly(nb: Any) -> bool:
    """Remove the loading of plotly.js from a CDN from the notebook's HTML outputs (the page
    loads the site's own copy); returns whether any output draws a Plotly figure."""
    draws = False
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/html" in data:
                text = "".join(data["text/html"]) if isinstance(data["text/html"], list) else data["text/html"]
                draws = draws or bool(_DRAWS_FIGURE.search(text))
                data["text/html"] = _CDN_IMPORT.sub("", _CDN_SCRIPT.sub("", text))
    return draws


def page_notebook(results: str | Path, record: Mapping[str, Any], varying: Mapping[str, Any]) -> Any:
    """The notebook a run's page is made from, for both engines: the executed notebook,
    with front matter saying which run it is, its status, the parameters that vary among
    the runs of its notebook (`varying`) and its error, and without widget outputs."""
    nb = _without_widgets(nbformat.read(Path(results) / record["files"]["notebook"], as_version=4))
    draws = _without_cdn_plotly(nb)
    meta = front_matter(nb)
    has_front = bool(meta) or bool(
        nb.cells and nb.cells[0].cell_type == "raw" and nb.cells[0].source.startswith("---")
    )
    meta = {"title": str(meta.get("title") or Path(record["notebook"]).stem), **meta}
    meta["subtitle"] = _run_line(record)
    if draws:  # Quarto puts this in the page's <head>: figures draw even without the post-render step
        src = os.path.relpath(f"{ASSETS}/{PLOTLY_JS}", PurePosixPath(page_path(record)).parent)
        meta["include-in-header"] = {"text": f'<script src="{Path(src).as_posix()}" charset="utf-8"></script>'}
    # fixed cell ids: the same run gives the same page notebook, byte for byte
    header = nbformat.v4.new_raw_cell(f"---\n{yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)}---")
    header.id = "robustreach-front-matter"
    if has_front:
        nb.cells[0] = header
    else:
        nb.cells.insert(0, header)
    about = [f"Parameters that vary among this notebook's runs: {_params_text(varying)}" if varying else None]
    about.append(_error_line(record))
    if any(about):
        cell = nbformat.v4.new_markdown_cell("\n\n".join(f"**{line}**" for line in about if line))
        cell.id = "robustreach-run"
        nb.cells.insert(1, cell)
    return nb


def _page_header(meta: Mapping[str, Any]) -> str:
    return f"# {meta['title']}\n\n{meta['subtitle']}"


def _notebook_page(exporter: Any, nb: Any, plotly_src: str) -> str:
    """A page notebook as HTML (nbconvert), loading nothing from the network."""
    nb = nbformat.from_dict(nb)  # a copy: the caller's notebook stays as it was
    meta = front_matter(nb)
    nb.cells = _apply_chunk_options(nb.cells[1:])  # the front matter becomes the header below
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(_page_header(meta)))
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": meta["title"]}})
    return offline_page(localize_plotly(body, plotly_src))


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


@dataclass(frozen=True)
class Page:
    """A page of the site: a current run, the parameters that vary among its notebook's runs,
    its title, and `key`, a hash of everything the page shows (its executed notebook's bytes,
    the header, the page format), so that an unchanged page is not rebuilt."""

    record: dict[str, Any]
    varying: dict[str, Any]
    title: str
    key: str

    @property
    def path(self) -> str:
        return page_path(self.record)


def _title(data: bytes, notebook: str) -> str:
    """A notebook's title from its front matter (read without nbformat's validation: fast)."""
    cells = json.loads(data).get("cells", [])
    raw = "".join(cells[0].get("source", "")) if cells and cells[0].get("cell_type") == "raw" else ""
    meta = front_matter(nbformat.from_dict({"cells": [{"cell_type": "raw", "source": raw, "metadata": {}}]}))
    return str(meta.get("title") or Path(notebook).stem)


def site_pages(results: str | Path) -> list[Page]:
    """The pages: every current run whose executed notebook exists, by notebook then run."""
    results = Path(results)
    runs = current_runs(ResultsStore(results).find("runs"))
    pages = []
    for notebook in sorted({r["notebook"] for r in runs}):
        records = [r for r in runs if r["notebook"] == notebook]
        varying = _varying_by_record(records)
        for record in records:
            source = results / record["files"]["notebook"]
            if not source.is_file():
                continue
            data = source.read_bytes()
            header = {"format": PAGE_FORMAT, "page": page_path(record), "run": _run_line(record),
                      "varying": _params_text(varying[record["hash"]]), "error": _error_line(record)}  # fmt: skip
            key = sha256(json.dumps(header, sort_keys=True).encode() + b"\0" + data).hexdigest()
            pages.append(Page(record, varying[record["hash"]], _title(data, notebook), key))
    return pages


def _read_keys(path: Path) -> dict[str, str]:
    try:
        keys = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return keys if isinstance(keys, dict) else {}


def sync_pages(results: str | Path = "results") -> list[Path]:
    """Write the page notebooks Quarto renders to `results/pages/` (current runs only) and
    remove those of runs no longer current; returns the page notebooks written or removed.

    `results/pages/.keys.json` holds each page notebook's key: unchanged pages are not
    written again (nor is their executed notebook parsed)."""
    results = Path(results)
    folder = results / PAGES
    plotly_js_asset(folder / ASSETS)  # copied into the site by Quarto (`resources` in _quarto.yml)
    old, keys, changed = _read_keys(folder / KEYS), {}, []
    for page in site_pages(results):
        path = folder / f"{page.path}.ipynb"
        keys[page.path] = page.key
        if old.get(page.path) != page.key or not path.is_file():
            atomic_write(path, nbformat.writes(page_notebook(results, page.record, page.varying)))
            changed.append(path)
    for path in sorted(folder.rglob("*.ipynb")) if folder.is_dir() else []:
        if path.relative_to(folder).with_suffix("").as_posix() not in keys:
            path.unlink()
            changed.append(path)
    _remove_empty_dirs(folder)
    if keys != old:
        atomic_write(folder / KEYS, json.dumps(keys, indent=1, sort_keys=True) + "\n")
    return changed


def _remove_empty_dirs(folder: Path) -> None:
    for directory in sorted((d for d in folder.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts)):
        if not any(directory.iterdir()):
            directory.rmdir()


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


def _index_page(
    runs: list[dict[str, Any]], models: list[dict[str, Any]], pages: Mapping[str, str], *, title: str = "robustreach"
) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    n_failed = sum(r.get("status") != "ok" for r in runs)
    title = html.escape(title)
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{title}</h1>",
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
def _site_state(site: Path) -> dict[str, Any]:
    """What the site was built from (`.pages.json`): engine, configuration, a key per page."""
    try:
        state = json.loads((site / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _site_title(project: Path, profile: str | None) -> str:
    """The website title `quarto render --profile PROFILE` uses (the profile's, else the base's)."""
    title = "robustreach"
    for name in ("_quarto.yml", f"_quarto-{profile}.yml" if profile else None):
        path = project / name if name else None
        if path is not None and path.is_file():
            config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            title = str((config.get("website") or {}).get("title") or title)
    return title


def build_nbconvert_site(
    results: str | Path = "results", *, project: str | Path = ".", profile: str | None = None
) -> Path:
    """Build `results/site/` with nbconvert (no re-execution) and a generated index page.

    Pages whose page notebook did not change since the last build are kept as they are; the
    site is assembled in a temporary directory and swapped into place when complete.
    """
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    results = Path(results)
    store = ResultsStore(results)
    runs, models = current_runs(store.find("runs")), store.find("models")
    final = results / SITE
    previous = _site_state(final)
    old_keys = previous.get("pages", {}) if previous.get("engine") == "nbconvert" else {}
    tmp = results / f".{SITE}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        asset = plotly_js_asset(tmp / ASSETS)
        exporter = HTMLExporter(template_name="lab")
        exporter.register_preprocessor(TagRemovePreprocessor(remove_input_tags={"remove_input"}), enabled=True)
        pages: dict[str, str] = {}
        keys: dict[str, str] = {}
        built: list[str] = []
        for site_page in site_pages(results):
            record, relative = site_page.record, f"{site_page.path}.html"
            page, old = tmp / relative, final / relative
            page.parent.mkdir(parents=True, exist_ok=True)
            if old_keys.get(relative) == site_page.key and old.is_file():
                _link_or_copy(old, page)
            else:
                nb = page_notebook(results, record, site_page.varying)
                atomic_write(page, _notebook_page(exporter, nb, _relative(asset, page)))
                built.append(relative)
            pages[record["hash"]], keys[relative] = relative, site_page.key
        title = _site_title(Path(project), profile)
        atomic_write(tmp / "index.html", offline_page(_index_page(runs, models, pages, title=title)))
        state = {"engine": "nbconvert", "format": PAGE_FORMAT, "title": title, "pages": keys, "built": built}
        atomic_write(tmp / STATE, json.dumps(state, indent=1, sort_keys=True) + "\n")
        replace_directory(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)  # pages are replaced whole (atomic_write), never edited in place
    except OSError:
        shutil.copy2(source, target)


def write_listing(results: str | Path = "results", project: str | Path = ".") -> Path:
    """Write `results/listing/runs.yml` for Quarto listing pages, and export the index as YAML.

    One item per page (current runs only), carrying `title`, `path` (the page notebook under
    `results/pages/`, project-relative, which Quarto links to its page), `part`, `notebook`,
    `status`, `params` (the parameters that vary among the runs of that notebook), `error`
    and `duration`.
    """
    results, project = Path(results).resolve(), Path(project).resolve()
    store = ResultsStore(results)
    store.export()
    items = []
    for page in site_pages(results):
        record = page.record
        items.append(
            {
                "title": f"{page.title} ({short_hash(record['hash'])})",
                "path": "/" + (results / PAGES / f"{page.path}.ipynb").relative_to(project).as_posix(),
                "part": record.get("part", ""),
                "notebook": record["notebook"],
                "status": record.get("status"),
                "params": _params_text(page.varying),
                "error": _error_line(record) or "",
                "duration": record.get("duration_s"),
            }
        )
    path, text = results / LISTING, yaml.safe_dump(items, sort_keys=False, allow_unicode=True)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:  # unchanged: `quarto preview` sees no edit
        atomic_write(path, text)
    return path


# -- Quarto ---------------------------------------------------------------------------------------
BATCH_DONE_ENV = "ROBUSTREACH_BATCH_DONE"  # set by `robustreach run`: the pre-render skips the batch


def _profile_part(profiles: str | None) -> str | None:
    """The part a Quarto profile list (`QUARTO_PROFILE`, comma-separated) names, if any."""
    from robustreach.cli.batch import PARTS

    named = [p.strip() for p in (profiles or "").split(",") if p.strip()]
    return next((p for p in named if p in PARTS), None)


def _config_key(project: Path, profile: str | None) -> str:
    """What every Quarto page depends on besides its notebook: configuration, home page, library."""
    from robustreach import __version__

    parts = [f"{PAGE_FORMAT} {__version__} {profile or ''}"]
    for name in ("_quarto.yml", f"_quarto-{profile}.yml" if profile else "", "index.qmd"):
        path = project / name
        parts.append(path.read_text(encoding="utf-8") if name and path.is_file() else "")
    return sha256("\n\0".join(parts).encode()).hexdigest()


def _page_keys(results: Path) -> dict[str, str]:
    """Site-relative HTML page -> key, for the page notebooks under `results/pages/` (as
    `sync_pages` last wrote them)."""
    return {f"{page}.html": key for page, key in _read_keys(results / PAGES / KEYS).items()}


def quarto_step(argv: list[str]) -> int:
    """Quarto's `pre-render` / `post-render` step (run by `site_assets/quarto_step.py`, in the
    project directory). Returns the exit status."""
    project = Path.cwd()
    results = project / "results"
    profile = os.environ.get("QUARTO_PROFILE") or None
    step = argv[0] if argv else ""
    if step == "pre-render":
        part = _profile_part(profile)
        if part and not os.environ.get(BATCH_DONE_ENV):
            print(f"robustreach: running part {part} (params/{part}.yml) before rendering; finished runs are skipped",
                  flush=True)  # fmt: skip
            command = [sys.executable, "-m", "robustreach", "batch", f"params/{part}.yml", "--allow-failures"]
            code = subprocess.run(command, cwd=project, check=False).returncode
            if code != 0:
                print(f"robustreach: `{' '.join(command[2:])}` failed (exit {code}); nothing rendered", file=sys.stderr)
                return code
        changed = sync_pages(results)
        write_listing(results, project)
        n_pages = len(_page_keys(results))
        print(f"robustreach: {n_pages} pages in {results / PAGES} ({len(changed)} changed), listing written", flush=True)
        return 0
    if step == "post-render":
        site = Path(os.environ.get("QUARTO_PROJECT_OUTPUT_DIR") or results / SITE)
        site = site if site.is_absolute() else project / site
        keys = _page_keys(results)
        rendered = site / PAGES_IN_SITE
        for page in sorted(rendered.rglob("*.html")) if rendered.is_dir() else []:
            if page.relative_to(rendered).as_posix() not in keys:  # a run no longer current
                page.unlink()
        if rendered.is_dir():
            _remove_empty_dirs(rendered)
        changed = localize_site(site)
        state = {"engine": "quarto", "format": PAGE_FORMAT, "config": _config_key(project, profile), "pages": keys}
        atomic_write(site / STATE, json.dumps(state, indent=1, sort_keys=True) + "\n")
        print(f"robustreach: {len(changed)} page(s) made to load their scripts from the site", flush=True)
        return 0
    print("usage: quarto_step.py pre-render|post-render", file=sys.stderr)
    return 2


def render_quarto(
    project: str | Path = ".", *, profile: str | None = None, files: Iterable[str] = (), batch_done: bool = False
) -> Path:
    """`quarto render` the project (or only `files`), executing nothing; returns the output dir.

    `batch_done` tells the profile's pre-render step that the part's batch has just run.
    """
    quarto = shutil.which("quarto")
    if quarto is None:
        raise SiteError("quarto is not on the PATH; install it (conda-forge `quarto`) or use engine='nbconvert'")
    project = Path(project)
    command = [quarto, "render", *files] + (["--profile", profile] if profile else [])
    env = {**os.environ, **({BATCH_DONE_ENV: "1"} if batch_done else {})}
    completed = subprocess.run(command, cwd=project, check=False, env=env)
    if completed.returncode != 0:
        raise SiteError(f"`{' '.join(command)}` failed in {project} with exit code {completed.returncode}")
    return project / "results" / SITE


def build_quarto_site(project: str | Path = ".", *, profile: str | None = None) -> Path:
    """Render the site with Quarto after a batch, rebuilding only what changed.

    Nothing is rendered when the pages, configuration and profile are those of the last
    render; when only some pages changed, Quarto renders those and the home page.
    """
    project = Path(project).resolve()
    results, site = project / "results", project / "results" / SITE
    sync_pages(results)
    keys, state = _page_keys(results), _site_state(site)
    same_config = state.get("engine") == "quarto" and state.get("config") == _config_key(project, profile)
    if same_config and state.get("pages") == keys and (site / "index.html").is_file():
        print(f"site up to date: {len(keys)} pages, nothing to render", flush=True)
        return site
    old = state.get("pages", {}) if same_config else {}
    changed = [page for page, key in keys.items() if old.get(page) != key]
    files = ["index.qmd"] + [f"results/{PAGES}/{Path(p).with_suffix('.ipynb').as_posix()}" for p in changed]
    return render_quarto(project, profile=profile, files=files if same_config else (), batch_done=True)


def build_site(
    results: str | Path = "results",
    *,
    engine: Engine = "auto",
    project: str | Path = ".",
    profile: str | None = None,
) -> Path:
    """Build the website; returns its directory.

    `engine="auto"` uses Quarto when it is on the PATH and `results` is the project's own
    `results/` (the one `_quarto.yml` renders), nbconvert otherwise. Both rebuild only the
    pages whose run changed.
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
        return build_quarto_site(project, profile=profile)
    if engine not in ("auto", "nbconvert"):
        raise SiteError(f"unknown site engine {engine!r}; choose auto, quarto or nbconvert")
    return build_nbconvert_site(results, project=project, profile=profile)
