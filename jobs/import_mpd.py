"""spark-submit entry point of ``ctx-spark import-mpd`` (same options; ``ctx-spark import-mpd --help``).

Usage::

    spark-submit [--master URL ...] jobs/import_mpd.py \\
        --slices DIR --out C [--conf FILE] [--set key=value ...]
    python -m jobs.import_mpd ...   (the same, in local mode)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

if __package__ in (None, ""):  # run as a file by spark-submit: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ctx_spark.cli import main as ctx_spark_main  # noqa: E402

COMMAND = "import-mpd"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``ctx-spark import-mpd`` with ``argv`` (default: the command line)."""
    return ctx_spark_main([COMMAND, *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
