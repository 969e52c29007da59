"""Command-line plumbing shared by every job: --conf/--set, error handling, exit codes."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Optional, Sequence

from ctx_spark.config import Config, load_config
from ctx_spark.errors import CtxSparkError

#: Exit code for bad input or configuration (a clear message, no traceback).
EXIT_BAD_INPUT = 2


def job_parser(description: Optional[str], prog: Optional[str] = None) -> argparse.ArgumentParser:
    """A parser with the options every job shares: ``--conf`` and repeatable ``--set``."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--conf", metavar="FILE", help="YAML file overriding conf/*.yaml (same nesting)")
    parser.add_argument(
        "--set", metavar="KEY=VALUE", action="append", default=[], dest="overrides",
        help="override one setting, e.g. --set label.min_playlists=5 (repeatable; value parsed as YAML)",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    """Load the configuration named by ``--conf`` and ``--set``."""
    return load_config(args.conf, args.overrides)


def run_main(main: Callable[[Optional[Sequence[str]]], int], argv: Optional[Sequence[str]] = None) -> int:
    """Run a job's ``main``, turning user errors into a one-line message and exit code 2."""
    try:
        return main(argv)
    except CtxSparkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
