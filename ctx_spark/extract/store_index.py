"""The mel store seen from Spark: its rows as a table, which of a run's tracks it already
holds, and which of those to copy forward (compaction).

The store's data files are their own index (ctx_spark/shards/store.py): Spark reads only
their key columns and, from ``_metadata``, each row's file and position, so nothing is
listed on the driver but the batch directories (one per extraction run), and the
spectrograms themselves are never read here.
"""

from __future__ import annotations

from typing import Optional

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctx_spark import io
from ctx_spark.extract.reuse import fingerprint_match
from ctx_spark.extract.store_tasks import STORE_INDEX
from ctx_spark.schema import SPLIT, TRACK_ID
from ctx_spark.shards.contract import AUDIO_CHECKSUM, AUDIO_MTIME, AUDIO_SIZE
from ctx_spark.shards.store import STORE_FILE, StoreLayout

#: Name prefix of the garbage collector's tombstone tables under ``M/<digest>/gc/``.
TOMBSTONES = "tombstones-"


def _visible(names: list[str]) -> list[str]:
    return [n for n in names if not n.startswith((".", "_"))]


def withdrawn_files(spark: SparkSession, layout: StoreLayout) -> Optional[DataFrame]:
    """[store_file] of the files the garbage collector has withdrawn (may delete): a run
    never reuses them (docs/refresh.md, "Garbage collection")."""
    tables = [f"{layout.gc}/{n}" for n in io.list_dir(spark, layout.gc) if n.startswith(TOMBSTONES)]
    if not tables:
        return None
    return spark.read.parquet(*tables).select(STORE_FILE).distinct()


def store_rows(spark: SparkSession, layout: StoreLayout, id_type: str, withdrawn: bool = True) -> Optional[DataFrame]:
    """Every row of the store's data files: [track_id, audio_size, audio_mtime_ms,
    audio_checksum, store_file, store_index], or None while it holds no batch.

    ``store_file`` is the file's path under ``data/`` (``<batch>/<split>/<name>``);
    ``store_index`` its row's position in the file. With ``withdrawn``, rows of files the
    garbage collector withdrew are left out.
    """
    if not _visible(io.list_dir(spark, layout.data)):
        return None
    ddl = (
        f"{TRACK_ID} {'bigint' if id_type == 'int64' else 'string'}, {AUDIO_SIZE} bigint, "
        f"{AUDIO_MTIME} bigint, {AUDIO_CHECKSUM} string"
    )
    files = (
        spark.read.schema(ddl)
        .option("recursiveFileLookup", "true")
        .parquet(layout.data)
        .select(
            TRACK_ID,
            AUDIO_SIZE,
            AUDIO_MTIME,
            AUDIO_CHECKSUM,
            F.regexp_extract(F.col("_metadata.file_path"), r"/([^/]+/[^/]+/[^/]+)$", 1).alias(STORE_FILE),
            F.col("_metadata.row_index").alias(STORE_INDEX),
        )
    )
    gone = withdrawn_files(spark, layout) if withdrawn else None
    return files if gone is None else files.join(F.broadcast(gone), STORE_FILE, "left_anti")


def match(rows: DataFrame, stored: Optional[DataFrame], checksum: bool) -> tuple[Optional[DataFrame], DataFrame]:
    """(found, missing): the rows whose spectrogram the store holds, each with one store
    position (``store_file``, ``store_index``), and the others.

    The fingerprint decides (size and mtime, or checksum; a null never matches). A key the
    store holds twice (a row copied forward, or written by an attempt that was killed) is
    taken from the newest file (batch names start with their UTC time).
    """
    if stored is None:
        return None, rows
    cur, prev = rows.alias("cur"), stored.alias("prev")
    matched = cur.join(prev, fingerprint_match(checksum), "inner").select(
        *[F.col(f"cur.{c}").alias(c) for c in rows.columns],
        F.col(f"prev.{STORE_FILE}").alias(STORE_FILE),
        F.col(f"prev.{STORE_INDEX}").alias(STORE_INDEX),
    )
    newest = Window.partitionBy(TRACK_ID).orderBy(F.col(STORE_FILE).desc(), F.col(STORE_INDEX).asc())
    found = matched.withColumn("_n", F.row_number().over(newest)).where(F.col("_n") == 1).drop("_n")
    missing = rows.join(found.select(TRACK_ID), TRACK_ID, "left_anti")
    return found, missing


def compaction(
    found: Optional[DataFrame], stored: Optional[DataFrame], threshold: float
) -> tuple[Optional[DataFrame], Optional[DataFrame]]:
    """(to_copy, kept): the found rows to copy into the new batch, and the rest.

    A row is copied when the rows of its split that this run uses from its file are fewer
    than ``threshold`` of the file's rows: a file most of whose tracks left the dataset, or a
    track whose split changed (it sits among another split's rows). A reader then never
    reads a store row group for less than about ``threshold`` of it, and the old file, once
    no kept snapshot uses it, is deleted by the garbage collector. Two aggregations over the
    store's key columns; the tables joined are one row per (file, split).
    """
    if found is None or stored is None or threshold <= 0:
        return None, found
    size = stored.groupBy(STORE_FILE).agg(F.count(F.lit(1)).alias("_file_rows"))
    live = found.groupBy(STORE_FILE, SPLIT).agg(F.count(F.lit(1)).alias("_live"))
    sparse = (
        live.join(size, STORE_FILE)
        .where(F.col("_live") < F.lit(threshold) * F.col("_file_rows"))
        .select(STORE_FILE, SPLIT)
    )
    to_copy = found.join(sparse, [STORE_FILE, SPLIT], "left_semi")
    kept = found.join(sparse, [STORE_FILE, SPLIT], "left_anti")
    return to_copy, kept


def count_by_split(*frames: Optional[DataFrame]) -> dict[str, int]:
    """Rows per split over the given tables (one aggregation; bounded by the splits)."""
    present = [f.select(SPLIT) for f in frames if f is not None]
    if not present:
        return {}
    union = present[0]
    for frame in present[1:]:
        union = union.unionByName(frame)
    return {r[SPLIT]: int(r["n"]) for r in union.groupBy(SPLIT).agg(F.count(F.lit(1)).alias("n")).collect()}


def bytes_under(spark: SparkSession, path: str) -> tuple[int, int]:
    """(bytes, files) under ``path`` on any Hadoop filesystem (0, 0 when absent)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None  # set while the SparkContext is running
    jpath = jvm.org.apache.hadoop.fs.Path(path)
    fs = jpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(jpath):
        return 0, 0
    summary = fs.getContentSummary(jpath)
    return int(summary.getLength()), int(summary.getFileCount())


def null_errors() -> list:
    """The audio task's added columns for a row that was not decoded (copied, imported)."""
    return [
        F.lit(0.0).cast(T.DoubleType()).alias("decoded_seconds"),
        F.lit(None).cast("string").alias("error_reason"),
        F.lit(None).cast("string").alias("error_stage"),
        F.lit(None).cast("string").alias("error_message"),
    ]
