"""Regenerate the tables and figures of `docs/findings.md` from the results index.

    python scripts/findings.py params/part1-short.yml params/part2-short.yml [--results results]

For each parameter file, writes `docs/findings/<part>.md` (its runs with the minutes each took,
and the models they used, by hash), the numbers of the figures listed in `MEASURES` (read back
from the saved figures) and the figures listed in `FIGURES` as PNG files under
`docs/findings/<part>/` (kaleido draws them in Chromium). Nothing is trained or run: what the
index does not hold shows as "not run" or "not trained".
"""

from __future__ import annotations

import argparse
from pathlib import Path

from robustreach.findings import export_part_figures, figure_summaries, findings_markdown, part_findings

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

# The figures whose numbers the findings quote: distributions over trials, and curves of means.
MEASURES = [
    "behaviour/distributions/endpoint_error",
    "behaviour/distributions/max_lateral_deviation",
    "behaviour/oscillation/velocity_reversals",
    "behaviour/oscillation/path_length_ratio",
    "behaviour/oscillation/damping_ratio",
    "impulses/pos/peak_response",
    "impulses/vel/peak_response",
    "impulses/pos/settling_time",
    "impulses/vel/settling_time",
    "impulses/pos/oscillation/velocity_reversals",
    "impulses/vel/oscillation/velocity_reversals",
    "context_sweep/max_lateral_deviation",
    "context_sweep/endpoint_error",
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
        summaries = figure_summaries(findings, args.results, MEASURES)
        page = args.out / f"{findings.part}.md"
        page.write_text(f"<!-- written by scripts/findings.py from {args.results}/ -->\n\n"
                        + findings_markdown(findings, figures, relative_to=args.out, summaries=summaries) + "\n")
        not_ok = (findings.runs["status"] != "ok").sum()
        print(f"{page}: {len(findings.runs)} runs ({not_ok} not ok), {len(findings.models)} models, "
              f"{len(summaries)} measure tables, {len(figures)} figures")


if __name__ == "__main__":
    main()
