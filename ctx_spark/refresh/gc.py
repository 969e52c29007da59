"""Garbage collection of the mel store: delete the data files no snapshot uses, safely
beside a live run, and resumably (docs/refresh.md, "Garbage collection").

Mark and sweep, with tombstones:

* **mark**: the data files that no snapshot under ``R/snapshots`` references (published,
  unfinished or retired, whatever their status), older than ``gc_grace_seconds`` and
  older than the start of a live run holding the lock, are written to a tombstone table
  ``M/<digest>/gc/tombstones-<time>-<rand>`` (atomically). From then on no run reuses them
  (``ctx_spark.extract.store_index.store_rows`` leaves them out).
* **sweep**: a tombstone table older than the start of the live run (or any, with none)
  has its files deleted, less those a snapshot references again (read after the live run
  was looked at); the table goes last. A run that began before a tombstone may still name
  its files, so those wait for it to end; a run that began after never names them.

A collection killed at any point leaves tombstone tables that the next collection sweeps
(deleting an absent file is no error), so it is resumable. Listings are Spark jobs
(``binaryFile`` metadata, the refs' ``store_file`` column) and deletions run in tasks:
nothing that grows with the catalogue reaches the driver. Clocks of the hosts sharing a
root must agree (as the lock needs).
"""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Optional

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ctx_spark import io
from ctx_spark.extract.store_index import TOMBSTONES, withdrawn_files
from ctx_spark.fs import arrow_filesystem
from ctx_spark.logs import get_logger
from ctx_spark.refresh import snapshots as S
from ctx_spark.refresh.lock import stale_reason
from ctx_spark.schema import ALL_SPLIT, SPLITS
from ctx_spark.shards.store import DATA_DIR, REFS_FILE, STORE_FILE, StoreLayout, StoreSettings, parse_refs

log = get_logger("refresh")

STAMP = "%Y%m%dT%H%M%S%fZ"
DELETE_DDL = "n bigint, bytes bigint"


def _parse_time(text: str) -> Optional[datetime]:
    for fmt in (STAMP, "%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def live_fence(store: Any, layout: S.Layout, stale_seconds: float) -> Optional[datetime]:
    """When the run holding the root's lock started, while that run looks alive; else None."""
    try:
        owner = json.loads(store.read_text(layout.lock))
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(owner, dict) or stale_reason(owner, store.mtime(layout.lock), stale_seconds) is not None:
        return None
    return _parse_time(str(owner.get("started") or "")) or datetime.now(UTC)


def referenced_files(spark: SparkSession, store: Any, layout: S.Layout, target: StoreLayout) -> Optional[DataFrame]:
    """[store_file] named by the refs of any snapshot of the root (every status)."""
    dirs = []
    for name in store.list_dir(layout.snapshots):
        if name.startswith("."):
            continue
        mels = f"{layout.snapshot(name)}/mels"
        try:
            info = parse_refs(store.read_text(f"{mels}/{REFS_FILE}"), mels)
        except FileNotFoundError:
            continue
        if info.digest != target.digest or info.store.rstrip("/") != target.root:
            continue
        dirs += [f"{mels}/{split}" for split in store.list_dir(mels) if split in SPLITS + (ALL_SPLIT,)]
    if not dirs:
        return None
    return spark.read.parquet(*dirs).select(STORE_FILE).distinct()


def _present(spark: SparkSession, target: StoreLayout) -> DataFrame:
    return (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", "*.parquet")
        .load(target.data)
        .select(
            F.regexp_extract("path", r"/([^/]+/[^/]+/[^/]+)$", 1).alias(STORE_FILE),
            F.col("length"),
            F.unix_millis("modificationTime").alias("mtime_ms"),
        )
    )


def _delete_batches(batches: Iterator[pa.RecordBatch], data_dir: str) -> Iterator[pa.RecordBatch]:
    """Delete the listed data files (absent ones are no error); yield (files, bytes)."""
    fs, root = arrow_filesystem(data_dir)
    n = size = 0
    for batch in batches:
        for name, length in zip(batch.column(STORE_FILE).to_pylist(), batch.column("length").to_pylist()):
            try:
                fs.delete_file(f"{root}/{name}")
                n, size = n + 1, size + int(length or 0)
            except FileNotFoundError:
                pass
    yield pa.RecordBatch.from_arrays([pa.array([n], pa.int64()), pa.array([size], pa.int64())], names=["n", "bytes"])


def _anti(df: DataFrame, other: Optional[DataFrame]) -> DataFrame:
    return df if other is None else df.join(other, STORE_FILE, "left_anti")


def mark(spark: SparkSession, store: Any, layout: S.Layout, target: StoreLayout, cutoff_ms: int) -> dict[str, int]:
    """Withdraw the unreferenced data files older than ``cutoff_ms`` (a tombstone table)."""
    referenced = referenced_files(spark, store, layout, target)
    candidates = _anti(_present(spark, target).where(F.col("mtime_ms") < cutoff_ms), referenced)
    candidates = _anti(candidates, withdrawn_files(spark, target))
    row = candidates.agg(F.count(F.lit(1)).alias("n"), F.sum("length").alias("bytes")).first()
    n, size = (int(row["n"]), int(row["bytes"] or 0)) if row is not None else (0, 0)
    if n:
        name = f"{TOMBSTONES}{datetime.now(UTC).strftime(STAMP)}-{secrets.token_hex(3)}"
        io.write_parquet(candidates.select(STORE_FILE, "length").coalesce(1), f"{target.gc}/{name}")
        log.info("mel store %s: %d unused files (%.1f MB) withdrawn in %s", target.path, n, size / 1e6, name)
    return {"files": n, "bytes": size}


def sweep(spark: SparkSession, store: Any, layout: S.Layout, target: StoreLayout, stale_seconds: float) -> dict:
    """Delete the files of the tombstone tables no live run may still use."""
    fence = live_fence(store, layout, stale_seconds)  # first: see the module docstring
    tables = sorted(n for n in io.list_dir(spark, target.gc) if n.startswith(TOMBSTONES))
    due = [t for t in tables if fence is None or (_parse_time(t[len(TOMBSTONES) :].split("-")[0]) or fence) < fence]
    result = {"files": 0, "bytes": 0, "tables": 0, "deferred": len(tables) - len(due)}
    if not due:
        return result
    referenced = referenced_files(spark, store, layout, target)
    parallelism = spark.sparkContext.defaultParallelism
    for table in due:
        doomed = _anti(spark.read.parquet(f"{target.gc}/{table}"), referenced)
        delete = functools.partial(_delete_batches, data_dir=target.data)
        done = doomed.repartition(max(1, parallelism)).mapInArrow(delete, DELETE_DDL)
        row = done.agg(F.sum("n").alias("n"), F.sum("bytes").alias("bytes")).first()
        result["files"] += int(row["n"] or 0) if row is not None else 0
        result["bytes"] += int(row["bytes"] or 0) if row is not None else 0
        io.delete_path(spark, f"{target.gc}/{table}")
        result["tables"] += 1
    return result


def tidy(store: Any, target: StoreLayout, cutoff_ms: int) -> int:
    """Delete half-written files (``.part-*.tmp``) older than ``cutoff_ms`` left by killed
    tasks, and empty batch directories; returns the files deleted."""
    removed = 0
    for batch in store.list_dir(target.data):
        batch_dir = f"{target.data}/{batch}"
        for split in store.list_dir(batch_dir):
            split_dir = f"{batch_dir}/{split}"
            for name in store.list_dir(split_dir):
                path = f"{split_dir}/{name}"
                mtime = store.mtime(path)
                if name.startswith(".") and name.endswith(".tmp") and mtime is not None and mtime * 1000 < cutoff_ms:
                    store.delete(path)
                    removed += 1
            if not store.list_dir(split_dir):
                store.delete(split_dir)
        if not store.list_dir(batch_dir):
            store.delete(batch_dir)
    return removed


def collect_garbage(
    spark: SparkSession,
    store: Any,
    layout: S.Layout,
    store_root: str,
    settings: StoreSettings,
    stale_seconds: float = 3600.0,
    do_sweep: bool = True,
) -> dict[str, Any]:
    """Mark and sweep every transform's directory of the store ``store_root``.

    Args:
        store: the root's bookkeeping store (LocalStore or HadoopStore).
        stale_seconds: ``refresh.lock_stale_seconds`` (when the lock's owner counts as gone).
        do_sweep: False marks only (tests build a collection interrupted before its sweep).

    Returns:
        Per transform digest and in total: files and bytes withdrawn (``marked``) and
        deleted (``swept``), tombstone tables deferred for a live run, temporary files removed.
    """
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    total: dict[str, Any] = {"marked": {"files": 0, "bytes": 0}, "swept": {"files": 0, "bytes": 0}, "deferred": 0}
    total["digests"] = {}
    for digest in store.list_dir(store_root):
        target = StoreLayout(store_root, digest)
        if digest.startswith(".") or not store.exists(f"{target.path}/{DATA_DIR}"):
            continue
        fence = live_fence(store, layout, stale_seconds)
        cutoff = now_ms - int(settings.gc_grace_seconds * 1000)
        if fence is not None:
            cutoff = min(cutoff, int(fence.timestamp() * 1000))
        marked = mark(spark, store, layout, target, cutoff)
        swept = sweep(spark, store, layout, target, stale_seconds) if do_sweep else {"deferred": 0}
        tmp = tidy(store, target, cutoff) if do_sweep else 0
        total["digests"][digest] = {"marked": marked, "swept": swept, "tmp_removed": tmp}
        for key in ("files", "bytes"):
            total["marked"][key] += marked[key]
            total["swept"][key] += swept.get(key, 0)
        total["deferred"] += swept.get("deferred", 0)
    return total
