"""Incremental extraction: the previous output's spectrograms of unchanged tracks.

A track's spectrogram is reused when the previous output holds the track with the same
audio fingerprint (size and mtime, or checksum) and was made with the same transform
parameters; every other track is decoded again.
"""

from __future__ import annotations

from typing import Optional

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from ctx_spark import io, schema
from ctx_spark.audio.params import MelParams
from ctx_spark.extract import tasks
from ctx_spark.schema import TRACK_ID
from ctx_spark.shards import contract
from ctx_spark.shards.contract import AUDIO_CHECKSUM, AUDIO_MTIME, AUDIO_SIZE, FINGERPRINT_COLUMNS


def previous_output(spark: SparkSession, out: str, params: MelParams, id_kind: str) -> tuple[Optional[DataFrame], str]:
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
    if schema.id_kind(df.schema[TRACK_ID].dataType) != id_kind:
        return None, "previous shards use another track_id type"
    return df.select(*needed), f"reusing spectrograms from {len(dirs)} previous shard datasets"


def fingerprint_match(checksum: bool) -> Column:
    """Join condition between aliases ``cur`` (this run) and ``prev`` (previous shards)."""
    same = F.col(f"cur.{TRACK_ID}") == F.col(f"prev.{TRACK_ID}")
    columns = (AUDIO_CHECKSUM,) if checksum else (AUDIO_SIZE, AUDIO_MTIME)
    for column in columns:
        same = same & (F.col(f"cur.{column}") == F.col(f"prev.{column}"))
    return same


def split_reuse(
    rows: DataFrame, previous: Optional[DataFrame], checksum: bool
) -> tuple[Optional[DataFrame], DataFrame]:
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
    to_compute = cur.join(keys, fingerprint_match(checksum), "left_anti")
    reused = cur.join(previous.alias("prev"), fingerprint_match(checksum), "inner").select(
        *[F.col(f"cur.{c}").alias(c) for c in rows.columns],
        F.col(f"prev.{contract.MEL}").alias(tasks.MEL),
        F.lit(0.0).alias(tasks.DECODED),
        *[F.lit(None).cast("string").alias(c) for c in (tasks.ERROR_REASON, tasks.ERROR_STAGE, tasks.ERROR_MESSAGE)],
        F.lit(True).alias(tasks.REUSED),
    )
    return reused, to_compute
