"""jobs/refresh_catalogue.py end to end on a real local[2] session, a tiny two-week
catalogue (tests/refresh_helpers.py) and real audio: publication, a failing stage, resume,
incremental mels, the manifest's diff, a run killed with SIGKILL, the lock, retention."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import pandas as pd
import pyarrow.parquet as pq
import pytest

from ctx_spark.cli import run_main
from ctx_spark.refresh import current_snapshot
from ctx_spark.refresh.chain import InjectedFailure
from ctx_spark.refresh.lock import RunLock
from ctx_spark.refresh.store import HadoopStore
from jobs.refresh_catalogue import main
from tests.conftest import ROOT
from tests.refresh_helpers import SETTINGS, read_outputs, write_week1, write_week1_with_audio_column, write_week2

NAMES = (
    "car",
    "chill",
    "club",
    "dance",
    "gym",
    "happy",
    "night",
    "party",
    "relax",
    "running",
    "sad",
    "sleep",
    "summer",
    "work",
    "workout",
)
WEEK1_LABELS = {
    1: ["party", "summer"],
    2: ["party", "summer"],
    3: ["chill", "night", "party", "summer"],
    4: ["chill", "night"],
    5: ["chill", "night", "sad"],
    6: ["sad"],
    7: ["workout"],
    8: ["workout"],
}
WEEK2_LABELS = {
    1: ["party", "summer"],
    2: ["party", "summer"],
    3: ["chill", "night", "party", "summer"],
    4: ["chill", "happy", "night", "summer"],
    5: ["chill", "night"],
    7: ["gym", "workout"],
    8: ["workout"],
    9: ["party", "summer"],
    10: ["chill", "night"],
    11: ["workout"],
    12: ["gym"],
}


def argv(root: Path, catalogue: Path, *extra: str, run_id: Optional[str] = None) -> list[str]:
    args = ["--catalogue", str(catalogue), "--root", str(root)] + (["--run-id", run_id] if run_id else [])
    for item in SETTINGS + extra:
        args += ["--set", item]
    return args


def refresh(root: Path, catalogue: Path, *extra: str, run_id: Optional[str] = None) -> int:
    return run_main(main, argv(root, catalogue, *extra, run_id=run_id))


def refresh_gc(root: Path, *extra: str) -> int:
    args = ["--root", str(root), "--gc"]
    for item in SETTINGS + extra:
        args += ["--set", item]
    return run_main(main, args)


def current_id(root: Path) -> str:
    return (root / "current").read_text().strip()


def runs(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "snapshots").iterdir())


def manifest(root: Path, run_id: str) -> dict:
    return json.loads((root / "snapshots" / run_id / "manifest.json").read_text())


def labels_of(outputs: dict) -> dict[int, list[str]]:
    return {int(r.track_id): list(r.contexts) for r in outputs["labels"].itertuples()}


@pytest.fixture(scope="module")
def catalogues(tmp_path_factory):
    base = tmp_path_factory.mktemp("catalogues")
    week1 = write_week1(base / "week1")
    return week1, write_week2(base / "week2", week1)


@pytest.fixture(scope="module")
def weekly(spark, catalogues, tmp_path_factory):
    """One root through three runs: week 1 (published); week 2 with a stage failing after
    labelling (the hook); week 2 again (resumes the failed run)."""
    week1, week2 = catalogues
    root = tmp_path_factory.mktemp("weekly")
    record = {"root": root}
    assert refresh(root, week1) == 0
    record["first"] = first = current_id(root)
    record["first_outputs"] = read_outputs(root / "snapshots" / first)
    record["first_manifest"] = manifest(root, first)
    record["first_listing"] = sorted(p.name for p in (root / "snapshots" / first).iterdir())
    with pytest.raises(InjectedFailure, match="fail_after_stage=label"):
        refresh(root, week2, "refresh.fail_after_stage=label")
    (record["failed"],) = [r for r in runs(root) if r != first]
    failed_dir = root / "snapshots" / record["failed"]
    record["after_failure"] = {
        "current": current_id(root),
        "manifest": manifest(root, record["failed"]),
        "state": json.loads((failed_dir / "state.json").read_text()),
        "listing": sorted(p.name for p in failed_dir.iterdir()),
        "lock": (root / "refresh.lock").exists(),
    }
    assert refresh(root, week2) == 0
    record["second"] = second = current_id(root)
    record["second_outputs"] = read_outputs(root / "snapshots" / second)
    record["second_manifest"] = manifest(root, second)
    record["reader"] = current_snapshot(None, str(root))
    return record


def test_first_run_publishes_a_complete_snapshot(weekly):
    m, root, first = weekly["first_manifest"], weekly["root"], weekly["first"]
    assert weekly["first_listing"] == ["dataset", "labels", "manifest.json", "mels", "report", "state.json"]
    assert m["report"]["path"] == str(root / "snapshots" / first / "report" / "index.html")
    assert (root / "snapshots" / first / "report" / "index.html").is_file()
    assert m["run_id"] == first and m["status"] == "published" and m["attempt"] == 1
    assert m["previous_snapshot"] is None and m["changes"]["labels"] is None
    assert m["started"] < m["finished"] and m["code"]["version"] and m["config"]["label"]["min_playlists"] == 1
    assert m["inputs"]["audio_source"] == "dir" and m["inputs"]["fingerprint"]["inputs"]["audio"]["files"] == 8
    assert m["inputs"]["mel_store"] == str(root / "melstore") and (root / "melstore").is_dir()
    # the snapshot references the store: no spectrogram in its mels/
    mels = root / "snapshots" / first / "mels"
    assert "mel" not in pq.read_schema(next((mels / "train").glob("*.parquet"))).names
    assert (mels / "mel_store.json").is_file()
    assert m["inputs"]["fingerprint"]["inputs"]["playlists"]["files"] == 1
    assert m["stages"]["label"]["rows"]["tracks_labelled"] == 8
    assert m["stages"]["label"]["rows"]["read"] == {"playlists": 5, "playlist_tracks": 12, "tracks": 8}
    assert m["stages"]["dataset"]["rows"]["tracks"] == 8
    assert m["stages"]["extract"]["rows"]["computed"] == 8 and m["stages"]["extract"]["rows"]["reused"] == 0
    assert all(s["seconds"] > 0 and s["computed"] and s["reused_from"] is None for s in m["stages"].values())
    assert labels_of(weekly["first_outputs"]) == WEEK1_LABELS
    assert sorted(t for _, t in weekly["first_outputs"]["mels"]) == list(range(1, 9))
    assert not (root / "refresh.lock").exists()


def test_a_failing_stage_leaves_the_previous_snapshot_current(weekly):
    after = weekly["after_failure"]
    assert after["current"] == weekly["first"] and not after["lock"]
    assert after["listing"] == ["labels", "manifest.json", "state.json"]
    assert after["state"]["status"] == "failed" and after["state"]["previous"] == weekly["first"]
    assert after["manifest"]["status"] == "failed" and after["manifest"]["failed_stage"] == "label"
    assert "InjectedFailure" in after["manifest"]["error"] and list(after["manifest"]["stages"]) == ["label"]


def test_next_run_resumes_it_and_reuses_unchanged_mels(weekly):
    m, second = weekly["second_manifest"], weekly["second"]
    assert second == weekly["failed"]  # the failed run was resumed, not restarted
    assert m["attempt"] == 2 and m["stages_from_earlier_attempts"] == ["label"]
    assert m["previous_snapshot"] == weekly["first"] and weekly["reader"].endswith(f"/snapshots/{second}")
    assert labels_of(weekly["second_outputs"]) == WEEK2_LABELS
    # Dataset tracks 1-5, 7-12; 6 lost its only label. Mels of 1, 3, 4, 5, 7, 8 come from
    # week 1; 2 (new mtime) and 9-12 (new) are decoded.
    assert m["changes"]["mels"] == {"computed": 5, "reused": 6, "from_store": 6, "copied": 0, "imported": 0}
    assert m["stages"]["extract"]["rows"]["written"] == 11
    assert not any(s["reused_from"] for s in m["stages"].values())  # new tables: every stage ran
    first_mels = {t: mel for (_, t), mel in weekly["first_outputs"]["mels"].items()}
    second_mels = {t: mel for (_, t), mel in weekly["second_outputs"]["mels"].items()}
    assert sorted(second_mels) == [1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12]
    assert all(second_mels[t] == first_mels[t] for t in (1, 2, 3, 4, 5, 7, 8))  # same clip, same bytes
    # Hand-counted from the tables in tests/refresh_helpers.py.
    labels = m["changes"]["labels"]
    assert (labels["tracks_added"], labels["tracks_removed"], labels["tracks_relabelled"]) == (4, 1, 3)
    gained = {"summer": 2, "party": 1, "chill": 1, "night": 1, "workout": 1, "gym": 2, "happy": 1}
    assert labels["labels_gained"] == {n: gained.get(n, 0) for n in NAMES}
    assert labels["labels_lost"] == {n: (2 if n == "sad" else 0) for n in NAMES}


def test_print_current(weekly, capsys):
    assert run_main(main, ["--root", str(weekly["root"]), "--print-current"]) == 0
    assert capsys.readouterr().out.strip() == weekly["reader"]
    assert run_main(main, ["--root", str(weekly["root"] / "nothing"), "--print-current"]) == 1


def test_the_run_id_of_a_published_snapshot_is_refused(weekly, catalogues, capsys):
    root = weekly["root"]
    before = runs(root)
    assert refresh(root, catalogues[1], run_id=weekly["second"]) == 2
    assert f"snapshot {root}/snapshots/{weekly['second']} is published" in capsys.readouterr().err
    assert runs(root) == before and current_id(root) == weekly["second"]


def test_a_bad_catalogue_or_model_fails_before_any_work(spark, catalogues, tmp_path, capsys):
    assert refresh(tmp_path, catalogues[1], f"refresh.model={tmp_path / 'no-model'}") == 2
    assert f"refresh.model: {tmp_path / 'no-model'} holds no exported model" in capsys.readouterr().err
    assert refresh(tmp_path, tmp_path / "nowhere") == 2
    assert (
        f"table 'playlists' is missing (expected Parquet at {tmp_path / 'nowhere' / 'playlists'})"
        in capsys.readouterr().err
    )
    assert refresh(tmp_path, catalogues[1], "refresh.audio_source=column") == 2
    assert "refresh.audio_source is 'column' but it has no 'audio' column" in capsys.readouterr().err
    assert runs(tmp_path) == [] and not (tmp_path / "refresh.lock").exists()


def test_a_live_lock_refuses_a_second_run(spark, catalogues, tmp_path, capsys):
    holder = subprocess.Popen(["sleep", "60"])  # a real other process owns the lock
    try:
        lock = tmp_path / "refresh.lock"
        lock.write_text(
            json.dumps(
                {
                    "host": socket.gethostname(),
                    "pid": holder.pid,
                    "started": "2025-01-01T00:00:00Z",
                    "run_id": "20250101T000000Z-theirs",
                    "token": "t",
                    "heartbeat": time.time(),
                }
            )
        )
        assert refresh(tmp_path, catalogues[0]) == 2
        err = capsys.readouterr().err
        assert f"another refresh run holds the lock {lock}" in err and f"pid {holder.pid}" in err
        assert "run-id 20250101T000000Z-theirs" in err
        assert json.loads(lock.read_text())["token"] == "t" and runs(tmp_path) == []
    finally:
        holder.kill()
        holder.wait()


def test_killed_run_resumes_to_the_uninterrupted_result(spark, catalogues, weekly, tmp_path):
    """Week 1 on a fresh root (its audio named by a column of ``tracks`` this time):
    stopped after the dataset stage (hook), then a separate process resuming it is
    SIGKILLed during extraction (leaving its lock behind), then a third run resumes and
    must publish what the uninterrupted week-1 run published."""
    week1 = write_week1_with_audio_column(tmp_path / "week1-column", catalogues[0])
    root = tmp_path / "root"
    run_id = "20250106T030000Z-test"
    with pytest.raises(InjectedFailure):
        refresh(root, week1, "refresh.fail_after_stage=dataset", run_id=run_id)
    assert runs(root) == [run_id]
    state_file = root / "snapshots" / run_id / "state.json"
    log = open(tmp_path / "killed.log", "w")
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    command = [sys.executable, "-m", "jobs.refresh_catalogue", *argv(root, week1, run_id=run_id)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.time() + 400
        while "stage decode, compute and write store files: started" not in (tmp_path / "killed.log").read_text():
            assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
            assert time.time() < deadline, "the resumed run did not reach extraction"
            time.sleep(0.2)
        time.sleep(0.5)  # decoding 8 tracks takes seconds
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the process group: python, its JVM, its workers
        proc.wait()
        log.close()
    assert json.loads(state_file.read_text())["attempts"] == 2
    assert json.loads((root / "refresh.lock").read_text())["pid"] == proc.pid  # left behind
    assert not (root / "snapshots" / run_id / "mels").exists() and not (root / "current").exists()
    # What a kill during the writes leaves (the kill above may land before them): a half
    # written refs file in the stage's staging directory, a half-written store file, and
    # a complete store file of a batch that never got referenced.
    leftover = root / "snapshots" / run_id / "._staging-mels-0badc0de" / "train"
    leftover.mkdir(parents=True)
    (leftover / "part-00000-000.parquet").write_bytes(b"half a file")
    (digest,) = [p for p in (root / "melstore").iterdir() if p.is_dir()]
    batch = digest / "data" / "20250106T030500000000Z-dead00" / "train"
    batch.mkdir(parents=True)
    (batch / ".part-00003-000.parquet.0badc0de.tmp").write_bytes(b"half a store file")
    first_store = weekly["root"] / "melstore" / digest.name / "data"
    orphan = next(first_store.glob("*/train/*.parquet"))
    shutil.copy(orphan, batch / "part-00003-000.parquet")
    # The store's garbage collector, run now (the killed run's lock names a dead process),
    # withdraws and deletes what no snapshot references; the resumed run is unaffected.
    assert refresh_gc(root, "refresh.store.gc_grace_seconds=0") == 0
    assert not (digest / "data" / "20250106T030500000000Z-dead00").exists()

    assert refresh(root, week1) == 0  # takes the dead process's lock over; finds the run itself
    m = manifest(root, run_id)
    assert current_id(root) == run_id and m["attempt"] == 3 and m["inputs"]["audio_source"] == "column"
    assert m["stages_from_earlier_attempts"] == ["label", "dataset"]
    assert not (root / "refresh.lock").exists()
    assert [p.name for p in (root / "snapshots" / run_id).iterdir() if p.name.startswith(".")] == []
    resumed, uninterrupted = read_outputs(root / "snapshots" / run_id), weekly["first_outputs"]
    pd.testing.assert_frame_equal(resumed["labels"], uninterrupted["labels"])
    pd.testing.assert_frame_equal(resumed["dataset"], uninterrupted["dataset"])
    assert resumed["mels"].keys() == uninterrupted["mels"].keys()
    assert all(resumed["mels"][k] == uninterrupted["mels"][k] for k in resumed["mels"])


def test_changed_inputs_start_a_new_run_and_old_snapshots_are_pruned(weekly, catalogues):
    root, week2 = weekly["root"], catalogues[1]
    with pytest.raises(InjectedFailure):  # an unfinished run under other settings
        refresh(root, week2, "dataset.seed=7", "refresh.fail_after_stage=label")
    (other,) = [r for r in runs(root) if r not in (weekly["first"], weekly["second"])]
    assert refresh(root, week2, "refresh.keep_snapshots=2") == 0
    newest = current_id(root)
    assert newest not in (other, weekly["second"])  # not resumed: its fingerprint differs
    m = manifest(root, newest)
    assert m["attempt"] == 1 and m["previous_snapshot"] == weekly["second"]
    # Nothing changed since the second run: every stage is reused by reference.
    assert {n: s["reused_from"] for n, s in m["stages"].items()} == dict.fromkeys(m["stages"], weekly["second"])
    assert m["changes"]["mels"] == {"computed": 0, "reused": 11, "from_store": 11, "copied": 0, "imported": 0}
    labels = m["changes"]["labels"]
    assert (labels["tracks_added"], labels["tracks_removed"], labels["tracks_relabelled"]) == (0, 0, 0)
    assert set(labels["labels_gained"].values()) == {0} and set(labels["labels_lost"].values()) == {0}
    # Kept: the two newest published; gone: week 1 (beyond 2) and the unfinished run,
    # started before the newest publication.
    assert m["pruned"] == sorted([weekly["first"], other])
    assert runs(root) == sorted([weekly["second"], newest])


def test_hadoop_store_bookkeeping(spark, tmp_path):
    """The same operations through Hadoop's FileSystem API (file:// here; hdfs:// etc. on a
    cluster)."""
    store = HadoopStore(spark)
    base = tmp_path.as_uri()
    assert store.create_new(f"{base}/a", "one") and not store.create_new(f"{base}/a", "two")
    assert store.read_text(f"{base}/a") == "one"
    store.write_text(f"{base}/a", "three")
    assert store.read_text(f"{base}/a") == "three" and store.list_dir(base) == ["a"]
    assert abs(store.mtime(f"{base}/a") - time.time()) < 60 and store.mtime(f"{base}/b") is None
    assert store.rename(f"{base}/a", f"{base}/b") and not store.rename(f"{base}/a", f"{base}/c")
    lock = RunLock(store, f"{base}/refresh.lock", 600, 60)
    with lock:
        with pytest.raises(Exception, match="another refresh run holds the lock"):
            RunLock(store, f"{base}/refresh.lock", 600, 60).acquire()
    assert sorted(os.listdir(tmp_path)) == ["b"]


@pytest.mark.slow
def test_a_configured_model_scores_the_snapshot(weekly, catalogues, tmp_path):
    """With refresh.model set, a fourth stage scores the snapshot's mels (an untrained
    two-layer model: the chaining is under test, not the model)."""
    from ctx_spark.audio.params import MelParams
    from ctx_spark.config import from_mapping, load_config
    from training.model import build_model, export_meta, write_export
    from training.settings import ModelSettings

    cfg = load_config()
    model_settings = from_mapping(
        ModelSettings, {**cfg.data["train"]["model"], "conv_filters": [4], "dense_units": 8}, "train.model"
    )
    params = cfg.section("audio", MelParams)
    n_mels, n_frames = params.shape
    write_export(
        str(tmp_path / "model"),
        build_model(model_settings, (n_frames, n_mels), len(NAMES), seed=1),
        export_meta(params, NAMES),
    )
    root = weekly["root"]
    assert refresh(root, catalogues[1], f"refresh.model={tmp_path / 'model'}", "refresh.keep_snapshots=4") == 0
    run_id = current_id(root)
    m = manifest(root, run_id)
    assert list(m["stages"]) == ["label", "dataset", "extract", "score"]
    assert m["stages"]["score"]["rows"] == {"scored": 11, "reused": 0, "unusable": 0}
    assert m["inputs"]["fingerprint"]["inputs"]["model"]["files"] == 2
    scores = pd.read_parquet(root / "snapshots" / run_id / "scores" / "track_scores")
    assert sorted(scores["track_id"]) == [1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12]
