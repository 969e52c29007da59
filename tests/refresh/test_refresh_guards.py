"""Refusals before a meaningless or impossible run does work: an empty audio directory, a
dataset most of whose tracks have no audio (refused before publication, then published once
the limit is raised, without extracting again), a root held by a live run (refused before
any SparkSession starts), a read-only root (one line, no traceback)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ctx_spark.cli import run_main
from jobs.refresh_catalogue import main
from tests.conftest import ROOT
from tests.refresh_helpers import SETTINGS, write_week1


def refresh(root: Path, catalogue: Path, *extra: str) -> int:
    args = ["--catalogue", str(catalogue), "--root", str(root)]
    for item in SETTINGS + extra:
        args += ["--set", item]
    return run_main(main, args)


def test_an_empty_audio_directory_is_refused_before_any_stage(spark, tmp_path, capsys):
    catalogue = write_week1(tmp_path / "week1")
    shutil.rmtree(catalogue / "audio")
    (catalogue / "audio").mkdir()
    assert refresh(tmp_path / "root", catalogue) == 2
    err = capsys.readouterr().err
    assert f"the audio directory {catalogue / 'audio'} holds no files" in err and "refresh.audio_dir" in err
    assert list((tmp_path / "root" / "snapshots").iterdir()) == [] and not (tmp_path / "root" / "current").exists()


def test_most_tracks_without_audio_are_not_published(spark, tmp_path, capsys):
    catalogue = write_week1(tmp_path / "week1")
    for track in range(3, 9):  # 6 of the 8 dataset tracks lose their file
        (catalogue / "audio" / f"{track}.ogg").unlink()
    root = tmp_path / "root"
    assert refresh(root, catalogue) == 2
    err = capsys.readouterr().err
    assert "6 of 8 dataset tracks (75%) have no spectrogram (no_audio 6" in err
    assert "refresh.max_failure_rate (0.5)" in err and f"audio directory {catalogue / 'audio'}" in err
    assert not (root / "current").exists()
    (run_id,) = [p.name for p in (root / "snapshots").iterdir()]
    state = json.loads((root / "snapshots" / run_id / "state.json").read_text())
    assert state["status"] == "failed" and "max_failure_rate" in state["error"]
    # Raising the limit (an operational setting) resumes the run: nothing is extracted again.
    assert refresh(root, catalogue, "refresh.max_failure_rate=0.8") == 0
    assert (root / "current").read_text().strip() == run_id
    m = json.loads((root / "snapshots" / run_id / "manifest.json").read_text())
    assert m["stages_from_earlier_attempts"] == ["label", "dataset", "extract"] and m["attempt"] == 2
    assert m["stages"]["extract"]["rows"]["failed_by_reason"] == {"no_audio": 6}


def test_a_held_lock_is_refused_before_a_spark_session_starts(tmp_path):
    """In a fresh process (this one has the tests' session): exit 2, and no SparkContext."""
    holder = subprocess.Popen(["sleep", "60"])
    root = tmp_path / "root"
    root.mkdir()
    lock = {"host": socket.gethostname(), "pid": holder.pid, "started": "2025-01-01T00:00:00Z"}
    (root / "refresh.lock").write_text(json.dumps({**lock, "run_id": "r", "token": "t", "heartbeat": time.time()}))
    code = (
        "import sys\n"
        "from ctx_spark.cli import main\n"
        f"rc = main(['refresh', '--catalogue', {str(tmp_path / 'nowhere')!r}, '--root', {str(root)!r}])\n"
        "from pyspark import SparkContext\n"
        "print('spark context:', SparkContext._active_spark_context)\n"
        "sys.exit(rc)\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
        )
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"another refresh run holds the lock {root / 'refresh.lock'}" in done.stderr
    assert "spark context: None" in done.stdout


def _read_only(path: Path) -> bool:
    """Make ``path`` unwritable, even for root (the immutable attribute); False if impossible."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        return True
    if shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False).returncode == 0


def test_a_read_only_root_gives_one_line(tmp_path, capsys):
    root = tmp_path / "root"
    root.mkdir()
    if not _read_only(root):
        pytest.skip("cannot make a directory read-only here")
    try:
        assert refresh(root, tmp_path / "nowhere") == 2
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(root)], check=False)
        root.chmod(0o755)
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: refresh root {root} is not writable") and "--root" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
