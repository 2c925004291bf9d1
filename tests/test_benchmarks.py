"""``lce-benchmark all``: the Markdown table of ratios, and a quick run of two benchmarks."""

import argparse
import importlib
import json
import math
import re

import pytest

from lce_plugins.benchmarks import BENCHMARKS, main, suite

ENVIRONMENT = dict(
    date="2030-01-01 12:00 UTC",
    platform="Linux-test",
    cpu_count=2,
    python="3.11.7",
    numpy="2.0",
    numba="0.60",
    tensorflow=None,
    straxen="3.0",
)


def _training_report(resolution_cm: float) -> dict:
    return dict(
        reduced_chi2=1.005,
        reduced_chi2_truth=1.0,
        truth=dict(
            positions=dict(trained=dict(bulk=dict(resolution_cm=resolution_cm))),
            cramer_rao=dict(bulk=dict(resolution_bound_cm=0.2)),
            lce_relative_rms=dict(trained=dict(bulk=0.01), initial=dict(bulk=0.1)),
        ),
    )


@pytest.fixture
def figures():
    """Figures in the shapes the benchmarks' ``run`` return (see each module)."""
    return {
        "simulation": dict(
            n_events=1000,
            numba_threads=2,
            events_per_second=1000.0,
            seconds_total=1.0,
            seconds_true_lce=0.25,
            seconds_pmt_response_top=0.5,
            lce_pmt_evaluations_per_second=1000 * 253 / 0.25,
        ),
        "likelihood": dict(
            n_events=10,
            n_terms=2460,
            numba_threads=2,
            exact_parallel_terms_per_second=4e6,
            exact_serial_terms_per_second=2e6,
            straxen_terms_per_second=8e6,
            straxen_deviance_terms_per_second=4e6,
            reference_terms_per_second=None,  # --reference-terms 0
            exact_parallel_ratio_to_straxen=0.5,
            exact_parallel_ratio_to_straxen_deviance=1.0,
            exact_serial_ratio_to_straxen=0.25,
            exact_serial_ratio_to_straxen_deviance=0.5,
            reference_ratio_to_straxen=None,
            reference_ratio_to_straxen_deviance=None,
        ),
        "lce-evaluation": dict(
            n_events=100,
            events_per_second={
                "numba, values": 3000.0,
                "numba, values and gradient": 2000.0,
                "keras, on features": 1000.0,
                "keras, features included": 500.0,
            },
        ),
        "training": {"co-evolution": _training_report(resolution_cm=0.3), "simulation_s": 5.0},
        "reconstruction": dict(
            peaks_per_second=dict(lce=1000.0, mlp=4000.0, scipy=10.0),
            mlp_weights=103526,
            ratio_to_mlp=0.25,
            ratio_to_scipy=100.0,
            median_distance_to_scipy_cm=1e-4,
        ),
    }


def _table_rows(markdown: str) -> dict[str, list[str]]:
    """The table's data rows, by their 'compared' cell."""
    rows = [line for line in markdown.splitlines() if line.startswith("| ")][1:]
    cells = [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]
    return {row[1]: row for row in cells}


def test_table_has_a_row_per_comparison_with_the_returned_ratios(figures):
    rows = _table_rows(suite.markdown_table(figures, quick=False, environment=ENVIRONMENT))

    assert len(rows) == len(suite.COMPARISONS)
    lce = rows["true LCE step (253 PMTs) vs whole Kr83m simulation"]
    assert lce[:6] == ["simulation", lce[1], "4000", "1000", "events/s", "4"]
    gradient = rows["Numba LCE map, values and gradient vs Keras network on precomputed features"]
    assert gradient[5] == "2"
    parallel = next(row for name, row in rows.items() if "parallel vs straxen deviance" in name)
    assert parallel[2:6] == ["4e+06", "4e+06", "PMT-terms/s", "1"]


def test_table_takes_ratios_the_benchmark_returns_rather_than_recomputing_them(figures):
    figures["reconstruction"]["ratio_to_scipy"] = 42.0  # not lce / scipy = 100

    rows = _table_rows(suite.markdown_table(figures, quick=False, environment=ENVIRONMENT))

    assert rows["peak_positions_lce vs scipy.optimize fit (same likelihood and map)"][5] == "42"


def test_targets_are_flagged_met_and_missed(figures):
    rows = _table_rows(suite.markdown_table(figures, quick=False, environment=ENVIRONMENT))

    mlp = rows["peak_positions_lce vs straxen PeakletPositionsMLP"]
    assert mlp[5:] == ["0.25", ">= 0.5", "**no**"]
    scipy = rows["peak_positions_lce vs scipy.optimize fit (same likelihood and map)"]
    assert scipy[5:] == ["100", ">= 20", "yes"]
    chi2 = rows["held-out D/ndf: trained map vs true response"]
    assert chi2[5:] == ["1.005", "0.99 to 1.01", "yes"]
    resolution = rows["position resolution r < 60 cm: trained map vs Cramér-Rao bound"]
    assert resolution[5:] == ["1.5", "< 1.1", "**no**"]
    assert rows["Numba LCE map, values vs Keras network on precomputed features"][6:] == ["", ""]


def test_skipped_reference_reads_skipped_without_a_ratio(figures):
    rows = _table_rows(suite.markdown_table(figures, quick=False, environment=ENVIRONMENT))

    reference = next(row for name, row in rows.items() if name.startswith("slow exact"))
    assert reference[2:6] == ["skipped", "4e+06", "PMT-terms/s", "skipped"]


def test_failed_benchmark_puts_its_error_in_each_of_its_rows(figures):
    figures["reconstruction"] = {"error": "RuntimeError: no MLP | no map\nat all"}

    rows = suite.comparison_rows(figures)
    markdown = suite.markdown_table(figures, quick=True, environment=ENVIRONMENT)

    failed = [row for row in rows if row.error]
    assert [row.comparison.benchmark for row in failed] == ["reconstruction"] * 2
    table = _table_rows(markdown)
    mlp = table["peak_positions_lce vs straxen PeakletPositionsMLP"]
    assert mlp[2:6] == ["", "", "", ""]
    assert mlp[7] == r"error: benchmark failed: RuntimeError: no MLP \| no map at all"
    assert "quick (`--quick`" in markdown


def test_figures_of_a_changed_shape_are_an_error_in_the_row_not_a_crash(figures):
    del figures["reconstruction"]["ratio_to_mlp"]

    row = next(row for row in suite.comparison_rows(figures) if row.error)

    assert row.comparison.compared == "peak_positions_lce vs straxen PeakletPositionsMLP"
    assert row.error == "figures not as expected: KeyError: 'ratio_to_mlp'"


def test_table_lists_only_the_benchmarks_that_ran(figures):
    markdown = suite.markdown_table(
        {"simulation": figures["simulation"]}, quick=False, environment=ENVIRONMENT
    )

    assert {row[0] for row in _table_rows(markdown).values()} == {"simulation"}


def test_header_names_date_machine_versions_and_synthetic_inputs(figures):
    markdown = suite.markdown_table(figures, quick=False, environment=ENVIRONMENT)

    header = markdown.split("| benchmark")[0]
    assert "2030-01-01 12:00 UTC" in header
    assert "Linux-test, 2 CPUs, Python 3.11.7, numpy 2.0, numba 0.60" in header
    assert "tensorflow not installed" in header
    assert "each benchmark's defaults" in header
    assert "synthetic" in header


def test_environment_reads_versions_without_importing_them():
    machine = suite.environment()

    assert machine["cpu_count"] >= 1
    assert machine["numpy"] is not None
    assert set(suite.PACKAGES) <= set(machine)


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_quick_options_are_options_of_the_benchmark(name):
    module = importlib.import_module(BENCHMARKS[name], "lce_plugins.benchmarks")

    quick = suite._benchmark_arguments(module, name, quick=True)
    defaults = suite._benchmark_arguments(module, name, quick=False)

    assert quick != defaults


def test_quick_option_the_benchmark_no_longer_takes_is_an_error(monkeypatch):
    monkeypatch.setitem(suite.QUICK_OPTIONS, "simulation", ["--n-photons", "10"])
    module = importlib.import_module(BENCHMARKS["simulation"], "lce_plugins.benchmarks")

    with pytest.raises(ValueError, match=r"'simulation' does not take .*--n-photons"):
        suite._benchmark_arguments(module, "simulation", quick=True)


def test_failing_benchmark_is_recorded_and_the_command_exits_non_zero(monkeypatch, tmp_path):
    def broken(args: argparse.Namespace) -> dict:
        raise RuntimeError("detector description missing")

    monkeypatch.setattr("lce_plugins.benchmarks.simulation.run", broken)
    out, figures_json = tmp_path / "b.md", tmp_path / "b.json"

    status = main(["--json", str(figures_json), "all", "--only", "simulation", "--out", str(out)])

    assert status == 1
    assert "error: benchmark failed: RuntimeError: detector description missing" in (
        out.read_text()
    )
    written = json.loads(figures_json.read_text())
    assert written["failed"] == ["simulation"]
    assert written["benchmarks"]["simulation"] == {
        "error": "RuntimeError: detector description missing"
    }


@pytest.mark.slow  # imports TensorFlow (lce-evaluation); about 15 s on 2 cores
def test_quick_run_of_two_benchmarks_writes_finite_ratios(tmp_path, capsys):
    out = tmp_path / "b.md"

    status = main(["all", "--quick", "--only", "simulation", "lce-evaluation", "--out", str(out)])

    assert status == 0
    rows = _table_rows(out.read_text())
    assert {row[0] for row in rows.values()} == {"simulation", "lce-evaluation"}
    assert len(rows) == 5
    assert all(math.isfinite(float(row[5])) and float(row[5]) > 0 for row in rows.values())
    printed = capsys.readouterr().out
    assert "[1/2] simulation: {'n_events': 5000, 'seed': 1}" in printed
    assert "| simulation | true LCE step" in printed
