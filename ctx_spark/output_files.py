"""Output files sized for the data: few files for a small output, files of a target size for a large one.

Spark writes one file per task (and per partition directory), so a small output written after a
200-partition shuffle comes out as 200 tiny files (2,790 scored rows were once 213 files), and a
large one as whatever its shuffle produced. Every job writes through :func:`ctx_spark.io.write_parquet`,
which uses this module. The rule (docs/labelling.md, "Output files"):

1. Before writing, the output's size is estimated from the plan's statistics (Spark's
   ``sizeInBytes``: the real size for a scan or a materialised cache, an upper bound after
   aggregations and projections). A sorted output (``sort_by``) is range-partitioned into
   ``ceil(estimate / target)`` partitions and sorted within each, so it is written as that many
   files in order (a plan already range-partitioned on the first sort column into no more
   partitions is only sorted within them: no shuffle); other outputs are written
   as the plan partitions them (no extra shuffle in front of an expensive stage such as
   scoring).
2. After writing, the staged files are measured. When there are more files than
   ``ceil(bytes / target)`` (plus one per extra partition directory), or fewer than half that
   (files over twice the target: the estimate was low), the output is read back and rewritten as
   ``ceil(bytes / target)`` files, in the same row order (by the written file's part number and
   the row's index in it), before it is published. So is an output with a file over twice
   the target (a low estimate, or a skewed range partitioning).

The target is the Spark setting ``spark.ctx_spark.output.targetFileSize`` (conf/spark.yaml;
default 256m; a byte string such as ``128m``, ``1g``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Optional

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ctx_spark import io
from ctx_spark.errors import ConfigError

#: The Spark setting that holds the target size of one output file.
TARGET_FILE_SIZE_KEY = "spark.ctx_spark.output.targetFileSize"
DEFAULT_TARGET_FILE_SIZE = "256m"
#: Below this a target makes no sense (every row group would be its own file).
MIN_TARGET_FILE_BYTES = 1024
#: Plan estimates at or above this are "unknown" (Spark uses Long.MaxValue for that).
_UNKNOWN_SIZE = 2**62


@dataclass(frozen=True)
class Layout:
    """How one output is laid out: its target file size, partition directories and order."""

    target_bytes: int
    partition_by: tuple[str, ...] = ()
    sort_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class WrittenFiles:
    """The data files of a written output: how many, their bytes, their directories and the
    largest file's bytes."""

    files: int
    bytes: int
    directories: int
    largest: int = 0


def target_file_bytes(spark: SparkSession) -> int:
    """The configured target size of one output file, in bytes.

    Raises:
        ConfigError: the setting is not a byte size, or is under 1 KiB.
    """
    raw = spark.conf.get(TARGET_FILE_SIZE_KEY, DEFAULT_TARGET_FILE_SIZE) or DEFAULT_TARGET_FILE_SIZE
    jvm = spark.sparkContext._jvm
    assert jvm is not None  # set while the SparkContext is running
    try:
        value = int(jvm.org.apache.spark.network.util.JavaUtils.byteStringAsBytes(str(raw)))
    except Exception:  # NumberFormatException through py4j
        raise ConfigError(f"{TARGET_FILE_SIZE_KEY}: {raw!r} is not a byte size (e.g. 256m, 1g)") from None
    if value < MIN_TARGET_FILE_BYTES:
        raise ConfigError(f"{TARGET_FILE_SIZE_KEY}: {raw!r} is below {MIN_TARGET_FILE_BYTES} bytes")
    return value


def files_for(size: int, target: int) -> int:
    """``ceil(size / target)``, at least 1: the number of files an output of ``size`` bytes gets."""
    return max(1, math.ceil(size / target))


def estimated_bytes(df: DataFrame) -> Optional[int]:
    """The plan's size estimate of ``df`` (Spark's optimizer statistics), None when unknown."""
    try:
        # Py4J hands Scala's BigInt over as a Python int; str() also reads a proxied object.
        size = int(str(df._jdf.queryExecution().optimizedPlan().stats().sizeInBytes()))
    except Exception:  # a plan without statistics
        return None
    return size if 0 <= size < _UNKNOWN_SIZE else None


def planned_files(df: DataFrame, estimate: Optional[int], target: int) -> Optional[int]:
    """Files for a sorted output before it is written: from the estimate, at most four per
    shuffle partition (an upper bound after a join can be absurd; step 2 then compacts)."""
    if estimate is None:
        return None
    cap = 4 * int(df.sparkSession.conf.get("spark.sql.shuffle.partitions", "200") or 200)
    return min(files_for(estimate, target), cap)


def range_partitions(df: DataFrame, column: str) -> Optional[int]:
    """How many partitions ``df``'s physical plan is range-partitioned into, ascending on
    ``column`` first; None when it is not.

    Then its partitions follow each other in ``column`` order, and sorting within each is a
    global sort.
    """
    try:
        plan = df._jdf.queryExecution().executedPlan()
        if plan.getClass().getSimpleName() == "AdaptiveSparkPlanExec":
            plan = plan.inputPlan()  # adaptive execution reports no partitioning before it runs
        text = str(plan.outputPartitioning().toString())
    except Exception:  # a plan that cannot say
        return None
    found = re.match(r"rangepartitioning\((\w+)#\d+L? ASC NULLS FIRST.*, (\d+)\)$", text)
    return int(found.group(2)) if found is not None and found.group(1) == column else None


def laid_out(df: DataFrame, partitions: Optional[int], layout: Layout) -> DataFrame:
    """``df`` arranged for writing: sorted outputs range-partitioned into ``partitions``.

    A ``df`` already range-partitioned on the first sort column into no more than
    ``partitions`` is only sorted within its partitions: no shuffle. Into more, it is
    partitioned anew: merging neighbours with ``coalesce`` would not keep their order (its
    groups follow block locations, not partition numbers).
    """
    if not layout.sort_by:
        return df
    existing = range_partitions(df, layout.sort_by[0])
    if existing is not None and (partitions is None or existing <= partitions):
        return df.sortWithinPartitions(*layout.sort_by)
    if partitions is None:
        return df.orderBy(*layout.sort_by)
    return df.repartitionByRange(partitions, *layout.sort_by).sortWithinPartitions(*layout.sort_by)


def written_files(spark: SparkSession, path: str) -> WrittenFiles:
    """Count and measure the data files under ``path`` (hidden names such as ``_SUCCESS`` skipped)."""
    fs = io._fs(spark, path)
    found = fs.listFiles(io._jvm_path(spark, path), True)
    files = size = largest = 0
    directories = set()
    while found.hasNext():
        status = found.next()
        name = status.getPath().getName()
        if name.startswith(("_", ".")):
            continue
        files += 1
        size += int(status.getLen())
        largest = max(largest, int(status.getLen()))
        directories.add(status.getPath().getParent().toString())
    return WrittenFiles(files, size, max(1, len(directories)), largest)


def wanted_files(written: WrittenFiles, target: int) -> int:
    """The most files an output may have: ``ceil(bytes / target)``, plus one per extra directory
    (a range of rows that spans two partition directories is split in two files)."""
    return files_for(written.bytes, target) + written.directories - 1


def _write(df: DataFrame, path: str, partition_by: tuple[str, ...]) -> None:
    writer = df.write.mode("error")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.parquet(path)


def compacted(spark: SparkSession, path: str, partitions: int, partition_by: tuple[str, ...]) -> DataFrame:
    """The output at ``path`` read back in its written row order, in ``partitions`` partitions.

    Order: partition columns, then the written file's part number, then the row's index in the
    file (Parquet's ``_metadata.row_index``).
    """
    part = F.regexp_extract(F.col("_metadata.file_name"), r"^part-(\d+)", 1).cast("long")
    order = [*partition_by, "_part", "_row"]
    back = spark.read.parquet(path)
    columns = back.columns
    keyed = back.select("*", part.alias("_part"), F.col("_metadata.row_index").alias("_row"))
    return keyed.repartitionByRange(partitions, *order).sortWithinPartitions(*order).select(*columns)


def write_sized(df: DataFrame, staging: str, layout: Layout) -> WrittenFiles:
    """Write ``df`` under ``staging`` in files sized by ``layout``; returns what was written.

    See the module docstring for the rule. A rewrite goes to a second hidden path that then
    replaces ``staging``, so the caller publishes one complete output either way.
    """
    spark = df.sparkSession
    planned = planned_files(df, estimated_bytes(df), layout.target_bytes) if layout.sort_by else None
    _write(laid_out(df, planned, layout), staging, layout.partition_by)
    written = written_files(spark, staging)
    wanted = wanted_files(written, layout.target_bytes)
    fewest = math.ceil(files_for(written.bytes, layout.target_bytes) / 2)
    if fewest <= written.files <= wanted and written.largest <= 2 * layout.target_bytes:
        return written
    rewrite = io.staging_path(staging)
    try:
        _write(
            compacted(spark, staging, files_for(written.bytes, layout.target_bytes), layout.partition_by),
            rewrite,
            layout.partition_by,
        )
    except BaseException:
        io.delete_path(spark, rewrite)
        raise
    io.delete_path(spark, staging)
    io.publish(spark, rewrite, staging)
    return written_files(spark, staging)
