"""The audio catalogue: which file holds each track's audio, and every entry left unused.

Two sources: a directory of ``<track_id>.<ext>`` files (``--audio-dir``), walked on the
executors one level of directories at a time (:mod:`ctx_spark.extract.walk`: no file is
read, nothing is listed on the driver), and a table of (track_id, audio path or URI) rows
(``--tracks``). Every directory entry or table row that does not become a track's audio is
kept as a *rejected* row in the ``errors/`` schema with its reason (stage ``list``), and the
job writes those rows to ``errors/``: nothing under the directory or in the table is lost
without a trace (docs/extraction.md, "Listing the audio directory").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from ctx_spark import io, schema
from ctx_spark.errors import InputError
from ctx_spark.extract import walk
from ctx_spark.extract.settings import ExtractSettings
from ctx_spark.fs import absolute_local_path, arrow_filesystem, local_path
from ctx_spark.logs import get_logger
from ctx_spark.platform import array_position
from ctx_spark.schema import TRACK_ID
from ctx_spark.shards.contract import AUDIO, AUDIO_MTIME, AUDIO_SIZE

log = get_logger("extract")

#: The ``stage`` of every rejected listing entry in errors/.
LIST_STAGE = "list"
#: Why a directory entry or table row is not a track's audio (errors/ ``reason``).
HIDDEN = "hidden"
UNLISTED_EXTENSION = "unlisted_extension"
BAD_NAME = "bad_name"
DUPLICATE = "duplicate"
BROKEN_LINK = "broken_link"
LINKED_DIR = "linked_dir"
NOT_A_FILE = "not_a_file"
UNLISTABLE = "unlistable"
NULL_TRACK_ID = "null_track_id"
LISTING_REASONS = (
    HIDDEN,
    UNLISTED_EXTENSION,
    BAD_NAME,
    DUPLICATE,
    BROKEN_LINK,
    LINKED_DIR,
    NOT_A_FILE,
    UNLISTABLE,
    NULL_TRACK_ID,
)
#: The rule that picks one file (or row) per track, as messages cite it.
DUPLICATE_RULE = 'docs/extraction.md, "Duplicates"'

_KIND_REASONS = {
    walk.BROKEN_LINK: BROKEN_LINK,
    walk.LINKED_DIR: LINKED_DIR,
    walk.HIDDEN_DIR: HIDDEN,
    walk.SPECIAL: NOT_A_FILE,
    walk.UNLISTABLE: UNLISTABLE,
    walk.UNDECODABLE: BAD_NAME,
}
_INTEGER = r"^-?[0-9]{1,18}$"
_URI_SCHEME = r"^[A-Za-z][A-Za-z0-9+.-]*:"


@dataclass(frozen=True)
class Catalogue:
    """The tracks with audio, one row each, and every entry not used, with its reason.

    Attributes:
        df: [track_id, audio, audio_size, audio_mtime_ms] (fingerprints null for a table).
        rejected: [track_id, audio, stage, reason, message], the errors/ schema: entries
            or rows that are no track's audio (``track_id`` null when none can be read).
        entries: directory entries met (files, links, hidden and unlistable directories)
            or table rows read.
        tracks: rows of ``df``.
        rejected_counts: rows of ``rejected`` per reason.
        relative_paths: table rows whose relative audio path was resolved.
        persisted: cached frames to release when the job is done.
    """

    df: DataFrame
    rejected: DataFrame
    entries: int
    tracks: int
    rejected_counts: Mapping[str, int]
    relative_paths: int = 0
    persisted: tuple[DataFrame, ...] = field(default=(), repr=False)

    @property
    def bad_names(self) -> int:
        return self.rejected_counts.get(BAD_NAME, 0)

    def release(self) -> None:
        """Drop the cached listing."""
        for df in self.persisted:
            df.unpersist()


def _root(audio_dir: str) -> walk.Root:
    local = local_path(audio_dir)
    if local is not None:
        inner = absolute_local_path(audio_dir).rstrip("/") or "/"
        return walk.Root(uri=f"file:{inner}", inner=inner)
    fs, inner = arrow_filesystem(audio_dir)
    return walk.Root(uri=audio_dir.rstrip("/"), inner=inner.rstrip("/"), filesystem=fs)


def _classify(entries: DataFrame, extensions: list[str]) -> DataFrame:
    """Add name, ext, stem, ``_rank`` (1-based position of the extension in the list, 0 when
    absent) and ``_reason``: why the entry cannot be any track's audio, whatever the id
    type (null for a candidate), with its ``message``."""
    name = F.regexp_extract("path", r"([^/]+)$", 1)
    ext = F.lower(F.regexp_extract(name, r"\.([^.]+)$", 1))
    rank = array_position(F.array(*[F.lit(e) for e in extensions]), ext)
    df = entries.select(
        "*",
        name.alias("name"),
        ext.alias("ext"),
        F.regexp_extract(name, r"^(.+)\.[^.]+$", 1).alias("stem"),
        rank.alias("_rank"),
    )
    by_kind = F.lit(None).cast("string")
    for kind, label in _KIND_REASONS.items():
        by_kind = F.when(F.col("kind") == kind, F.lit(label)).otherwise(by_kind)
    listed = ", ".join(extensions)
    reason = (
        F.when(F.col("kind") != walk.FILE, by_kind)
        .when(F.col("name").rlike(r"^[._]"), F.lit(HIDDEN))
        .when(F.col("_rank") == 0, F.lit(UNLISTED_EXTENSION))
        .when(F.col("stem") == "", F.lit(BAD_NAME))
    )
    message = (
        F.when(F.col("kind") == walk.HIDDEN_DIR, F.lit("hidden directory (its name starts with . or _): not descended"))
        .when(F.col("kind") != walk.FILE, F.col("message"))
        .when(F.col("name").rlike(r"^[._]"), F.lit("hidden file (its name starts with . or _): not listed"))
        .when(
            (F.col("_rank") == 0) & (F.col("ext") == ""),
            F.lit(f"no extension; extract.extensions lists {listed}"),
        )
        .when(
            F.col("_rank") == 0,
            F.concat(F.lit("extension ."), F.col("ext"), F.lit(f" is not in extract.extensions ({listed})")),
        )
        .when(F.col("stem") == "", F.lit("no track id before the extension"))
    )
    return df.withColumn("_reason", reason).withColumn("message", message)


def _rejected(df: DataFrame, track_id: Column, reason: Column, message: Column) -> DataFrame:
    """Rows in the errors/ schema."""
    return df.select(
        track_id.alias(TRACK_ID),
        F.col(AUDIO),
        F.lit(LIST_STAGE).alias("stage"),
        reason.alias("reason"),
        message.alias("message"),
    )


def _pick_one(candidates: DataFrame, order: list[Column]) -> tuple[DataFrame, DataFrame]:
    """(the first row of each track by ``order``, the others with ``_chosen``, the audio
    of the first)."""
    window = Window.partitionBy(TRACK_ID).orderBy(*order)
    ranked = candidates.withColumn("_n", F.row_number().over(window)).withColumn("_chosen", F.first(AUDIO).over(window))
    return ranked.where(F.col("_n") == 1).drop("_n", "_chosen"), ranked.where(F.col("_n") > 1)


def list_audio_dir(spark: SparkSession, audio_dir: str, settings: ExtractSettings, id_type: str) -> Catalogue:
    """List ``<track_id>.<ext>`` files under ``audio_dir`` (all levels) without reading them.

    Every entry is a candidate or rejected (hidden, unlisted extension, bad name, broken
    link, linked directory, not a regular file, unlistable). A track with several
    candidates keeps one (:data:`DUPLICATE_RULE`): a non-empty file first, then the extension
    listed first in ``extract.extensions``, then the file whose name spells the id exactly
    (``192.ogg`` before ``0192.ogg``), then the smallest path; the others are ``duplicate``.

    Args:
        id_type: ``int64``, ``string`` or ``auto``: int64 when every candidate's name is
            an integer.

    Raises:
        InputError: ``audio_dir`` does not exist, is not a directory or cannot be listed.
    """
    path = io.qualify(audio_dir)
    if not io.path_exists(spark, path):
        raise InputError(f"--audio-dir {path} does not exist")
    entries, levels = walk.walk_tree(spark, _root(path))
    extensions = [e.lower() for e in settings.extensions]
    classified = _classify(entries, extensions)
    candidate = F.col("_reason").isNull()
    integer = candidate & F.col("stem").rlike(_INTEGER)
    counts = classified.agg(
        F.count(F.lit(1)).alias("entries"),
        *[F.sum((F.col("_reason") == r).cast("long")).alias(r) for r in LISTING_REASONS],
        F.sum((candidate & ~F.col("stem").rlike(_INTEGER)).cast("long")).alias("non_integer"),
        F.count_distinct(F.when(integer, F.col("stem").cast("long"))).alias("int_tracks"),
        F.count_distinct(F.when(candidate, F.col("stem"))).alias("string_tracks"),
    ).first()
    assert counts is not None  # a global aggregation always returns one row
    if id_type == "auto":
        id_type = "int64" if not counts["non_integer"] else "string"
    rejected_counts = {r: int(counts[r] or 0) for r in LISTING_REASONS if counts[r]}
    if id_type == "int64":
        track_id = F.when(integer, F.col("stem").cast("long"))
        canonical = F.col("stem") == track_id.cast("string")
        tracks = int(counts["int_tracks"])
        if counts["non_integer"]:
            rejected_counts[BAD_NAME] = rejected_counts.get(BAD_NAME, 0) + int(counts["non_integer"])
            log.warning("%d audio files are not named <integer track id>.<ext>: see errors/", counts["non_integer"])
    else:
        track_id, canonical, tracks = F.when(candidate, F.col("stem")), F.lit(True), int(counts["string_tracks"])
    keyed = classified.select(
        "*", track_id.alias(TRACK_ID), canonical.alias("_canonical"), F.col("path").alias(AUDIO)
    ).withColumn("_reason", F.coalesce(F.col("_reason"), F.when(F.col(TRACK_ID).isNull(), F.lit(BAD_NAME))))
    not_id = F.concat(F.lit("'"), F.col("stem"), F.lit("' is not an integer track id (extract.id_type is int64)"))
    bad = keyed.where(F.col("_reason").isNotNull())
    bad = _rejected(bad, F.col(TRACK_ID), F.col("_reason"), F.coalesce(F.col("message"), not_id))
    order = [(F.col("size") == 0).asc(), F.col("_rank"), F.col("_canonical").desc(), F.col(AUDIO)]
    chosen, others = _pick_one(keyed.where(F.col("_reason").isNull()), order)
    rejected_counts[DUPLICATE] = int(counts["entries"]) - sum(rejected_counts.values()) - tracks
    duplicates = _rejected(
        others,
        F.col(TRACK_ID),
        F.lit(DUPLICATE),
        F.concat(F.lit("another file of this track is used: "), F.col("_chosen"), F.lit(f" ({DUPLICATE_RULE})")),
    )
    rejected_counts = {r: n for r, n in rejected_counts.items() if n}
    df = chosen.select(
        TRACK_ID,
        AUDIO,
        F.col("size").alias(AUDIO_SIZE),
        F.col("mtime_ms").alias(AUDIO_MTIME),
    )
    return Catalogue(
        df=df,
        rejected=bad.unionByName(duplicates),
        entries=int(counts["entries"]),
        tracks=tracks,
        rejected_counts=rejected_counts,
        persisted=tuple(levels),
    )


def unlisted_extensions(catalogue: Catalogue, n: int = 5) -> list[tuple[str, int]]:
    """The ``n`` commonest extensions among the ``unlisted_extension`` entries, for a
    message (one small aggregation)."""
    ext = F.lower(F.regexp_extract(F.regexp_extract(AUDIO, r"([^/]+)$", 1), r"\.([^.]+)$", 1))
    rows = (
        catalogue.rejected.where(F.col("reason") == UNLISTED_EXTENSION)
        .groupBy(ext.alias("ext"))
        .count()
        .orderBy(F.desc("count"), "ext")
        .limit(n)
        .collect()
    )
    return [(str(r["ext"]), int(r["count"])) for r in rows]


def is_relative(audio: Column) -> Column:
    """Whether a non-empty path has neither a scheme (``hdfs:``, ``file:``) nor a leading ``/``."""
    return audio.isNotNull() & ~audio.rlike(_URI_SCHEME) & ~audio.startswith("/") & (audio != "")


def resolve_relative(audio: Column, table: str) -> Column:
    """``audio`` with a relative path (:func:`is_relative`) resolved against the directory
    holding the table, and an empty string as null (no audio)."""
    base = table.rstrip("/").rsplit("/", 1)[0]
    relative = is_relative(audio)
    resolved = F.concat(F.lit(base + "/"), F.regexp_replace(audio, r"^(\./)+", ""))
    return F.when(audio == "", F.lit(None).cast("string")).when(relative, resolved).otherwise(audio)


def read_audio_table(spark: SparkSession, path: str) -> Catalogue:
    """Read the ``--tracks`` table (track_id, audio).

    A relative ``audio`` path is resolved against the directory holding the table (not
    against each executor's working directory), an empty one means no audio. A track
    listed twice keeps its smallest non-null path (:data:`DUPLICATE_RULE`); the other rows
    are ``duplicate``, rows without a track id ``null_track_id``. Fingerprints are filled
    in later by the executors.
    """
    table = io.qualify(path)
    raw = io.read_table(spark, table, schema.AUDIO_TRACKS)
    df = raw.select(
        TRACK_ID, resolve_relative(F.col(AUDIO), table).alias(AUDIO), is_relative(F.col(AUDIO)).alias("_relative")
    )
    counts = df.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.col("_relative").cast("long")).alias("relative"),
        F.sum(F.col(TRACK_ID).isNull().cast("long")).alias("null_ids"),
        F.count_distinct(TRACK_ID).alias("tracks"),
    ).first()
    assert counts is not None  # a global aggregation always returns one row
    rows, nulls, tracks = int(counts["rows"]), int(counts["null_ids"] or 0), int(counts["tracks"])
    chosen, others = _pick_one(df.where(F.col(TRACK_ID).isNotNull()), [F.col(AUDIO).asc_nulls_last()])
    again = F.when(F.col(AUDIO).eqNullSafe(F.col("_chosen")), F.lit("the same row is listed again")).otherwise(
        F.concat(F.lit("another row of this track is used: "), F.coalesce(F.col("_chosen"), F.lit("(no audio)")))
    )
    rejected = _rejected(others, F.col(TRACK_ID), F.lit(DUPLICATE), F.concat(again, F.lit(f" ({DUPLICATE_RULE})")))
    rejected = rejected.unionByName(
        _rejected(
            df.where(F.col(TRACK_ID).isNull()),
            F.col(TRACK_ID),
            F.lit(NULL_TRACK_ID),
            F.lit("the row's track_id is null"),
        )
    )
    rejected_counts = {k: v for k, v in {DUPLICATE: rows - nulls - tracks, NULL_TRACK_ID: nulls}.items() if v}
    relative_paths = int(counts["relative"] or 0)
    if relative_paths:
        log.info("%d relative audio paths resolved against %s", relative_paths, table.rstrip("/").rsplit("/", 1)[0])
    kept = chosen.select(
        TRACK_ID, AUDIO, F.lit(None).cast("long").alias(AUDIO_SIZE), F.lit(None).cast("long").alias(AUDIO_MTIME)
    )
    return Catalogue(
        df=kept,
        rejected=rejected,
        entries=rows,
        tracks=tracks,
        rejected_counts=rejected_counts,
        relative_paths=relative_paths,
    )
