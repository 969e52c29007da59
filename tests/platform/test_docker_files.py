"""docker/: what can be checked without building the image (no registry access here).

The compose file parses and describes the documented cluster, every path the Dockerfile
copies exists, the image is the `current` environment of constraints/current.txt (its
Python, its pyspark as the image's Spark), and the entry point is valid bash
that hands the right command lines to spark-class / spark-submit (run against stand-ins
that print their arguments).
"""

from __future__ import annotations

import configparser
import os
import re
import subprocess

import pytest
import yaml

from ctx_spark import platform
from tests.conftest import ROOT

DOCKER = ROOT / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
ENTRYPOINT = DOCKER / "entrypoint.sh"
COMPOSE = DOCKER / "docker-compose.yml"


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(
        r"\\\n", " ", "\n".join(row for row in DOCKERFILE.read_text().splitlines() if not row.lstrip().startswith("#"))
    )
    return [(row.split(None, 1)[0].upper(), row.split(None, 1)[1]) for row in text.splitlines() if row.strip()]


def setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return parser


def current_constraints() -> dict[str, str]:
    """name -> version pinned by constraints/current.txt, and its Python ('python')."""
    text = (ROOT / "constraints" / "current.txt").read_text()
    pins = {}
    for row in text.splitlines():
        row = row.split("#")[0].strip()
        if "==" in row:
            name, version = row.split("==")
            pins[name.strip().lower()] = version.strip()
    python = re.search(r"Python (3\.\d+)", text)
    assert python, "constraints/current.txt names its Python version in its header"
    pins["python"] = python.group(1)
    return pins


def test_every_copied_path_exists_in_the_build_context():
    compose = yaml.safe_load(COMPOSE.read_text())
    build = compose["x-spark"]["build"]
    context = (COMPOSE.parent / build["context"]).resolve()
    assert context == ROOT and (context / build["dockerfile"]).resolve() == DOCKERFILE
    copies = [args.split() for kind, args in dockerfile_instructions() if kind == "COPY"]
    assert copies
    for *sources, _ in copies:
        for source in sources:
            assert (context / source).exists(), f"COPY {source}: not in the build context"
    entry = [args for kind, args in dockerfile_instructions() if kind == "ENTRYPOINT"]
    assert entry and "/opt/ctx-spark/docker/entrypoint.sh" in entry[0]


def test_image_is_the_current_environment():
    instructions = dockerfile_instructions()
    pins = current_constraints()
    python = pins["python"]
    base = [args for kind, args in instructions if kind == "FROM"]
    assert base == [f"python:{python}-slim-bookworm"]
    low, high = (".".join(map(str, v)) for v in (platform.PYTHON[0], platform.PYTHON[1]))
    assert setup_cfg()["options"]["python_requires"] == f">={low},<{high}"
    assert tuple(map(int, python.split("."))) < platform.PYTHON[1]
    run = " ".join(args for kind, args in instructions if kind == "RUN")
    assert "openjdk-17-jre-headless" in run
    assert 'pip install -c constraints/current.txt ".[train,tf-cpu]"' in run
    copied = " ".join(args for kind, args in instructions if kind == "COPY")
    assert "constraints/current.txt" in copied
    # Versions live in the constraints file only: the Dockerfile names none.
    assert "pyspark" in pins and "tensorflow_cpu" in pins
    text = DOCKERFILE.read_text()
    assert not [p for p in pins if p != "python" and re.search(rf"{re.escape(p)}\s*[=<>]=", text, re.I)]
    # The image's Spark is the pyspark package of that Python: the constraints file's version.
    env = " ".join(args for kind, args in instructions if kind == "ENV")
    assert f"SPARK_HOME=/usr/local/lib/python{python}/site-packages/pyspark" in env


def test_compose_is_the_documented_cluster():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert sorted(services) == ["master", "submit", "worker-1", "worker-2"]
    assert list(compose["volumes"]) == ["data"]
    for name, service in services.items():
        assert service["volumes"] == ["data:/data"], name
        assert service["image"] == "ctx-spark:0.1.0"
        assert service["environment"]["SPARK_MASTER_URL"] == "spark://master:7077"
    assert services["master"]["command"] == ["master"] and "7077:7077" in services["master"]["ports"]
    assert services["worker-1"]["command"] == services["worker-2"]["command"] == ["worker"]
    assert services["submit"]["entrypoint"][-1] == "submit" and services["submit"]["profiles"] == ["submit"]
    readme = (DOCKER / "README.md").read_text()
    for word in ("master", "worker-1", "worker-2", "submit", "/data", "Not built here"):
        assert word in readme
    assert "docker/docker-compose.yml" in (ROOT / "README.md").read_text()


@pytest.fixture
def fake_spark(tmp_path) -> dict[str, str]:
    """A SPARK_HOME whose spark-class and spark-submit print their arguments."""
    bin_dir = tmp_path / "spark" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("spark-class", "spark-submit"):
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\necho {tool} "$@"\n')
        script.chmod(0o755)
    return dict(os.environ, SPARK_HOME=str(tmp_path / "spark"), SPARK_MASTER_URL="spark://master:7077")


def entrypoint(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, timeout=30)


def test_entrypoint_is_valid_bash_and_starts_each_role(fake_spark):
    assert subprocess.run(["bash", "-n", str(ENTRYPOINT)], capture_output=True).returncode == 0
    assert os.access(ENTRYPOINT, os.X_OK)
    master = entrypoint(fake_spark, "master").stdout.split()
    assert master[:2] == ["spark-class", "org.apache.spark.deploy.master.Master"] and "7077" in master
    worker = entrypoint(fake_spark, "worker").stdout.split()
    assert worker[:3] == ["spark-class", "org.apache.spark.deploy.worker.Worker", "spark://master:7077"]
    job = str(ROOT / "jobs" / "label_tracks.py")
    submit = entrypoint(fake_spark, "submit", "--conf", "spark.executor.memory=2g", "--", job, "--out", "/data/x")
    assert submit.stdout.split() == [
        "spark-submit",
        "--master",
        "spark://master:7077",
        "--deploy-mode",
        "client",
        "--conf",
        "spark.executor.memory=2g",
        job,
        "--out",
        "/data/x",
    ]
    missing = entrypoint(fake_spark, "submit", "no_such_job")
    assert missing.returncode == 2 and "no job file 'no_such_job'" in missing.stderr
    unknown = entrypoint(fake_spark, "conductor")
    assert unknown.returncode == 2 and "unknown role" in unknown.stderr
    assert "submit [SPARK-SUBMIT OPTIONS... --] JOB ARGS..." in entrypoint(fake_spark, "help").stdout
