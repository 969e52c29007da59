"""Labelling tracks with listening contexts from the playlists that hold them.

Data flow (every step a DataFrame in, DataFrame out; docs/labelling.md, "Labelling rules"):

1. :func:`title_matches` and :func:`matched_titles`: playlists whose title matches a
   context. A JVM-side pre-filter (:func:`ctx_spark.text.may_match`, exact by construction)
   drops the titles that cannot match; the Python matcher sees each remaining distinct
   title once, and the matches are joined back to their playlists in the JVM.
2. :func:`playlist_ids`: per matched playlist id, its rows in ``playlists`` and whether it
   has one title; an id with two different titles is ambiguous and dropped (counted).
3. :func:`matched_track_rows`: semi-join playlist_tracks with the kept matched ids *before*
   any wide operation, so every later shuffle touches only the tracks of matched playlists,
   then attach artist/album and flag unknown tracks and null track ids.
4. :func:`playlist_focus` and :func:`focus_flags`: per matched playlist, its size and its
   largest artist and album shares, and the three filter flags.
5. :func:`count_track_contexts`: per (track, context), the kept matching playlists holding
   the track; :func:`track_labels` turns counts into labels at ``min_playlists``.

Each wide operation runs once per job: :func:`label_catalogue` persists every table a later
step or the report reads again, and broadcasts the small side of a join while it has at most
``label.broadcast_playlists`` rows (docs/design-notes.md, "Labelling: the title pre-filter and
the shuffle count").
"""

from __future__ import annotations

import math

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctx_spark import platform
from ctx_spark.config import Contexts
from ctx_spark.label.result import LabelResult
from ctx_spark.label.settings import LabelSettings
from ctx_spark.output_files import estimated_bytes
from ctx_spark.text import KeywordMatcher, match_titles, may_match


def context_matcher(contexts: Contexts) -> KeywordMatcher:
    """A matcher that reports context names from the contexts' keywords."""
    return KeywordMatcher({name: contexts.keywords[name] for name in contexts.names})


def candidate_titles(playlists: DataFrame, matcher: KeywordMatcher) -> DataFrame:
    """(playlist_id, title) rows of ``playlists`` that may match: ids and titles not null, and
    the title kept by the JVM pre-filter (:func:`ctx_spark.text.may_match`, exact by
    construction: a pure-ASCII title without any keyword's first token cannot match)."""
    return playlists.where(
        F.col("playlist_id").isNotNull() & F.col("title").isNotNull() & may_match(F.col("title"), matcher)
    ).select("playlist_id", "title")


def title_matches(playlists: DataFrame, matcher: KeywordMatcher) -> DataFrame:
    """(title, contexts) of every distinct candidate title that matches, through the Python matcher.

    Playlist titles repeat ("chill", "Workout", "summer 2019"), so Python sees each distinct
    title once, however many playlists carry it.
    """
    distinct_titles = candidate_titles(playlists, matcher).select("title").distinct()
    return match_titles(distinct_titles, "title", matcher, "contexts").where(F.size("contexts") > 0)


def matched_titles(
    playlists: DataFrame, matcher: KeywordMatcher, matches: DataFrame | None = None, broadcast: bool = False
) -> DataFrame:
    """Rows of ``playlists`` whose title matches a context.

    Args:
        matches: :func:`title_matches` of ``playlists`` (computed here when not given).
        broadcast: send ``matches`` to every task (few distinct matching titles).

    Returns:
        (playlist_id, title, contexts): one row per matching row of ``playlists``.
    """
    matches = title_matches(playlists, matcher) if matches is None else matches
    joined = F.broadcast(matches) if broadcast else matches
    return candidate_titles(playlists, matcher).join(joined, "title").select("playlist_id", "title", "contexts")


def playlist_ids(playlists: DataFrame, titles: DataFrame, matches: DataFrame, broadcast: bool = False) -> DataFrame:
    """Per matched playlist id: its rows in ``playlists`` and whether it has one title.

    One aggregation over the matched ids' rows of ``playlists``: the row count, the smallest
    and largest title and the non-null titles. An id has one title when the smallest and the
    largest are equal and no row's title is null.

    Args:
        titles: :func:`matched_titles`.
        matches: :func:`title_matches`, the contexts of each matching title.
        broadcast: send the matched ids and the title matches to every task (few of them).

    Returns:
        (playlist_id, n_rows, n_titles, contexts): ``n_titles`` is 1 for an id with one title,
        else 2 or more (a null title counts as a title; the count is exact up to 2, a lower
        bound above). An id with ``n_titles > 1`` names two different playlists (two titles,
        one set of tracks). ``contexts`` are those of the id's title when it has one; for
        the others, those of its smallest title when that one matches (else null).
    """
    ids = titles.select("playlist_id").distinct()
    per_id = (
        playlists.join(F.broadcast(ids) if broadcast else ids, "playlist_id", "left_semi")
        .groupBy("playlist_id")
        .agg(
            F.count(F.lit(1)).alias("n_rows"),
            F.count("title").alias("_titled"),
            F.min("title").alias("title"),
            F.max("title").alias("_last"),
        )
    )
    n_titles = F.when(F.col("title") == F.col("_last"), 1).otherwise(2) + F.when(
        F.col("_titled") < F.col("n_rows"), 1
    ).otherwise(0)
    contexts = F.broadcast(matches) if broadcast else matches
    return per_id.join(contexts, "title", "left").select(
        "playlist_id", "n_rows", n_titles.cast(T.LongType()).alias("n_titles"), "contexts"
    )


def kept_matches(ids: DataFrame) -> DataFrame:
    """(playlist_id, context) of the unambiguous matched ids (one title), one row per context."""
    return ids.where(F.col("n_titles") == 1).select("playlist_id", F.explode("contexts").alias("context"))


def matched_track_rows(
    playlist_tracks: DataFrame, tracks: DataFrame, matched_ids: DataFrame, partitions: int = 4, broadcast: bool = False
) -> DataFrame:
    """The distinct tracks of matched playlists, with artist and album where known.

    The semi-join on matched playlist ids comes first, so the de-duplication and the join
    with ``tracks`` run on matched playlists' rows only. With ``broadcast`` the ids go to
    every task that scans ``playlist_tracks`` (no shuffle of the big table; the caller
    decides from their number). ``tracks`` is grouped by track id (duplicate ids resolved
    deterministically: smallest artist and album id) in the same partitioning as the pairs,
    so the join shuffles neither side again.

    Args:
        matched_ids: (playlist_id) of the kept matched playlists, distinct.

    Returns:
        (playlist_id, track_id, artist_id, album_id, rows, known): one row per distinct
        (playlist, track) pair, and one per playlist for its rows with a null track id;
        ``rows`` counts the pair's rows in ``playlist_tracks``; ``known`` is false when
        ``tracks`` lacks the track or the track id is null (artist and album then null).
    """
    ids = F.broadcast(matched_ids) if broadcast else matched_ids
    pairs = (
        playlist_tracks.select("playlist_id", "track_id")
        .join(ids, "playlist_id", "left_semi")
        .repartition(partitions, "track_id")
        .groupBy("playlist_id", "track_id")
        .agg(F.count(F.lit(1)).cast(T.LongType()).alias("rows"))
    )
    catalogue = (
        tracks.where(F.col("track_id").isNotNull())
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
    # Hash-partitioned by track: the labels' grouping needs no other shuffle. The writer then
    # range-partitions each cached output into as many files as its size asks for (no sample
    # of this join is needed, as a range partitioning here would take).
    return (
        kept.join(known_rows.select("playlist_id", "track_id", "artist_id", "album_id"), "playlist_id")
        .repartition(partitions, "track_id")
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
    # One plain (hash) aggregation per track: the count of each context, and no list of
    # structs to collect. Context names are distinct, so the names at or above the threshold,
    # in sorted order, are the sorted list of labelled contexts.
    count_of = {name: f"_n_{i}" for i, name in enumerate(contexts.names)}
    context, n_playlists = F.col("context"), F.col("n_playlists")
    per_context = [F.max(F.when(context == n, n_playlists)).alias(count_of[n]) for n in contexts.names]
    by_track = counts.groupBy("track_id", "artist_id", "album_id").agg(*per_context)
    labelled = [F.when(F.col(count_of[name]) >= min_playlists, F.lit(name)) for name in sorted(contexts.names)]
    label_names = platform.array_compact(F.array(*labelled), F.lit(""))
    vector = F.array(*[F.coalesce(F.col(count_of[name]), F.lit(0)) for name in contexts.names])
    return by_track.select(
        "track_id", "artist_id", "album_id", label_names.alias("contexts"), vector.alias("n_playlists")
    ).where(F.size("contexts") > 0)


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
        Runs the jobs that match the titles, find the matched playlists' tracks and flag the
        playlists (their number decides how ``playlist_tracks`` is joined); counts and labels
        are computed when first read.
    """
    matcher = matcher or context_matcher(contexts)
    cached: list[DataFrame] = []
    limit = settings.broadcast_playlists

    def persisted(df: DataFrame) -> DataFrame:
        cached.append(df.persist(StorageLevel.MEMORY_AND_DISK))
        return df

    def computed(df: DataFrame) -> tuple[DataFrame, int]:
        # One job now, for a table later steps read from two sides (adaptive execution runs
        # independent query stages side by side, and both would compute a cache not yet
        # built); its size decides how the next step joins it.
        df = persisted(df)
        return df, df.count()

    try:
        matches, n_matches = computed(title_matches(playlists, matcher))
        titles, n_titles = computed(matched_titles(playlists, matcher, matches, broadcast=n_matches <= limit))
        small = n_titles <= limit  # the matched ids, and the distinct titles, are at most this many
        ids = persisted(playlist_ids(playlists, titles, matches, broadcast=small))
        matched = kept_matches(ids)
        kept_ids = ids.where(F.col("n_titles") == 1).select("playlist_id")
        # Few enough ids go to every scan task of playlist_tracks: the big table is filtered
        # where it is read and never shuffled whole. (This count builds the ids' cache.)
        broadcast = kept_ids.count() <= limit
        matches.unpersist()  # read by the titles and the ids only
        partitions = label_partitions(playlist_tracks, settings)
        rows = matched_track_rows(playlist_tracks, tracks, kept_ids, partitions, broadcast)
        # Hash-partitioned by playlist: the focus aggregations and the join with the matches
        # read it without another shuffle.
        track_rows = persisted(rows.repartition(partitions, "playlist_id"))
        known_rows = track_rows.where(F.col("known"))
        flagged, _ = computed(focus_flags(playlist_focus(known_rows), settings))
        counts = persisted(count_track_contexts(matched, focused_playlist_ids(flagged), known_rows, partitions))
        labels = persisted(track_labels(counts, contexts, settings.min_playlists))
    except BaseException:
        for df in cached:
            df.unpersist()
        raise
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
