"""An output filesystem that cannot take the shards (really full, really read-only): the
job ends with one ``error:`` line naming the path and the cause, no traceback from any
task, and the previous output on that filesystem stays byte for byte as it was.

The filesystems are tmpfs mounts in a private mount namespace (``unshare``), so the test
needs no privileges beyond what ``unshare --user`` grants, and leaves no mount behind. The
job runs as the real command line (``jobs/extract_mels.py``) in that namespace.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ctx_spark import io
from ctx_spark.extract import guards
from ctx_spark.extract.run import ExtractInputs, run_extract_stage
from ctx_spark.testing.audio import VIBE_ACE
from tests.conftest import ROOT, TEST_SPARK_OVERRIDES
from tests.extract.helpers import make_config

SCRIPT = r"""
set -u
mount -t tmpfs -o size=800k tmpfs "$FULL"
cp -a "$PREVIOUS" "$FULL/mels"
mount -t tmpfs -o size=4m tmpfs "$RO"
cp -a "$PREVIOUS" "$RO/mels"
mount -o remount,ro "$RO"
for case in FULL RO; do
  eval target=\$$case
  "$PY" jobs/extract_mels.py --audio-dir "$AUDIO" --out "$target/mels" "$@" 2> "$LOGS/$case.err"
  echo $? > "$LOGS/$case.rc"
  (cd "$target/mels" && find . -type f | sort | xargs sha256sum) > "$LOGS/$case.sums"
  ls -A "$target" > "$LOGS/$case.ls"
done
"""


def _private_mounts(probe: Path) -> Optional[list[str]]:
    """The ``unshare`` command prefix that may mount a tmpfs here, or None."""
    unshare = shutil.which("unshare")
    if unshare is None or shutil.which("mount") is None:
        return None
    prefixes = [[unshare, "--mount"]] if os.geteuid() == 0 else []
    prefixes.append([unshare, "--user", "--map-root-user", "--mount"])
    for prefix in prefixes:
        try:
            done = subprocess.run(
                [*prefix, "sh", "-c", 'mount -t tmpfs -o size=64k tmpfs "$0"', str(probe)],
                capture_output=True,
                timeout=60,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return prefix
    return None


def _sums(path: Path) -> dict[str, str]:
    return {
        f"./{p.relative_to(path)}": hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def _read_sums(text: str) -> dict[str, str]:
    return {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in text.splitlines() if line.strip()}


def test_a_full_or_read_only_output_is_one_error_line(spark, tmp_path) -> None:
    (tmp_path / "probe").mkdir()
    prefix = _private_mounts(tmp_path / "probe")
    if prefix is None:
        pytest.skip("no private mount namespace here (unshare --mount / --user), so no real full disk to test")
    audio = tmp_path / "audio"
    audio.mkdir()
    for track in (1, 2, 3, 4):
        shutil.copy(VIBE_ACE, audio / f"{track}.ogg")
    # The previous output (~530 KB) fits in the 800 KB filesystem; a second copy of its
    # shards (the re-run reuses every spectrogram, staged beside it) does not.
    previous = tmp_path / "previous" / "mels"
    run_extract_stage(spark, make_config(), ExtractInputs(audio_dir=str(audio)), str(previous))
    dirs = {name: tmp_path / name for name in ("full", "ro", "logs")}
    for d in dirs.values():
        d.mkdir()
    env = {
        **os.environ,
        "FULL": str(dirs["full"]),
        "RO": str(dirs["ro"]),
        "LOGS": str(dirs["logs"]),
        "PREVIOUS": str(previous),
        "AUDIO": str(audio),
        "PY": sys.executable,
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    sets = [a for o in TEST_SPARK_OVERRIDES for a in ("--set", o)]
    done = subprocess.run(
        [*prefix, "sh", "-c", SCRIPT, "sh", *sets], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    expected = _sums(previous)
    causes = {"FULL": "No space left on device [ENOSPC]", "RO": "Read-only file system [EROFS]"}
    for case, cause in causes.items():
        logs = dirs["logs"]
        err = (logs / f"{case}.err").read_text()
        target = dirs[case.lower()]
        assert (logs / f"{case}.rc").read_text().strip() == "2", err[-3000:]
        lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(lines) == 1, err[-3000:]
        assert lines[0].startswith(f"error: extract: cannot write the output {target}/mels ({target}/._staging-mels-")
        assert f"/all: {cause})" in lines[0]
        assert "nothing was published" in lines[0]
        assert "Traceback" not in err, err[-3000:]
        assert _read_sums((logs / f"{case}.sums").read_text()) == expected, f"{case}: the previous output changed"
        assert (logs / f"{case}.ls").read_text().split() == ["mels"], f"{case}: staging left behind"


def test_driver_side_writes_that_no_retry_fixes_are_one_line(spark) -> None:
    """The driver's own writes (a report, errors/ when empty) end the same way: the
    kernel's ENOSPC from /dev/full through pyarrow, Hadoop refusing a directory in /proc."""
    if not stat.S_ISCHR(os.stat("/dev/full").st_mode):
        pytest.skip("/dev/full is not the full device here")
    with pytest.raises(guards.OutputError, match=r"^extract: cannot write the output OUT \(No space left on device"):
        with guards.output_errors("OUT"):
            # through a handle opened here: pyarrow >= 15 deletes a file it fails to write by
            # its path, which would delete the device itself
            with open("/dev/full", "wb") as device:
                pq.write_table(pa.table({"x": list(range(100_000))}), device)
    with pytest.raises(
        guards.OutputError,
        match=r"^extract: cannot write /proc/ctx-spark-test/report.json: cannot create a directory there .*published",
    ):
        with guards.output_errors("OUT"):
            io.write_text(spark, "/proc/ctx-spark-test/report.json", "{}")


def test_a_failing_task_is_not_taken_for_an_output_error(spark) -> None:
    """A task's own error passes unchanged, whatever words its traceback holds."""

    def fail(batches):
        for batch in batches:
            raise PermissionError(13, "Permission denied", "/some/input")
            yield batch

    with pytest.raises(Exception, match="Permission denied") as caught:
        with guards.output_errors("OUT"):
            spark.range(2).mapInArrow(fail, "id long").collect()
    assert not isinstance(caught.value, guards.OutputError)
