"""The mel store across weeks, on a real local[2] session: a root of the layout before the
store is imported without decoding, unchanged weeks are reused by reference, a week most
tracks leave compacts the store, retention keeps what kept snapshots reference, and the
garbage collector deletes the rest only when no live run may use it, resumably."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pyarrow as pa
import pytest

from ctx_spark.cli import run_main
from ctx_spark.shards.reader import ShardSplit, open_split
from ctx_spark.shards.store_reader import StoreSplit
from jobs.refresh_catalogue import main
from tests.conftest import write_parquet_table
from tests.refresh_helpers import SETTINGS, read_outputs, write_week1, write_week2

STAGE_DIRS = ("labels", "dataset", "mels")
#: Week 3: every playlist but "gym" is gone, so only tracks 7 and 12 stay labelled.
WEEK3_PLAYLISTS = {6: ("gym", [7, 12])}


def refresh(root: Path, catalogue: Path, *extra: str) -> int:
    args = ["--catalogue", str(catalogue), "--root", str(root)]
    for item in SETTINGS + extra:
        args += ["--set", item]
    return run_main(main, args)


def gc(root: Path) -> int:
    args = ["--root", str(root), "--gc"]
    for item in SETTINGS + ("refresh.store.gc_grace_seconds=0",):
        args += ["--set", item]
    return run_main(main, args)


def current(root: Path) -> str:
    return (root / "current").read_text().strip()


def manifest(root: Path, run_id: str) -> dict:
    return json.loads((root / "snapshots" / run_id / "manifest.json").read_text())


def write_week3(catalogue: Path, week2: Path) -> Path:
    """Week 2's tracks and audio (hard links: same fingerprints) with one playlist left."""
    ids = pa.int64()
    write_parquet_table(
        catalogue / "playlists" / "part-0.parquet",
        {"playlist_id": [6], "title": ["gym"]},
        pa.schema([("playlist_id", ids), ("title", pa.string())]),
    )
    write_parquet_table(
        catalogue / "playlist_tracks" / "part-0.parquet",
        {"playlist_id": [6, 6], "track_id": [7, 12]},
        pa.schema([("playlist_id", ids), ("track_id", ids)]),
    )
    shutil.copytree(week2 / "tracks", catalogue / "tracks", copy_function=os.link)
    shutil.copytree(week2 / "audio", catalogue / "audio", copy_function=os.link)
    return catalogue


def data_files(root: Path) -> list[Path]:
    return sorted((root / "melstore").glob("*/data/*/*/*.parquet"))


@pytest.fixture(scope="module")
def history(spark, tmp_path_factory):
    base = tmp_path_factory.mktemp("store")
    week1 = write_week1(base / "week1")
    week2 = write_week2(base / "week2", week1)
    week3 = write_week3(base / "week3", week2)
    root = base / "root"
    record: dict = {"root": root, "runs": []}

    def week(catalogue: Path, *extra: str) -> str:
        assert refresh(root, catalogue, *extra) == 0
        run_id = current(root)
        record["runs"].append(run_id)
        record[run_id] = {"manifest": manifest(root, run_id), "outputs": read_outputs(root / "snapshots" / run_id)}
        record[run_id]["files"] = data_files(root)
        snapshot = root / "snapshots" / run_id
        record[run_id]["reader"] = type(open_split(str(snapshot / "mels"), "train"))
        record[run_id]["listing"] = {n: sorted(p.name for p in (snapshot / n).iterdir()) for n in STAGE_DIRS}
        return run_id

    week(week1, "refresh.store.enabled=false")  # the layout before the store
    week(week2)  # imports week 1's spectrograms
    week(week2)  # nothing changed
    week(week3, "refresh.store.gc_grace_seconds=0")  # most tracks leave: compaction
    week(week3, "refresh.keep_snapshots=1", "refresh.store.gc_grace_seconds=0")  # retention, then gc
    return record


def test_the_layout_before_the_store_stays_readable_and_is_imported(history):
    old, new = history["runs"][:2]
    assert history[old]["reader"] is ShardSplit and history[new]["reader"] is StoreSplit
    assert history[old]["files"] == [] and history[old]["manifest"]["inputs"]["mel_store"] is None
    m = history[new]["manifest"]
    # Week 2: 6 unchanged tracks imported from week 1's shards (no decoding), 5 decoded.
    assert m["changes"]["mels"] == {"computed": 5, "reused": 6, "from_store": 0, "copied": 0, "imported": 6}
    before, after = history[old]["outputs"]["mels"], history[new]["outputs"]["mels"]
    same = {t: mel for (_, t), mel in before.items()}
    assert all(after[k] == same[k[1]] for k in after if k[1] in (1, 3, 4, 5, 7, 8))


def test_an_unchanged_week_is_reused_by_reference(history):
    second, third = history["runs"][1:3]
    m = history[third]["manifest"]
    assert {name: s["reused_from"] for name, s in m["stages"].items()} == dict.fromkeys(m["stages"], second)
    assert m["stages"]["extract"]["rows"]["computed"] == 0 and m["stages"]["extract"]["rows"]["written"] == 11
    assert m["changes"]["labels"]["tracks_added"] == 0
    # each stage directory: a report naming the data, nothing else
    assert history[third]["listing"] == dict.fromkeys(STAGE_DIRS, ["report.json"])
    assert history[third]["files"] == history[second]["files"]  # nothing written to the store
    assert history[third]["outputs"]["mels"] == history[second]["outputs"]["mels"]
    assert history[third]["reader"] is StoreSplit  # followed to the data


def test_a_week_most_tracks_leave_compacts_the_store(history):
    fourth = history["runs"][3]
    m = history[fourth]["manifest"]
    # Tracks 7 and 12 sit in files the new snapshot uses less than half of: copied forward.
    assert m["changes"]["mels"] == {"computed": 0, "reused": 2, "from_store": 0, "copied": 2, "imported": 0}
    assert sorted(t for _, t in history[fourth]["outputs"]["mels"]) == [7, 12]
    second = history["runs"][1]
    before = {t: mel for (_, t), mel in history[second]["outputs"]["mels"].items()}
    assert all(mel == before[t] for (_, t), mel in history[fourth]["outputs"]["mels"].items())  # same bytes
    new = set(history[fourth]["files"]) - set(history[second]["files"])
    assert new and m["stages"]["extract"]["rows"]["store_bytes_written"] == sum(p.stat().st_size for p in new)


def test_retention_keeps_what_a_kept_snapshot_references(history):
    root, runs = history["root"], history["runs"]
    fourth, fifth = runs[3], runs[4]
    m = history[fifth]["manifest"]
    assert {name: s["reused_from"] for name, s in m["stages"].items()} == dict.fromkeys(m["stages"], fourth)
    # Keep 1: the fifth snapshot; the fourth holds the data it references, so it is retired,
    # not deleted; the first three go.
    assert m["pruned"] == sorted(runs[:4])
    assert sorted(p.name for p in (root / "snapshots").iterdir()) == sorted([fourth, fifth])
    retired = root / "snapshots" / fourth
    assert sorted(p.name for p in retired.iterdir()) == ["dataset", "labels", "mels", "state.json"]
    assert json.loads((retired / "state.json").read_text())["status"] == "retired"
    assert read_outputs(root / "snapshots" / fifth)["mels"] == history[fourth]["outputs"]["mels"]


def test_gc_waits_for_live_runs_and_resumes_an_interrupted_sweep(history):
    root, (second, fourth, fifth) = history["root"], (history["runs"][1], history["runs"][3], history["runs"][4])
    gc_report = history[fifth]["manifest"]["gc"]
    # Week 2's files are used by no snapshot any more: withdrawn by the fifth run's
    # collection, not deleted (that run, live then, had started before the tombstone).
    unused = set(history[second]["files"])
    assert gc_report["marked"]["files"] == len(unused) and gc_report["swept"]["files"] == 0
    assert gc_report["deferred"] == 1 and all(p.exists() for p in unused)
    # A live run that started before the tombstone: still nothing deleted.
    holder = subprocess.Popen(["sleep", "60"])
    try:
        (root / "refresh.lock").write_text(
            json.dumps(
                {
                    "host": socket.gethostname(),
                    "pid": holder.pid,
                    "started": "2020-01-01T00:00:00.000000Z",
                    "run_id": "x",
                    "token": "t",
                    "heartbeat": time.time(),
                }
            )
        )
        assert gc(root) == 0 and all(p.exists() for p in unused)
    finally:
        holder.kill()
        holder.wait()
        (root / "refresh.lock").unlink()
    # A sweep killed after deleting some files leaves its tombstone: the next one finishes.
    first_gone = sorted(unused)[0]
    first_gone.unlink()
    assert gc(root) == 0
    assert data_files(root) == sorted(set(history[fourth]["files"]) - set(history[second]["files"]))
    assert list((root / "melstore").glob("*/gc/tombstones-*")) == []
    assert read_outputs(root / "snapshots" / fifth)["mels"] == history[fourth]["outputs"]["mels"]
