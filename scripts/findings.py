"""Regenerate the tables and figures of `docs/findings.md` from the results index.

    python scripts/findings.py params/part1-short.yml params/part2-short.yml [--results results]

For each parameter file, writes `docs/findings/<part>.md` (its runs with the minutes each took,
and the models they used, by hash), the summary tables listed in `SUMMARIES` (or, for results
recorded before the notebooks saved them, the numbers of the figures in `FIGURE_NUMBERS`; tables
too long to read inline as CSV files, linked), and the figures listed in `FIGURES` as PNG files
under `docs/findings/<part>/` (kaleido draws them in Chromium). Nothing is trained or run: what the
index does not hold shows as "not run" or "not trained".
"""

from __future__ import annotations

import argparse
from pathlib import Path

from robustreach.findings import (
    export_long_tables,
    export_part_figures,
    figure_summaries,
    findings_markdown,
    part_findings,
    saved_summaries,
)

# The figures the findings discuss, per notebook topic (identifiers as saved by the notebooks).
FIGURES = [
    "training/loss_history",
    "behaviour/aligned_trajectories",
    "behaviour/oscillation/velocity_reversals",
    "behaviour/oscillation/path_length_ratio",
    "impulses/pos/aligned_trajectories",
    "impulses/vel/aligned_trajectories",
    "context_sweep/max_lateral_deviation",
    "fixed_points/pca",
    "continuation/context_branches",
    "jacobians/spectra_by_context",
]

# The summary tables the notebooks record (`notebook.record_summary`), quoted by the findings.
SUMMARIES = [
    "behaviour/measures",
    "impulses/pos/measures",
    "impulses/vel/measures",
    "context_sweep/measures",
    "fixed_points/continuum",
    "jacobians/leading_modes",
    "jacobians/stability",
    "jacobians/readout_overlap",
    "jacobians/input_singular_values",
    "continuation/summary",
    "continuation/bifurcations",
]
# Results written before the notebooks recorded summaries: the same numbers read back from figures.
FIGURE_NUMBERS = [
    "behaviour/distributions/endpoint_error",
    "behaviour/distributions/max_lateral_deviation",
    "behaviour/oscillation/velocity_reversals",
    "behaviour/oscillation/path_length_ratio",
    "impulses/pos/peak_response",
    "impulses/vel/peak_response",
    "context_sweep/max_lateral_deviation",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paramfiles", nargs="+", type=Path)
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--out", type=Path, default=Path("docs/findings"))
    parser.add_argument("--no-figures", action="store_true", help="tables only (no kaleido, no browser)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for paramfile in args.paramfiles:
        findings = part_findings(paramfile, args.results)
        figures = [] if args.no_figures else export_part_figures(findings, args.results, args.out / findings.part, FIGURES)
        numbers = saved_summaries(findings, args.results, SUMMARIES)
        if not numbers:
            numbers = figure_summaries(findings, args.results, FIGURE_NUMBERS)
        numbers = export_long_tables(numbers, args.out / findings.part)
        page = args.out / f"{findings.part}.md"
        page.write_text(f"<!-- written by scripts/findings.py from {args.results}/ -->\n\n"
                        + findings_markdown(findings, figures, relative_to=args.out, numbers=numbers) + "\n")
        not_ok = (findings.runs["status"] != "ok").sum()
        print(f"{page}: {len(findings.runs)} runs ({not_ok} not ok), {len(findings.models)} models, "
              f"{len(numbers)} tables of numbers, {len(figures)} figures")


if __name__ == "__main__":
    main()
