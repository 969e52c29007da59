"""Keyword ranking with the job's matcher, the rank_keywords CLI, and the Deezer TSV loader."""

from __future__ import annotations

import csv
import json

import pyarrow as pa
import pytest

from ctx_spark.cli import run_main
from ctx_spark.errors import InputError
from ctx_spark.label.keywords import keyword_categories, rank_keywords
from ctx_spark.sources.deezer import read_deezer_titles
from jobs.rank_keywords import main as rank_main
from tests.conftest import write_parquet_table

VOCABULARY = {
    "time": ["summer", "night"],
    "activity": ["party", "workout", "work"],
    "location": ["car", "café"],
    "mood": ["chill"],
}

TITLES = [
    (1, "Summer party 🎉"),
    (2, "#WORKOUT"),
    (3, "workouts"),
    (4, "chill chill CHILL"),
    (5, None),
    (6, "Café del mar"),
    (7, "Água com açúcar"),
    (8, "Work-Out"),
    (9, "summer night drive"),
    (9, "summer night drive"),
]


def test_a_keyword_listed_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="'car' is listed twice"):
        keyword_categories({"location": ["car"], "activity": ["car"]})


def test_rank_keywords_counts_playlists_with_the_job_matcher(spark, config) -> None:
    playlists = spark.createDataFrame(TITLES, "playlist_id long, title string")
    rows = [r.asDict() for r in rank_keywords(playlists, VOCABULARY, config.contexts).collect()]
    assert [(r["rank"], r["keyword"], r["category"], r["context"], r["n_playlists"]) for r in rows] == [
        (1, "summer", "time", "summer", 2),  # playlist 9 is listed twice: counted once
        (2, "café", "location", None, 1),  # "Café" matches "café" (accents dropped on both sides)
        (3, "chill", "mood", "chill", 1),  # one playlist, however many times the word appears
        (4, "night", "time", "night", 1),
        (5, "party", "activity", "party", 1),
        (6, "work", "activity", "work", 1),  # "Work-Out" only
        (7, "workout", "activity", "workout", 1),  # "#WORKOUT", not "workouts"
        (8, "car", "location", "car", 0),  # "açúcar" is not "car"
    ]
    titled = 8  # distinct playlists with a title
    assert rows[0]["share"] == pytest.approx(2 / titled)


def test_cli_writes_parquet_csv_and_report(spark, config, tmp_path, capsys) -> None:
    table = write_parquet_table(
        tmp_path / "mpd_like.parquet",
        {"playlist_id": [t[0] for t in TITLES], "playlist_name": [t[1] for t in TITLES]},
        pa.schema([("playlist_id", pa.int32()), ("playlist_name", pa.string())]),
    )
    out = tmp_path / "ranking"
    assert rank_main(["--playlists", table, "--title-column", "playlist_name", "--out", str(out), "--top", "3"]) == 0
    printed = capsys.readouterr().out
    assert "| 1 | summer | time | 2 |" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["playlists"] == len(TITLES) and report["playlists_null_title"] == 1
    assert report["keywords"] == len(keyword_categories(config.vocabulary))
    with open(out / "keyword_ranking.csv", newline="") as handle:
        csv_rows = list(csv.DictReader(handle))
    parquet = spark.read.parquet(str(out / "keyword_ranking")).orderBy("rank").collect()
    assert (
        [r["keyword"] for r in csv_rows] == [r["keyword"] for r in parquet] == [r["keyword"] for r in report["ranking"]]
    )
    assert csv_rows[0]["n_playlists"] == "2"
    assert run_main(rank_main, ["--playlists", table, "--title-column", "name", "--out", str(out)]) == 2
    assert "no column 'name'" in capsys.readouterr().err


def test_deezer_tsv_is_read_without_quoting(spark, tmp_path) -> None:
    path = tmp_path / "titles.tsv"
    path.write_text(
        "playlist_id\teditor\ttitle\tmatches\n"
        '11\t0\t"quoted" party\tparty\n'
        "12\t1\tIf you can\\'t drive, then run\tdrive\n"
        '13\t0\t  spaced "half\tsummer,night\n'
        "14\t0\t\t\n",
        encoding="utf-8",
    )
    rows = [tuple(r) for r in read_deezer_titles(spark, str(path)).orderBy("playlist_id").collect()]
    assert rows == [
        (11, '"quoted" party', 0, ["party"]),
        (12, "If you can\\'t drive, then run", 1, ["drive"]),
        (13, '  spaced "half', 0, ["summer", "night"]),
        (14, None, 0, []),  # an empty title reads as null
    ]
    bad = tmp_path / "bad.tsv"
    bad.write_text("playlist_id\teditor\ttitle\tmatches\nnot-a-number\t0\tx\tparty\n", encoding="utf-8")
    with pytest.raises(InputError, match="malformed line"):
        read_deezer_titles(spark, str(bad))
    with pytest.raises(InputError, match="does not exist"):
        read_deezer_titles(spark, str(tmp_path / "absent.tsv"))
