"""Numbers read back from saved figures (`plots.traces`, `findings.summarise_points`) equal
those computed directly from the table the figure was drawn from."""

import numpy as np
import pandas as pd
import plotly.io as pio
import pytest
from robustreach.findings import summarise_points
from robustreach.plots.distributions import measure_distributions
from robustreach.plots.sweeps import measure_curves
from robustreach.plots.traces import as_array, trace_table


@pytest.fixture
def table() -> pd.DataFrame:
    """A long measures table: 2 conditions x 3 amplitudes x 3 replicates x 7 trials."""
    rng = np.random.default_rng(3)
    rows = [
        {"condition": condition, "amplitude": amplitude, "replicate": replicate, "trial": trial, "direction": 45.0 * trial,
         "realisation": 0, "measure": "endpoint_error", "value": float(rng.gamma(2.0, 0.01 * (1 + amplitude)))}
        for condition in ("std 0", "std 1")
        for amplitude in (0.0, 0.5, 2.0)
        for replicate in range(3)
        for trial in range(7)
    ]
    return pd.DataFrame(rows)


def through_json(fig):
    """The figure as the results index stores and loads it."""
    return pio.from_json(fig.to_json())


def test_typed_arrays_are_decoded():
    fig = through_json(measure_curves(pd.DataFrame({
        "condition": ["a"] * 4, "amplitude": [0.0, 0.0, 1.0, 1.0], "context": [0.0] * 4,
        "measure": ["m"] * 4, "value": [1.0, 3.0, 2.0, 6.0]}), "m", x="amplitude", colour="condition", facet=None))
    assert isinstance(fig.data[0].y, dict) and "bdata" in fig.data[0].y  # plotly's base64 encoding
    np.testing.assert_array_equal(as_array(fig.data[0].y), [2.0, 4.0])
    np.testing.assert_array_equal(as_array(fig.data[0].customdata), [[1.0, 2.0], [2.0, 2.0]])  # std, n


def test_distribution_summary_matches_the_table(table):
    fig = through_json(measure_distributions(table, "endpoint_error"))
    points = trace_table(fig)
    assert len(points) == len(table)
    summary = summarise_points(points).set_index(["trace", "x"])
    direct = table.groupby(["condition", "amplitude"])["value"]
    for (condition, amplitude), values in direct:
        row = summary.loc[(condition, amplitude)]
        assert row["n"] == len(values)
        assert row["median"] == pytest.approx(values.median())
        assert row["q25"] == pytest.approx(values.quantile(0.25))
        assert row["q75"] == pytest.approx(values.quantile(0.75))
        medians = table[(table.condition == condition) & (table.amplitude == amplitude)].groupby("replicate")["value"].median()
        assert row["replicates"] == 3
        assert row["replicate_medians"] == f"{medians.min():.3g}-{medians.max():.3g}"


def test_curve_summary_matches_the_table(table):
    fig = through_json(measure_curves(table, "endpoint_error", x="amplitude", colour="condition", facet=None))
    summary = summarise_points(trace_table(fig)).set_index(["trace", "x"])
    for (condition, amplitude), values in table.groupby(["condition", "amplitude"])["value"]:
        row = summary.loc[(condition, amplitude)]
        assert row["mean"] == pytest.approx(values.mean())
        assert row["std"] == pytest.approx(values.std(ddof=0))
        assert row["n"] == len(values)


def test_panels_are_kept_apart(table):
    table = pd.concat([table.assign(context=0.0), table.assign(context=1.0, value=table["value"] + 1.0)])
    fig = through_json(measure_curves(table, "endpoint_error", x="amplitude", colour="condition", facet="context"))
    summary = summarise_points(trace_table(fig))
    assert set(summary["panel"]) == {"x", "x2"}
    first = summary[(summary.panel == "x") & (summary.trace == "std 0") & (summary.x == 0.5)]["mean"].item()
    second = summary[(summary.panel == "x2") & (summary.trace == "std 0") & (summary.x == 0.5)]["mean"].item()
    assert second - first == pytest.approx(1.0)
