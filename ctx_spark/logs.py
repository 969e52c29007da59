"""Progress logging to stderr, the same for every job.

Jobs run unattended (cron, Airflow, spark-submit on a cluster), so progress must be readable
from the driver's stderr alone: each stage says when it starts, how many rows it handled and
how fast.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Optional

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def get_logger(name: str) -> logging.Logger:
    """Return a logger under the ``ctx_spark`` hierarchy that writes to stderr."""
    root = logging.getLogger("ctx_spark")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False
    return root.getChild(name) if not name.startswith("ctx_spark") else logging.getLogger(name)


class StageTimer:
    """Elapsed time of one stage; ``rows`` may be set inside the block to log a rate."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seconds: float = 0.0
        self.rows: Optional[int] = None

    @property
    def rate(self) -> Optional[float]:
        """Rows per second, or None when no row count was recorded."""
        if self.rows is None or self.seconds <= 0:
            return None
        return self.rows / self.seconds


@contextmanager
def stage(logger: logging.Logger, name: str) -> Iterator[StageTimer]:
    """Log the start and end of a stage with its duration and, when known, rows and rate."""
    timer = StageTimer()
    logger.info("stage %s: started", name)
    try:
        yield timer
    except BaseException:
        timer.seconds = time.perf_counter() - timer.started
        logger.error("stage %s: failed after %.1f s", name, timer.seconds)
        raise
    timer.seconds = time.perf_counter() - timer.started
    if timer.rows is not None:
        logger.info(
            "stage %s: done in %.1f s, %d rows (%.0f rows/s)",
            name,
            timer.seconds,
            timer.rows,
            timer.rate or 0.0,
        )
    else:
        logger.info("stage %s: done in %.1f s", name, timer.seconds)
