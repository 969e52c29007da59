"""Shared fixtures: one local-mode SparkSession for the whole run, and table writers.

Tests use real components: a real SparkSession (local[2]), real Parquet files, real audio.
Tests that need ../shared/data (real Deezer/MPD data that cannot be redistributed) are
marked ``shared_data`` and skip when it is absent.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Optional

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ["PYSPARK_PYTHON"] = sys.executable
os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SHARED_DATA = Path(os.environ.get("CTX_SPARK_SHARED_DATA", ROOT.parent / "shared" / "data"))

#: Session settings for tests: few shuffle partitions, no UI, small Arrow batches.
TEST_SPARK_OVERRIDES = (
    "spark.master=local[2]",
    "spark.conf.spark.sql.shuffle.partitions=4",
    "spark.conf.spark.default.parallelism=4",
    "spark.conf.spark.ui.enabled=false",
    "spark.conf.spark.driver.memory=2g",
)


#: Whole modules in the slow lane (each one runs whole stages, a refresh or a training on
#: real data); single slow tests elsewhere carry ``@pytest.mark.slow``. ``scripts/test.sh -m
#: "not slow"`` is the development fast lane; CI runs everything.
SLOW_MODULES = frozenset(
    {
        "tests/refresh/test_refresh.py",
        "tests/dataset/test_dataset_pipeline.py",
        "tests/dataset/test_dataset_ibrahim.py",
        "tests/training/test_train_pipeline.py",
        "tests/training/test_train_resume.py",
        "tests/extract/test_audio_extract.py",
    }
)


def pytest_collection_modifyitems(config, items) -> None:
    """Mark the tests of :data:`SLOW_MODULES` slow."""
    for item in items:
        if Path(str(item.fspath)).resolve().relative_to(ROOT).as_posix() in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


def shared_data(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test when it is not there."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path


@pytest.fixture(scope="session")
def config():
    """The default configuration (conf/*.yaml)."""
    from ctx_spark.config import load_config

    return load_config()


@pytest.fixture(scope="session")
def spark():
    """One local[2] SparkSession for the whole test run."""
    from ctx_spark.config import load_config
    from ctx_spark.spark import SparkSettings, get_spark

    cfg = load_config(overrides=TEST_SPARK_OVERRIDES)
    session = get_spark("ctx-spark tests", cfg.section("spark", SparkSettings))
    yield session
    session.stop()


def write_parquet_table(path: Path, columns: dict[str, Iterable], schema: Optional[pa.Schema] = None) -> str:
    """Write a small Parquet table from column lists with pyarrow; returns the path."""
    table = pa.table({k: list(v) for k, v in columns.items()}, schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, str(path))
    return str(path)


def write_catalogue(
    directory: Path,
    playlists: list[tuple],
    playlist_tracks: list[tuple],
    tracks: list[tuple],
    id_type: pa.DataType = pa.int64(),
) -> dict[str, str]:
    """Write the three input tables from row tuples; returns their paths by table name.

    Args:
        playlists: (playlist_id, title) rows.
        playlist_tracks: (playlist_id, track_id) rows.
        tracks: (track_id, artist_id, album_id) rows; album_id may be None.
    """

    def col(rows, i):
        return [r[i] for r in rows]

    paths = {
        "playlists": write_parquet_table(
            directory / "playlists.parquet",
            {"playlist_id": col(playlists, 0), "title": col(playlists, 1)},
            pa.schema([("playlist_id", id_type), ("title", pa.string())]),
        ),
        "playlist_tracks": write_parquet_table(
            directory / "playlist_tracks.parquet",
            {"playlist_id": col(playlist_tracks, 0), "track_id": col(playlist_tracks, 1)},
            pa.schema([("playlist_id", id_type), ("track_id", id_type)]),
        ),
        "tracks": write_parquet_table(
            directory / "tracks.parquet",
            {"track_id": col(tracks, 0), "artist_id": col(tracks, 1), "album_id": col(tracks, 2)},
            pa.schema([("track_id", id_type), ("artist_id", id_type), ("album_id", id_type)]),
        ),
    }
    return paths
