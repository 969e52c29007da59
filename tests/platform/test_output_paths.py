"""A job only ever replaces its own earlier output: an --out that holds other files, or that
equals, contains or lies inside one of the job's inputs, is refused before any work."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ctx_spark.cli import main
from ctx_spark.testing.audio import VIBE_ACE
from tests.conftest import TEST_SPARK_OVERRIDES, write_catalogue

SETS = [a for o in TEST_SPARK_OVERRIDES for a in ("--set", o)]


def _tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_extraction_refuses_a_directory_holding_other_files(spark, tmp_path, capsys) -> None:
    """The reproduction of the issue: extracting into the directory that holds the audio."""
    (tmp_path / "x" / "music").mkdir(parents=True)
    shutil.copy(VIBE_ACE, tmp_path / "x" / "music" / "1.ogg")
    (tmp_path / "x" / "important.txt").write_text("k\n")
    before = _tree(tmp_path / "x")
    code = main(["extract", "--audio-dir", str(tmp_path / "x" / "music"), "--out", str(tmp_path / "x"), *SETS])
    assert code == 2
    err = capsys.readouterr().err
    assert "overlaps the input --audio-dir" in err
    assert _tree(tmp_path / "x") == before
    # Not an input, but holding a file that is not the job's: refused too, nothing touched.
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "important.txt").write_text("k\n")
    code = main(["extract", "--audio-dir", str(tmp_path / "x" / "music"), "--out", str(tmp_path / "y"), *SETS])
    assert code == 2
    assert "already holds files that are not this job's output (important.txt)" in capsys.readouterr().err
    assert _tree(tmp_path / "y") == ["important.txt"]


def test_extraction_replaces_its_own_earlier_output(spark, tmp_path, capsys) -> None:
    (tmp_path / "music").mkdir()
    shutil.copy(VIBE_ACE, tmp_path / "music" / "1.ogg")
    argv = ["extract", "--audio-dir", str(tmp_path / "music"), "--out", str(tmp_path / "mels"), *SETS]
    assert main(argv) == 0
    assert main(argv) == 0  # its own output: replaced (and reused)
    assert "1 reused" in capsys.readouterr().out


@pytest.mark.parametrize("inside", ["equal", "inside", "around"])
def test_labelling_refuses_an_output_overlapping_an_input_table(spark, tmp_path, capsys, inside: str) -> None:
    paths = write_catalogue(tmp_path / "cat", [(1, "gym")], [(1, 1)], [(1, 1, 1)])
    tracks = Path(paths["tracks"])
    out = {"equal": tracks, "inside": tracks / "labels", "around": tmp_path}[inside]
    before = _tree(tmp_path)
    code = main(
        [
            "label",
            "--playlists",
            paths["playlists"],
            "--playlist-tracks",
            paths["playlist_tracks"],
            "--tracks",
            str(tracks),
            "--out",
            str(out),
            *SETS,
        ]
    )
    assert code == 2
    assert "overlaps the input --" in capsys.readouterr().err
    assert _tree(tmp_path) == before


def test_the_dataset_stage_refuses_writing_into_its_labels(spark, tmp_path, capsys) -> None:
    labels = tmp_path / "labels" / "track_labels"
    labels.mkdir(parents=True)
    assert main(["dataset", "--labels", str(labels), "--out", str(tmp_path / "labels"), *SETS]) == 2
    assert "--out" in capsys.readouterr().err
