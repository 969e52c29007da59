"""The MPD importer: hand-written slices in the real MPD format (full and partial schema,
three malformed files), the malformed-file diagnosis, and the real slices in ../shared/data
imported and labelled."""

from __future__ import annotations

import hashlib
import json

import pytest

from ctx_spark import io, schema
from ctx_spark.config import load_config
from ctx_spark.errors import InputError
from ctx_spark.label.run import LabelInputs, run_label_stage
from ctx_spark.sources.mpd import ARTIST_NAME_PREFIX, diagnose_slice, list_slices, run_import_stage
from tests.conftest import FIXTURES, SHARED_DATA, TEST_SPARK_OVERRIDES, shared_data

TRACK = "spotify:track:fixtureTrack00000000000{}".format
ARTIST = "spotify:artist:fixtureArtist000000000{}".format
ALBUM = "spotify:album:fixtureAlbum0000000000{}".format


def name_id(name: str) -> str:
    return ARTIST_NAME_PREFIX + hashlib.sha256(name.encode("utf-8")).hexdigest()[:32]


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "empty file"),
        (b"  \n", "empty file"),
        (b'{"playlists": [', "invalid JSON: Expecting value: line 1 column 16"),
        (b"\xff\xfe{}", "not UTF-8 text"),
        (b"[1, 2]", "the top-level JSON value is an array, expected an object"),
        (b'{"info": {}}', "no 'playlists' key"),
        (b'{"playlists": {"pid": 1}}', "'playlists' is an object, expected an array"),
        (b'{"playlists": [7]}', "playlists[0] is an integer, expected an object"),
        (b'{"playlists": [{"pid": 1}, {"pid": "x"}]}', 'playlists[1].pid is a string ("x"), expected an integer'),
        (b'{"playlists": [{"pid": 1.5}]}', "playlists[0].pid is a number (1.5), expected an integer"),
        (b'{"playlists": [{"pid": true}]}', "playlists[0].pid is a boolean (true), expected an integer"),
        (b'{"playlists": [{"pid": 1, "name": ["a"]}]}', "playlists[0].name is an array, expected a string"),
        (b'{"playlists": [{"pid": 1, "tracks": "none"}]}', "playlists[0].tracks is a string, expected an array"),
        (
            b'{"playlists": [{"pid": 1, "tracks": [{"track_uri": {"id": 1}}]}]}',
            "playlists[0].tracks[0].track_uri is an object, expected a string",
        ),
    ],
)
def test_diagnose_slice_names_the_first_problem(content: bytes, reason: str) -> None:
    assert diagnose_slice(content).startswith(reason)


def test_no_matching_slice_is_an_input_error(spark, tmp_path) -> None:
    with pytest.raises(InputError, match="no file matches"):
        list_slices(spark, str(tmp_path))
    with pytest.raises(InputError, match="no file matches"):
        list_slices(spark, str(tmp_path / "mpd.slice.*.json"))


def test_import_fixture_slices(spark, tmp_path) -> None:
    out = tmp_path / "mpd"
    report = run_import_stage(spark, str(FIXTURES / "mpd"), str(out))

    skipped = {item["file"].rsplit("/", 1)[1]: item["reason"] for item in report["skipped_files"]}
    assert skipped == {
        "mpd.slice.2000-2999.json": "invalid JSON: Invalid control character at: line 14 column 69 (char 396)",
        "mpd.slice.3000-3999.json": "no 'playlists' array (key missing or null)",
        "mpd.slice.4000-4999.json": 'playlists[1].pid is a string ("four thousand and one"), expected an integer',
    }
    assert report["files"] == {"found": 5, "imported": 2, "skipped": 3}
    saved = json.loads((out / "report.json").read_text())
    assert saved["skipped_files"] == report["skipped_files"]

    playlists = io.read_table(spark, str(out / "playlists"), schema.PLAYLISTS)
    playlist_tracks = io.read_table(spark, str(out / "playlist_tracks"), schema.PLAYLIST_TRACKS)
    tracks = io.read_table(spark, str(out / "tracks"), schema.TRACKS)
    assert dict(playlists.dtypes) == {"playlist_id": "bigint", "title": "string"}
    assert dict(tracks.dtypes) == {"track_id": "string", "artist_id": "string", "album_id": "string"}
    assert sorted(playlists.collect(), key=lambda r: r[0]) == [
        (0, "Road Trip car songs"),
        (1, "Água com açúcar"),
        (2, "#WORKOUT"),
        (3, None),
        (1000, "chill vibes ✨"),
        (1001, "Work-Out mix"),
    ]
    rows = spark.read.parquet(str(out / "playlist_tracks")).collect()
    assert [tuple(r) for r in rows] == [  # written in (playlist, position) order
        (0, TRACK(1), 0),
        (0, TRACK(2), 1),
        (0, TRACK(1), 2),  # a repeated track stays repeated
        (1, TRACK(3), 0),
        (3, TRACK(2), 0),
        (1000, TRACK(2), 0),
        (1000, TRACK(4), 1),
        (1000, TRACK(5), 2),
        (1001, TRACK(4), 0),  # the entry without a track_uri (position 1) is dropped
    ]
    assert playlist_tracks.count() == len(rows)
    assert sorted(tuple(r) for r in tracks.collect()) == [
        (TRACK(1), ARTIST(1), ALBUM(1)),
        (TRACK(2), ARTIST(2), ALBUM(2)),  # the full schema's artist_uri wins over the partial file's name
        (TRACK(3), ARTIST(2), None),  # no album_uri
        (TRACK(4), name_id("Lo-Fi Nobody"), None),
        (TRACK(5), name_id("lo-fi nobody"), None),  # another name, another artist
    ]
    names = {
        r["track_id"]: (r["track_name"], r["artist_name"], r["album_name"])
        for r in spark.read.parquet(str(out / "tracks")).collect()
    }
    assert names[TRACK(1)] == ("Made Up Highway", "The Invented Band", "Imaginary Roads")
    assert names[TRACK(2)][:2] == ("Fictional Drive", "Zoë Placeholder")
    assert report["rows"] == {"playlists": 6, "playlist_tracks": 9, "tracks": 5}
    assert report["entries_dropped"] == {"playlists_without_pid": 0, "tracks_without_uri": 1}
    assert report["playlists_null_title"] == 1
    assert report["tracks_artist_id_from_name"] == 2
    assert report["tracks_without_album"] == 3
    assert report["duplicate_pids_kept_first_file"] == 0


@pytest.mark.shared_data
@pytest.mark.slow
def test_real_slices_import_and_label(spark, tmp_path) -> None:
    """Real slices in both schemas, imported together and labelled.

    The full-schema slice (29 playlists) and the 111 partial-schema SoundScout slices whose
    name starts with "mpd.slice.1" (a quarter of them, to keep the test short). SoundScout
    renumbered its pids, so 9 collide with the full slice's pids 0-28: the importer keeps
    the copies of the first file in path order.
    """
    shared_data("mpd_soundscout")
    shared_data("mpd_niclasfernandez")
    pattern = f"{SHARED_DATA}/{{mpd_niclasfernandez/mpd.slice.0-999.json,mpd_soundscout/mpd.slice.1*.json}}"
    out = tmp_path / "mpd"
    report = run_import_stage(spark, pattern, str(out))
    assert report["files"] == {"found": 112, "imported": 112, "skipped": 0}
    assert report["duplicate_pids_kept_first_file"] == 9
    assert report["rows"]["playlists"] == 889
    assert report["tracks_artist_id_from_name"] > 40_000  # the partial slices have no artist_uri
    assert report["tracks_without_album"] < report["rows"]["tracks"]  # the full slice has albums

    cfg = load_config(overrides=TEST_SPARK_OVERRIDES)
    paths = LabelInputs(str(out / "playlists"), str(out / "playlist_tracks"), str(out / "tracks"))
    labels = run_label_stage(spark, cfg, paths, str(tmp_path / "labels"))
    assert labels["rows_read"] == report["rows"]
    assert labels["playlists_matched_per_context"]["summer"] > 10
    assert labels["rows_dropped"]["matched_playlist_tracks_duplicate"] > 0  # MPD playlists repeat tracks
    assert labels["tracks_labelled"] > 0
    labelled = spark.read.parquet(str(tmp_path / "labels" / "track_labels"))
    assert labelled.count() == labels["tracks_labelled"]
    assert labelled.where("track_id NOT LIKE 'spotify:track:%'").count() == 0
    assert labelled.where("track_name IS NULL OR artist_name IS NULL").count() == 0  # names carried along
