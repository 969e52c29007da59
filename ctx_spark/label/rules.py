"""Labelling tracks with listening contexts from the playlists that hold them.

Data flow (every step a DataFrame in, DataFrame out; docs/labelling.md, "Labelling rules"):

1. :func:`matched_titles`: playlists whose title matches a context. A JVM-side pre-filter
   (:func:`ctx_spark.text.may_match`, exact by construction) drops the titles that cannot
   match; only the rest go through the Python matcher.
2. :func:`playlist_ids`: per matched playlist id, its rows in ``playlists`` and its distinct
   titles; an id with two different titles is ambiguous and dropped (counted).
3. :func:`matched_track_rows`: semi-join playlist_tracks with the kept matched ids *before*
   any wide operation, so every later shuffle touches only the tracks of matched playlists,
   then attach artist/album and flag unknown tracks and null track ids.
4. :func:`playlist_focus` and :func:`focus_flags`: per matched playlist, its size and its
   largest artist and album shares, and the three filter flags.
5. :func:`count_track_contexts`: per (track, context), the kept matching playlists holding
   the track; :func:`track_labels` turns counts into labels at ``min_playlists``.

Each wide operation runs once per job: :func:`label_catalogue` persists every table a later
step or the report reads again (docs/design-notes.md, "Labelling: the title pre-filter and the
shuffle count").
"""

from __future__ import annotations

import math

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctx_spark.config import Contexts
from ctx_spark.label.result import LabelResult
from ctx_spark.label.settings import LabelSettings
from ctx_spark.output_files import estimated_bytes
from ctx_spark.text import KeywordMatcher, match_titles, may_match


def context_matcher(contexts: Contexts) -> KeywordMatcher:
    """A matcher that reports context names from the contexts' keywords."""
    return KeywordMatcher({name: contexts.keywords[name] for name in contexts.names})


def matched_titles(playlists: DataFrame, matcher: KeywordMatcher) -> DataFrame:
    """Rows of ``playlists`` whose title matches a context.

    Null ids and null titles never match. A title the pre-filter drops cannot match (pure
    ASCII without any keyword's first token), so the Python matcher sees only the others.

    Returns:
        (playlist_id, title, contexts): one row per matching row of ``playlists``.
    """
    candidates = playlists.where(
        F.col("playlist_id").isNotNull() & F.col("title").isNotNull() & may_match(F.col("title"), matcher)
    ).select("playlist_id", "title")
    return match_titles(candidates, "title", matcher, "contexts").where(F.size("contexts") > 0)


def match_playlists(playlists: DataFrame, matcher: KeywordMatcher) -> DataFrame:
    """Distinct (playlist_id, context) rows, one per matched context of a playlist row."""
    matched = matched_titles(playlists, matcher)
    return matched.select("playlist_id", F.explode("contexts").alias("context")).distinct()


def playlist_ids(playlists: DataFrame, titles: DataFrame) -> DataFrame:
    """Per matched playlist id: its rows in ``playlists`` and its distinct titles.

    Args:
        titles: :func:`matched_titles`.

    Returns:
        (playlist_id, n_rows, n_titles, contexts): ``n_titles`` counts a null title as a
        title; ``contexts`` are those of the id's (first) matching title. An id with
        ``n_titles > 1`` names two different playlists (two titles, one set of tracks).
    """
    ids = titles.select("playlist_id").distinct()
    per_id = (
        playlists.join(ids, "playlist_id", "left_semi")
        .groupBy("playlist_id")
        .agg(F.count(F.lit(1)).alias("n_rows"), F.countDistinct(F.struct("title")).alias("n_titles"))
    )
    first = titles.groupBy("playlist_id").agg(F.min(F.struct("title", "contexts")).alias("_m"))
    return per_id.join(first, "playlist_id").select("playlist_id", "n_rows", "n_titles", "_m.contexts")


def kept_matches(ids: DataFrame) -> DataFrame:
    """(playlist_id, context) of the unambiguous matched ids (one title), one row per context."""
    return ids.where(F.col("n_titles") == 1).select("playlist_id", F.explode("contexts").alias("context"))


def matched_track_rows(
    playlist_tracks: DataFrame, tracks: DataFrame, matched: DataFrame, partitions: int = 4
) -> DataFrame:
    """The distinct tracks of matched playlists, with artist and album where known.

    The semi-join on matched playlist ids comes first, so the de-duplication and the join
    with ``tracks`` run on matched playlists' rows only, and ``tracks`` is cut to their
    tracks before it is grouped. Duplicate track ids in ``tracks`` are resolved
    deterministically (smallest artist and album id).

    Returns:
        (playlist_id, track_id, artist_id, album_id, rows, known): one row per distinct
        (playlist, track) pair, and one per playlist for its rows with a null track id;
        ``rows`` counts the pair's rows in ``playlist_tracks``; ``known`` is false when
        ``tracks`` lacks the track or the track id is null (artist and album then null).
    """
    matched_ids = matched.select("playlist_id").distinct()
    # Hash-partitioned by track once: the de-duplication, the distinct track ids, the cut of
    # ``tracks`` and the join with it then need no other shuffle of these rows.
    pairs = (
        playlist_tracks.select("playlist_id", "track_id")
        .join(matched_ids, "playlist_id", "left_semi")
        .repartition(partitions, "track_id")
        .groupBy("playlist_id", "track_id")
        .agg(F.count(F.lit(1)).cast(T.LongType()).alias("rows"))
    )
    wanted = pairs.where(F.col("track_id").isNotNull()).select("track_id").distinct()
    catalogue = (
        tracks.join(wanted, "track_id", "left_semi")
        .repartition(partitions, "track_id")
        .groupBy("track_id")
        .agg(
            F.min("artist_id").alias("artist_id"),
            F.min("album_id").alias("album_id"),
            F.lit(True).alias("known"),
        )
    )
    return pairs.join(catalogue, "track_id", "left").select(
        "playlist_id",
        "track_id",
        "artist_id",
        "album_id",
        "rows",
        F.coalesce(F.col("known"), F.lit(False)).alias("known"),
    )


def playlist_focus(known_rows: DataFrame) -> DataFrame:
    """Size and concentration of each playlist.

    Args:
        known_rows: distinct (playlist_id, track_id, artist_id, album_id) of known tracks.

    Returns:
        (playlist_id, n_tracks, max_artist_tracks, max_album_tracks): the number of
        distinct known tracks, and the most tracks held by one artist and by one album.
        Null artists or albums count toward none.
    """

    def largest(column: str, alias: str) -> DataFrame:
        return (
            known_rows.where(F.col(column).isNotNull())
            .groupBy("playlist_id", column)
            .agg(F.count(F.lit(1)).alias("_n"))
            .groupBy("playlist_id")
            .agg(F.max("_n").alias(alias))
        )

    size = known_rows.groupBy("playlist_id").agg(F.count(F.lit(1)).alias("n_tracks"))
    return (
        size.join(largest("artist_id", "max_artist_tracks"), "playlist_id", "left")
        .join(largest("album_id", "max_album_tracks"), "playlist_id", "left")
        .fillna(0, subset=["max_artist_tracks", "max_album_tracks"])
    )


def focus_flags(focus: DataFrame, settings: LabelSettings) -> DataFrame:
    """Add the three filter flags: ``oversized``, ``artist_dominated``, ``album_dominated``.

    A share above ``max_share`` removes a playlist; a share equal to it keeps it.
    """
    share = F.lit(settings.max_share)
    return focus.withColumns(
        {
            "oversized": F.col("n_tracks") > settings.max_tracks,
            "artist_dominated": (F.col("max_artist_tracks") / F.col("n_tracks")) > share,
            "album_dominated": (F.col("max_album_tracks") / F.col("n_tracks")) > share,
        }
    )


def focused_playlist_ids(flagged: DataFrame) -> DataFrame:
    """Ids of playlists that pass every filter of :func:`focus_flags`."""
    removed = F.col("oversized") | F.col("artist_dominated") | F.col("album_dominated")
    return flagged.where(~removed).select("playlist_id")


def count_track_contexts(
    matched: DataFrame, kept_ids: DataFrame, known_rows: DataFrame, partitions: int = 4
) -> DataFrame:
    """Per (track, context), the number of kept matching playlists that hold the track.

    Returns:
        (track_id, artist_id, album_id, context, n_playlists int), ``n_playlists >= 1``.
    """
    kept = matched.join(kept_ids, "playlist_id", "left_semi")
    # Range-partitioned by track: the aggregation, the labels' grouping and both outputs' sort
    # order then need no other shuffle (the outputs are written in partition order).
    return (
        kept.join(known_rows.select("playlist_id", "track_id", "artist_id", "album_id"), "playlist_id")
        .repartitionByRange(partitions, "track_id")
        .groupBy("track_id", "artist_id", "album_id", "context")
        .agg(F.count(F.lit(1)).cast(T.IntegerType()).alias("n_playlists"))
    )


def track_labels(counts: DataFrame, contexts: Contexts, min_playlists: int) -> DataFrame:
    """One row per track that carries at least one context.

    Returns:
        (track_id, artist_id, album_id, contexts, n_playlists): ``contexts`` is the sorted
        array of context names with ``n_playlists >= min_playlists``; ``n_playlists`` is
        the array<int> of counts for every context in ``contexts.names`` order (0 where
        no kept playlist matched), below-threshold counts included.
    """
    by_track = counts.groupBy("track_id", "artist_id", "album_id").agg(
        F.map_from_entries(F.collect_list(F.struct("context", "n_playlists"))).alias("_counts"),
        F.array_sort(F.collect_list(F.when(F.col("n_playlists") >= min_playlists, F.col("context")))).alias("contexts"),
    )
    vector = F.array(*[F.coalesce(F.col("_counts")[name], F.lit(0)) for name in contexts.names])
    return by_track.where(F.size("contexts") > 0).select(
        "track_id", "artist_id", "album_id", "contexts", vector.alias("n_playlists")
    )


def _persist(df: DataFrame) -> DataFrame:
    return df.persist(StorageLevel.MEMORY_AND_DISK)


def label_partitions(playlist_tracks: DataFrame, settings: LabelSettings) -> int:
    """Partitions of the job's explicit repartitionings (``label.partitions``; 0: automatic).

    Automatic: twice the cluster's default parallelism, or one per 256 MiB of the
    playlist-track table when that is more. An explicit count keeps its partitioning in the
    cache (adaptive execution would merge the partitions of ``repartition(column)`` and the
    cache would forget how it is partitioned, bringing the shuffles back), so it must fit the
    data: too many tiny tasks cost more than they save.
    """
    if settings.partitions:
        return settings.partitions
    size = estimated_bytes(playlist_tracks) or 0
    return max(2 * playlist_tracks.sparkSession.sparkContext.defaultParallelism, math.ceil(size / 2**28))


def label_catalogue(
    playlists: DataFrame,
    playlist_tracks: DataFrame,
    tracks: DataFrame,
    contexts: Contexts,
    settings: LabelSettings,
    matcher: KeywordMatcher | None = None,
) -> LabelResult:
    """Build the whole labelling plan over validated input tables.

    Args:
        playlists: (playlist_id, title), see :data:`ctx_spark.schema.PLAYLISTS`.
        playlist_tracks: (playlist_id, track_id).
        tracks: (track_id, artist_id, album_id).
        contexts: the contexts and their keywords.
        settings: thresholds.
        matcher: defaults to :func:`context_matcher` of ``contexts``.

    Returns:
        A :class:`LabelResult`; ``counts`` and ``labels`` are the job's outputs. Every
        intermediate table read more than once (matched titles and ids, matched tracks, focus,
        counts, labels) is persisted, so each wide operation runs once; call ``release``.
    """
    matcher = matcher or context_matcher(contexts)
    titles = _persist(matched_titles(playlists, matcher))
    ids = _persist(playlist_ids(playlists, titles))
    matched = kept_matches(ids)
    # Persisted hash-partitioned by playlist: the focus aggregations and the join with the
    # matches read it without another shuffle.
    partitions = label_partitions(playlist_tracks, settings)
    rows = matched_track_rows(playlist_tracks, tracks, matched, partitions)
    track_rows = _persist(rows.repartition(partitions, "playlist_id"))
    known_rows = track_rows.where(F.col("known"))
    flagged = _persist(focus_flags(playlist_focus(known_rows), settings))
    counts = _persist(count_track_contexts(matched, focused_playlist_ids(flagged), known_rows, partitions))
    labels = _persist(track_labels(counts, contexts, settings.min_playlists))
    return LabelResult(
        playlists=playlists,
        playlist_tracks=playlist_tracks,
        tracks=tracks,
        titles=titles,
        ids=ids,
        matched=matched,
        track_rows=track_rows,
        flagged=flagged,
        counts=counts,
        labels=labels,
        contexts=contexts,
        settings=settings,
    )
