"""``lce-train``: learn an LCE map from Kr83m S2s, from the command line.

Input, one of:

- ``--synthetic N`` (the default, N = 20 000): a simulated Kr83m run of the built-in
  detector, started from positions fitted with its Monte-Carlo-style nominal map; the
  report then compares with the simulation's truth;
- ``--input FILE.npz``: ``area_per_channel`` (n x 253 or n x 494, PE), optional ``x``,
  ``y`` (cm), ``dead_pmts``, ``saturated_channel``, ``spe_resolution`` (written e.g. by
  ``lce-simulate``; a file with the simulation's truth and ``detector_seed`` is
  compared with that truth);
- ``--context MODULE:FUNCTION --run-id ID [ID ...]``: S2 peaks from a strax context,
  with ``--selection`` and, optionally, initial positions from ``--positions``.

The options, input and starting map of a run are written to ``run_config.json`` in
``--out``; ``--resume DIR`` reads them back and continues from the last checkpoint.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

__all__ = ["train_main"]

log = logging.getLogger(__name__)

RUN_CONFIG = "run_config.json"
DEFAULT_SYNTHETIC_EVENTS = 20_000
#: Command-line flags that set TrainingOptions fields.
_OPTION_FLAGS = ("max_rounds", "min_rounds", "tolerance", "batch_size", "learning_rate",
                 "heldout_fraction", "rejection_sigmas", "strategy", "seed")  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lce-train",
        description="Learn an S2 LCE map from Kr83m calibration data, fitting every event's "
        "position with it (co-evolution). Without input: a synthetic run.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--synthetic",
        type=int,
        metavar="N",
        help=f"simulate N events (default {DEFAULT_SYNTHETIC_EVENTS})",
    )
    source.add_argument("--input", type=Path, metavar="FILE.npz", help="training input file")
    source.add_argument(
        "--context",
        metavar="MODULE:FUNCTION",
        help="function returning a strax context, e.g. mymodule:my_context",
    )
    source.add_argument(
        "--resume",
        type=Path,
        metavar="DIR",
        help="continue the interrupted training in DIR (input and options "
        "from DIR/run_config.json)",
    )
    parser.add_argument("--run-id", nargs="+", default=[], help="run ids (with --context)")
    parser.add_argument(
        "--selection",
        default=None,
        help="strax selection on the peaks, e.g. 'area > 1000' (S2s only are taken in any case)",
    )
    parser.add_argument(
        "--positions",
        default=None,
        metavar="TARGET[:X,Y]",
        help="initial positions from this peak-level data type (fields x,y "
        "unless named), with --context",
    )
    parser.add_argument(
        "--dead-pmts",
        default=None,
        metavar="LIST",
        help="dead top PMTs, e.g. 12,87,140 (default: channels without signal in every event)",
    )
    parser.add_argument(
        "--initial-map",
        default=None,
        metavar="PATH|lce://NAME",
        help="starting map (default: the simulation's nominal map)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("lce_output/training"),
        help="output directory (default lce_output/training)",
    )
    parser.add_argument("--register", metavar="NAME", help="register the map as lce://NAME")
    _add_option_flags(parser)
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    return parser


def _add_option_flags(parser: argparse.ArgumentParser) -> None:
    from lce_plugins.training.options import STRATEGIES

    group = parser.add_argument_group("training options (see lce_plugins.TrainingOptions)")
    group.add_argument("--max-rounds", type=int)
    group.add_argument("--min-rounds", type=int)
    group.add_argument("--tolerance", type=float, help="relative held-out improvement to stop")
    group.add_argument("--batch-size", type=int)
    group.add_argument("--learning-rate", type=float)
    group.add_argument("--heldout-fraction", type=float)
    group.add_argument("--rejection-sigmas", type=float)
    group.add_argument("--strategy", choices=STRATEGIES, help="TensorFlow distribution strategy")
    group.add_argument(
        "--seed",
        type=int,
        help="seeds the split, the event order and the synthetic run (default 0)",
    )
    group.add_argument(
        "--fixed-positions",
        action="store_true",
        help="fit the map at the initial positions only (no co-evolution)",
    )


def _run_config(args) -> dict:
    """What a resumed run needs to rebuild the same training."""
    options = {name: getattr(args, name) for name in _OPTION_FLAGS
               if getattr(args, name) is not None}  # fmt: skip
    if args.fixed_positions:
        options["coevolve"] = False
    source = dict(
        synthetic=args.synthetic, input=None if args.input is None else str(args.input.resolve()),
        context=args.context, run_id=args.run_id, selection=args.selection,
        positions=args.positions, dead_pmts=args.dead_pmts,
    )  # fmt: skip
    if not (args.input or args.context or args.synthetic):
        source["synthetic"] = DEFAULT_SYNTHETIC_EVENTS
    return dict(source=source, options=options, initial_map=args.initial_map)


def _configure_logging(quiet: bool) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")  # fmt: skip
    logging.getLogger("lce_plugins.reconstruction").setLevel(logging.ERROR if quiet else
                                                             logging.WARNING)  # fmt: skip


def _config_for(args, parser) -> tuple[dict, Path, bool]:
    """The run configuration, output directory and whether to resume."""
    if args.resume is None:
        if args.context and not args.run_id:
            parser.error("--context needs --run-id")
        return _run_config(args), args.out, False
    path = args.resume / RUN_CONFIG
    if not path.exists():
        parser.error(f"--resume {args.resume}: no {RUN_CONFIG} there (not a training directory)")
    config = json.loads(path.read_text())
    # when to stop and where to run may change on resuming; nothing else may
    for name in ("max_rounds", "min_rounds", "tolerance", "strategy"):
        if getattr(args, name) is not None:
            config["options"][name] = getattr(args, name)
    if args.max_rounds is not None and args.min_rounds is None:
        config["options"]["min_rounds"] = min(config["options"]["min_rounds"], args.max_rounds)
    return config, args.resume, True


def train_main(argv=None) -> int:
    """Run ``lce-train``; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    _configure_logging(args.quiet)
    config, out, resume = _config_for(args, parser)
    from lce_plugins.training.inputs import load_training_input

    started = time.perf_counter()
    try:
        inputs = load_training_input(config["source"], seed=config["options"].get("seed", 0),
                                     progress=not args.quiet)  # fmt: skip
    except (OSError, ValueError, KeyError, ImportError, AttributeError) as err:
        print(f"lce-train: cannot read the input: {err}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    (out / RUN_CONFIG).write_text(json.dumps(config, indent=2))

    from lce_plugins.training.api import train

    lce_map, report = train(**inputs, initial_map=config["initial_map"], out=out, resume=resume,
                            progress=not args.quiet, plots=not args.no_plots,
                            **config["options"])  # fmt: skip
    if args.register:
        from lce_plugins.registry import register_map

        register_map(out / "lce_map.npz", args.register, overwrite=True)
    print(headline(report, out, time.perf_counter() - started, args.register))
    return 0


def _percent(value) -> str:
    return "n/a" if value is None else f"{100 * value:.2f} %"


def _millimetres(value) -> str:
    return "n/a" if value is None else f"{10 * value:+.2f} mm"


def _truth_lines(truth: dict) -> list[str]:
    lce, positions, bound = truth["lce_relative_rms"], truth["positions"], truth["cramer_rao"]
    lines = ["  LCE relative RMS against the truth, r < 60 cm | 60-66.4 cm:"]
    for key, label in (("trained", "trained map"), ("initial", "initial map")):
        lines.append(f"    {label:12s} {_percent(lce[key]['bulk'])} | {_percent(lce[key]['wall'])}")
    lines.append("  positions: median radial bias (r < 60 cm | beyond), resolution | bound [cm]:")
    for key, label in (("trained", "trained map"), ("initial", "initial"),
                       ("truth_map", "true response")):  # fmt: skip
        bulk, wall = positions[key]["bulk"], positions[key]["wall"]
        lines.append(
            f"    {label:13s} {_millimetres(bulk['radial_bias_cm'])} | "
            f"{_millimetres(wall['radial_bias_cm'])}, {bulk['resolution_cm']:.3f} | "
            f"{bound['bulk']['resolution_bound_cm']:.3f}"
        )
    return lines


def headline(report: dict, out: Path, seconds: float, registered: str | None) -> str:
    """The summary ``lce-train`` prints at the end."""
    tag = " (synthetic data)" if report["synthetic"] else ""
    lines = [
        f"Trained LCE map{tag}: {report['n_events_train']} training and "
        f"{report['n_events_heldout']} held-out events, {report['rounds']} rounds, "
        f"{seconds:.0f} s ({report['events_per_second']:.0f} training events/s per round)",
        f"  rejected as outliers: {report['n_events_rejected']} events",
        f"  held-out reduced chi2 (D/ndf): trained {report['reduced_chi2']:.4f}, initial map "
        f"{report['reduced_chi2_initial']:.4f}"
        + (f", true response {report['reduced_chi2_truth']:.4f}" if "reduced_chi2_truth"
           in report else ""),
        f"  calibrated chi2 D/(E[D]-3): trained {report['reduced_chi2_calibrated']:.4f} "
        "(1 for a perfect model)",
    ]  # fmt: skip
    ks = {key: value["ks_pvalue"] for key, value in report["homogeneity"].items()}
    lines.append("  KS p-value of r^2 against uniform: "
                 + ", ".join(f"{key} {value:.3g}" for key, value in ks.items()))  # fmt: skip
    if "truth" in report:
        lines += _truth_lines(report["truth"])
    lines += [f"  map: {report['map_file']} (hash {report['map_content_hash'][:12]})",
              f"  report, plots, checkpoint: {out}"]  # fmt: skip
    if registered:
        lines.append(f"  registered as lce://{registered}")
    return "\n".join(lines)
