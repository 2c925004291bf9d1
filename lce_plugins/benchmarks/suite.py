"""Every side-by-side benchmark in one run, summarised in a Markdown table of ratios.

``lce-benchmark all [--out FILE.md] [--quick] [--only NAME ...]`` runs the benchmarks of
:data:`lce_plugins.benchmarks.BENCHMARKS` one after another in this process. Each gets its
own default options, read from its ``add_arguments`` so that they are defined in one
place, or with ``--quick`` sizes small enough for a few minutes on two cores (noisier
rates, and a training that stops well short of its targets). Each benchmark prints its own
table; at the end this command writes a Markdown file with the date, the machine and the
package versions, and one row per comparison: the two rates (or figures), their ratio,
and the target where the project sets one. Every number comes from the figures the
benchmarks return. All inputs are simulated (synthetic). A benchmark that raises is
recorded in its rows, the others still run, and the command exits with status 1.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import platform
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from . import BENCHMARKS

__all__ = [
    "COMPARISONS",
    "QUICK_OPTIONS",
    "Comparison",
    "Row",
    "Target",
    "add_arguments",
    "comparison_rows",
    "environment",
    "exit_status",
    "markdown_table",
    "run",
]

#: Options of each benchmark under ``--quick``, as typed on its command line (so that a
#: renamed option fails loudly): a few thousand events each, a few minutes in all.
QUICK_OPTIONS = {
    "simulation": ["--n-events", "5000"],
    "likelihood": ["--n-events", "1000", "--repeats", "2", "--reference-terms", "100"],
    "lce-evaluation": ["--n-events", "5000"],
    "training": ["--n-events", "3000"],
    "reconstruction": ["--n-peaks", "2000", "--n-scipy", "20"],
}

#: Packages whose versions the Markdown header names.
PACKAGES = ("numpy", "numba", "tensorflow", "straxen")

Figures = dict  # one benchmark's figures, as its ``run`` returns them
Getter = Callable[[Figures], float | None]


@dataclass(frozen=True)
class Target:
    """A target for the ratio A / B: its text and its test."""

    text: str
    test: Callable[[float], bool]


def at_least(limit: float) -> Target:
    """Target ``ratio >= limit``."""
    return Target(f">= {limit:g}", lambda ratio: ratio >= limit)


def below(limit: float) -> Target:
    """Target ``ratio < limit``."""
    return Target(f"< {limit:g}", lambda ratio: ratio < limit)


def within(low: float, high: float) -> Target:
    """Target ``low <= ratio <= high``."""
    return Target(f"{low:g} to {high:g}", lambda ratio: low <= ratio <= high)


@dataclass(frozen=True)
class Comparison:
    """One row of the table: two figures of one benchmark and, optionally, their target.

    Attributes
    ----------
    benchmark : str
        Key of :data:`BENCHMARKS`.
    compared : str
        What is compared, "A vs B".
    unit : str
        Unit of A and B (events/s, PMT-terms/s, peaks/s, cm, ...).
    rate_a, rate_b : callable
        Read A and B from the dict the benchmark's ``run`` returned.
    ratio : callable, optional
        Reads the ratio where the benchmark returns it itself; without it, A / B.
    target : Target, optional
        The project's target for the ratio, where it sets one.
    """

    benchmark: str
    compared: str
    unit: str
    rate_a: Getter
    rate_b: Getter
    ratio: Getter | None = None
    target: Target | None = None


def _figure(*path: str) -> Getter:
    """Getter of ``figures[path[0]][path[1]]...``."""

    def get(figures: Figures) -> float | None:
        for key in path:
            figures = figures[key]
        return figures

    return get


def _events_per_second(seconds_key: str) -> Getter:
    return lambda figures: figures["n_events"] / figures[seconds_key]


_TRAINED = "co-evolution"  # the training benchmark's default variant
_EXACT = "exact deviance (lce_plugins.likelihood), {}"
_S2_2LLH = "straxen deviance (s2_2llh: 2 neg2llh_modpoisson calls)"
_KERAS_FEATURES = "Keras network on precomputed features"

#: The comparisons of the table, in the order of :data:`BENCHMARKS`.
COMPARISONS = (
    Comparison(
        "simulation",
        "true LCE step (253 PMTs) vs whole Kr83m simulation",
        "events/s",
        _events_per_second("seconds_true_lce"),
        _figure("events_per_second"),
    ),
    Comparison(
        "simulation",
        "PMT response step (top) vs whole Kr83m simulation",
        "events/s",
        _events_per_second("seconds_pmt_response_top"),
        _figure("events_per_second"),
    ),
    Comparison(
        "likelihood",
        _EXACT.format("parallel") + " vs straxen neg2llh_modpoisson (1 call)",
        "PMT-terms/s",
        _figure("exact_parallel_terms_per_second"),
        _figure("straxen_terms_per_second"),
        _figure("exact_parallel_ratio_to_straxen"),
    ),
    Comparison(
        "likelihood",
        _EXACT.format("parallel") + " vs " + _S2_2LLH,
        "PMT-terms/s",
        _figure("exact_parallel_terms_per_second"),
        _figure("straxen_deviance_terms_per_second"),
        _figure("exact_parallel_ratio_to_straxen_deviance"),
    ),
    Comparison(
        "likelihood",
        _EXACT.format("serial") + " vs " + _S2_2LLH,
        "PMT-terms/s",
        _figure("exact_serial_terms_per_second"),
        _figure("straxen_deviance_terms_per_second"),
        _figure("exact_serial_ratio_to_straxen_deviance"),
    ),
    Comparison(
        "likelihood",
        "slow exact reference (tests/likelihood_reference.py) vs " + _S2_2LLH,
        "PMT-terms/s",
        _figure("reference_terms_per_second"),
        _figure("straxen_deviance_terms_per_second"),
        _figure("reference_ratio_to_straxen_deviance"),
    ),
    Comparison(
        "lce-evaluation",
        "Numba LCE map, values vs " + _KERAS_FEATURES,
        "events/s",
        _figure("events_per_second", "numba, values"),
        _figure("events_per_second", "keras, on features"),
    ),
    Comparison(
        "lce-evaluation",
        "Numba LCE map, values and gradient vs " + _KERAS_FEATURES,
        "events/s",
        _figure("events_per_second", "numba, values and gradient"),
        _figure("events_per_second", "keras, on features"),
    ),
    Comparison(
        "lce-evaluation",
        "Numba LCE map, values vs Keras network, feature computation included",
        "events/s",
        _figure("events_per_second", "numba, values"),
        _figure("events_per_second", "keras, features included"),
    ),
    Comparison(
        "training",
        "held-out D/ndf: trained map vs true response",
        "D/ndf",
        _figure(_TRAINED, "reduced_chi2"),
        _figure(_TRAINED, "reduced_chi2_truth"),
        target=within(0.99, 1.01),
    ),
    Comparison(
        "training",
        "position resolution r < 60 cm: trained map vs Cramér-Rao bound",
        "cm",
        _figure(_TRAINED, "truth", "positions", "trained", "bulk", "resolution_cm"),
        _figure(_TRAINED, "truth", "cramer_rao", "bulk", "resolution_bound_cm"),
        target=below(1.1),
    ),
    Comparison(
        "training",
        "LCE relative RMS r < 60 cm: trained map vs nominal map",
        "fraction",
        _figure(_TRAINED, "truth", "lce_relative_rms", "trained", "bulk"),
        _figure(_TRAINED, "truth", "lce_relative_rms", "initial", "bulk"),
    ),
    Comparison(
        "reconstruction",
        "peak_positions_lce vs straxen PeakletPositionsMLP",
        "peaks/s",
        _figure("peaks_per_second", "lce"),
        _figure("peaks_per_second", "mlp"),
        _figure("ratio_to_mlp"),
        at_least(0.5),
    ),
    Comparison(
        "reconstruction",
        "peak_positions_lce vs scipy.optimize fit (same likelihood and map)",
        "peaks/s",
        _figure("peaks_per_second", "lce"),
        _figure("peaks_per_second", "scipy"),
        _figure("ratio_to_scipy"),
        at_least(20),
    ),
)


@dataclass(frozen=True)
class Row:
    """A comparison with its numbers, or with the error that kept it from having them."""

    comparison: Comparison
    rate_a: float | None = None
    rate_b: float | None = None
    ratio: float | None = None
    error: str | None = None

    @property
    def met(self) -> bool | None:
        """Whether the ratio meets the target; None without a target or a ratio."""
        if self.comparison.target is None or self.ratio is None:
            return None
        return math.isfinite(self.ratio) and self.comparison.target.test(self.ratio)


def _as_float(value) -> float | None:
    return None if value is None else float(value)


def _row(comparison: Comparison, figures: Figures) -> Row:
    """Read one comparison's numbers from its benchmark's figures."""
    if "error" in figures:
        return Row(comparison, error=f"benchmark failed: {figures['error']}")
    try:
        rate_a = _as_float(comparison.rate_a(figures))
        rate_b = _as_float(comparison.rate_b(figures))
        if comparison.ratio is not None:
            ratio = _as_float(comparison.ratio(figures))
        else:
            ratio = None if rate_a is None or rate_b is None else rate_a / rate_b
    except (LookupError, TypeError, ValueError, ArithmeticError) as err:
        # the benchmark's figures changed shape: say which figure is missing, not crash
        return Row(comparison, error=f"figures not as expected: {type(err).__name__}: {err}")
    return Row(comparison, rate_a, rate_b, ratio)


def comparison_rows(figures: dict[str, Figures]) -> list[Row]:
    """The table's rows for the benchmarks in ``figures``.

    Parameters
    ----------
    figures : dict
        Benchmark name -> the dict its ``run`` returned, or ``{"error": message}`` for a
        benchmark that raised.

    Returns
    -------
    list of Row
        One per comparison of :data:`COMPARISONS` whose benchmark is in ``figures``.
    """
    return [_row(c, figures[c.benchmark]) for c in COMPARISONS if c.benchmark in figures]


def environment() -> dict:
    """Date (UTC), platform, CPU count and versions of Python and :data:`PACKAGES`.

    A package that is not installed has version None.
    """
    versions = {}
    for package in PACKAGES:
        try:
            # the installed distribution's version: no import (TensorFlow takes seconds)
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return dict(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        platform=platform.platform(),
        cpu_count=os.cpu_count(),
        python=platform.python_version(),
        **versions,
    )


def _number(value: float | None, digits: int) -> str:
    return "skipped" if value is None else f"{value:.{digits}g}"


def _cell(text: str) -> str:
    """Text fit for one Markdown table cell: one line, pipes escaped, at most 300 chars."""
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= 300 else text[:299] + "…"


def _markdown_row(row: Row) -> str:
    comparison = row.comparison
    target = "" if comparison.target is None else comparison.target.text
    if row.error is not None:
        cells = [comparison.benchmark, comparison.compared, "", "", "", "", target]
        return "| " + " | ".join([*cells, f"error: {_cell(row.error)}"]) + " |"
    met = {None: "", True: "yes", False: "**no**"}[row.met]
    cells = [
        comparison.benchmark,
        comparison.compared,
        _number(row.rate_a, 4),
        _number(row.rate_b, 4),
        comparison.unit,
        _number(row.ratio, 4),
        target,
        met,
    ]
    return "| " + " | ".join(cells) + " |"


def _header(quick: bool, environment: dict) -> list[str]:
    versions = ", ".join(
        f"{package} {environment.get(package) or 'not installed'}" for package in PACKAGES
    )
    sizes = "quick (`--quick`: small sizes, noisier)" if quick else "each benchmark's defaults"
    return [
        f"# lce-benchmark all, {environment['date']}",
        "",
        f"Machine: {environment['platform']}, {environment['cpu_count']} CPUs, Python "
        f"{environment['python']}, {versions}. Sizes: {sizes}.",
        "",
        "All inputs are simulated (synthetic Kr83m S2s); no detector data. Absolute rates "
        "depend on the machine and its load, the ratios less so.",
        "",
    ]


def markdown_table(figures: dict[str, Figures], quick: bool, environment: dict) -> str:
    """The Markdown summary: a header on the run and one table row per comparison.

    Parameters
    ----------
    figures : dict
        Benchmark name -> its figures, or ``{"error": message}``; see
        :func:`comparison_rows`.
    quick : bool
        Whether the benchmarks ran with the ``--quick`` sizes.
    environment : dict
        As :func:`environment` returns it.

    Returns
    -------
    str
        Markdown text, ending with a newline.
    """
    lines = _header(quick, environment)
    lines += [
        "| benchmark | compared (A vs B) | A | B | unit | A / B | target | met |",
        "|---|---|---:|---:|---|---:|---|---|",
    ]
    lines += [_markdown_row(row) for row in comparison_rows(figures)]
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``lce-benchmark all``."""
    parser.add_argument(
        "--out", default="benchmarks.md", help="Markdown file to write (default benchmarks.md)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: a few minutes on two cores"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(BENCHMARKS),
        metavar="NAME",
        help=f"run only these benchmarks (of {', '.join(BENCHMARKS)})",
    )


def _benchmark_arguments(module, name: str, quick: bool) -> argparse.Namespace:
    """The benchmark's own defaults, or its ``--quick`` options, parsed by its own parser."""
    parser = argparse.ArgumentParser(prog=f"lce-benchmark {name}")
    module.add_arguments(parser)
    options = QUICK_OPTIONS.get(name, []) if quick else []
    args, unknown = parser.parse_known_args(options)
    if unknown:
        raise ValueError(
            f"benchmark {name!r} does not take the --quick options {unknown}; "
            f"update QUICK_OPTIONS in {__name__} to its current options"
        )
    return args


def _run_benchmark(name: str, quick: bool, position: str) -> Figures:
    """Run one benchmark; its figures, or ``{"error": message}`` if it raised."""
    started = time.perf_counter()
    try:
        module = importlib.import_module(BENCHMARKS[name], __package__)
        args = _benchmark_arguments(module, name, quick)
        print(f"\n{position} {name}: {vars(args)}", flush=True)
        figures = module.run(args)
    except Exception as err:  # one broken benchmark must not stop the others
        traceback.print_exc()
        print(f"{position} {name} FAILED after {time.perf_counter() - started:.0f} s: {err!r}")
        return {"error": f"{type(err).__name__}: {err}"}
    print(f"{position} {name} finished in {time.perf_counter() - started:.0f} s", flush=True)
    return figures


def run(args: argparse.Namespace) -> dict:
    """Run the benchmarks, write and print the Markdown table.

    Returns
    -------
    dict
        ``environment`` (see :func:`environment`), ``quick``, ``benchmarks`` (name ->
        figures or ``{"error": message}``) and ``failed`` (names of the benchmarks that
        raised or whose figures could not be read).
    """
    names = [name for name in BENCHMARKS if args.only is None or name in args.only]
    figures = {}
    for i, name in enumerate(names):
        figures[name] = _run_benchmark(name, args.quick, f"[{i + 1}/{len(names)}]")

    machine = environment()
    table = markdown_table(figures, args.quick, machine)
    Path(args.out).write_text(table, encoding="utf-8")
    print(f"\n{table}\nwritten to {args.out}")

    unreadable = {row.comparison.benchmark for row in comparison_rows(figures) if row.error}
    failed = sorted(unreadable | {name for name, result in figures.items() if "error" in result})
    return dict(environment=machine, quick=args.quick, benchmarks=figures, failed=failed)


def exit_status(result: dict) -> int:
    """1 if a benchmark failed (see :func:`run`), else 0."""
    return 1 if result["failed"] else 0
