"""A tiny two-week catalogue for the refresh tests, with real audio, and readers of a
snapshot's outputs.

Week 1: tracks 1-8. Week 2 grows it: tracks 9-12 arrive, playlist 3 ("sad songs") is
gone, playlists 6 ("gym") and 7 ("happy summer") appear, and track 2's audio file is
rewritten (new modification time). With ``label.min_playlists=1`` every track of a matched
playlist carries its contexts, so the labels are easy to list by hand:

    track  week 1                        week 2
    1      party summer                  party summer
    2      party summer                  party summer
    3      chill night party summer      chill night party summer
    4      chill night                   chill happy night summer
    5      chill night sad               chill night
    6      sad                           (unlabelled)
    7      workout                       gym workout
    8      workout                       workout
    9-12   -                             9 party summer, 10 chill night, 11 workout, 12 gym
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa

from ctx_spark.testing.audio import VIBE_ACE
from tests.conftest import TEST_SPARK_OVERRIDES, write_parquet_table

#: Labelling and dataset settings for a dozen tracks: one playlist suffices for a label,
#: any artist share is allowed, balancing (which would drop tracks) is off, and a split
#: left empty (a dozen tracks cannot fill a 10 % validation split) is written anyway.
SETTINGS = TEST_SPARK_OVERRIDES + (
    "label.min_playlists=1",
    "label.max_share=1.0",
    "dataset.balance=false",
    "dataset.allow_empty_splits=true",
)

WEEK1_PLAYLISTS = {
    1: ("summer party", [1, 2, 3]),
    2: ("chill night", [3, 4, 5]),
    3: ("sad songs", [5, 6]),
    4: ("workout mix", [7, 8]),
    5: ("random stuff", [1, 8]),
}
WEEK2_PLAYLISTS = {
    1: ("summer party", [1, 2, 3, 9]),
    2: ("chill night", [3, 4, 5, 10]),
    4: ("workout mix", [7, 8, 11]),
    5: ("random stuff", [1, 8]),
    6: ("gym", [7, 12]),
    7: ("happy summer", [4]),
}
#: Tracks 1 and 2 share an artist; every track has its own album.
ARTIST = {t: (1 if t == 2 else t) for t in range(1, 13)}


def _write_tables(catalogue: Path, playlists: dict, track_ids: list[int]) -> None:
    ids = pa.int64()
    write_parquet_table(
        catalogue / "playlists" / "part-0.parquet",
        {"playlist_id": sorted(playlists), "title": [playlists[p][0] for p in sorted(playlists)]},
        pa.schema([("playlist_id", ids), ("title", pa.string())]),
    )
    pairs = [(p, t) for p in sorted(playlists) for t in playlists[p][1]]
    write_parquet_table(
        catalogue / "playlist_tracks" / "part-0.parquet",
        {"playlist_id": [p for p, _ in pairs], "track_id": [t for _, t in pairs]},
        pa.schema([("playlist_id", ids), ("track_id", ids)]),
    )
    write_parquet_table(
        catalogue / "tracks" / "part-0.parquet",
        {"track_id": track_ids, "artist_id": [ARTIST[t] for t in track_ids], "album_id": track_ids},
        pa.schema([("track_id", ids), ("artist_id", ids), ("album_id", ids)]),
    )


def write_week1(catalogue: Path) -> Path:
    """Tables + audio/<id>.ogg (copies of a 61 s CC clip) for tracks 1-8."""
    _write_tables(catalogue, WEEK1_PLAYLISTS, list(range(1, 9)))
    audio = catalogue / "audio"
    audio.mkdir(parents=True)
    for t in range(1, 9):
        shutil.copy(VIBE_ACE, audio / f"{t}.ogg")
    return catalogue


def write_week1_with_audio_column(catalogue: Path, week1: Path) -> Path:
    """Week 1 again, its audio given by an ``audio`` column of ``tracks`` (absolute paths
    to week 1's files) instead of an audio directory."""
    _write_tables(catalogue, WEEK1_PLAYLISTS, list(range(1, 9)))
    ids = list(range(1, 9))
    write_parquet_table(
        catalogue / "tracks" / "part-0.parquet",
        {
            "track_id": ids,
            "artist_id": [ARTIST[t] for t in ids],
            "album_id": ids,
            "audio": [str(week1 / "audio" / f"{t}.ogg") for t in ids],
        },
        pa.schema(
            [("track_id", pa.int64()), ("artist_id", pa.int64()), ("album_id", pa.int64()), ("audio", pa.string())]
        ),
    )
    return catalogue


def write_week2(catalogue: Path, week1: Path) -> Path:
    """Week 2 beside week 1: the unchanged audio files are hard links to week 1's (same
    size and modification time), track 2's file is a fresh copy (new mtime), 9-12 new."""
    _write_tables(catalogue, WEEK2_PLAYLISTS, list(range(1, 13)))
    audio = catalogue / "audio"
    audio.mkdir(parents=True)
    for t in range(1, 9):
        if t == 2:
            shutil.copy(VIBE_ACE, audio / "2.ogg")
            stat = os.stat(week1 / "audio" / "2.ogg")
            os.utime(audio / "2.ogg", (stat.st_atime, stat.st_mtime + 3600))
        else:
            os.link(week1 / "audio" / f"{t}.ogg", audio / f"{t}.ogg")
    for t in range(9, 13):
        shutil.copy(VIBE_ACE, audio / f"{t}.ogg")
    return catalogue


def stage_dir(snapshot: Path, name: str) -> Path:
    """A snapshot's stage directory, or the one it references when the refresh reused it."""
    from ctx_spark.refresh.references import resolve_path

    return Path(resolve_path(str(snapshot / name)))


def read_outputs(snapshot: Path) -> dict:
    """What a snapshot published, in comparable form: label rows, dataset rows, and the
    mel bytes by (split, track id), read the way the trainer reads them (through the
    references into the mel store, or from self-contained shards)."""
    from ctx_spark.shards.reader import open_split

    labels = pd.read_parquet(stage_dir(snapshot, "labels") / "track_labels")
    dataset = pd.read_parquet(stage_dir(snapshot, "dataset") / "dataset")
    mels = {}
    for split in ("train", "validation", "test", "all"):
        if (stage_dir(snapshot, "mels") / split).exists():
            reader = open_split(str(snapshot / "mels"), split)
            for group in reader.row_groups:
                table = reader.read_row_group(group, ["track_id", "mel"])
                for track_id, mel in zip(table.column("track_id").to_pylist(), table.column("mel").to_pylist()):
                    mels[(split, track_id)] = mel
    return {
        "labels": labels.sort_values("track_id").reset_index(drop=True),
        "dataset": dataset.sort_values("track_id").reset_index(drop=True),
        "mels": mels,
    }
