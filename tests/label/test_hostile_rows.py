"""Rows the labelling rules must count, not merge or lose (issue 11): duplicate and conflicting
playlist ids, null ids, void filters, tables whose ids do not agree."""

from __future__ import annotations

import pytest

from ctx_spark.errors import InputError
from ctx_spark.label.rules import label_catalogue
from ctx_spark.label.settings import LabelSettings
from tests.label.test_labels import Catalogue, filler

ONE = LabelSettings(100, 0.25, 1)


def test_duplicate_playlist_rows_with_one_title_count_once(spark, config) -> None:
    cat = Catalogue()
    cat.playlist(1, "car", filler(1000, 8))
    cat.playlists.append((1, "car"))  # the same row again
    counts, _, report = cat.run(spark, config.contexts, ONE)
    assert counts[(1000, "car")] == 1
    assert report["playlists_matched"] == 1
    assert report["rows_dropped"]["matched_playlists_duplicate_rows"] == 1
    assert report["rows_dropped"]["matched_playlists_conflicting_titles"] == 0


def test_playlist_id_with_two_titles_is_dropped_and_counted(spark, config) -> None:
    cat = Catalogue()
    cat.playlist(1, "car", filler(1000, 8))
    cat.playlists.append((1, "chill"))  # two playlists under one id: neither title describes the tracks
    cat.playlist(2, "gym", filler(2000, 8))
    cat.playlists.append((2, None))  # a null title is a different title too
    cat.playlist(3, "party", filler(3000, 8))
    counts, _, report = cat.run(spark, config.contexts, ONE)
    assert {c for (_, c) in counts} == {"party"}
    assert report["rows_dropped"]["matched_playlists_conflicting_titles"] == 2
    assert report["playlists_matched"] == 1
    assert report["playlists_matched_per_context"]["car"] == 0


def test_null_ids_are_counted_under_their_own_names(spark, config) -> None:
    cat = Catalogue()
    cat.playlist(1, "car", filler(1000, 8))
    cat.playlists.append((None, "car"))  # null playlist id: never matched
    cat.playlist_tracks += [(1, None), (1, None)]  # null track ids: not duplicates, not unknown tracks
    cat.tracks[None] = (None, 5, 5)
    counts, _, report = cat.run(spark, config.contexts, ONE)
    dropped = report["rows_dropped"]
    assert dropped["playlists_null_id"] == 1
    assert dropped["tracks_null_track_id"] == 1
    assert dropped["matched_playlist_tracks_null_track_id"] == 2
    assert dropped["matched_playlist_tracks_duplicate"] == 0
    assert dropped["matched_playlist_tracks_unknown_track"] == 0
    assert len(counts) == 8


def test_all_null_artists_warn_that_the_artist_filter_is_void(spark, config) -> None:
    cat = Catalogue()
    cat.playlist(1, "car", filler(1000, 8))
    for t in filler(1000, 8):
        cat.tracks[t] = (t, None, 20_000 + t)  # no artist anywhere
    result = label_catalogue(*cat.frames(spark), config.contexts, ONE)
    warnings = result.check()
    report = result.report()
    result.release()
    assert len(warnings) == 1 and "artist_id is null for every track" in warnings[0]
    assert report["matched_playlist_tracks_null_artist"] == 8


def test_tables_whose_ids_do_not_agree_are_refused(spark, config) -> None:
    cat = Catalogue()
    cat.playlist(1, "car", filler(1000, 8), known=False)  # no track of the playlist is in tracks
    cat.track(5)
    result = label_catalogue(*cat.frames(spark), config.contexts, ONE)
    with pytest.raises(InputError, match="none of the 8 tracks of keyword-matched playlists is in tracks"):
        result.check()
    result.release()
    orphan = Catalogue()
    orphan.playlists.append((1, "car"))
    orphan.playlist_tracks.append((2, 5))  # rows only for a playlist id that playlists lacks
    orphan.track(5)
    result = label_catalogue(*orphan.frames(spark), config.contexts, ONE)
    with pytest.raises(InputError, match="none of the 1 keyword-matched playlists has a row in playlist_tracks"):
        result.check()
    result.release()
