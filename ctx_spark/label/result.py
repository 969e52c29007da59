"""The tables of one labelling run, its checks and its report.json counts.

The report is computed from the persisted intermediate tables (matched titles and ids, matched
tracks, focus, counts, labels) and the input tables' row counts: it never re-runs the plan's
wide operations (docs/labelling.md, "Outputs").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from pyspark.sql import DataFrame, Row
from pyspark.sql import functions as F

from ctx_spark.config import Contexts
from ctx_spark.errors import InputError
from ctx_spark.label.settings import LabelSettings
from ctx_spark.logs import get_logger

log = get_logger("label")


@dataclass
class LabelResult:
    """The DataFrames of one labelling run, lazily evaluated; see :func:`ctx_spark.label.rules.label_catalogue`."""

    playlists: DataFrame
    playlist_tracks: DataFrame
    tracks: DataFrame
    titles: DataFrame
    ids: DataFrame
    matched: DataFrame
    track_rows: DataFrame
    flagged: DataFrame
    counts: DataFrame
    labels: DataFrame
    contexts: Contexts
    settings: LabelSettings
    _rows: Optional[Row] = field(default=None, repr=False)
    _sizes: dict[str, int] = field(default_factory=dict, repr=False)

    def release(self) -> None:
        """Drop the cached intermediate tables."""
        for df in (self.titles, self.ids, self.track_rows, self.flagged, self.counts, self.labels):
            df.unpersist()

    def matched_rows(self) -> Row:
        """Counts over the matched playlists' (playlist, track) pairs, computed once."""
        if self._rows is None:
            tid, known = F.col("track_id"), F.col("known")
            self._rows = self.track_rows.agg(
                F.sum("rows").alias("raw"),
                F.sum(F.when(tid.isNull(), F.col("rows"))).alias("null_track"),
                F.count(tid).alias("distinct"),
                F.count(F.when(known, 1)).alias("known"),
                F.count(F.when(known & F.col("artist_id").isNull(), 1)).alias("null_artist"),
                F.count(F.when(known & F.col("album_id").isNull(), 1)).alias("null_album"),
            ).first()
            assert self._rows is not None  # a global aggregation always returns one row
        return self._rows

    def materialize(self) -> None:
        """Compute and cache the counts and labels (their row counts go to the report), so the
        writers see their real sizes (:mod:`ctx_spark.output_files`)."""
        self._sizes = {"counts": self.counts.count(), "labels": self.labels.count()}

    def check(self) -> list[str]:
        """Refuse a meaningless result; return warnings (void filters), each also logged.

        Raises:
            InputError: keyword-matched playlists exist but none has a row in
                ``playlist_tracks``, or none of their tracks is in ``tracks`` (the ids of
                the tables do not agree, so every label would be lost).
        """
        rows = self.matched_rows()
        n_matched = self.ids.where(F.col("n_titles") == 1).count()
        if n_matched and not int(rows["raw"] or 0):
            raise InputError(
                f"label: none of the {n_matched} keyword-matched playlists has a row in playlist_tracks; "
                "do the playlist ids of playlists and playlist_tracks agree?"
            )
        if int(rows["distinct"]) and not int(rows["known"]):
            raise InputError(
                f"label: none of the {int(rows['distinct'])} tracks of keyword-matched playlists is in tracks; "
                "do the track ids of playlist_tracks and tracks agree?"
            )
        warnings = []
        for column, key in (("artist_id", "null_artist"), ("album_id", "null_album")):
            if int(rows["known"]) and int(rows[key]) == int(rows["known"]):
                warnings.append(
                    f"tracks.{column} is null for every track of the keyword-matched playlists: the "
                    f"{column.split('_')[0]} filter (label.max_share) removes nothing"
                )
        for warning in warnings:
            log.warning(warning)
        return warnings

    def report(self) -> dict[str, Any]:
        """Counts for report.json: rows read and dropped, matches, filters, labels.

        Runs several small Spark jobs over the persisted tables; the input tables are only
        scanned for their row counts and null ids (unless ``full_table_checks``).
        """
        names = self.contexts.names
        playlist_stats = self.playlists.agg(
            F.count(F.lit(1)).alias("rows"),
            F.count(F.when(F.col("title").isNull(), 1)).alias("null_title"),
            F.count(F.when(F.col("playlist_id").isNull(), 1)).alias("null_id"),
        ).first()
        track_stats = self.tracks.agg(
            F.count(F.lit(1)).alias("rows"), F.count(F.when(F.col("track_id").isNull(), 1)).alias("null_id")
        ).first()
        ids = self.ids.agg(
            F.count(F.when(F.col("n_titles") == 1, 1)).alias("matched"),
            F.count(F.when(F.col("n_titles") > 1, 1)).alias("conflicting"),
            F.sum(F.when(F.col("n_titles") == 1, F.col("n_rows") - 1)).alias("duplicate_rows"),
        ).first()
        focus = self.flagged.agg(
            F.count(F.lit(1)).alias("with_tracks"),
            F.count(F.when(F.col("oversized"), 1)).alias("oversized"),
            F.count(F.when(F.col("artist_dominated"), 1)).alias("artist_dominated"),
            F.count(F.when(F.col("album_dominated"), 1)).alias("album_dominated"),
            F.count(F.when(~(F.col("oversized") | F.col("artist_dominated") | F.col("album_dominated")), 1)).alias(
                "kept"
            ),
        ).first()
        assert playlist_stats is not None and track_stats is not None and ids is not None and focus is not None
        rows = self.matched_rows()
        raw, null_track = int(rows["raw"] or 0), int(rows["null_track"] or 0)
        distinct, known = int(rows["distinct"]), int(rows["known"])
        n_matched = int(ids["matched"])
        labelled = self.counts.where(F.col("n_playlists") >= self.settings.min_playlists)
        report: dict[str, Any] = {
            "rows_read": {
                "playlists": int(playlist_stats["rows"]),
                "playlist_tracks": self.playlist_tracks.count(),
                "tracks": int(track_stats["rows"]),
            },
            "rows_dropped": {
                "playlists_null_title": int(playlist_stats["null_title"]),
                "playlists_null_id": int(playlist_stats["null_id"]),
                "tracks_null_track_id": int(track_stats["null_id"]),
                "matched_playlists_duplicate_rows": int(ids["duplicate_rows"] or 0),
                "matched_playlists_conflicting_titles": int(ids["conflicting"]),
                "matched_playlist_tracks_duplicate": raw - null_track - distinct,
                "matched_playlist_tracks_null_track_id": null_track,
                "matched_playlist_tracks_unknown_track": distinct - known,
            },
            "matched_playlist_tracks_null_artist": int(rows["null_artist"]),
            "matched_playlist_tracks_null_album": int(rows["null_album"]),
            "playlists_matched": n_matched,
            "playlists_matched_per_context": _per_context(self.matched.groupBy("context").count().collect(), names),
            "playlists_removed": {
                "no_known_tracks": n_matched - int(focus["with_tracks"]),
                "oversized": int(focus["oversized"]),
                "artist_dominated": int(focus["artist_dominated"]),
                "album_dominated": int(focus["album_dominated"]),
                "any_filter": int(focus["with_tracks"]) - int(focus["kept"]),
            },
            "playlists_kept": int(focus["kept"]),
            "track_context_pairs": self._sizes.get("counts", None) or self.counts.count(),
            "tracks_labelled": self._sizes.get("labels", None) or self.labels.count(),
            "tracks_labelled_per_context": _per_context(labelled.groupBy("context").count().collect(), names),
        }
        if self.settings.full_table_checks:
            report["full_table_checks"] = full_table_checks(self.playlists, self.playlist_tracks, self.tracks)
        return report


def _per_context(rows: list, names: tuple[str, ...]) -> dict[str, int]:
    found = {row["context"]: int(row["count"]) for row in rows}
    return {name: found.get(name, 0) for name in names}


def full_table_checks(playlists: DataFrame, playlist_tracks: DataFrame, tracks: DataFrame) -> dict[str, int]:
    """Counts over the whole tables (a full shuffle each): rows whose track or playlist is
    unknown, null ids, duplicate rows and ids. None of these rows can change a label."""
    pairs = playlist_tracks.select("playlist_id", "track_id")
    known_ids = tracks.select("track_id").distinct()
    playlist_ids = playlists.select("playlist_id").distinct()
    nulls = pairs.agg(
        F.count(F.when(F.col("playlist_id").isNull(), 1)).alias("playlist"),
        F.count(F.when(F.col("track_id").isNull(), 1)).alias("track"),
    ).first()
    assert nulls is not None  # a global aggregation always returns one row
    return {
        "playlist_tracks_unknown_track": pairs.where(F.col("track_id").isNotNull())
        .join(known_ids, "track_id", "left_anti")
        .count(),
        "playlist_tracks_unknown_playlist": pairs.where(F.col("playlist_id").isNotNull())
        .join(playlist_ids, "playlist_id", "left_anti")
        .count(),
        "playlist_tracks_null_playlist_id": int(nulls["playlist"]),
        "playlist_tracks_null_track_id": int(nulls["track"]),
        "playlist_tracks_duplicate": pairs.count() - pairs.distinct().count(),
        "playlists_duplicate_id": playlists.count() - playlist_ids.count(),
        "tracks_duplicate_track_id": tracks.count() - known_ids.count(),
    }
