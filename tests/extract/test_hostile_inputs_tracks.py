"""A hostile --tracks table (real local[2] session, real audio): relative paths resolve
against the directory holding the table, not against each executor's working directory;
duplicate rows and rows without a track id are reported in errors/, not dropped silently."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ctx_spark.audio import errors
from ctx_spark.errors import InputError
from ctx_spark.extract import listing
from ctx_spark.extract.run import ExtractInputs, run_extract_stage
from ctx_spark.shards import contract
from ctx_spark.testing.audio import VIBE_ACE
from tests.conftest import write_parquet_table
from tests.extract.helpers import make_config

ROWS = [
    (1, "audio/1.ogg"),  # relative: resolved against the table's directory
    (2, "./audio/2.ogg"),
    (3, "audio/b.ogg"),  # track 3 twice: the smallest path (audio/a.ogg) is used
    (3, "audio/a.ogg"),
    (4, None),  # track 4 twice: the row with audio is used
    (4, "audio/4.ogg"),
    (5, "audio/5.ogg"),  # the same row twice
    (5, "audio/5.ogg"),
    (None, "audio/1.ogg"),  # no track id
    (6, ""),  # an empty path: no audio
    (7, None),  # set to an absolute file: URI below
]


@pytest.fixture(scope="module")
def table_run(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("catalogue")
    for name in ("1", "2", "a", "b", "4", "5", "7"):
        (root / "audio").mkdir(exist_ok=True)
        shutil.copy(VIBE_ACE, root / "audio" / f"{name}.ogg")
    rows = [(t, (root / "audio" / "7.ogg").as_uri() if t == 7 else a) for t, a in ROWS]
    tracks = write_parquet_table(
        root / "tracks.parquet",
        {"track_id": [r[0] for r in rows], "audio": [r[1] for r in rows]},
        pa.schema([("track_id", pa.int64()), ("audio", pa.string())]),
    )
    # The workers' working directory holds no audio/: a path resolved there would be missing.
    assert not Path(os.getcwd(), "audio", "1.ogg").exists()
    out = tmp_path_factory.mktemp("table-out") / "mels"
    report = run_extract_stage(spark, make_config(), ExtractInputs(tracks=tracks), str(out))
    shards = {r["track_id"]: r for r in pq.read_table(str(out / contract.ALL_SPLIT)).to_pylist()}
    unused = pq.read_table(str(out / contract.ERRORS_DIR)).to_pylist()
    return {"root": root, "report": report, "shards": shards, "errors": unused}


def test_relative_paths_resolve_against_the_tables_directory(table_run) -> None:
    root, shards = table_run["root"], table_run["shards"]
    assert sorted(shards) == [1, 2, 3, 4, 5, 7]
    assert shards[1]["audio"] == f"{root}/audio/1.ogg"
    assert shards[2]["audio"] == f"{root}/audio/2.ogg"
    assert shards[7]["audio"] == (root / "audio" / "7.ogg").as_uri()  # absolute: unchanged
    assert table_run["report"]["catalogue_relative_paths"] == 8


def test_duplicate_rows_follow_the_rule_and_are_reported(table_run) -> None:
    root = table_run["root"]
    assert table_run["shards"][3]["audio"] == f"{root}/audio/a.ogg"
    assert table_run["shards"][4]["audio"] == f"{root}/audio/4.ogg"
    duplicates = sorted(
        (r["track_id"], r["audio"], r["message"]) for r in table_run["errors"] if r["reason"] == listing.DUPLICATE
    )
    rule = f"({listing.DUPLICATE_RULE})"
    assert duplicates == [
        (3, f"{root}/audio/b.ogg", f"another row of this track is used: {root}/audio/a.ogg {rule}"),
        (4, None, f"another row of this track is used: {root}/audio/4.ogg {rule}"),
        (5, f"{root}/audio/5.ogg", f"the same row is listed again {rule}"),
    ]
    nulls = [r for r in table_run["errors"] if r["reason"] == listing.NULL_TRACK_ID]
    assert [(r["track_id"], r["audio"], r["stage"]) for r in nulls] == [(None, f"{root}/audio/1.ogg", "list")]


def test_the_report_counts_every_row(table_run) -> None:
    report = table_run["report"]
    assert report["catalogue_entries"] == len(ROWS) and report["catalogue_tracks"] == 7
    assert report["catalogue_rejected"] == {listing.DUPLICATE: 3, listing.NULL_TRACK_ID: 1}
    assert report["written_total"] == 6 and report["failed"] == {errors.NO_AUDIO: 1}
    no_audio = [r for r in table_run["errors"] if r["reason"] == errors.NO_AUDIO]
    assert [r["track_id"] for r in no_audio] == [6] and no_audio[0]["audio"] is None


def test_an_empty_tracks_table_is_refused(spark, tmp_path) -> None:
    tracks = write_parquet_table(
        tmp_path / "tracks.parquet",
        {"track_id": [], "audio": []},
        pa.schema([("track_id", pa.int64()), ("audio", pa.string())]),
    )
    with pytest.raises(InputError, match=r"--tracks .*tracks\.parquet gives no track with audio \(no rows at all\)"):
        run_extract_stage(spark, make_config(), ExtractInputs(tracks=tracks), str(tmp_path / "mels"))
    assert not (tmp_path / "mels").exists()
