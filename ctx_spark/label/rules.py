"""Labelling tracks with listening contexts from the playlists that hold them.

Data flow (every step a DataFrame in, DataFrame out):

1. :func:`match_playlists`: titles -> (playlist_id, context) for keyword-matched playlists.
   The only Python step, on the playlists table alone.
2. :func:`matched_track_rows`: semi-join playlist_tracks with the matched playlist ids
   *before* any wide operation, so every later shuffle touches only the tracks of matched
   playlists (a few percent of a catalogue's playlist-track rows), then attach
   artist/album and flag unknown tracks.
3. :func:`playlist_focus`: per matched playlist, its size and its largest artist and
   album shares; :func:`focused_playlist_ids` keeps the focused ones.
4. :func:`count_track_contexts`: per (track, context), the kept matching playlists holding
   the track; :func:`track_labels` turns counts into labels at ``min_playlists``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctx_spark.config import Contexts
from ctx_spark.label.settings import LabelSettings
from ctx_spark.text import KeywordMatcher, match_titles


def context_matcher(contexts: Contexts) -> KeywordMatcher:
    """A matcher that reports context names from the contexts' keywords."""
    return KeywordMatcher({name: contexts.keywords[name] for name in contexts.names})


def match_playlists(playlists: DataFrame, matcher: KeywordMatcher) -> DataFrame:
    """Playlists whose title matches a context.

    Args:
        playlists: (playlist_id, title); null titles never match.

    Returns:
        Distinct (playlist_id, context) rows, one per matched context of a playlist.
    """
    titled = playlists.where(F.col("title").isNotNull()).select("playlist_id", "title")
    matched = match_titles(titled, "title", matcher, "_contexts").where(F.size("_contexts") > 0)
    return matched.select("playlist_id", F.explode("_contexts").alias("context")).distinct()


def matched_track_rows(playlist_tracks: DataFrame, tracks: DataFrame, matched: DataFrame) -> DataFrame:
    """The distinct tracks of matched playlists, with artist and album where known.

    The semi-join on matched playlist ids comes first, so the de-duplication and the join
    with ``tracks`` run on matched playlists' rows only, and ``tracks`` is cut to their
    tracks before it is grouped. Duplicate track ids in ``tracks``
    are resolved deterministically (smallest artist and album id).

    Returns:
        (playlist_id, track_id, artist_id, album_id, rows, known): one row per distinct
        (playlist, track) pair; ``rows`` counts its occurrences in ``playlist_tracks``;
        ``known`` is false when ``tracks`` lacks the track (artist and album then null).
    """
    matched_ids = matched.select("playlist_id").distinct()
    pairs = (
        playlist_tracks.select("playlist_id", "track_id")
        .join(matched_ids, "playlist_id", "left_semi")
        .groupBy("playlist_id", "track_id")
        .agg(F.count(F.lit(1)).cast(T.LongType()).alias("rows"))
    )
    # Only the tracks of matched playlists are de-duplicated: when their ids fit a
    # broadcast, the tracks table is filtered where it is read instead of being shuffled.
    wanted = pairs.select("track_id").distinct()
    catalogue = (
        tracks.join(wanted, "track_id", "left_semi")
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


def count_track_contexts(matched: DataFrame, kept_ids: DataFrame, known_rows: DataFrame) -> DataFrame:
    """Per (track, context), the number of kept matching playlists that hold the track.

    Returns:
        (track_id, artist_id, album_id, context, n_playlists int), ``n_playlists >= 1``.
    """
    kept_matches = matched.join(kept_ids, "playlist_id", "left_semi")
    return (
        kept_matches.join(known_rows.select("playlist_id", "track_id", "artist_id", "album_id"), "playlist_id")
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


@dataclass
class LabelResult:
    """The DataFrames of one labelling run, lazily evaluated; see :func:`label_catalogue`."""

    playlists: DataFrame
    playlist_tracks: DataFrame
    tracks: DataFrame
    matched: DataFrame
    track_rows: DataFrame
    flagged: DataFrame
    counts: DataFrame
    labels: DataFrame
    contexts: Contexts
    settings: LabelSettings

    def release(self) -> None:
        """Drop the cached intermediate tables."""
        for df in (self.matched, self.track_rows, self.flagged):
            df.unpersist()

    def report(self) -> dict[str, Any]:
        """Counts for report.json: rows read and dropped, matches, filters, labels.

        Runs several small Spark jobs; the large tables are only scanned for their row
        counts (unless ``full_table_checks``).
        """
        names = self.contexts.names
        playlist_stats = self.playlists.agg(
            F.count(F.lit(1)).alias("rows"),
            F.count(F.when(F.col("title").isNull(), 1)).alias("null_title"),
        ).first()
        assert playlist_stats is not None  # a global aggregation always returns one row
        rows = self.track_rows.agg(
            F.sum("rows").alias("raw"),
            F.count(F.lit(1)).alias("distinct"),
            F.count(F.when(F.col("known"), 1)).alias("known"),
        ).first()
        assert rows is not None  # a global aggregation always returns one row
        raw, distinct, known = (int(rows["raw"] or 0), int(rows["distinct"]), int(rows["known"]))
        matched_per_context = _per_context(self.matched.groupBy("context").count().collect(), names)
        n_matched = self.matched.select("playlist_id").distinct().count()
        focus = self.flagged.agg(
            F.count(F.lit(1)).alias("with_tracks"),
            F.count(F.when(F.col("oversized"), 1)).alias("oversized"),
            F.count(F.when(F.col("artist_dominated"), 1)).alias("artist_dominated"),
            F.count(F.when(F.col("album_dominated"), 1)).alias("album_dominated"),
            F.count(F.when(~(F.col("oversized") | F.col("artist_dominated") | F.col("album_dominated")), 1)).alias(
                "kept"
            ),
        ).first()
        assert focus is not None  # a global aggregation always returns one row
        labelled = self.counts.where(F.col("n_playlists") >= self.settings.min_playlists)
        labelled_per_context = _per_context(labelled.groupBy("context").count().collect(), names)
        report: dict[str, Any] = {
            "rows_read": {
                "playlists": int(playlist_stats["rows"]),
                "playlist_tracks": self.playlist_tracks.count(),
                "tracks": self.tracks.count(),
            },
            "rows_dropped": {
                "playlists_null_title": int(playlist_stats["null_title"]),
                "matched_playlist_tracks_duplicate": raw - distinct,
                "matched_playlist_tracks_unknown_track": distinct - known,
            },
            "playlists_matched": n_matched,
            "playlists_matched_per_context": matched_per_context,
            "playlists_removed": {
                "no_known_tracks": n_matched - int(focus["with_tracks"]),
                "oversized": int(focus["oversized"]),
                "artist_dominated": int(focus["artist_dominated"]),
                "album_dominated": int(focus["album_dominated"]),
                "any_filter": int(focus["with_tracks"]) - int(focus["kept"]),
            },
            "playlists_kept": int(focus["kept"]),
            "track_context_pairs": self.counts.count(),
            "tracks_labelled": self.labels.count(),
            "tracks_labelled_per_context": labelled_per_context,
        }
        if self.settings.full_table_checks:
            report["full_table_checks"] = _full_table_checks(self.playlist_tracks, self.tracks)
        return report


def _per_context(rows: list, names: tuple[str, ...]) -> dict[str, int]:
    found = {row["context"]: int(row["count"]) for row in rows}
    return {name: found.get(name, 0) for name in names}


def _full_table_checks(playlist_tracks: DataFrame, tracks: DataFrame) -> dict[str, int]:
    """Unknown-track and duplicate counts over the whole tables (a full shuffle each)."""
    pairs = playlist_tracks.select("playlist_id", "track_id")
    known_ids = tracks.select("track_id").distinct()
    return {
        "playlist_tracks_unknown_track": pairs.join(known_ids, "track_id", "left_anti").count(),
        "playlist_tracks_duplicate": pairs.count() - pairs.distinct().count(),
        "tracks_duplicate_track_id": tracks.count() - known_ids.count(),
    }


def label_catalogue(
    playlists: DataFrame,
    playlist_tracks: DataFrame,
    tracks: DataFrame,
    contexts: Contexts,
    settings: LabelSettings,
    matcher: Optional[KeywordMatcher] = None,
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
        A :class:`LabelResult`; ``counts`` and ``labels`` are the job's outputs. The small
        intermediate tables (matches, matched tracks, focus) are cached; call ``release``.
    """
    matcher = matcher or context_matcher(contexts)
    matched = match_playlists(playlists, matcher).persist(StorageLevel.MEMORY_AND_DISK)
    track_rows = matched_track_rows(playlist_tracks, tracks, matched).persist(StorageLevel.MEMORY_AND_DISK)
    known_rows = track_rows.where(F.col("known"))
    flagged = focus_flags(playlist_focus(known_rows), settings).persist(StorageLevel.MEMORY_AND_DISK)
    counts = count_track_contexts(matched, focused_playlist_ids(flagged), known_rows)
    labels = track_labels(counts, contexts, settings.min_playlists)
    return LabelResult(
        playlists=playlists,
        playlist_tracks=playlist_tracks,
        tracks=tracks,
        matched=matched,
        track_rows=track_rows,
        flagged=flagged,
        counts=counts,
        labels=labels,
        contexts=contexts,
        settings=settings,
    )
