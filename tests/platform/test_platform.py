"""Supported versions: ctx_spark/platform.py states setup.cfg's ranges, the environment the
suite runs in is inside them, and a version outside them is refused in one line at start-up.

The out-of-range packages are real distribution metadata (a ``NAME-VERSION.dist-info``
directory put first on the path of a fresh interpreter), which is what the check reads.
"""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from packaging.requirements import Requirement

from ctx_spark import platform
from tests.conftest import ROOT


def _setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return parser


def _ranges(lines: str) -> dict[str, platform.Range]:
    """name -> (floor, cap) of requirement lines written as ``name>=X`` or ``name>=X,<Y``."""
    out = {}
    for line in filter(None, (row.strip() for row in lines.splitlines())):
        requirement = Requirement(line)
        low = high = None
        for spec in requirement.specifier:
            assert spec.operator in (">=", "<"), f"{line}: only >= floors and < caps are used"
            version = platform.version_tuple(spec.version)
            low, high = (version, high) if spec.operator == ">=" else (low, version)
        out[requirement.name] = (low, high)
    return out


def _tuple(version: str) -> tuple[int, ...]:
    return platform.version_tuple(version)


def test_supported_ranges_are_setup_cfg_s():
    cfg = _setup_cfg()
    assert _ranges(cfg["options"]["install_requires"]) == platform.SUPPORTED
    extras = {name: _ranges(lines) for name, lines in cfg["options.extras_require"].items()}
    train = dict(extras["train"])
    # the two TensorFlow builds carry the same range, which the check applies to either
    assert extras["tf-cpu"]["tensorflow-cpu"] == extras["tf-gpu"]["tensorflow"]
    train["tensorflow"] = extras["tf-cpu"]["tensorflow-cpu"]
    assert train == platform.EXTRA_SUPPORTED["train"]
    petastorm = extras["petastorm"]
    assert petastorm["pyarrow"][0] is None  # the floor is the core one
    petastorm["pyarrow"] = (platform.SUPPORTED["pyarrow"][0], petastorm["pyarrow"][1])
    assert petastorm == platform.EXTRA_SUPPORTED["petastorm"]
    python = cfg["options"]["python_requires"]
    low, high = platform.PYTHON
    assert python == f">={'.'.join(map(str, low))},<{'.'.join(map(str, high))}"


@pytest.mark.parametrize("env", ["current", "lts"])
def test_each_constraints_file_lies_inside_the_ranges(env):
    """Every package a constraints file pins that setup.cfg names is inside its range; the
    floors are what lts pins (the tested lower end)."""
    pins = {}
    for row in (ROOT / "constraints" / f"{env}.txt").read_text().splitlines():
        row = row.split("#")[0].strip()
        if "==" in row:
            name, version = row.split("==")
            pins[name.strip().lower().replace("_", "-")] = _tuple(version.strip())
    ranges = dict(platform.SUPPORTED)
    ranges.update(platform.EXTRA_SUPPORTED["train"])
    if env == "lts":
        ranges.update(platform.EXTRA_SUPPORTED["petastorm"])
    ranges["tensorflow-cpu"] = ranges.pop("tensorflow")
    for name, (low, high) in ranges.items():
        pinned = pins[name.lower()]
        assert pinned >= low and (high is None or pinned < high), f"{env}: {name} {pinned} outside {low}..{high}"
        if env == "lts":
            assert pinned[: len(low)] == low, f"lts pins {name} {pinned}, the floor is {low}"


def test_this_environment_is_supported():
    platform.check_versions()
    platform.check_versions("train")


def test_versions_are_read_as_release_numbers():
    assert platform.version_tuple("4.0.5") == (4, 0, 5)
    assert platform.version_tuple("0.10.2.post1") == (0, 10, 2)
    assert platform.version_tuple("2.21.0rc1") == (2, 21, 0)
    assert platform.version_tuple("1.26.4+local") == (1, 26, 4)
    assert platform.describe((14,), (15,)) == ">= 14, < 15"


def _fake_distributions(tmp_path: Path, **versions: str) -> Path:
    """A directory of dist-info metadata claiming the given versions."""
    for name, version in versions.items():
        info = tmp_path / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return tmp_path


def _run(code: str, path: Path, *flags: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(path), str(ROOT)]))
    return subprocess.run(
        [sys.executable, *flags, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("name", "version", "supported"), [("numpy", "1.25.2", ">= 1.26"), ("pyspark", "3.4.1", ">= 3.5")]
)
def test_an_unsupported_version_is_one_line_at_start_up(tmp_path, name, version, supported):
    code = "import sys; from ctx_spark.cli import main; sys.exit(main(['config']))"
    done = _run(code, _fake_distributions(tmp_path, **{name: version}))
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        f"error: {name} {version} is not supported; ctx-spark needs {name} {supported} (docs/platforms.md)"
    ]


def test_the_petastorm_extra_refuses_a_newer_pyarrow(tmp_path):
    code = "from ctx_spark.platform import check_versions; check_versions('petastorm')"
    done = _run(code, _fake_distributions(tmp_path, pyarrow="15.0.2"))
    assert done.returncode == 1
    assert "pyarrow 15.0.2 is not supported; ctx-spark[petastorm] needs pyarrow >= 14, < 15" in done.stderr


def test_pyspark_without_metadata_is_read_from_its_version_file(tmp_path):
    """A Spark distribution's python/ directory on the path (no dist-info), as some
    platforms provide pyspark: its version.py is read without importing pyspark."""
    package = tmp_path / "pyspark"
    package.mkdir()
    (package / "__init__.py").write_text("raise ImportError('not to be imported by the check')\n")
    (package / "version.py").write_text('__version__: str = "3.4.1"\n')
    code = (
        "from ctx_spark.platform import check_versions, installed_version\n"
        "print(installed_version('pyspark'))\n"
        "check_versions()\n"
    )
    done = _run(code, tmp_path, "-S")  # -S: no site-packages, so no pyspark metadata
    assert done.stdout.strip() == "3.4.1", done.stderr[-2000:]
    assert "pyspark 3.4.1 is not supported; ctx-spark needs pyspark >= 3.5" in done.stderr


def test_a_missing_train_extra_says_how_to_get_tensorflow():
    code = (
        "import sys; sys.modules['tensorflow'] = None\n"
        "from ctx_spark.cli import main\n"
        "sys.exit(main(['score', '--model', 'M', '--shards', 'S', '--out', 'O']))\n"
    )
    done = _run(code, ROOT)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "ctx-spark score needs the 'train' extra (tensorflow not installed)" in line
    assert "'ctx-spark[train,tf-cpu]' (CPU) or 'ctx-spark[train,tf-gpu]'" in line


def test_the_roc_chart_integrates_on_either_numpy(tmp_path):
    """np.trapz is gone from numpy 2.5 and np.trapezoid is new in 2.0: platform.trapezoid is
    whichever exists, and the report site's ROC chart (re-plotted from predictions) uses it."""
    assert platform.trapezoid([0.0, 1.0, 1.0], [0.0, 0.5, 1.0]) == pytest.approx(0.75)
    from ctx_spark.explorer import charts

    labels = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], dtype=float)
    probs = np.array([[0.9, 0.2], [0.1, 0.8], [0.7, 0.6], [0.3, 0.1]])
    chart = charts.roc(tmp_path, "roc.png", labels, probs, ["a", "b"], "ROC")
    assert (tmp_path / "roc.png").stat().st_size > 0 and chart.width > 0


def test_pyav_opens_a_file_whose_metadata_is_not_utf8(tmp_path):
    """PyAV 18 needs metadata_errors="ignore" for such a tag and PyAV 19 refuses that
    argument: platform.av_read_options fits the installed one (a real MP3 with an ID3 title
    in Latin-1 bytes although the frame says UTF-8)."""
    av = pytest.importorskip("av")
    data = (ROOT / "tests" / "fixtures" / "audio" / "audio_example.mp3").read_bytes()
    if data[:3] == b"ID3":  # drop the clip's own tag
        size = data[6:10]
        data = data[10 + ((size[0] << 21) | (size[1] << 14) | (size[2] << 7) | size[3]) :]
    text = b"\x03caf\xe9 \xff\xfe"  # text encoding 3 (UTF-8), Latin-1 bytes
    frame = b"TIT2" + len(text).to_bytes(4, "big") + b"\x00\x00" + text
    n = len(frame)
    path = tmp_path / "latin1-title.mp3"
    path.write_bytes(
        b"ID3\x03\x00\x00" + bytes([(n >> 21) & 127, (n >> 14) & 127, (n >> 7) & 127, n & 127]) + frame + data
    )
    with av.open(str(path), mode="r", **platform.av_read_options(av)) as container:
        assert "title" in container.metadata and [s.type for s in container.streams] == ["audio"]
