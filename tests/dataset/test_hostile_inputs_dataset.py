"""Hostile inputs of the dataset job: an empty table, and a dataset whose validation or
test split would be empty (written with a warning before; training then failed), refused
in one line naming the cause and the settings, unless dataset.allow_empty_splits is set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctx_spark.dataset.run import run_dataset_stage
from ctx_spark.errors import InputError

SCHEMA = "track_id long, artist_id long, album_id long, contexts array<string>, n_playlists array<int>"


def _labels(spark, tmp_path: Path, rows) -> str:
    path = str(tmp_path / "track_labels")
    spark.createDataFrame(rows, SCHEMA).coalesce(1).write.parquet(path)
    return path


def _one_artist(n: int):
    """n tracks of one artist: one group, which no split can share."""
    return [(t, 7, 70 + t, ["chill"], [0, 3] + [0] * 13) for t in range(1, n + 1)]


def test_an_empty_track_labels_table_is_refused(spark, config, tmp_path, capsys):
    from ctx_spark.cli import main

    path = _labels(spark, tmp_path, [])
    assert main(["dataset", "--labels", path, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: table 'track_labels': ") and "has no rows" in err[0]


def test_empty_splits_are_refused_with_the_cause_and_the_settings(spark, config, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text("{}\n")
    with pytest.raises(InputError) as exc:
        run_dataset_stage(spark, config, _labels(spark, tmp_path, _one_artist(6)), str(out))
    text = str(exc.value)
    assert "\n" not in text and text.startswith("dataset: the validation and test splits are empty")
    assert "6 tracks in 1 artist/album groups" in text
    assert "dataset.cap" in text and "dataset.split" in text and "dataset.allow_empty_splits: true" in text
    assert (out / "report.json").read_text() == "{}\n" and not (out / "dataset").exists()


def test_empty_splits_are_written_when_allowed(spark, tmp_path):
    from ctx_spark.config import load_config

    cfg = load_config(overrides=["dataset.allow_empty_splits=true"])
    out = tmp_path / "out"
    report = run_dataset_stage(spark, cfg, _labels(spark, tmp_path, _one_artist(6)), str(out))
    assert {s: v["tracks"] for s, v in report["split"]["sizes"].items()} == {"train": 6, "validation": 0, "test": 0}
    assert json.loads((out / "report.json").read_text())["dataset"]["tracks"] == 6
