"""Figures: Plotly JSON (always) and HTML, found by identifier and train/test/figure params.

A figure record keeps `identifier` (figure type/subtype, e.g.
`aligned_trajectories/compare_train_conditions`) and `hyperparameters = {"train", "test",
"figure"}`; its hash covers those plus the model and evaluation hashes it was drawn from, so
redrawing the same figure from the same models replaces it. Files live under
`figures/<identifier>/<short hash>.<format>`. HTML pages load plotly.js from a shared local
copy (`figures/plotly.min.js`, from the plotly package) by relative path: no CDN, since the
machines are offline.
"""

from __future__ import annotations

import importlib.util
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustreach.hashing import canonical_json, jsonable, params_hash, short_hash
from robustreach.store.files import atomic_write
from robustreach.store.query import MISSING, identifier_matches, lookup, varying_fields

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from robustreach.store.index import ResultsIndex

__all__ = ["PLOTLY_JS", "FiguresMixin"]

FIGURES = "figures"
PLOTLY_JS = "plotly.min.js"
_SECTIONS = ("train", "test", "figure")
_FORMATS = ("json", "html", "png", "svg")
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+\-\[\]]")


def check_identifier(identifier: str, kind: str = "figure") -> str:
    """`identifier` if it is names of letters, digits, '_', '.', '-' joined by '/' (a path
    under the results directory), else a ValueError naming the `kind` of record."""
    if not isinstance(identifier, str) or not _IDENTIFIER.match(identifier):
        raise ValueError(
            f"{kind} identifier {identifier!r} must be names of letters, digits, '_', '.', '-' joined by '/'"
        )
    return identifier


def _check_formats(formats: Iterable[str]) -> list[str]:
    formats = list(formats)
    unknown = [f for f in formats if f not in _FORMATS]
    if unknown:
        raise ValueError(f"unknown figure format(s) {unknown}; choose from {list(_FORMATS)}")
    return formats


def plotly_js_asset(directory: Path) -> Path:
    """`directory/plotly.min.js`, copied from the installed plotly package if absent or stale."""
    from plotly.offline import get_plotlyjs

    text = get_plotlyjs().encode("utf-8")
    path = directory / PLOTLY_JS
    if not path.exists() or path.stat().st_size != len(text):
        atomic_write(path, text)
    return path


def _html(fig: go.Figure, page: Path, asset: Path) -> str:
    src = Path(os.path.relpath(asset, start=page.parent)).as_posix()
    return fig.to_html(include_plotlyjs=src, full_html=True)


def _image_formats(formats: Sequence[str]) -> list[str]:
    wanted = [f for f in formats if f in ("png", "svg")]
    if wanted and importlib.util.find_spec("kaleido") is None:
        warnings.warn(f"kaleido is not installed: figure format(s) {wanted} skipped", stacklevel=3)
        return []
    return wanted


def _with_format(stem: Path, fmt: str) -> Path:
    return stem.parent / f"{stem.name}.{fmt}"  # not with_suffix: names may hold dots ("std=0.5")


def _write_formats(fig: go.Figure, stem: Path, formats: Sequence[str], asset: Path | None) -> list[str]:
    """Write `stem.<format>` for each format; returns the formats written."""
    written = []
    for fmt in formats:
        if fmt == "json":
            atomic_write(_with_format(stem, "json"), fig.to_json())
        elif fmt == "html":
            assert asset is not None
            atomic_write(_with_format(stem, "html"), _html(fig, _with_format(stem, "html"), asset))
        else:
            continue
        written.append(fmt)
    for fmt in _image_formats(formats):
        try:
            atomic_write(_with_format(stem, fmt), fig.to_image(format=fmt))
        except Exception as err:  # noqa: BLE001 - kaleido needs a browser; its failure must not lose the figure
            warnings.warn(f"could not write {fmt} for {stem.name}: {err}", stacklevel=3)
            continue
        written.append(fmt)
    return written


def _name_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return canonical_json(value)  # 2.0 -> 2, compact lists
    except ValueError:
        return str(value)  # NaN


class FiguresMixin:
    """Saving, finding and exporting figures; mixed into `ResultsStore`."""

    def save_figure(
        self: ResultsIndex,
        fig: go.Figure,
        identifier: str,
        *,
        train: Mapping[str, Any],
        test: Mapping[str, Any],
        figure: Mapping[str, Any],
        model_hashes: Sequence[str] = (),
        evaluation_hash: str | None = None,
        formats: Sequence[str] = ("json", "html"),
    ) -> dict[str, Any]:
        """Write the figure's files and record them in table "figures" (replacing a redraw).

        **Arguments:**
        - `fig`: a Plotly figure.
        - `identifier`: figure type/subtype, e.g. "aligned_trajectories/compare_train_conditions".
        - `train`, `test`, `figure`: the parameters that identify it (training condition,
          test condition, figure options).
        - `model_hashes`, `evaluation_hash`: what it was drawn from.
        - `formats`: among json, html, png, svg; json is always written since loading reads it.
          png/svg need kaleido and are skipped with a warning without it.
        """
        check_identifier(identifier)
        formats = _check_formats(formats)
        if "json" not in formats:
            formats.insert(0, "json")
        hp = jsonable({"train": dict(train), "test": dict(test), "figure": dict(figure)})
        hashes = [str(h) for h in model_hashes]
        h = params_hash(
            {
                "identifier": identifier,
                "hyperparameters": hp,
                "model_hashes": hashes,
                "evaluation_hash": evaluation_hash,
            }
        )
        relstem = f"{FIGURES}/{identifier}/{short_hash(h)}"
        asset = plotly_js_asset(self.root / FIGURES) if "html" in formats else None
        written = _write_formats(fig, self.root / relstem, formats, asset)
        record = {
            "hash": h,
            "identifier": identifier,
            "hyperparameters": hp,
            "model_hashes": hashes,
            "evaluation_hash": evaluation_hash,
            "formats": written,
            "files": {fmt: f"{relstem}.{fmt}" for fmt in written},
        }
        return self.upsert(FIGURES, record)

    def find_figures(
        self: ResultsIndex,
        identifier: str | None = None,
        train: Mapping[str, Any] | None = None,
        test: Mapping[str, Any] | None = None,
        figure: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Figure records under `identifier` (or one of its parents) whose params match.

        `train`, `test` and `figure` are `where` dicts on those sections (values, `OneOf`,
        `Range`; nested or dotted keys).
        """
        where = {
            f"hyperparameters.{name}": value
            for name, value in (("train", train), ("test", test), ("figure", figure))
            if value
        }
        records = self.find(FIGURES, where)
        if identifier is not None:
            records = [r for r in records if identifier_matches(r.get("identifier"), identifier)]
        return records

    def identifying(
        self: ResultsIndex, record: Mapping[str, Any], group: list[dict[str, Any]] | None = None
    ) -> list[tuple[str, Any]]:
        """(field, value) of `record` for the params that vary among its identifier's figures."""
        if group is None:
            group = self.find(FIGURES, {"identifier": record["identifier"]})
        fields = varying_fields([{"hyperparameters": r.get("hyperparameters", {})} for r in group])

        def order(name: str) -> tuple[int, str]:
            head = name.split(".")[0]
            return (_SECTIONS.index(head) if head in _SECTIONS else len(_SECTIONS), name)

        out = []
        for name in sorted(fields, key=order):
            value = lookup({"hyperparameters": record.get("hyperparameters", {})}, name)
            out.append((name, None if value is MISSING else value))
        return out

    def _figure_record(self: ResultsIndex, record: Mapping[str, Any] | str) -> dict[str, Any]:
        return self.get(FIGURES, record) if isinstance(record, str) else dict(record)

    def load_figure(self: ResultsIndex, record: Mapping[str, Any] | str, annotate: bool = False) -> go.Figure:
        """The saved figure; `annotate` adds a note of the params that distinguish it from the
        other figures of its identifier (e.g. `train.perturbation.std=0.5`)."""
        import plotly.io as pio

        rec = self._figure_record(record)
        path = self.root / rec["files"]["json"]
        try:
            fig = pio.from_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"figure file {path} of record {rec['hash'][:12]} is missing") from None
        if annotate:
            return _annotated(fig, self.identifying(rec))
        return fig

    def export_figures(
        self: ResultsIndex,
        records: Iterable[Mapping[str, Any]],
        directory: str | Path,
        annotate: bool = False,
        formats: Sequence[str] = ("html", "json"),
        names_among_exported: bool = False,
    ) -> list[Path]:
        """Write the figures to `directory` under readable, deterministic names.

        Names are the identifier (with '-' for '/') then `__field=value` for each param that
        varies among that identifier's figures in the index (or, with `names_among_exported`,
        among the figures exported here, so that names do not change when other figures join
        the index), e.g.
        `aligned_trajectories-compare_train_conditions__train.perturbation.std=0.5__test.amplitude=2.html`;
        the short hash is appended where two figures would otherwise share a name.
        """
        formats = _check_formats(formats)
        directory = Path(directory)
        records = [self._figure_record(r) for r in records]
        groups: dict[str, list[dict[str, Any]]] = {}
        named: list[tuple[str, dict[str, Any], list[tuple[str, Any]]]] = []
        for rec in records:
            ident = rec["identifier"]
            if ident not in groups:
                groups[ident] = ([r for r in records if r["identifier"] == ident] if names_among_exported
                                 else self.find(FIGURES, {"identifier": ident}))
            fields = self.identifying(rec, groups[ident])
            name = ident.replace("/", "-") + "".join(f"__{k}={_name_value(v)}" for k, v in fields)
            name = _UNSAFE.sub("_", name)
            if len(name) > 180:
                name = f"{name[:160]}__{short_hash(rec['hash'])}"
            named.append((name, rec, fields))
        counts: dict[str, int] = {}
        for name, _, _ in named:
            counts[name] = counts.get(name, 0) + 1

        asset = plotly_js_asset(directory) if "html" in formats else None
        paths: list[Path] = []
        for name, rec, fields in named:
            if counts[name] > 1:
                name = f"{name}__{short_hash(rec['hash'])}"
            fig = self.load_figure(rec)
            if annotate:
                fig = _annotated(fig, fields)
            stem = directory / name
            for fmt in _write_formats(fig, stem, formats, asset):
                paths.append(_with_format(stem, fmt))
        return paths


def _annotated(fig: go.Figure, fields: list[tuple[str, Any]]) -> go.Figure:
    if fields:
        text = "<br>".join(f"{name} = {_name_value(value)}" for name, value in fields)
        fig.add_annotation(
            text=text,
            xref="paper",
            yref="paper",
            x=1.0,
            y=1.0,
            xanchor="right",
            yanchor="bottom",
            align="right",
            showarrow=False,
            font={"size": 10},
            name="robustreach-params",
        )
    return fig
