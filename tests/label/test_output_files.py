"""Output files sized for the data (ctx_spark/output_files.py, docs/labelling.md, "Output files"):
a small output gets one file (one per partition directory), a large one files of the target
size, in the sort order the job asked for."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from ctx_spark import io
from ctx_spark.errors import ConfigError
from ctx_spark.output_files import TARGET_FILE_SIZE_KEY, estimated_bytes, target_file_bytes


@contextmanager
def target(spark, value: str) -> Iterator[None]:
    """Set the target file size on the shared session for one block."""
    previous = spark.conf.get(TARGET_FILE_SIZE_KEY, None)
    spark.conf.set(TARGET_FILE_SIZE_KEY, value)
    try:
        yield
    finally:
        if previous is None:
            spark.conf.unset(TARGET_FILE_SIZE_KEY)
        else:
            spark.conf.set(TARGET_FILE_SIZE_KEY, previous)


def data_files(path: Path) -> list[Path]:
    """The data files of an output in write order: by directory, then part number."""
    return sorted(p for p in path.rglob("*.parquet") if not p.name.startswith(("_", ".")))


def read_in_file_order(path: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(f) for f in data_files(path)])


def test_small_sorted_output_is_one_file_in_order(spark, tmp_path: Path) -> None:
    # 2,790 rows spread over 200 partitions, as the scoring output that came out as 213 files.
    df = spark.range(2790, numPartitions=200).select(((F.col("id") * 7919) % 2790).alias("track_id"))
    io.write_parquet(df, str(tmp_path / "out"), sort_by=("track_id",))
    assert len(data_files(tmp_path / "out")) == 1
    assert read_in_file_order(tmp_path / "out").column("track_id").to_pylist() == list(range(2790))


def test_small_unsorted_output_is_compacted_keeping_its_row_order(spark, tmp_path: Path) -> None:
    df = spark.range(5000, numPartitions=50)
    io.write_parquet(df, str(tmp_path / "out"))
    assert len(data_files(tmp_path / "out")) == 1
    assert read_in_file_order(tmp_path / "out").column("id").to_pylist() == list(range(5000))


def test_small_partitioned_output_gets_one_file_per_directory(spark, tmp_path: Path) -> None:
    contexts = ["car", "chill", "gym"]
    df = spark.range(3000, numPartitions=100).select(
        F.element_at(F.array(*[F.lit(c) for c in contexts]), (F.col("id") % 3 + 1).cast("int")).alias("context"),
        F.col("id").alias("rank"),
    )
    io.write_parquet(df.orderBy("context", "rank"), str(tmp_path / "out"), partition_by=("context",))
    for context in contexts:
        files = data_files(tmp_path / "out" / f"context={context}")
        assert len(files) == 1
        ranks = pq.read_table(files[0]).column("rank").to_pylist()
        assert ranks == sorted(ranks) and len(ranks) == 1000


def test_large_output_gets_files_of_the_target_size_in_order(spark, tmp_path: Path) -> None:
    """A generated output of ~4 MB with a 256 KiB target: ~16 files of about the target each."""
    rows = 100_000
    df = spark.range(rows, numPartitions=7).select(
        ((F.col("id") * 104729) % rows).alias("track_id"),
        F.md5(F.col("id").cast("string")).alias("payload"),  # incompressible: size tracks rows
    )
    with target(spark, "256k"):
        io.write_parquet(df, str(tmp_path / "out"), sort_by=("track_id",))
    files = data_files(tmp_path / "out")
    total = sum(f.stat().st_size for f in files)
    expected = math.ceil(total / (256 * 1024))
    assert total > 8 * 256 * 1024  # really a multi-file output
    assert expected // 2 <= len(files) <= expected + 1
    assert max(f.stat().st_size for f in files) < 2 * 256 * 1024
    assert read_in_file_order(tmp_path / "out").column("track_id").to_pylist() == list(range(rows))


def test_target_is_a_checked_byte_size(spark) -> None:
    with target(spark, "128m"):
        assert target_file_bytes(spark) == 128 * 2**20
    with target(spark, "lots"), pytest.raises(ConfigError, match="not a byte size"):
        target_file_bytes(spark)
    with target(spark, "10b"), pytest.raises(ConfigError, match="below"):
        target_file_bytes(spark)


def test_size_estimate_of_a_scan_is_known(spark, tmp_path: Path) -> None:
    """Py4J hands the plan's size over as a Python int: the estimate must read it, not drop it."""
    spark.range(5000).write.parquet(str(tmp_path / "t"))
    on_disk = sum(f.stat().st_size for f in data_files(tmp_path / "t"))
    assert estimated_bytes(spark.read.parquet(str(tmp_path / "t"))) == on_disk


def test_cached_range_partitioned_output_written_in_fewer_files_stays_in_order(spark, tmp_path: Path) -> None:
    """A cached table range-partitioned into more partitions than the output needs files: the
    partitions are not merged with ``coalesce``, whose groups follow block locations, not
    partition order (the labelling job's counts at 320M rows came out in three interleaved runs)."""
    rows = 60_000
    df = (
        spark.range(rows, numPartitions=3)
        .select(((F.col("id") * 7919) % rows).alias("track_id"), F.md5(F.col("id").cast("string")).alias("payload"))
        .repartitionByRange(7, "track_id")
        .persist()
    )
    try:
        df.count()
        with target(spark, "1m"):  # ~2.5 MB of Parquet: 3 files, fewer than the 7 partitions
            io.write_parquet(df, str(tmp_path / "out"), sort_by=("track_id",))
    finally:
        df.unpersist()
    assert read_in_file_order(tmp_path / "out").column("track_id").to_pylist() == list(range(rows))
    files = data_files(tmp_path / "out")
    assert 1 < len(files) < 7
