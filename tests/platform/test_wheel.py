"""The built wheel stands on its own: only the two packages, the default configuration
inside, and a working ``ctx-spark`` command from outside the repository."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _clean_copy(target: Path) -> Path:
    """The checkout's tracked files, so a stale build/ or untracked file cannot leak in."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard"], capture_output=True, text=True
    )
    if listed.returncode != 0:
        return ROOT
    for name in listed.stdout.splitlines():
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    source = _clean_copy(tmp_path_factory.mktemp("source"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (path,) = out.glob("ctx_spark-*.whl")
    return path


def test_the_wheel_holds_only_the_two_packages_and_the_defaults(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"ctx_spark", "training"}
    conf = sorted(n for n in names if n.startswith("ctx_spark/conf/"))
    assert conf == sorted(f"ctx_spark/conf/{p.name}" for p in (ROOT / "conf").glob("*.yaml"))
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "ctx-spark = ctx_spark.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_installed_command_labels_a_catalogue_from_outside_the_repository(wheel: Path, tmp_path: Path) -> None:
    """A fresh virtual environment with the wheel (its dependencies come from this test
    environment's site-packages through a .pth file, so nothing is downloaded)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    deps = [p for p in site.getsitepackages() + [sysconfig.get_paths()["purelib"]] if os.path.isdir(p)]
    (purelib / "test-deps.pth").write_text("\n".join(dict.fromkeys(deps)) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CTX_SPARK_CONF_DIR")}
    # --ignore-installed: the dependencies' directory may hold the checkout's own (editable) install.
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "--ignore-installed",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    env.update(SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=str(python), PYSPARK_DRIVER_PYTHON=str(python))
    command = str(venv / "bin" / "ctx-spark")
    where = subprocess.run(
        [str(python), "-c", "import ctx_spark, sys; print(ctx_spark.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert where.returncode == 0, where.stderr[-3000:]
    assert where.stdout.startswith(str(purelib)), where.stdout
    generate = subprocess.run(
        [command, "generate-catalogue", "--out", "cat", "--rows", "5000", "--seed", "3"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert generate.returncode == 0, generate.stderr[-3000:]
    label = subprocess.run(
        [
            command,
            "label",
            "--playlists",
            "cat/playlists",
            "--playlist-tracks",
            "cat/playlist_tracks",
            "--tracks",
            "cat/tracks",
            "--out",
            "labels",
            "--set",
            "spark.master=local[1]",
            "--set",
            "spark.conf.spark.ui.enabled=false",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert label.returncode == 0, label.stderr[-3000:]
    assert "labels written to" in label.stdout
    assert (work / "labels" / "track_labels").is_dir() and (work / "labels" / "report.json").is_file()
