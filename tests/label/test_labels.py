"""The labelling rules, one test per clause (docs/labelling.md, "Labelling rules")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ctx_spark import schema
from ctx_spark.label.rules import label_catalogue
from ctx_spark.label.settings import LabelSettings

DEFAULT = LabelSettings(max_tracks=100, max_share=0.25, min_playlists=3)


@dataclass
class Catalogue:
    """A small catalogue built playlist by playlist; every track has its own artist and
    album unless told otherwise, so shares stay low by default."""

    playlists: list = field(default_factory=list)
    playlist_tracks: list = field(default_factory=list)
    tracks: dict = field(default_factory=dict)

    def track(self, track_id: int, artist: Optional[int] = None, album: Optional[int] = -1) -> int:
        artist = 10_000 + track_id if artist is None else artist
        album = 20_000 + track_id if album == -1 else album
        self.tracks[track_id] = (track_id, artist, album)
        return track_id

    def playlist(self, playlist_id: int, title: Optional[str], track_ids, known: bool = True) -> None:
        self.playlists.append((playlist_id, title))
        for track_id in track_ids:
            if known and track_id not in self.tracks:
                self.track(track_id)
            self.playlist_tracks.append((playlist_id, track_id))

    def frames(self, spark):
        playlists = spark.createDataFrame(self.playlists, "playlist_id long, title string")
        pt = spark.createDataFrame(self.playlist_tracks, "playlist_id long, track_id long")
        tracks = spark.createDataFrame(list(self.tracks.values()), "track_id long, artist_id long, album_id long")
        return (
            schema.validate(playlists, schema.PLAYLISTS),
            schema.validate(pt, schema.PLAYLIST_TRACKS),
            schema.validate(tracks, schema.TRACKS),
        )

    def run(self, spark, contexts, settings: LabelSettings = DEFAULT):
        result = label_catalogue(*self.frames(spark), contexts, settings)
        counts = {(r["track_id"], r["context"]): r["n_playlists"] for r in result.counts.collect()}
        labels = {r["track_id"]: r for r in result.labels.collect()}
        report = result.report()
        result.release()
        return counts, labels, report


def filler(start: int, n: int) -> list[int]:
    """``n`` fresh track ids from ``start``, for padding playlists to a size."""
    return list(range(start, start + n))


def test_counts_and_threshold(spark, config) -> None:
    cat = Catalogue()
    # Track 1 is in three "car" playlists, track 2 in two, track 3 in one.
    cat.playlist(1, "Car trip", [1, 2, 3] + filler(100, 5))
    cat.playlist(2, "car songs", [1, 2] + filler(200, 6))
    cat.playlist(3, "In the CAR", [1] + filler(300, 7))
    counts, labels, report = cat.run(spark, config.contexts)
    assert (counts[(1, "car")], counts[(2, "car")], counts[(3, "car")]) == (3, 2, 1)
    assert set(labels) == {1}  # n >= 3 labels, n = 2 does not
    assert labels[1]["contexts"] == ["car"]
    assert report["tracks_labelled_per_context"]["car"] == 1
    assert report["playlists_matched_per_context"]["car"] == 3


def test_min_playlists_is_configurable(spark, config) -> None:
    cat = Catalogue()
    cat.playlist(1, "car", [1, 2] + filler(100, 6))
    cat.playlist(2, "car", [1, 2] + filler(200, 6))
    _, labels, _ = cat.run(spark, config.contexts, LabelSettings(100, 0.25, min_playlists=2))
    assert set(labels) == {1, 2}


def test_labels_carry_sorted_contexts_and_all_counts_in_config_order(spark, config) -> None:
    cat = Catalogue()
    for pid, title in enumerate(["Summer night car", "car & chill", "night car", "summer car night"]):
        cat.playlist(pid, title, [7] + filler(100 * (pid + 1), 7))
    counts, labels, _ = cat.run(spark, config.contexts)
    assert labels[7]["contexts"] == ["car", "night"]  # summer (2) and chill (1) below 3
    vector = dict(zip(config.contexts.names, labels[7]["n_playlists"]))
    assert vector["car"] == 4 and vector["night"] == 3 and vector["summer"] == 2 and vector["chill"] == 1
    assert sum(vector.values()) == 10
    assert (7, "chill") in counts and counts[(7, "chill")] == 1


def test_size_filter_counts_distinct_known_tracks(spark, config) -> None:
    cat = Catalogue()
    cat.playlist(1, "gym", filler(1000, 100))  # exactly 100: kept
    cat.playlist(2, "gym", filler(2000, 101))  # 101: removed
    cat.playlist(3, "gym", filler(3000, 100) + [3000, 3001])  # duplicates count once: kept
    cat.playlist(4, "gym", filler(4000, 100))
    cat.playlist_tracks.append((4, 999_999))  # unknown track: not counted
    counts, _, report = cat.run(spark, config.contexts, LabelSettings(100, 0.25, 1))
    assert (1000, "gym") in counts and (3000, "gym") in counts and (4000, "gym") in counts
    assert (2000, "gym") not in counts
    assert report["playlists_removed"]["oversized"] == 1
    assert report["playlists_kept"] == 3
    assert report["rows_dropped"]["matched_playlist_tracks_duplicate"] == 2
    assert report["rows_dropped"]["matched_playlist_tracks_unknown_track"] == 1


def test_max_tracks_is_configurable(spark, config) -> None:
    cat = Catalogue()
    cat.playlist(1, "gym", filler(1000, 11))
    cat.playlist(2, "gym", filler(2000, 10))
    counts, _, _ = cat.run(spark, config.contexts, LabelSettings(10, 0.25, 1))
    assert (1000, "gym") not in counts and (2000, "gym") in counts


def test_artist_share_above_max_removes_playlist_equal_keeps_it(spark, config) -> None:
    cat = Catalogue()
    for t in filler(1000, 8):
        cat.track(t, artist=1 if t < 1002 else None)  # 2 of 8 = 25%: kept
    cat.playlist(1, "sad", filler(1000, 8))
    for t in filler(2000, 8):
        cat.track(t, artist=2 if t < 2003 else None)  # 3 of 8 = 37.5%: removed
    cat.playlist(2, "sad", filler(2000, 8))
    counts, _, report = cat.run(spark, config.contexts, LabelSettings(100, 0.25, 1))
    assert (1000, "sad") in counts and (2000, "sad") not in counts
    assert report["playlists_removed"]["artist_dominated"] == 1
    assert report["playlists_removed"]["album_dominated"] == 0


def test_album_share_and_null_albums(spark, config) -> None:
    cat = Catalogue()
    for t in filler(1000, 8):
        cat.track(t, album=5 if t < 1003 else -1)  # 3 of 8 on one album: removed
    cat.playlist(1, "dance", filler(1000, 8))
    for t in filler(2000, 8):
        cat.track(t, album=None)  # null albums count toward none
    cat.playlist(2, "dance", filler(2000, 8))
    counts, _, report = cat.run(spark, config.contexts, LabelSettings(100, 0.25, 1))
    assert (1000, "dance") not in counts and (2000, "dance") in counts
    assert report["playlists_removed"]["album_dominated"] == 1


def test_single_artist_playlist_is_removed_by_max_share(spark, config) -> None:
    cat = Catalogue()
    for t in filler(1000, 20):
        cat.track(t, artist=42)
    cat.playlist(1, "party", filler(1000, 20))
    counts, _, report = cat.run(spark, config.contexts, LabelSettings(100, 0.25, 1))
    assert not counts
    assert report["playlists_removed"] == {
        "no_known_tracks": 0,
        "oversized": 0,
        "artist_dominated": 1,
        "album_dominated": 0,
        "any_filter": 1,
    }


def test_filters_use_max_share_from_config(spark, config) -> None:
    cat = Catalogue()
    for t in filler(1000, 8):
        cat.track(t, artist=1 if t < 1003 else None)  # 37.5%
    cat.playlist(1, "sad", filler(1000, 8))
    counts, _, _ = cat.run(spark, config.contexts, LabelSettings(100, 0.4, 1))
    assert (1000, "sad") in counts


def test_multi_context_title_counts_for_each_context(spark, config) -> None:
    cat = Catalogue()
    cat.playlist(1, "Workout / Running / Gym 🏋️", filler(1000, 8))
    counts, _, _ = cat.run(spark, config.contexts, LabelSettings(100, 0.25, 1))
    assert {c for (t, c) in counts if t == 1000} == {"gym", "running", "workout"}


def test_unmatched_null_and_empty_playlists(spark, config) -> None:
    cat = Catalogue()
    cat.playlist(1, None, filler(1000, 8))  # null title
    cat.playlist(2, "Água com açúcar", filler(2000, 8))  # no keyword
    cat.playlists.append((3, "car"))  # matched, no tracks
    cat.playlist(4, "car", [999_001, 999_002], known=False)  # matched, only unknown tracks
    counts, labels, report = cat.run(spark, config.contexts, LabelSettings(100, 0.25, 1))
    assert not counts and not labels
    assert report["rows_dropped"]["playlists_null_title"] == 1
    assert report["playlists_matched"] == 2
    assert report["playlists_removed"]["no_known_tracks"] == 2
    assert report["rows_dropped"]["matched_playlist_tracks_unknown_track"] == 2


def test_unmatched_playlists_tracks_never_enter_the_aggregation(spark, config) -> None:
    cat = Catalogue()
    cat.playlist(1, "car", filler(1000, 8))
    cat.playlist(2, "jazz", filler(2000, 50))
    cat.playlist_tracks.append((2, 777_777))  # unknown track, unmatched list
    result = label_catalogue(*cat.frames(spark), config.contexts, DEFAULT)
    touched = {r["playlist_id"] for r in result.track_rows.select("playlist_id").distinct().collect()}
    assert touched == {1}
    assert result.report()["rows_dropped"]["matched_playlist_tracks_unknown_track"] == 0
    result.release()


def test_full_table_checks_count_over_whole_tables(spark, config) -> None:
    cat = Catalogue()
    cat.playlist(1, "car", filler(1000, 8))
    cat.playlist(2, "jazz", filler(2000, 5) + [2000])
    cat.playlist_tracks.append((2, 777_777))  # unknown track
    settings = LabelSettings(100, 0.25, 1, full_table_checks=True)
    _, _, report = cat.run(spark, config.contexts, settings)
    assert report["full_table_checks"] == {
        "playlist_tracks_unknown_track": 1,
        "playlist_tracks_unknown_playlist": 0,
        "playlist_tracks_null_playlist_id": 0,
        "playlist_tracks_null_track_id": 0,
        "playlist_tracks_duplicate": 1,
        "playlists_duplicate_id": 0,
        "tracks_duplicate_track_id": 0,
    }


def test_full_table_checks_count_unknown_playlists_and_null_ids(spark, config) -> None:
    cat = Catalogue()
    cat.playlist(1, "car", filler(1000, 8))
    cat.playlist_tracks += [(9, 1000), (9, 1001), (None, 1002), (1, None)]  # playlist 9 is not in playlists
    cat.playlists.append((1, "car"))  # the same playlist listed twice
    settings = LabelSettings(100, 0.25, 1, full_table_checks=True)
    _, _, report = cat.run(spark, config.contexts, settings)
    checks = report["full_table_checks"]
    assert checks["playlist_tracks_unknown_playlist"] == 2
    assert checks["playlist_tracks_null_playlist_id"] == 1 and checks["playlist_tracks_null_track_id"] == 1
    assert checks["playlists_duplicate_id"] == 1


def test_string_ids(spark, config) -> None:
    rows = [("p1", "car"), ("p2", "car!"), ("p3", "CAR")]
    pt = [(p, f"t{i}") for p, _ in rows for i in range(6)]
    tracks = [(f"t{i}", f"a{i}", None) for i in range(6)]
    playlists = schema.validate(spark.createDataFrame(rows, "playlist_id string, title string"), schema.PLAYLISTS)
    ptdf = schema.validate(spark.createDataFrame(pt, "playlist_id string, track_id string"), schema.PLAYLIST_TRACKS)
    tr = schema.validate(
        spark.createDataFrame(tracks, "track_id string, artist_id string, album_id string"), schema.TRACKS
    )
    result = label_catalogue(playlists, ptdf, tr, config.contexts, DEFAULT)
    labelled = sorted(r["track_id"] for r in result.labels.collect())
    result.release()
    assert labelled == [f"t{i}" for i in range(6)]


def test_duplicate_track_ids_in_tracks_resolve_deterministically(spark, config) -> None:
    cat = Catalogue()
    cat.playlist(1, "car", filler(1000, 8))
    frames = cat.frames(spark)
    duplicate = spark.createDataFrame([(1000, 1, 5)], "track_id long, artist_id long, album_id long")
    tracks = frames[2].unionByName(duplicate)
    result = label_catalogue(frames[0], frames[1], tracks, config.contexts, LabelSettings(100, 0.25, 1))
    rows = result.counts.where("track_id = 1000").collect()
    result.release()
    assert len(rows) == 1 and rows[0]["artist_id"] == 1 and rows[0]["album_id"] == 5
