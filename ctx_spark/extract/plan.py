"""The extraction job's work plan: audio tasks, shard files, write tasks, their counts.

Row flow (one row per track; columns in brackets)::

    catalogue [track_id, audio, audio_size, audio_mtime_ms, audio_checksum]   (listing.py)
      -- left-joined onto the dataset's targets [split, labels, 3 weights], or split='all'
                                                                                (targets.py)
      -> previous output's spectrograms with the same fingerprint: reused       (reuse.py)
      -> the others: repartitioned evenly, mapInArrow(compute_batches): [mel, error_*]
      -> union, repartitioned into one task per shard file, sorted by (split, track_id),
         mapInArrow(write_batches) writes the shards and errors/ and returns its counts.

Nothing in this flow is computed twice: the spectrograms exist only between the audio task
and the writing task (through one shuffle), and the report is built from the write tasks'
counts (a handful of rows), so the job runs three small queries besides the main one.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Optional, cast

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctx_spark.audio.params import MelParams
from ctx_spark.extract import tasks
from ctx_spark.extract.settings import ExtractSettings
from ctx_spark.schema import SPLIT, TRACK_ID, id_kind


def audio_partitions(n_tracks: int, settings: ExtractSettings, parallelism: int) -> int:
    """Tasks for the audio work: ``partitions`` when set, else about ``tracks_per_task``
    tracks each, rounded up to a multiple of the cores so that no core idles at the end."""
    if settings.partitions:
        return settings.partitions
    tasks_needed = max(1, math.ceil(n_tracks / settings.tracks_per_task))
    return max(1, parallelism) * math.ceil(tasks_needed / max(1, parallelism))


def audio_spec(params: MelParams, settings: ExtractSettings, no_audio_message: str) -> tasks.AudioSpec:
    """What the audio tasks need, from the ``audio`` and ``extract`` sections."""
    return tasks.AudioSpec(
        params=params,
        silence_peak_dbfs=settings.silence_peak_dbfs,
        batch_rows=settings.batch_rows,
        isolate_on_retry=settings.isolate_on_retry,
        no_audio_message=no_audio_message,
    )


def compute_mels(to_compute: DataFrame, spec: tasks.AudioSpec, partitions: int) -> DataFrame:
    """Spread the rows evenly over ``partitions`` tasks and add ``mel``, ``decoded_seconds``
    and the ``error_*`` columns (see :func:`tasks.compute_batches`)."""
    # a DDL list of columns parses to a StructType
    schema = T.StructType(
        to_compute.schema.fields + cast(T.StructType, T._parse_datatype_string(tasks.COMPUTED_DDL)).fields
    )
    fn = functools.partial(tasks.compute_batches, spec=spec)
    computed = to_compute.repartition(partitions).mapInArrow(fn, schema)
    return computed.withColumn(tasks.REUSED, F.lit(False))


def shard_layout(counts: Mapping[str, int], rows_per_file: int) -> dict[str, int]:
    """Files per split: enough for ``rows_per_file`` rows each (at least one)."""
    return {split: max(1, math.ceil(n / rows_per_file)) for split, n in sorted(counts.items()) if n}


def write_spec(
    root: str,
    rows: DataFrame,
    params: MelParams,
    settings: ExtractSettings,
    group_rows: int,
    contexts: Optional[Sequence[str]],
) -> tasks.WriteSpec:
    """What the write tasks need; ``contexts`` None means no targets (an ``all/`` split)."""
    return tasks.WriteSpec(
        root=root,
        id_type=id_kind(rows.schema[TRACK_ID].dataType),
        with_targets=contexts is not None,
        params=params,
        contexts=tuple(contexts) if contexts is not None else None,
        group_rows=group_rows,
        groups_per_file=settings.row_groups_per_file,
        compression=settings.compression,
    )


def write_shards(rows: DataFrame, files_per_split: Mapping[str, int], spec: tasks.WriteSpec) -> DataFrame:
    """Lay the rows out one task per shard file and write them, with ``errors/``, under
    ``spec.root`` (lazily: the returned per-task counts [split, status, reason, reused, n,
    seconds] trigger the whole flow when collected)."""
    bucket = F.lit(0)
    for split, files in files_per_split.items():
        bucket = F.when(F.col(SPLIT) == split, F.pmod(F.xxhash64(TRACK_ID), F.lit(files))).otherwise(bucket)
    total = max(1, sum(files_per_split.values()))
    laid_out = (
        rows.withColumn("_bucket", bucket)
        .repartition(total, SPLIT, "_bucket")
        .sortWithinPartitions(SPLIT, TRACK_ID)
        .drop("_bucket")
    )
    return laid_out.mapInArrow(functools.partial(tasks.write_batches, spec=spec), tasks.STATS_DDL)


def summarise(task_stats: DataFrame) -> list[dict]:
    """Sum the write tasks' counts: one dict per (split, status, reason, reused); a list
    bounded by splits x reasons, whatever the catalogue's size."""
    groups = (
        task_stats.groupBy(SPLIT, tasks.STATUS, "reason", tasks.REUSED)
        .agg(F.sum("n").alias("n"), F.sum("seconds").alias("seconds"))
        .collect()
    )
    return [
        {
            "split": g[SPLIT],
            "status": g[tasks.STATUS],
            "reason": g["reason"],
            "reused": bool(g[tasks.REUSED]),
            "n": int(g["n"]),
            "seconds": float(g["seconds"] or 0.0),
        }
        for g in groups
    ]


def persist(df: DataFrame) -> DataFrame:
    """Keep a small per-track table (no spectrograms) for the several actions using it."""
    return df.persist(StorageLevel.MEMORY_AND_DISK)
