"""The extraction job's DataFrame steps: catalogue, targets, reuse, audio work, shards.

Row flow (one row per track; columns in brackets)::

    catalogue [track_id, audio, audio_size, audio_mtime_ms, audio_checksum]
      -- left-joined onto the dataset's targets [split, labels, 3 weights], or split='all'
      -> previous output's spectrograms with the same fingerprint: reused
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
from dataclasses import dataclass
from typing import Mapping, Optional

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctx_spark import io
from ctx_spark.audio import contract, tasks
from ctx_spark.audio.params import MelParams
from ctx_spark.audio.settings import ExtractSettings
from ctx_spark.audio.shards import AUDIO, AUDIO_CHECKSUM, AUDIO_MTIME, AUDIO_SIZE, FINGERPRINT_COLUMNS
from ctx_spark.errors import InputError
from ctx_spark.logs import get_logger
from ctx_spark.schema import ID, STRING, TableContract, validate

log = get_logger("extract")

TRACK_ID = contract.TRACK_ID
SPLIT = tasks.SPLIT

#: The ``--tracks`` table: one audio path or URI per track (null: no audio).
AUDIO_TRACKS = TableContract("audio_tracks", {TRACK_ID: ID, AUDIO: STRING}, nullable=(AUDIO,))
#: The dataset columns this job needs (jobs/build_dataset.py writes more).
DATASET = TableContract("dataset", {TRACK_ID: ID, SPLIT: STRING})

_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
_NUMERIC = _INTEGRAL + (T.FloatType, T.DoubleType, T.BooleanType, T.DecimalType)


@dataclass(frozen=True)
class Catalogue:
    """The tracks with audio, one row each, and what was dropped to get there.

    Attributes:
        df: [track_id, audio, audio_size, audio_mtime_ms] (fingerprints null for a table).
        entries: audio files or table rows read (before keeping one per track).
        bad_names: ``--audio-dir`` files whose name is not a valid track id.
    """

    df: DataFrame
    entries: int
    bad_names: int


def _id_kind(dtype: T.DataType) -> str:
    return "string" if isinstance(dtype, T.StringType) else "int64"


def list_audio_dir(spark: SparkSession, audio_dir: str, settings: ExtractSettings, id_type: str) -> Catalogue:
    """List ``<track_id>.<ext>`` files under ``audio_dir`` (all levels) without reading them.

    Spark's ``binaryFile`` source reads a file's bytes only when ``content`` is selected;
    selecting path, length and modificationTime is a distributed listing that also gives
    the fingerprint (size in bytes, mtime in ms). When a track has several files, the
    extension listed first in ``extract.extensions`` wins, then the smallest path.

    Args:
        id_type: ``int64`` or ``string`` (``auto`` resolved by the caller, or here: int64
            when every name is an integer).
    """
    path = io.qualify(audio_dir)
    if not io.path_exists(spark, path):
        raise InputError(f"--audio-dir {path} does not exist")
    listed = (
        spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(path)
        .select("path", "length", "modificationTime")
    )
    name = F.regexp_extract("path", r"([^/]+)$", 1)
    ext = F.lower(F.regexp_extract(name, r"\.([^.]+)$", 1))
    extensions = [e.lower() for e in settings.extensions]
    rank = F.array_position(F.array(*[F.lit(e) for e in extensions]), ext)
    files = listed.select(
        F.regexp_extract(name, r"^(.+)\.[^.]+$", 1).alias("stem"),
        F.col("path").alias(AUDIO),
        F.col("length").alias(AUDIO_SIZE),
        F.unix_millis("modificationTime").alias(AUDIO_MTIME),
        rank.alias("_rank"),
    ).where(F.col("_rank") > 0)
    integer = F.col("stem").rlike(r"^-?[0-9]{1,18}$")
    counts = files.agg(F.count(F.lit(1)).alias("n"), F.sum((~integer).cast("long")).alias("non_integer")).first()
    entries, non_integer = int(counts["n"]), int(counts["non_integer"] or 0)
    if id_type == "auto":
        id_type = "int64" if non_integer == 0 else "string"
    track_id = F.col("stem").cast("long") if id_type == "int64" else F.col("stem")
    bad_names = non_integer if id_type == "int64" else 0
    if bad_names:
        log.warning("%d audio files are not named <integer track id>.<ext>; they are skipped", bad_names)
    keyed = files.withColumn(TRACK_ID, F.when(integer, track_id) if id_type == "int64" else track_id)
    keyed = keyed.where(F.col(TRACK_ID).isNotNull() & (F.col("stem") != ""))
    df = _first_per_track(keyed, [F.col("_rank"), F.col(AUDIO)])
    return Catalogue(df=df.select(TRACK_ID, AUDIO, AUDIO_SIZE, AUDIO_MTIME), entries=entries, bad_names=bad_names)


def read_audio_table(spark: SparkSession, path: str) -> Catalogue:
    """Read the ``--tracks`` table (track_id, audio); a track listed twice keeps its
    smallest non-null audio path. Fingerprints are filled in later by the executors."""
    df = io.read_table(spark, path, AUDIO_TRACKS)
    entries = df.count()
    kept = _first_per_track(df, [F.col(AUDIO).asc_nulls_last()])
    kept = kept.select(
        TRACK_ID, AUDIO, F.lit(None).cast("long").alias(AUDIO_SIZE), F.lit(None).cast("long").alias(AUDIO_MTIME)
    )
    return Catalogue(df=kept, entries=entries, bad_names=0)


def _first_per_track(df: DataFrame, order: list[Column]) -> DataFrame:
    from pyspark.sql import Window

    window = Window.partitionBy(TRACK_ID).orderBy(*order)
    return df.withColumn("_n", F.row_number().over(window)).where(F.col("_n") == 1).drop("_n")


def _numeric_array(dtype: T.DataType) -> bool:
    return isinstance(dtype, T.ArrayType) and isinstance(dtype.elementType, _NUMERIC)


def read_targets(spark: SparkSession, dataset: str) -> DataFrame:
    """The dataset's targets: [track_id, split, labels array<int>, 3 weights array<float>].

    ``dataset`` is the build_dataset output root (its ``dataset/`` table is used) or the
    table itself. Vector lengths and split values are checked by :func:`check_rows`.
    """
    root = io.qualify(dataset).rstrip("/")
    path = f"{root}/dataset" if io.path_exists(spark, f"{root}/dataset") else root
    io.read_table(spark, path, DATASET)  # checks track_id and split
    raw = spark.read.parquet(path)
    fields = {f.name: f.dataType for f in raw.schema.fields}
    for column in contract.TARGET_COLUMNS:
        if column not in fields:
            raise InputError(f"table 'dataset' ({path}): missing column '{column}' (an array of numbers)")
        if not _numeric_array(fields[column]):
            raise InputError(
                f"table 'dataset' ({path}): column '{column}' has type {fields[column].simpleString()}, "
                "expected an array of numbers"
            )
    id_col = F.col(TRACK_ID).cast("long") if isinstance(fields[TRACK_ID], _INTEGRAL) else F.col(TRACK_ID)
    return raw.select(
        id_col.alias(TRACK_ID),
        F.col(SPLIT),
        F.col(contract.LABELS).cast("array<int>").alias(contract.LABELS),
        *[F.col(c).cast("array<float>").alias(c) for c in contract.WEIGHT_COLUMNS],
    )


def assemble_rows(
    catalogue: DataFrame, targets: Optional[DataFrame], settings: ExtractSettings, needs_stat: bool
) -> DataFrame:
    """One row per track to deliver: the dataset's tracks (with their targets, null audio
    when the catalogue lacks them), or every catalogue track in split ``all``.

    Fingerprints are computed by the executors (:func:`tasks.fingerprint_batches`) when
    the catalogue could not give them (a table) or a checksum is wanted; only the tracks
    that will be delivered are examined.
    """
    if targets is not None:
        if _id_kind(targets.schema[TRACK_ID].dataType) != _id_kind(catalogue.schema[TRACK_ID].dataType):
            raise InputError(
                f"track_id is {_id_kind(targets.schema[TRACK_ID].dataType)} in the dataset but "
                f"{_id_kind(catalogue.schema[TRACK_ID].dataType)} in the audio catalogue; use one type"
            )
        rows = targets.join(catalogue, TRACK_ID, "left")
    else:
        rows = catalogue.withColumn(SPLIT, F.lit(contract.ALL_SPLIT))
    if needs_stat:
        rows = rows.drop(AUDIO_SIZE, AUDIO_MTIME)
        schema = T.StructType(rows.schema.fields + T._parse_datatype_string(tasks.FINGERPRINT_DDL).fields)
        rows = rows.mapInArrow(functools.partial(tasks.fingerprint_batches, checksum=settings.checksum), schema)
    else:
        rows = rows.withColumn(AUDIO_CHECKSUM, F.lit(None).cast("string"))
    return rows


@dataclass(frozen=True)
class RowCounts:
    """Tracks to deliver per split, and how many have no audio in the catalogue."""

    per_split: Mapping[str, int]
    without_audio: int

    @property
    def total(self) -> int:
        return sum(self.per_split.values())


def check_rows(rows: DataFrame, n_contexts: Optional[int]) -> RowCounts:
    """Count the rows per split and check the targets (one small aggregation).

    Raises:
        InputError: a split other than train/validation/test, or a target vector whose
            length is not the number of contexts, or a label other than 0/1.
    """
    aggs = [F.count(F.lit(1)).alias("n"), F.sum(F.col(AUDIO).isNull().cast("long")).alias("no_audio")]
    if n_contexts is not None:
        bad_len = F.lit(False)
        for column in contract.TARGET_COLUMNS:
            bad_len = bad_len | F.coalesce(F.size(column) != n_contexts, F.lit(True))
        bad_label = F.exists(contract.LABELS, lambda x: ~x.isin(0, 1))
        aggs += [F.sum(bad_len.cast("long")).alias("bad_len"), F.sum(F.coalesce(bad_label, F.lit(True)).cast("long")).alias("bad_label")]
    groups = rows.groupBy(SPLIT).agg(*aggs).limit(64).collect()
    allowed = contract.SPLITS if n_contexts is not None else (contract.ALL_SPLIT,)
    unknown = sorted(str(g[SPLIT]) for g in groups if g[SPLIT] not in allowed)
    if unknown:
        raise InputError(f"table 'dataset': column 'split' holds {', '.join(unknown)}; expected {', '.join(allowed)}")
    if n_contexts is not None:
        bad_len = sum(int(g["bad_len"] or 0) for g in groups)
        if bad_len:
            raise InputError(
                f"table 'dataset': {bad_len} rows have a null target vector or one whose length is not "
                f"{n_contexts} (the number of contexts in conf/contexts.yaml)"
            )
        bad_label = sum(int(g["bad_label"] or 0) for g in groups)
        if bad_label:
            raise InputError(f"table 'dataset': column 'labels' holds values other than 0 and 1 in {bad_label} rows")
    return RowCounts(
        per_split={g[SPLIT]: int(g["n"]) for g in groups},
        without_audio=sum(int(g["no_audio"] or 0) for g in groups),
    )


def previous_output(
    spark: SparkSession, out: str, params: MelParams, id_kind: str
) -> tuple[Optional[DataFrame], str]:
    """The previous output's spectrograms [track_id, mel, fingerprint], when reusable.

    Returns (None, why) when there is no previous output, when it was made with other
    transform parameters (a change of any ``audio`` setting recomputes everything), or
    when it lacks the fingerprint columns or uses another track id type.
    """
    params_path = f"{out}/{contract.PARAMS_FILE}"
    if not io.path_exists(spark, params_path):
        return None, "no previous output"
    try:
        previous_params = contract.params_from_json(io.read_text(spark, params_path))
    except (ValueError, TypeError) as exc:
        return None, f"previous {contract.PARAMS_FILE} unreadable ({exc})"
    if previous_params != params:
        return None, "previous output made with other audio parameters"
    dirs = [f"{out}/{s}" for s in contract.SPLITS + (contract.ALL_SPLIT,) if io.path_exists(spark, f"{out}/{s}")]
    if not dirs:
        return None, "previous output holds no shards"
    df = spark.read.parquet(*dirs)
    needed = (TRACK_ID, contract.MEL) + FINGERPRINT_COLUMNS
    missing = [c for c in needed if c not in df.columns]
    if missing:
        return None, f"previous shards lack {', '.join(missing)}"
    if _id_kind(df.schema[TRACK_ID].dataType) != id_kind:
        return None, "previous shards use another track_id type"
    return df.select(*needed), f"reusing spectrograms from {len(dirs)} previous shard datasets"


def _fingerprint_match(checksum: bool) -> Column:
    """Join condition between aliases ``cur`` (this run) and ``prev`` (previous shards)."""
    same = F.col(f"cur.{TRACK_ID}") == F.col(f"prev.{TRACK_ID}")
    columns = (AUDIO_CHECKSUM,) if checksum else (AUDIO_SIZE, AUDIO_MTIME)
    for column in columns:
        same = same & (F.col(f"cur.{column}") == F.col(f"prev.{column}"))
    return same


def split_reuse(rows: DataFrame, previous: Optional[DataFrame], checksum: bool) -> tuple[Optional[DataFrame], DataFrame]:
    """(reused rows with their previous ``mel``, rows to compute).

    A track is reused when the previous output holds it with the same fingerprint (size and
    mtime, or checksum; a null never matches), whatever its split or targets were then:
    they come from the current dataset. The rows to compute are found with an anti join on
    the previous fingerprints only, so the spectrogram bytes are read once, for the reused.
    """
    if previous is None:
        return None, rows
    cur = rows.alias("cur")
    keys = previous.select(TRACK_ID, *FINGERPRINT_COLUMNS).alias("prev")
    to_compute = cur.join(keys, _fingerprint_match(checksum), "left_anti")
    reused = cur.join(previous.alias("prev"), _fingerprint_match(checksum), "inner").select(
        *[F.col(f"cur.{c}").alias(c) for c in rows.columns],
        F.col(f"prev.{contract.MEL}").alias(tasks.MEL),
        F.lit(0.0).alias(tasks.DECODED),
        *[F.lit(None).cast("string").alias(c) for c in (tasks.ERROR_REASON, tasks.ERROR_STAGE, tasks.ERROR_MESSAGE)],
        F.lit(True).alias(tasks.REUSED),
    )
    return reused, to_compute


def audio_partitions(n_tracks: int, settings: ExtractSettings, parallelism: int) -> int:
    """Tasks for the audio work: ``partitions`` when set, else about ``tracks_per_task``
    tracks each, rounded up to a multiple of the cores so that no core idles at the end."""
    if settings.partitions:
        return settings.partitions
    tasks_needed = max(1, math.ceil(n_tracks / settings.tracks_per_task))
    return max(1, parallelism) * math.ceil(tasks_needed / max(1, parallelism))


def compute_mels(
    to_compute: DataFrame, params: MelParams, settings: ExtractSettings, partitions: int, no_audio_message: str
) -> DataFrame:
    """Spread the rows evenly over ``partitions`` tasks and add ``mel``, ``decoded_seconds``
    and the ``error_*`` columns (see :func:`tasks.compute_batches`)."""
    schema = T.StructType(to_compute.schema.fields + T._parse_datatype_string(tasks.COMPUTED_DDL).fields)
    fn = functools.partial(
        tasks.compute_batches,
        params_json=params.to_json(),
        silence_peak_dbfs=settings.silence_peak_dbfs,
        batch_rows=settings.batch_rows,
        isolate_on_retry=settings.isolate_on_retry,
        no_audio_message=no_audio_message,
    )
    computed = to_compute.repartition(partitions).mapInArrow(fn, schema)
    return computed.withColumn(tasks.REUSED, F.lit(False))


def shard_layout(counts: Mapping[str, int], rows_per_file: int) -> dict[str, int]:
    """Files per split: enough for ``rows_per_file`` rows each (at least one)."""
    return {split: max(1, math.ceil(n / rows_per_file)) for split, n in sorted(counts.items()) if n}


def write_shards(
    rows: DataFrame,
    root: str,
    files_per_split: Mapping[str, int],
    params: MelParams,
    settings: ExtractSettings,
    group_rows: int,
    with_targets: bool,
) -> DataFrame:
    """Lay the rows out one task per shard file and write them, with ``errors/``, under
    ``root`` (lazily: the returned per-task counts [split, status, reason, reused, n,
    seconds] trigger the whole flow when collected)."""
    bucket = F.lit(0)
    for split, files in files_per_split.items():
        bucket = F.when(F.col(SPLIT) == split, F.pmod(F.xxhash64(TRACK_ID), F.lit(files))).otherwise(bucket)
    total = max(1, sum(files_per_split.values()))
    id_kind = _id_kind(rows.schema[TRACK_ID].dataType)
    laid_out = (
        rows.withColumn("_bucket", bucket)
        .repartition(total, SPLIT, "_bucket")
        .sortWithinPartitions(SPLIT, TRACK_ID)
        .drop("_bucket")
    )
    fn = functools.partial(
        tasks.write_batches,
        root=root,
        id_type=id_kind,
        with_targets=with_targets,
        params_json=params.to_json(),
        group_rows=group_rows,
        groups_per_file=settings.row_groups_per_file,
        compression=settings.compression,
    )
    return laid_out.mapInArrow(fn, tasks.STATS_DDL)


def summarise(task_stats: DataFrame) -> list[dict]:
    """Sum the write tasks' counts: one dict per (split, status, reason, reused); a list
    bounded by splits x reasons, whatever the catalogue's size."""
    groups = (
        task_stats.groupBy(SPLIT, tasks.STATUS, "reason", tasks.REUSED)
        .agg(F.sum("n").alias("n"), F.sum("seconds").alias("seconds"))
        .collect()
    )
    return [
        {"split": g[SPLIT], "status": g[tasks.STATUS], "reason": g["reason"], "reused": bool(g[tasks.REUSED]),
         "n": int(g["n"]), "seconds": float(g["seconds"] or 0.0)}
        for g in groups
    ]


def persist(df: DataFrame) -> DataFrame:
    """Keep a small per-track table (no spectrograms) for the several actions using it."""
    return df.persist(StorageLevel.MEMORY_AND_DISK)

