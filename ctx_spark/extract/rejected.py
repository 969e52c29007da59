"""The audio listing's rejected entries (hidden, unlisted extension, bad name, duplicate...)
into ``errors/``, beside the write tasks' rows of failed tracks.

They are written by a job of their own, in files named ``listing-<task>-<seq>.parquet``
(the write tasks' are ``part-``), in the errors/ schema, so that every entry under
``--audio-dir`` or row of ``--tracks`` that is no track's audio is on record.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ctx_spark.extract import tasks
from ctx_spark.schema import TRACK_ID
from ctx_spark.shards import contract
from ctx_spark.shards.writer import ShardWriteError, ShardWriter

#: Counts handed back by :func:`write_rejected_batches`; ``write_error`` is the message of
#: a write that no retry can fix (the output is full, read-only or refused), else null.
REJECTED_STATS_DDL = "reason string, n bigint, write_error string"


@dataclass(frozen=True)
class RejectedSpec:
    """Where the listing's rejected entries go: ``root/errors/listing-<task>-<seq>.parquet``.

    Attributes:
        root: the output root being staged.
        directory: the errors directory's name under ``root``.
        schema: the errors table's Arrow schema.
        compression: Parquet codec or ``none``.
    """

    root: str
    directory: str
    schema: pa.Schema
    compression: str


def write_rejected_batches(batches: Iterator[pa.RecordBatch], spec: RejectedSpec) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` function: write rows in the errors schema to ``errors/`` files named
    ``listing-<task>-<seq>`` (apart from the write tasks' ``part-`` files; a retried task
    rewrites the same names), then yield this task's counts per reason.

    A :class:`~ctx_spark.shards.writer.ShardWriteError` does not fail the task (a retry
    would fail the same way, and each failed attempt logs a traceback): the task hands
    back its message instead, and the driver ends the job with it in one line.
    """
    from pyspark import TaskContext

    context = TaskContext.get()
    task = context.partitionId() if context is not None else 0
    writer = ShardWriter(spec.root, task, spec.schema, 1 << 16, 1 << 10, spec.compression, prefix="listing")
    counts: dict[str, int] = {}
    try:
        for batch in batches:
            if not batch.num_rows:
                continue
            table = pa.Table.from_batches([batch]).select(spec.schema.names).cast(spec.schema)
            for reason, n in zip(*_value_counts(table.column("reason"))):
                counts[reason] = counts.get(reason, 0) + n
            writer.write(spec.directory, table)
        writer.close()
    except ShardWriteError as exc:
        writer.abort()
        for _ in batches:  # the rest of the input, unwritten: the job fails anyway
            pass
        yield pa.RecordBatch.from_arrays(
            [pa.array([None], pa.string()), pa.array([0], pa.int64()), pa.array([str(exc)], pa.string())],
            names=["reason", "n", "write_error"],
        )
        return
    except BaseException:
        writer.abort()
        raise
    reasons = sorted(counts)
    yield pa.RecordBatch.from_arrays(
        [
            pa.array(reasons, pa.string()),
            pa.array([counts[r] for r in reasons], pa.int64()),
            pa.array([None] * len(reasons), pa.string()),
        ],
        names=["reason", "n", "write_error"],
    )


def _value_counts(column: pa.ChunkedArray) -> tuple[list[str], list[int]]:
    counted = pc.value_counts(column)
    return counted.field("values").to_pylist(), counted.field("counts").to_pylist()


@dataclass(frozen=True)
class RejectedWrite:
    """What writing the rejected entries to errors/ gave: rows per reason, and the
    messages of writes no retry fixes (empty when all went well)."""

    counts: Mapping[str, int]
    write_errors: tuple[str, ...]


def write_rejected(rejected: DataFrame, root: str, id_kind: str, compression: str) -> RejectedWrite:
    """Write ``rejected`` (rows in the errors/ schema) under ``root/errors/`` (``listing-*``
    files); one small job."""
    id_type = pa.int64() if id_kind == "int64" else pa.string()
    spec = RejectedSpec(root, contract.ERRORS_DIR, tasks.errors_schema(id_type), compression)
    rows = rejected.select(
        F.col(TRACK_ID).cast("long" if id_kind == "int64" else "string").alias(TRACK_ID), *tasks.ERROR_FIELDS
    )
    stats = (
        rows.mapInArrow(functools.partial(write_rejected_batches, spec=spec), REJECTED_STATS_DDL)
        .groupBy("reason", "write_error")
        .agg(F.sum("n").alias("n"))
        .collect()
    )  # one row per reason or write error
    counts = {str(r["reason"]): int(r["n"]) for r in stats if r["write_error"] is None and r["reason"] is not None}
    errors = tuple(sorted({str(r["write_error"]) for r in stats if r["write_error"] is not None}))
    return RejectedWrite(counts=counts, write_errors=errors)
