"""The chained extraction on the shared mel store: only new and changed tracks are decoded
and written, and the snapshot's ``mels/`` holds references (docs/refresh.md, "Mel store").

Row flow (one row per dataset track; the spectrograms exist only inside tasks)::

    rows [track_id, split, targets, audio, fingerprint]          (run.py, as today)
      -- matched on (track_id, fingerprint) to the store's key columns (store_index.py):
         found (with a store position) / missing
      found: kept where they are, or copied forward when their file is sparse for their
             split (compaction): store rows read back by position     (store_tasks.fetch)
      missing: imported from a previous snapshot of the layout before the store (its
               shards, with the same fingerprint and transform), else decoded  (plan.py)
      -> the new rows, laid out by (split, hash bucket), written as one new batch of
         append-only data files; failures to errors/                (store_tasks.write)
    rows matched again to the store (now holding the new batch) -> the refs, one refs row
    group per store row group, sorted by store position              (store_tasks.refs)

The stage's own directory (refs, errors/, mel_params.json, shards.json, mel_store.json,
report.json) is written in a hidden staging directory and published in one rename, as a
shard root is; the new batch's files are visible in the store as soon as each is renamed
into place, so a killed run's spectrograms are reused by the run that resumes it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any, Optional

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctx_spark import io
from ctx_spark.extract import guards, plan, rejected, reuse, store_index, store_tasks, tasks
from ctx_spark.extract.report import extract_report
from ctx_spark.extract.run import (
    ExtractRun,
    _count_rows,
    _no_audio_message,
    _remove_attempt_leftovers,
    _write_empty_errors,
)
from ctx_spark.logs import get_logger, stage
from ctx_spark.schema import SPLIT, TRACK_ID, id_kind
from ctx_spark.shards import contract, store
from ctx_spark.shards.store import STORE_FILE, StoreLayout
from ctx_spark.shards.writer import rows_per_group

log = get_logger("extract")

#: Refs rows per refs write task (about 300 bytes each).
REFS_ROWS_PER_TASK = 250_000
#: The store's own marker file.
STORE_INFO = "store.json"


def new_batch_id() -> str:
    """``YYYYmmddTHHMMSSffffffZ-xxxxxx``: sorts by creation time (UTC), unique."""
    import secrets
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


def _prepare(run: ExtractRun, layout: StoreLayout) -> None:
    spark = run.spark
    io.make_dirs(spark, layout.data)
    if not io.path_exists(spark, f"{layout.root}/{STORE_INFO}"):
        io.write_text(spark, f"{layout.root}/{STORE_INFO}", f'{{"format": {store.STORE_FORMAT}}}\n')
    if not io.path_exists(spark, f"{layout.path}/{contract.PARAMS_FILE}"):
        io.write_text(spark, f"{layout.path}/{contract.PARAMS_FILE}", run.params.to_json() + "\n")


def _origin(df: DataFrame, origin: str) -> DataFrame:
    return df.withColumn(store_tasks.ORIGIN, F.lit(origin))


def _copied(run: ExtractRun, layout: StoreLayout, to_copy: DataFrame, files: int) -> DataFrame:
    """The rows to copy, with their spectrogram read back from the store."""
    columns = [c for c in to_copy.columns if c not in (STORE_FILE, store_tasks.STORE_INDEX)]
    fetch_schema = T.StructType(to_copy.schema.fields + [T.StructField(contract.MEL, T.BinaryType(), True)])
    spec = store_tasks.FetchSpec(layout.data, run.settings.batch_rows)
    parts = max(1, min(files, run.spark.sparkContext.defaultParallelism))
    fetched = (
        to_copy.repartition(parts, STORE_FILE)
        .sortWithinPartitions(STORE_FILE, store_tasks.STORE_INDEX)
        .mapInArrow(functools.partial(store_tasks.fetch_mel_batches, spec=spec), fetch_schema)
    )
    return fetched.select(*columns, F.col(contract.MEL), *store_index.null_errors())


def _lay_out(rows: DataFrame, files_per_split: dict[str, int]) -> DataFrame:
    """One task per data file: (split, hash bucket) partitions sorted by track id."""
    bucket = F.lit(0)
    for split, files in files_per_split.items():
        bucket = F.when(F.col(SPLIT) == split, F.pmod(F.xxhash64(TRACK_ID), F.lit(files))).otherwise(bucket)
    total = max(1, sum(files_per_split.values()))
    return (
        rows.withColumn("_bucket", bucket)
        .repartition(total, SPLIT, "_bucket")
        .sortWithinPartitions(SPLIT, TRACK_ID)
        .drop("_bucket")
    )


def _summarise(task_stats: DataFrame) -> list[dict]:
    groups = (
        task_stats.groupBy(SPLIT, tasks.STATUS, "reason", store_tasks.ORIGIN)
        .agg(F.sum("n").alias("n"), F.sum("seconds").alias("seconds"))
        .collect()
    )
    return [
        {
            "split": g[SPLIT],
            "status": g[tasks.STATUS],
            "reason": g["reason"],
            "origin": g[store_tasks.ORIGIN],
            "reused": g[store_tasks.ORIGIN] != store_tasks.COMPUTED,
            "n": int(g["n"]),
            "seconds": float(g["seconds"] or 0.0),
        }
        for g in groups
    ]


def _new_rows(run: ExtractRun, layout: StoreLayout, found: Optional[DataFrame], missing: DataFrame) -> dict[str, Any]:
    """Plan the rows this run writes to the store: what to copy, import and decode."""
    assert run.store is not None
    spark, settings, params = run.spark, run.settings, run.params
    kind = id_kind(missing.schema[TRACK_ID].dataType)
    to_copy, kept = store_index.compaction(found, run.store_rows, run.store.compact_below)
    imported, to_compute = None, missing
    note = "no previous output"
    if run.previous_root:
        previous, note = reuse.previous_output(spark, run.previous_root, params, kind)
        imported, to_compute = reuse.split_reuse(missing, previous, settings.checksum)
    with stage(log, "find tracks to decode, copy and import"):
        per_split = {
            name: store_index.count_by_split(df)
            for name, df in (("compute", to_compute), ("copy", to_copy), ("import", imported))
        }
        copy_files = to_copy.select(STORE_FILE).distinct().count() if to_copy is not None and per_split["copy"] else 0
    n = {name: sum(counts.values()) for name, counts in per_split.items()}
    log.info(
        "store %s: %d tracks to decode, %d to copy forward from %d sparse files, %d to import (%s)",
        layout.path,
        n["compute"],
        n["copy"],
        copy_files,
        n["import"],
        note,
    )
    frames = []
    if n["compute"]:
        partitions = plan.audio_partitions(n["compute"], settings, spark.sparkContext.defaultParallelism)
        spec = plan.audio_spec(params, settings, _no_audio_message(run.inputs, settings))
        frames.append(_origin(plan.compute_mels(to_compute, spec, partitions).drop(tasks.REUSED), store_tasks.COMPUTED))
    if n["copy"]:
        assert to_copy is not None
        frames.append(_origin(_copied(run, layout, to_copy, copy_files), store_tasks.COPIED))
    if n["import"]:
        assert imported is not None
        frames.append(_origin(imported.drop(tasks.REUSED), store_tasks.IMPORTED))
    union = None
    for frame in frames:
        union = frame if union is None else union.unionByName(frame)
    totals: dict[str, int] = {}
    for counts in per_split.values():
        for split, value in counts.items():
            totals[split] = totals.get(split, 0) + value
    return {"rows": union, "per_split": totals, "n": n, "kept": kept, "note": note}


def _write_batch(run: ExtractRun, layout: StoreLayout, staging: str, new: dict[str, Any]) -> list[dict]:
    """Write the new rows as one batch of data files (and failures to errors/)."""
    if new["rows"] is None:
        return []
    settings, params = run.settings, run.params
    assert run.store is not None
    group_rows = rows_per_group(params, settings.row_group_mb)
    groups_per_file = max(1, round(run.store.file_mb / settings.row_group_mb))
    files_per_split = plan.shard_layout(new["per_split"], group_rows * groups_per_file)
    batch = new_batch_id()
    spec = store_tasks.StoreWriteSpec(
        batch_root=f"{layout.data}/{batch}",
        errors_root=staging,
        id_type=id_kind(new["rows"].schema[TRACK_ID].dataType),
        params=params,
        group_rows=group_rows,
        groups_per_file=groups_per_file,
        compression=settings.compression,
    )
    log.info("new store batch %s: data files per split %s", batch, files_per_split)
    laid_out = _lay_out(new["rows"], files_per_split)
    write = functools.partial(store_tasks.write_store_batches, spec=spec)
    run.batch = batch
    return _summarise(laid_out.mapInArrow(write, store_tasks.STORE_STATS_DDL))


def _write_refs(run: ExtractRun, layout: StoreLayout, staging: str, refs: DataFrame, total: int) -> dict[str, Any]:
    """The snapshot's refs, one refs row group per store row group used."""
    spec = store_tasks.RefsWriteSpec(
        root=staging,
        data_dir=layout.data,
        id_type=id_kind(refs.schema[TRACK_ID].dataType),
        with_targets=run.with_targets,
        params=run.params,
        contexts=run.contexts,
        rows_per_file=REFS_ROWS_PER_TASK,
        compression=run.settings.compression,
    )
    parts = max(1, math.ceil(total / REFS_ROWS_PER_TASK))
    laid_out = refs.repartition(parts, STORE_FILE).sortWithinPartitions(SPLIT, STORE_FILE, store_tasks.STORE_INDEX)
    write = functools.partial(store_tasks.write_refs_batches, spec=spec)
    stats = laid_out.mapInArrow(write, store_tasks.REFS_STATS_DDL)
    written: dict[str, int] = {}
    groups = 0
    for row in stats.groupBy(SPLIT).agg(F.sum("n").alias("n"), F.sum("groups").alias("groups")).collect():
        written[row[SPLIT]] = int(row["n"])
        groups += int(row["groups"])
    return {"written": written, "groups": groups}


def extract_to_store(run: ExtractRun) -> dict[str, Any]:
    """The extraction stage of a chained run, on the store ``run.store_root``.

    Raises:
        RuntimeError: store rows this run relied on vanished before its refs were written
            (only a garbage collector breaking its rules could do that); a rerun decodes them.
    """
    spark, settings, params, rows = run.spark, run.settings, run.params, run.rows
    assert rows is not None and run.store_root is not None and run.store is not None
    counts = _count_rows(run)
    guards.refuse_inputs(run, counts)  # before any work: an empty input, tracks without audio
    kind = id_kind(rows.schema[TRACK_ID].dataType)
    layout = StoreLayout.of(run.store_root, params, kind)
    _prepare(run, layout)
    run.store_rows = store_index.store_rows(spark, layout, kind) if settings.incremental else None
    found, missing = store_index.match(rows, run.store_rows, settings.checksum)
    new = _new_rows(run, layout, found, missing)
    with guards.output_errors(run.out), io.atomic_output(spark, run.out) as staging:
        with stage(log, "decode, compute and write store files") as timer:
            stats = _write_batch(run, layout, staging, new)
            timer.rows = sum(s["n"] for s in stats)
        assert run.catalogue is not None
        unused = rejected.write_rejected(run.catalogue.rejected, staging, kind, settings.compression)
        # the failure rate is over every track of the run, not only the ones written now
        guards.refuse_outcome(run, stats, unused, total=counts.total)
        _remove_attempt_leftovers(spark, staging)
        failed_tracks = sum(s["n"] for s in stats if s["status"] == tasks.FAILED)
        errors_written = failed_tracks + sum(unused.counts.values())
        if not errors_written:
            _write_empty_errors(staging, kind)
        with stage(log, "write references") as timer:
            current, _ = store_index.match(rows, store_index.store_rows(spark, layout, kind), settings.checksum)
            refs: dict[str, Any] = {"written": {}, "groups": 0}
            if current is not None:
                refs = _write_refs(run, layout, staging, current, counts.total)
            timer.rows = sum(refs["written"].values())
        lost = counts.total - sum(refs["written"].values()) - failed_tracks
        if lost:
            raise RuntimeError(
                f"{lost} tracks' spectrograms left the store {layout.path} while this run used them "
                "(a garbage collector deleting files a live run uses?); run again to decode them"
            )
        io.write_text(spark, f"{staging}/{contract.PARAMS_FILE}", params.to_json() + "\n")
        io.write_text(spark, f"{staging}/{contract.INFO_FILE}", contract.info_json(run.contexts))
        io.write_text(spark, f"{staging}/{store.REFS_FILE}", store.refs_json(layout))
        report = _report(run, layout, staging, new, stats, refs, unused.counts)
        report["errors_written"] = errors_written
        io.write_json(spark, f"{staging}/{contract.REPORT_FILE}", report)
    return report


def _report(
    run: ExtractRun,
    layout: StoreLayout,
    staging: str,
    new: dict,
    stats: list[dict],
    refs: dict,
    rejected_counts: Mapping[str, int],
) -> dict[str, Any]:
    """extract_report's fields (the refs' counts as ``written``), plus the store's."""
    report = extract_report(run, staging, new["note"], stats, rejected_counts)
    written = refs["written"]
    per_split = dict(written)
    for s in stats:
        if s["status"] == tasks.FAILED:
            per_split[s["split"]] = per_split.get(s["split"], 0) + s["n"]
    report["written"] = dict(sorted(written.items()))
    report["written_total"] = sum(written.values())
    report["tracks_in"] = report["written_total"] + report["failed_total"]
    report["tracks_in_per_split"] = dict(sorted(per_split.items()))
    # rows referenced where they already were: all referenced rows less those written now
    from_store = report["written_total"] - sum(s["n"] for s in stats if s["status"] == tasks.WRITTEN)
    report["reused"] = from_store + new["n"]["copy"] + new["n"]["import"]
    report["from_store"] = from_store
    report["copied"] = new["n"]["copy"]
    report["imported"] = new["n"]["import"]
    report["layout"] = "store"
    batch_bytes, batch_files = (0, 0)
    if run.batch is not None:
        batch_bytes, batch_files = store_index.bytes_under(run.spark, f"{layout.data}/{run.batch}")
    report["store"] = {
        "root": layout.root,
        "digest": layout.digest,
        "path": layout.path,
        "batch": run.batch,
        "bytes_written": batch_bytes,
        "files_written": batch_files,
        "refs_row_groups": refs["groups"],
        "compact_below": run.store.compact_below if run.store is not None else None,
    }
    report["outputs"]["store_refs"] = f"{run.out}/{store.REFS_FILE}"
    return report
