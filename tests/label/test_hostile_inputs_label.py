"""Hostile inputs of the labelling job: empty tables and tables whose files disagree are
refused in one line (exit code 2) before any job runs, and a previous output stays."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ctx_spark.cli import main
from tests.conftest import write_catalogue


def _catalogue(tmp_path: Path, **empty: bool) -> dict[str, str]:
    playlists = [(1, "Gym hits"), (2, "GYM"), (3, "gym time")]
    rows = [(p, t) for p in (1, 2, 3) for t in (1, 2, 3)]
    tracks = [(t, 100 + t, 200 + t) for t in (1, 2, 3)]
    return write_catalogue(
        tmp_path / "in",
        [] if empty.get("playlists") else playlists,
        [] if empty.get("playlist_tracks") else rows,
        [] if empty.get("tracks") else tracks,
    )


def _label(paths: dict[str, str], out: Path) -> int:
    return main(
        [
            "label",
            "--playlists",
            paths["playlists"],
            "--playlist-tracks",
            paths["playlist_tracks"],
            "--tracks",
            paths["tracks"],
            "--out",
            str(out),
        ]
    )


@pytest.mark.parametrize("table", ["playlists", "playlist_tracks", "tracks"])
def test_an_empty_input_table_is_refused_and_the_previous_output_kept(spark, tmp_path, capsys, table):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text('{"stage": "label", "previous": true}\n')
    assert _label(_catalogue(tmp_path, **{table: True}), out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: table '{table}': ") and "has no rows" in err[0]
    assert (out / "report.json").read_text() == '{"stage": "label", "previous": true}\n'


def test_a_playlists_table_whose_files_disagree_is_refused(spark, tmp_path, capsys):
    paths = _catalogue(tmp_path)
    directory = tmp_path / "playlists"
    directory.mkdir()
    pq.write_table(pq.read_table(paths["playlists"]), str(directory / "part-0.parquet"))
    other = pa.table({"playlist_id": pa.array([4], pa.int64()), "name": ["gym again"]})
    pq.write_table(other, str(directory / "part-1.parquet"))
    assert _label({**paths, "playlists": str(directory)}, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "table 'playlists'" in err[0] and "part-1.parquet has no column 'title'" in err[0]
    assert not (tmp_path / "out").exists()
