"""The shape of the code: what imports what, file sizes, private names."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("ctx_spark", "training")
#: Rooms of ctx_spark that must run without TensorFlow.
SPARK_ROOMS = (
    "ctx_spark.label",
    "ctx_spark.dataset",
    "ctx_spark.extract",
    "ctx_spark.refresh",
    "ctx_spark.sources",
    "ctx_spark.shards",
    "ctx_spark.audio",
    "ctx_spark.cli",
    "ctx_spark.registry",
    "ctx_spark.commands",
    "ctx_spark.results",
    "ctx_spark.explorer",
)


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _submodules(room: str) -> list[str]:
    base = ROOT.joinpath(*room.split("."))
    if base.with_suffix(".py").is_file():
        return [room]
    return [_module_name(p) for p in sorted(base.rglob("*.py"))]


def test_the_spark_rooms_import_without_tensorflow() -> None:
    """Importing every module of the Spark side does not import tensorflow, keras or training
    (checked in a fresh interpreter through sys.modules)."""
    modules = [m for room in SPARK_ROOMS for m in _submodules(room)]
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'training'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def _imports(path: Path) -> list[tuple[int, str, list[str], bool]]:
    """(line, module, names, at module level) of every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module, [a.name for a in node.names], id(node) in top))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                found.append((node.lineno, alias.name, [], id(node) in top))
    return found


def test_ctx_spark_never_imports_training_at_import_time() -> None:
    offenders = [
        f"{p.relative_to(ROOT)}:{line} {module}"
        for p in _modules("ctx_spark")
        for line, module, _names, top in _imports(p)
        if top and module.split(".")[0] == "training"
    ]
    assert offenders == []


def test_no_private_name_is_imported_across_packages() -> None:
    """A name starting with _ is private to its package (ctx_spark.label, training.score...)."""
    offenders = []
    for package in PACKAGES:
        for path in _modules(package):
            here = _module_name(path).rsplit(".", 1)[0]
            for line, module, names, _top in _imports(path):
                if module.split(".")[0] not in PACKAGES:
                    continue
                source_package = (
                    module if (ROOT.joinpath(*module.split(".")) / "__init__.py").exists() else module.rsplit(".", 1)[0]
                )
                private = [n for n in names if n.startswith("_") and not n.startswith("__")]
                if private and source_package != here and not here.startswith(source_package + "."):
                    offenders.append(f"{path.relative_to(ROOT)}:{line} {module} {private}")
    assert offenders == []


@pytest.mark.parametrize("package", PACKAGES + ("jobs", "tests", "bench", "scripts"))
def test_no_module_is_over_400_lines(package: str) -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in sorted((ROOT / package).rglob("*.py"))
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert long == {}


def test_floors_do_not_import_the_rooms_above_them() -> None:
    """The shared floors (audio, shards, fs, io, schema, config, text...) import no stage room."""
    floors = (
        "ctx_spark/audio",
        "ctx_spark/shards",
        "ctx_spark/fs.py",
        "ctx_spark/io.py",
        "ctx_spark/schema.py",
        "ctx_spark/config.py",
        "ctx_spark/text.py",
        "ctx_spark/logs.py",
        "ctx_spark/errors.py",
        "ctx_spark/spark.py",
        "ctx_spark/platform.py",
    )
    rooms = (
        "ctx_spark.label",
        "ctx_spark.dataset",
        "ctx_spark.extract",
        "ctx_spark.refresh",
        "ctx_spark.sources",
        "training",
    )
    offenders = []
    for floor in floors:
        target = ROOT / floor
        for path in [target] if target.is_file() else sorted(target.rglob("*.py")):
            for line, module, _names, _top in _imports(path):
                if any(module == r or module.startswith(r + ".") for r in rooms):
                    offenders.append(f"{path.relative_to(ROOT)}:{line} {module}")
    assert offenders == []


def test_jobs_are_thin_entry_points() -> None:
    for path in sorted((ROOT / "jobs").glob("*.py")):
        if path.name == "__init__.py":
            continue
        text = path.read_text(encoding="utf-8")
        assert len(text.splitlines()) <= 35, path
        assert "from ctx_spark.cli import main" in text, path
