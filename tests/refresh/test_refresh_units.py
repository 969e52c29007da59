"""The refresh's bookkeeping without Spark: the lock (live, dead and silent owners, real
processes), the pointer, run selection and retention on a local root."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time

import pytest

from ctx_spark.errors import ConcurrentRunError, InputError
from ctx_spark.refresh import current_snapshot
from ctx_spark.refresh import snapshots as S
from ctx_spark.refresh.lock import RunLock, pid_alive, stale_reason
from ctx_spark.refresh.store import LocalStore


def owner_record(
    pid: int, host: str = socket.gethostname(), run_id: str = "20250101T000000Z-other", heartbeat: float = None
) -> str:
    return json.dumps(
        {
            "host": host,
            "pid": pid,
            "started": "2025-01-01T00:00:00.000000Z",
            "run_id": run_id,
            "token": "their-token",
            "heartbeat": time.time() if heartbeat is None else heartbeat,
        }
    )


def lock_at(tmp_path, stale: float = 3600.0, beat: float = 60.0) -> RunLock:
    return RunLock(LocalStore(), str(tmp_path / "refresh.lock"), stale, beat)


@pytest.fixture
def live_process():
    """A real process other than this one (its pid is what a live owner's lock holds)."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def dead_pid():
    proc = subprocess.Popen(["sleep", "60"])
    proc.kill()
    proc.wait()  # reaped: the pid no longer exists
    assert not pid_alive(proc.pid)
    return proc.pid


def test_a_live_owner_refuses_with_its_details(tmp_path, live_process):
    path = tmp_path / "refresh.lock"
    path.write_text(owner_record(live_process.pid))
    with pytest.raises(ConcurrentRunError) as info:
        lock_at(tmp_path).acquire()
    message = str(info.value)
    for part in (
        str(path),
        f"pid {live_process.pid}",
        f"host {socket.gethostname()}",
        "run-id 20250101T000000Z-other",
        "started 2025-01-01T00:00:00",
    ):
        assert part in message
    assert json.loads(path.read_text())["token"] == "their-token"  # untouched


def test_a_dead_owner_on_this_host_is_taken_over(tmp_path, dead_pid):
    path = tmp_path / "refresh.lock"
    path.write_text(owner_record(dead_pid))
    lock = lock_at(tmp_path)
    lock.acquire()
    try:
        held = json.loads(path.read_text())
        assert held["pid"] == os.getpid() and held["token"] == lock.owner["token"]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["refresh.lock"]  # the stale one is gone
        lock.set_run_id("20250102T000000Z-mine")
        assert json.loads(path.read_text())["run_id"] == "20250102T000000Z-mine"
        with pytest.raises(ConcurrentRunError, match="another refresh run holds the lock"):
            lock_at(tmp_path).acquire()  # and it is ours now: a second run is refused
    finally:
        lock.release()
    assert not path.exists()


def test_another_host_counts_by_heartbeat_age(tmp_path):
    path = tmp_path / "refresh.lock"
    path.write_text(owner_record(1, host="elsewhere", heartbeat=time.time()))
    with pytest.raises(ConcurrentRunError, match="host elsewhere"):
        lock_at(tmp_path, stale=600).acquire()  # pid 1 there: cannot be checked from here
    old = time.time() - 700
    path.write_text(owner_record(1, host="elsewhere", heartbeat=old))
    os.utime(path, (old, old))
    lock = lock_at(tmp_path, stale=600)
    lock.acquire()
    assert json.loads(path.read_text())["host"] == socket.gethostname()
    lock.release()


def test_an_unreadable_lock_is_judged_by_its_age(tmp_path):
    path = tmp_path / "refresh.lock"
    path.write_text("{not json")
    with pytest.raises(ConcurrentRunError, match="unreadable owner record"):
        lock_at(tmp_path, stale=600).acquire()
    old = time.time() - 601
    os.utime(path, (old, old))
    assert stale_reason(None, old, 600).startswith("no heartbeat for 601 s")
    with lock_at(tmp_path, stale=600):
        assert path.exists()
    assert not path.exists()


def test_heartbeat_and_lost_lock(tmp_path):
    path = tmp_path / "refresh.lock"
    lock = lock_at(tmp_path, stale=1.0, beat=0.05)
    lock.acquire()
    try:
        first = json.loads(path.read_text())["heartbeat"]
        time.sleep(0.5)
        assert json.loads(path.read_text())["heartbeat"] > first
        lock.verify()
        path.write_text(owner_record(os.getpid()))  # another run took it over
        with pytest.raises(ConcurrentRunError, match="lost its lock"):
            lock.verify()
    finally:
        lock.release()
    assert json.loads(path.read_text())["token"] == "their-token"  # not ours: not deleted


def write_state(root, run_id: str, status: str, started: str, published_at: str = None, previous: str = None):
    state = {
        "run_id": run_id,
        "status": status,
        "started": started,
        "previous": previous,
        "fingerprint": {"digest": "x"},
    }
    if published_at:
        state["published_at"] = published_at
    (root / "snapshots" / run_id / "labels").mkdir(parents=True)
    (root / "snapshots" / run_id / "state.json").write_text(json.dumps(state))


def test_pointer_and_reader(tmp_path):
    store, layout = LocalStore(), S.Layout(str(tmp_path))
    assert current_snapshot(None, str(tmp_path)) is None
    S.write_current(store, layout, "20250101T000000Z-aaaaaa")
    assert (tmp_path / "current").read_text() == "20250101T000000Z-aaaaaa\n"
    assert current_snapshot(None, str(tmp_path)) == str(tmp_path / "snapshots" / "20250101T000000Z-aaaaaa")
    assert current_snapshot(None, tmp_path.as_uri()) == str(tmp_path / "snapshots" / "20250101T000000Z-aaaaaa")
    assert [p.name for p in tmp_path.iterdir()] == ["current"]  # no temporary file left
    (tmp_path / "current").write_text("../../etc\n")
    with pytest.raises(InputError, match="not a run-id"):
        current_snapshot(None, str(tmp_path))
    a, b = S.new_run_id(), S.new_run_id()
    assert a != b and S.RUN_ID.match(a) and len(a) == len("20250101T000000Z-aaaaaa")


def test_retention_and_resumable_runs(tmp_path):
    store, layout = LocalStore(), S.Layout(str(tmp_path))
    for day in range(1, 6):  # five published weekly runs
        write_state(tmp_path, f"r{day}", S.PUBLISHED, f"2025-01-0{day}T00:00:00Z", f"2025-01-0{day}T01:00:00Z")
    write_state(tmp_path, "dead-early", S.FAILED, "2025-01-04T12:00:00Z", previous="r4")  # before r5's publication
    write_state(tmp_path, "dead-late", S.RUNNING, "2025-01-05T02:00:00Z", previous="r5")  # after it: resumable
    write_state(tmp_path, "dead-late-other", S.FAILED, "2025-01-05T01:30:00Z", previous="r4")
    (tmp_path / "snapshots" / "no-state").mkdir()  # killed before its state was written
    listed = S.list_snapshots(store, layout, "r5")
    assert [s.run_id for s in listed][:2] == ["no-state", "r1"]
    assert S.resumable(listed, "r5").run_id == "dead-late"
    assert S.resumable(listed, "r3") is None
    # Keep 2: r5 (current) and r4; r1-r3 go, with the unfinished runs started before r5 was
    # published; the one started after it is kept (it may still be resumed).
    deleted = S.prune(store, layout, 2, "r5")
    assert deleted == sorted(["r1", "r2", "r3", "dead-early", "no-state"])
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["dead-late", "dead-late-other", "r4", "r5"]
    # (dead-late-other started at 01:30, after r5's publication at 01:00: kept too.)
    # The current snapshot is never deleted, even when it is not among the newest (the
    # pointer moved back by hand); the newest published one is kept as well.
    assert S.prune(store, layout, 1, "r4") == []
    assert S.prune(store, layout, 1, "r5") == ["r4"]


def test_sigterm_unwinds_the_job():
    """The job turns a scheduler's SIGTERM into SystemExit, so its finally blocks (state,
    lock) run; exit status 128 + 15 as a shell reports it."""
    import signal

    from ctx_spark.refresh.cli import exit_on_sigterm as _exit_on_sigterm

    with pytest.raises(SystemExit) as info:
        _exit_on_sigterm(signal.SIGTERM, None)
    assert info.value.code == 143


def test_retention_keeps_a_stage_directory_a_kept_snapshot_references(tmp_path):
    from ctx_spark.refresh import references

    store, layout = LocalStore(), S.Layout(str(tmp_path))

    def publish(day: int) -> None:
        write_state(tmp_path, f"r{day}", S.PUBLISHED, f"2025-01-0{day}T00:00:00Z", f"2025-01-0{day}T01:00:00Z")
        (tmp_path / "snapshots" / f"r{day}" / "labels" / "report.json").write_text(json.dumps({"stage": "label"}))
        (tmp_path / "snapshots" / f"r{day}" / "dataset").mkdir()
        (tmp_path / "snapshots" / f"r{day}" / "manifest.json").write_text("{}")

    for day in (1, 2, 3):
        publish(day)
    r1_labels = layout.snapshot("r1") + "/labels"
    r3_labels = layout.snapshot("r3") + "/labels"
    store.delete(r3_labels)
    references.write_reference(store, r3_labels, r1_labels, "r1", "k", "now")  # r3 reused r1's labels
    assert references.resolve(store, r3_labels) == r1_labels == references.resolve_path(r3_labels)
    assert references.resolve(store, layout.snapshot("r2") + "/labels") == layout.snapshot("r2") + "/labels"
    # Keep 1: r3. r2 goes; r1 holds r3's labels, so it is retired with them, not deleted.
    assert S.prune(store, layout, 1, "r3") == ["r1", "r2"]
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["r1", "r3"]
    assert sorted(p.name for p in (tmp_path / "snapshots" / "r1").iterdir()) == ["labels", "state.json"]
    retired = S.read_state(store, layout, "r1")
    assert retired["status"] == S.RETIRED and S.resumable(S.list_snapshots(store, layout, "r3"), "r3") is None
    assert S.prune(store, layout, 1, "r3") == []  # still referenced: nothing changes
    publish(4)  # r4 computed its own labels: nothing references r1 any more
    assert S.prune(store, layout, 1, "r4") == ["r1", "r3"]
    assert [p.name for p in (tmp_path / "snapshots").iterdir()] == ["r4"]


def test_stage_keys_follow_settings_inputs_and_upstream():
    from ctx_spark.refresh.references import stage_key

    config = {"label": {"min_playlists": 1}, "contexts": ["a"], "dataset": {"seed": 1}}
    inputs = {"playlists": {"digest": "p"}, "playlist_tracks": {"digest": "q"}, "tracks": {"digest": "t"}}
    label = stage_key("label", config, inputs, {})
    assert label == stage_key("label", config, inputs, {}) and label is not None
    assert stage_key("label", {**config, "label": {"min_playlists": 2}}, inputs, {}) != label
    assert stage_key("label", {**config, "dataset": {"seed": 2}}, inputs, {}) == label  # not its section
    assert stage_key("label", config, {**inputs, "tracks": {"digest": "u"}}, {}) != label
    dataset = stage_key("dataset", config, inputs, {"label": label})
    assert dataset != stage_key("dataset", config, inputs, {"label": "other"})
    assert stage_key("dataset", config, inputs, {"label": None}) is None  # an earlier stage without a key
    assert stage_key("extract", config, inputs, {"label": label, "dataset": dataset}) is None  # no audio listing
