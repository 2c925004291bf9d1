"""Side-by-side benchmarks: ``lce-benchmark NAME [options]``, or ``lce-benchmark all``.

Each benchmark is a module of this package with ``add_arguments(parser)`` and
``run(args) -> dict``; it prints its table and returns the figures. Benchmarks compare
alternatives in one run and print ratios; absolute rates depend on the machine.
``lce-benchmark all`` (:mod:`.suite`) runs them all and writes a Markdown table of the
ratios.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

__all__ = ["BENCHMARKS", "build_parser", "main"]

#: name -> module (relative to this package)
BENCHMARKS = {
    "simulation": ".simulation",
    "likelihood": ".likelihood",
    "lce-evaluation": ".lce_evaluation",
    "training": ".training",
    "reconstruction": ".reconstruction",
}


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    """The command line of ``lce-benchmark`` and the module of each subcommand."""
    parser = argparse.ArgumentParser(prog="lce-benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the figures to this JSON file")
    commands = parser.add_subparsers(dest="name", required=True)
    modules = {}
    for name, module_name in {**BENCHMARKS, "all": ".suite"}.items():
        module = importlib.import_module(module_name, __name__)
        modules[name] = module
        module.add_arguments(commands.add_parser(name, help=module.__doc__.splitlines()[0]))
    return parser, modules


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lce-benchmark`` console script; returns the exit status."""
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    figures = modules[args.name].run(args)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)
    return modules["all"].exit_status(figures) if args.name == "all" else 0


if __name__ == "__main__":
    sys.exit(main())
