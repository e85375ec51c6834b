"""Figures and tables of docs/behaviour-comparison.md, from two trained ensembles.

    python docs/figures/behaviour-comparison/make_figures.py [RESULTS]   # default: the repository's results/

An unperturbed ("std 0") and a curl-trained ("curl std 1") ensemble with otherwise identical
hyperparameters are loaded from the results index, or trained there first (a few minutes on a
CPU). Evaluations are cached in the same index; figures are static PNGs (kaleido, which uses
the system Chromium) written next to this script.
"""

import sys
from pathlib import Path

from robustreach.experiment import expand_conditions, results_store, trained_models
from robustreach.measures import best_replicate, lateral_deviation_summary, select_evaluations
from robustreach.notebook import evaluate_trained, measures_of, select_trained_replicates
from robustreach.plots.distributions import measure_distributions
from robustreach.plots.profiles import profiles
from robustreach.plots.sweeps import measure_curves
from robustreach.plots.trajectories import aligned_trajectories, centre_out_paths

HERE = Path(__file__).parent
EVALUATION = {"n_directions": 24, "n_realisations": 2, "seed": 0}
SPEC = {"perturbation": "curl", "amplitudes": [0.0, 0.5, 1.0, 2.0, 4.0], **EVALUATION}

SECTIONS = {
    "controller": {"hidden_size": 32},
    "perturbation": {"type": "curl"},
    "train": {"n_replicates": 4, "batch_size": 64, "n_batches": 500, "validation_every": 25, "n_snapshots": 12, "seed": 0},
}
CONDITIONS = {"perturbation": {"std": [0.0, 1.0]}}

store = results_store(sys.argv[1] if len(sys.argv) > 1 else None)
models = trained_models(store, expand_conditions(SECTIONS, CONDITIONS), conditions=CONDITIONS)
for trained in models:
    std = trained.hyperparameters.perturbation.std
    trained.label = "std 0" if std == 0 else f"curl std {std:g}"

selection = select_trained_replicates(store, models, EVALUATION, measure="endpoint_error", k=2.0)
evaluations = evaluate_trained(store, models, SPEC)
kept = select_evaluations(evaluations, selection)
table = measures_of(evaluations)
selection.to_csv(HERE / "replicate_selection.csv", index=False)
lateral_deviation_summary(evaluations, selection=selection).to_csv(HERE / "lateral_deviation_summary.csv", index=False)
lateral_deviation_summary(evaluations).to_csv(HERE / "lateral_deviation_summary_all_replicates.csv", index=False)

figures = {
    "lateral_deviation_vs_amplitude": measure_curves(
        table, "max_lateral_deviation", x="amplitude", colour="condition", facet=None, selection=selection,
        title="Max. lateral deviation (mean ± std over trials of included replicates)"),
    "aligned_trajectories": aligned_trajectories(kept, title="Reaches in the reach frame under curl fields"),
    "profiles": profiles(kept, variables=("vel", "force"), components=("lateral",), title="Lateral velocity and force"),
    "distribution_max_lateral_deviation": measure_distributions(
        table, "max_lateral_deviation", selection=selection, points=False, title="Max. lateral deviation per trial"),
}
for trained in models:
    replicate = best_replicate(selection, trained.label)
    name = f"centre_out_{trained.label.replace(' ', '_')}_curl4"
    figures[name] = centre_out_paths(evaluations[trained.label], condition=4, replicate=replicate, label=trained.label)
sizes = {"profiles": (900, 550), "aligned_trajectories": (1150, 500)}
for name, fig in figures.items():
    width, height = sizes.get(name, (900, 500) if not name.startswith("centre_out") else (600, 520))
    fig.write_image(HERE / f"{name}.png", width=width, height=height, scale=1)
print(selection.to_string(), lateral_deviation_summary(evaluations, selection=selection).round(4).to_string(), sep="\n")
