"""spark-submit entry point of ``ctx-spark generate-catalogue`` (same options; ``ctx-spark generate-catalogue --help``).

Usage::

    spark-submit [--master URL ...] jobs/generate_catalogue.py \\
        --out C --rows 200000 --seed 42 [--conf FILE] [--set key=value ...]
    python -m jobs.generate_catalogue ...   (the same, in local mode)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

if __package__ in (None, ""):  # run as a file by spark-submit: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ctx_spark.cli import main as ctx_spark_main  # noqa: E402

COMMAND = "generate-catalogue"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``ctx-spark generate-catalogue`` with ``argv`` (default: the command line)."""
    return ctx_spark_main([COMMAND, *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
