"""The jobs on a real Spark standalone cluster (master + worker JVMs on 127.0.0.1, started
from the pip-installed pyspark by tests/standalone.py), through spark-submit in client
mode: their outputs must equal local-mode outputs of the same jobs on the same inputs,
also when the worker is killed in the middle of a job and a new one takes its place."""

from __future__ import annotations

import json
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from ctx_spark import io
from ctx_spark.audio import errors
from ctx_spark.config import load_config
from ctx_spark.shards import contract
from ctx_spark.sources.synthetic import CatalogueParams, generate_catalogue, table_paths
from ctx_spark.testing.audio import HUNGARIAN, SPLEETER, TRUMPET, VIBE_ACE
from ctx_spark.testing.standalone import EXECUTOR_CLASS, StandaloneCluster, app_json, free_port
from tests.conftest import ROOT, TEST_SPARK_OVERRIDES

pytestmark = pytest.mark.slow

LABEL_JOB = ROOT / "jobs" / "label_tracks.py"
EXTRACT_JOB = ROOT / "jobs" / "extract_mels.py"
#: Settings of the cluster runs (spark-submit --conf): small, like the test session's.
CLUSTER_CONF = {"spark.sql.shuffle.partitions": "4", "spark.executor.memory": "1g", "spark.driver.memory": "1g"}
#: Good clips of the extraction runs, and audio tasks of the fault run: many short tasks,
#: so the worker dies with work left.
N_GOOD = 24
FAULT_TASKS = 12


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One master and one worker (2 cores, 2 GB) for the module; stopped by PID at the end."""
    standalone = StandaloneCluster(tmp_path_factory.mktemp("standalone"))
    try:
        standalone.start(workers=1)
        yield standalone
    finally:
        left = standalone.stop()
    assert not left, f"processes left running after stopping the cluster: {left}"


def local_sets() -> list[str]:
    """``--set`` options giving the in-process local[2] session's settings."""
    return [a for o in TEST_SPARK_OVERRIDES for a in ("--set", o)]


def failure(cluster: StandaloneCluster, driver_log: str) -> str:
    return f"driver output:\n{driver_log[-4000:]}\n{cluster.logs()}"


def completed_app(cluster: StandaloneCluster, name: str) -> dict[str, Any]:
    """The master's record of the finished application called ``name`` (latest first)."""
    apps = [a for a in (cluster.state() or {}).get("completedapps", []) if a.get("name") == name]
    assert apps, f"the master ran no application '{name}'\n{cluster.logs()}"
    return max(apps, key=lambda a: a.get("starttime", 0))


def sorted_rows(path: Path, keys: tuple[str, ...]) -> tuple[Any, list[dict]]:
    table = pq.read_table(str(path))
    return table.schema.remove_metadata(), sorted(table.to_pylist(), key=lambda r: tuple(r[k] for k in keys))


def no_leftovers(out: Path) -> None:
    """No staging or retired sibling, and no temporary file or directory of a task attempt
    inside the published output (Hadoop's .crc checksum files are normal)."""
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith((io.STAGING_PREFIX, io.RETIRED_PREFIX))]
    left = [str(p) for p in out.rglob("*") if p.name.endswith(".tmp") or p.name == "_temporary"]
    assert not left, f"temporary files left inside the output: {left}"


# --- labelling --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> dict[str, str]:
    """A small seeded synthetic catalogue (jobs/generate_catalogue.py's generator)."""
    cfg = load_config()
    root = tmp_path_factory.mktemp("catalogue") / "catalogue"
    vocabulary = [w for words in cfg.vocabulary.values() for w in words]
    generate_catalogue(root, CatalogueParams(rows=20_000, seed=11), dict(cfg.contexts.keywords), vocabulary)
    return table_paths(root)


def test_label_job_on_the_cluster_equals_local_mode(cluster, spark, catalogue, tmp_path):
    from jobs.label_tracks import main

    args = [
        "--playlists",
        catalogue["playlists"],
        "--playlist-tracks",
        catalogue["playlist_tracks"],
        "--tracks",
        catalogue["tracks"],
    ]
    local, remote = tmp_path / "local", tmp_path / "cluster"
    # The cluster run goes on in the background while the local run computes the reference.
    driver = cluster.submit("label", LABEL_JOB, [*args, "--out", str(remote)], CLUSTER_CONF, cwd=tmp_path)
    try:
        assert main([*args, "--out", str(local), *local_sets()]) == 0
        code = cluster.finish(driver)
    finally:
        driver.stop()
    log = driver.log.read_text(errors="replace")
    assert code == 0, failure(cluster, log)

    report = json.loads((remote / "report.json").read_text())
    assert report["spark"]["master"] == cluster.url
    app = completed_app(cluster, "ctx-spark label")
    assert app["state"] == "FINISHED" and app["cores"] == cluster.worker_cores
    for table, keys in (("track_labels", ("track_id",)), ("track_context_counts", ("track_id", "context"))):
        local_schema, local_rows = sorted_rows(local / table, keys)
        remote_schema, remote_rows = sorted_rows(remote / table, keys)
        assert remote_schema.equals(local_schema), table
        assert remote_rows == local_rows, table
    local_report = json.loads((local / "report.json").read_text())
    assert report["tracks_labelled"] == local_report["tracks_labelled"] > 0
    assert report["tracks_labelled_per_context"] == local_report["tracks_labelled_per_context"]
    assert report["rows_read"] == local_report["rows_read"]
    no_leftovers(remote / "track_labels")


# --- mel extraction ---------------------------------------------------------------------


def link(source: Path, target: Path) -> Path:
    """A hard link (a copy across filesystems) of a fixture clip under a track-id name."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy(source, target)
    return target


def audio_dir(root: Path, n_good: int) -> Path:
    """``n_good`` real clips (alternating two fixtures) named 1.ogg...; plus a clip too
    short (1001.mp3), another (1002.ogg) and a text file saved as audio (1003.mp3)."""
    root.mkdir(parents=True)
    for track in range(1, n_good + 1):
        link(VIBE_ACE if track % 2 else HUNGARIAN, root / f"{track}.ogg")
    link(SPLEETER, root / "1001.mp3")
    link(TRUMPET, root / "1002.ogg")
    (root / "1003.mp3").write_text("<html>404 not found</html>\n" * 20)
    return root


def mel_rows(out: Path) -> dict[Any, dict]:
    """Track id -> shard row (every column), over all shard datasets of an output."""
    rows: dict[Any, dict] = {}
    for split in (*contract.SPLITS, contract.ALL_SPLIT):
        if (out / split).is_dir():
            for row in pq.read_table(str(out / split)).to_pylist():
                assert row["track_id"] not in rows, "a track is written once"
                rows[row["track_id"]] = {**row, "split": split}
    return rows


def assert_same_extraction(remote: Path, local: Path) -> None:
    remote_rows, local_rows = mel_rows(remote), mel_rows(local)
    assert sorted(remote_rows) == sorted(local_rows) == list(range(1, N_GOOD + 1))
    for track, row in local_rows.items():
        assert remote_rows[track] == row, f"track {track} differs"  # mel bytes included
    assert sorted_rows(remote / contract.ERRORS_DIR, ("track_id",)) == sorted_rows(
        local / contract.ERRORS_DIR, ("track_id",)
    )
    reasons = {r["track_id"]: r["reason"] for r in pq.read_table(str(remote / contract.ERRORS_DIR)).to_pylist()}
    assert reasons == {1001: errors.TOO_SHORT, 1002: errors.TOO_SHORT, 1003: errors.NOT_AUDIO}
    report, local_report = (json.loads((d / contract.REPORT_FILE).read_text()) for d in (remote, local))
    assert report["written"] == {contract.ALL_SPLIT: N_GOOD}
    for key in ("written", "failed", "computed", "tracks_in"):
        assert report[key] == local_report[key], key
    assert (remote / contract.PARAMS_FILE).read_text() == (local / contract.PARAMS_FILE).read_text()
    no_leftovers(remote)


@pytest.fixture(scope="module")
def audio(tmp_path_factory) -> Path:
    return audio_dir(tmp_path_factory.mktemp("extraction") / "audio", N_GOOD)


@pytest.fixture(scope="module")
def local_mels(spark, audio, tmp_path_factory) -> Path:
    """The local-mode output of jobs/extract_mels.py on ``audio`` (default task layout:
    the number of audio tasks changes nothing in the output)."""
    from jobs.extract_mels import main

    out = tmp_path_factory.mktemp("extraction-local") / "mels"
    assert main(["--audio-dir", str(audio), "--out", str(out), *local_sets()]) == 0
    return out


def wait_for_audio_stage(cluster: StandaloneCluster, driver, ui_port: int, timeout: float = 300.0) -> dict:
    """Poll the driver's REST API until the audio stage (FAULT_TASKS tasks) has finished
    some tasks and still has some to run; returns that stage's record."""

    def running_audio_stage():
        apps = app_json(ui_port)
        if not apps or apps[0]["name"] != "ctx-spark extract":
            return None
        for stage in app_json(ui_port, f"/{apps[0]['id']}/stages?status=active") or []:
            if stage["numTasks"] == FAULT_TASKS and stage["numCompleteTasks"] >= 2:
                return stage
        return None

    return cluster.wait_for(running_audio_stage, timeout, "the audio stage to be running", watch=driver, interval=0.1)


def test_extraction_on_the_cluster_equals_local_mode_even_when_the_worker_is_killed(cluster, audio, tmp_path, request):
    """The mel extraction on the cluster: in the middle of its audio stage, SIGKILL the
    worker with its executor and Python workers, then start a new worker. Spark reruns the
    lost tasks there (and recomputes the lost cached and shuffled blocks); the output must
    still be the local-mode output, with nothing left over from the killed attempts."""
    sets = ["--set", f"extract.partitions={FAULT_TASKS}"]
    remote = tmp_path / "cluster"
    ui_port = free_port()
    conf = {**CLUSTER_CONF, "spark.ui.enabled": "true", "spark.ui.port": str(ui_port)}
    driver = cluster.submit(
        "extract", EXTRACT_JOB, ["--audio-dir", str(audio), "--out", str(remote), *sets], conf, cwd=tmp_path
    )

    def inject_fault() -> list[tuple[int, str]]:
        wait_for_audio_stage(cluster, driver, ui_port)
        killed = cluster.kill_worker(cluster.workers[-1])
        cluster.start_worker()
        return killed

    try:
        with ThreadPoolExecutor(1) as pool:
            fault = pool.submit(inject_fault)
            local = request.getfixturevalue("local_mels")  # the reference, while the cluster works
            killed = fault.result()
        code = cluster.finish(driver, timeout=400)
    finally:
        driver.stop()
    log = driver.log.read_text(errors="replace")
    assert code == 0, failure(cluster, log)
    assert any(EXECUTOR_CLASS in command for _, command in killed), killed
    assert re.search(r"Lost executor \d+", log), failure(cluster, log)  # the driver saw the fault
    assert len(cluster.alive_workers()) == 1
    assert_same_extraction(remote, local)
    assert completed_app(cluster, "ctx-spark extract")["state"] == "FINISHED"
