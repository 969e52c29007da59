"""``ctx-spark report``."""

from __future__ import annotations

import argparse

from ctx_spark.cli import Command
from ctx_spark.config import Config
from ctx_spark.explorer.site import DESCRIPTION, add_arguments, run


def _run(args: argparse.Namespace, cfg: Config) -> int:
    return run(args)


REPORT = Command(description=DESCRIPTION, add_arguments=add_arguments, run=_run)
