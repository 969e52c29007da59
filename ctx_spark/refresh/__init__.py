"""Scheduled catalogue refresh: snapshots, the ``current`` pointer, lock, resume, retention.

Readers: ``current_snapshot(spark_or_none, root)`` gives the published snapshot's path.
The run itself: ``ctx_spark.refresh.pipeline.run_refresh`` (jobs/refresh_catalogue.py).
"""

from ctx_spark.refresh.snapshots import current_snapshot

__all__ = ["current_snapshot"]
