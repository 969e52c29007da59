"""The labelling job through its real command lines: spark-submit and ``python -m``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pyspark
import pytest

from tests.conftest import ROOT, write_catalogue

SPARK_SUBMIT = Path(pyspark.__file__).parent / "bin" / "spark-submit"


def _catalogue(tmp_path: Path) -> dict[str, str]:
    # Three playlists titled "gym" hold tracks 1 and 2: both get `gym` at min_playlists 3.
    playlists = [(1, "Gym hits"), (2, "GYM"), (3, "gym time"), (4, "nothing here")]
    rows = [(p, t) for p in (1, 2, 3) for t in (1, 2, 3, 4, 5)] + [(4, 1)]
    tracks = [(t, 100 + t, 200 + t) for t in range(1, 6)]
    return write_catalogue(tmp_path / "in", playlists, rows, tracks)


def _env() -> dict[str, str]:
    env = dict(
        os.environ, SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable
    )
    env.pop("PYSPARK_GATEWAY_PORT", None)
    return env


def _args(paths: dict[str, str], out: Path) -> list[str]:
    return [
        "--playlists",
        paths["playlists"],
        "--playlist-tracks",
        paths["playlist_tracks"],
        "--tracks",
        paths["tracks"],
        "--out",
        str(out),
    ]


@pytest.mark.slow
def test_spark_submit_master_is_honoured(tmp_path: Path) -> None:
    """spark-submit's --master wins over conf/spark.yaml's local[*]; --set still applies."""
    paths, out = _catalogue(tmp_path), tmp_path / "out"
    result = subprocess.run(
        [
            str(SPARK_SUBMIT),
            "--master",
            "local[1]",
            str(ROOT / "jobs" / "label_tracks.py"),
            *_args(paths, out),
            "--set",
            "label.min_playlists=3",
        ],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["spark"]["master"] == "local[1]"
    labels = pq.read_table(out / "track_labels").to_pylist()
    assert sorted(r["track_id"] for r in labels) == [1, 2, 3, 4, 5]
    assert all(r["contexts"] == ["gym"] for r in labels)
    assert "labelled 5 tracks" in result.stdout


def test_python_m_bad_column_exits_2_naming_table_and_column(tmp_path: Path) -> None:
    paths, out = _catalogue(tmp_path), tmp_path / "out"
    bad = tmp_path / "bad_tracks.parquet"
    pq.write_table(pq.read_table(paths["tracks"]).drop(["artist_id"]), bad)
    paths["tracks"] = str(bad)
    result = subprocess.run(
        [sys.executable, "-m", "jobs.label_tracks", *_args(paths, out)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("error:") and "tracks" in message and "artist_id" in message
    assert not out.exists()
