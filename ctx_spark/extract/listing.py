"""The audio catalogue: which file holds each track's audio, without reading any file.

Two sources: a directory of ``<track_id>.<ext>`` files (``--audio-dir``), listed in a
distributed way by Spark's ``binaryFile`` source, and a table of (track_id, audio path or
URI) rows (``--tracks``).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from ctx_spark import io, schema
from ctx_spark.errors import InputError
from ctx_spark.extract.settings import ExtractSettings
from ctx_spark.logs import get_logger
from ctx_spark.platform import array_position
from ctx_spark.schema import TRACK_ID
from ctx_spark.shards.contract import AUDIO, AUDIO_MTIME, AUDIO_SIZE

log = get_logger("extract")


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
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .load(path)
        .select("path", "length", "modificationTime")
    )
    name = F.regexp_extract("path", r"([^/]+)$", 1)
    ext = F.lower(F.regexp_extract(name, r"\.([^.]+)$", 1))
    extensions = [e.lower() for e in settings.extensions]
    rank = array_position(F.array(*[F.lit(e) for e in extensions]), ext)
    files = listed.select(
        F.regexp_extract(name, r"^(.+)\.[^.]+$", 1).alias("stem"),
        F.col("path").alias(AUDIO),
        F.col("length").alias(AUDIO_SIZE),
        F.unix_millis("modificationTime").alias(AUDIO_MTIME),
        rank.alias("_rank"),
    ).where(F.col("_rank") > 0)
    integer = F.col("stem").rlike(r"^-?[0-9]{1,18}$")
    counts = files.agg(F.count(F.lit(1)).alias("n"), F.sum((~integer).cast("long")).alias("non_integer")).first()
    assert counts is not None  # a global aggregation always returns one row
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
    df = io.read_table(spark, path, schema.AUDIO_TRACKS)
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
