"""The ``ctx-spark`` command: the command list, every subcommand's help, config, top, extras."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ctx_spark.cli import COMMANDS, command_parser, load_command, main
from tests.conftest import ROOT


def test_top_level_help_lists_every_command(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for name, (_target, summary, _extra) in COMMANDS.items():
        assert f"  {name}" in out and summary in out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_subcommand_help_shows_inputs_outputs_and_an_example(name: str) -> None:
    text = command_parser(name, load_command(name)).format_help()
    for part in ("inputs:", "outputs:", "example:", f"ctx-spark {name}", "--conf", "--set"):
        assert part in text, (name, part)


def test_an_unknown_command_exits_2(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["labl"])
    assert done.value.code == 2
    assert "invalid choice: 'labl'" in capsys.readouterr().err


def test_config_prints_values_with_their_origin(tmp_path, capsys) -> None:
    conf = tmp_path / "mine.yaml"
    conf.write_text("dataset:\n  cap: 500\n")
    assert main(["config", "dataset", "--conf", str(conf), "--set", "dataset.seed=7"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"dataset.cap = 500    # {conf}" in lines
    assert "dataset.seed = 7    # --set dataset.seed=7" in lines
    assert "dataset.tolerance = 0.02    # default (dataset.yaml)" in lines
    assert all(line.startswith("dataset.") for line in lines)


def test_config_refuses_an_unknown_key_with_a_suggestion(capsys) -> None:
    assert main(["config", "--set", "label.min_playlist=2"]) == 2
    assert "did you mean min_playlists" in capsys.readouterr().err


def _ranking(root, context: str, rows: list[tuple[int, int, float]]) -> None:
    part = root / "context_rankings" / f"context={context}"
    part.mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "rank": pa.array([r[0] for r in rows], pa.int64()),
                "track_id": pa.array([r[1] for r in rows], pa.int64()),
                "split": pa.array(["all"] * len(rows)),
                "probability": pa.array([r[2] for r in rows], pa.float32()),
            }
        ),
        str(part / "part-0.parquet"),
    )


def test_top_prints_the_best_tracks_of_a_context_in_rank_order(tmp_path, capsys) -> None:
    scores = tmp_path / "scores"
    _ranking(scores, "sleep", [(3, 30, 0.5), (1, 10, 0.9), (2, 20, 0.7), (4, 40, 0.1)])
    _ranking(scores, "gym", [(1, 99, 0.8)])
    assert main(["top", "--scores", str(scores), "--context", "sleep", "-n", "3", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["rank"], r["track_id"]) for r in rows] == [(1, 10), (2, 20), (3, 30)]
    assert main(["top", "--scores", str(scores), "--context", "party"]) == 2
    assert "no ranking for context 'party'; there are: gym, sleep" in capsys.readouterr().err
    assert main(["top", "--scores", str(scores), "--context", "naps"]) == 2
    assert "not a configured context" in capsys.readouterr().err


def test_a_missing_extra_is_named() -> None:
    """With TensorFlow unimportable (as without the train extra), training commands say
    which extra to install; labelling still works."""
    code = (
        "import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None\n"
        "from ctx_spark.cli import main\n"
        "sys.exit(main(['train', '--shards', 'S', '--out', 'RUN']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "ctx-spark train needs the 'train' extra (tensorflow, keras not installed)" in done.stderr
    assert "pip install 'ctx-spark[train]'" in done.stderr


def test_an_unsupported_package_version_is_one_line(monkeypatch, capsys) -> None:
    from ctx_spark import platform

    monkeypatch.setitem(platform.SUPPORTED, "pyspark", ((99, 0), None))
    assert main(["config"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pyspark" in err[0] and "is not supported; ctx-spark needs pyspark >= 99.0" in err[0]
