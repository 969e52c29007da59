"""One refresh run at a time per root: an exclusively created lock file with a heartbeat.

The lock ``R/refresh.lock`` holds its owner as JSON (host, pid, started, run-id, a random
token, the last heartbeat). It is created atomically (``os.link`` of a complete temporary
file on a local root, ``FileSystem.create(overwrite=false)`` on Hadoop filesystems), so two
runs cannot both create it. A daemon thread rewrites it every ``lock_heartbeat_seconds``
while the run lives. A lock is stale, and taken over with a warning, when its owner ran on
this host and its process is gone, or when its heartbeat (the later of the file's
modification time and the recorded heartbeat) is older than ``lock_stale_seconds`` (the
only test possible for an owner on another host; hosts sharing a root need clocks in sync
to well within that). A takeover first renames the stale file to a unique name, so of two
runs taking over the same stale lock only one succeeds.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from typing import Any, Optional

from ctx_spark.errors import ConcurrentRunError
from ctx_spark.logs import get_logger
from ctx_spark.refresh.store import utc_now

log = get_logger("refresh")

LOCK_FILE = "refresh.lock"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True  # no /proc (macOS): kill(0) said it exists


def stale_reason(
    owner: Optional[dict[str, Any]],
    mtime: Optional[float],
    stale_seconds: float,
    now: Optional[float] = None,
    host: Optional[str] = None,
) -> Optional[str]:
    """Why a lock may be taken over, or None while its owner looks alive.

    Args:
        owner: the parsed lock file (None when unreadable).
        mtime: the lock file's modification time (s since the epoch), None when unknown.
    """
    now = time.time() if now is None else now
    host = socket.gethostname() if host is None else host
    if owner and owner.get("host") == host and isinstance(owner.get("pid"), int) and not pid_alive(owner["pid"]):
        return f"its process {owner['pid']} is gone from this host"
    beat = max(mtime or 0.0, float((owner or {}).get("heartbeat") or 0.0))
    age = now - beat
    if age > stale_seconds:
        return f"no heartbeat for {age:.0f} s (refresh.lock_stale_seconds: {stale_seconds:g})"
    return None


def describe(path: str, owner: Optional[dict[str, Any]], mtime: Optional[float]) -> str:
    """The lock file and its owner, for messages."""
    if not owner:
        return f"{path} (unreadable owner record)"
    beat = max(mtime or 0.0, float(owner.get("heartbeat") or 0.0))
    return (
        f"{path}: host {owner.get('host')}, pid {owner.get('pid')}, started {owner.get('started')}, "
        f"run-id {owner.get('run_id') or '(not chosen yet)'}, last heartbeat {time.time() - beat:.0f} s ago"
    )


class RunLock:
    """The lock of one root; use as a context manager (released in ``finally``)."""

    def __init__(self, store, path: str, stale_seconds: float, heartbeat_seconds: float) -> None:
        self.store = store
        self.path = path
        self.stale_seconds = stale_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.owner: dict[str, Any] = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": utc_now(),
            "run_id": None,
            "token": uuid.uuid4().hex,
            "heartbeat": time.time(),
        }
        self.held = False
        self.lost: Optional[str] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._write_lock = threading.Lock()

    def _text(self) -> str:
        return json.dumps(self.owner, sort_keys=True) + "\n"

    def _read(self) -> tuple[Optional[dict[str, Any]], Optional[float], bool]:
        """(owner or None when unreadable, mtime, whether the file exists)."""
        mtime = self.store.mtime(self.path)
        try:
            owner = json.loads(self.store.read_text(self.path))
            return (owner if isinstance(owner, dict) else None), mtime, True
        except FileNotFoundError:
            return None, None, False
        except ValueError:
            return None, mtime, mtime is not None

    def acquire(self) -> None:
        """Take the lock, taking over a stale one.

        Raises:
            ConcurrentRunError: a live run holds it (the message names its owner).
        """
        for _ in range(5):
            self.owner["heartbeat"] = time.time()
            if self.store.create_new(self.path, self._text()):
                self.held = True
                self._start_heartbeat()
                log.info("lock %s taken (pid %d on %s)", self.path, self.owner["pid"], self.owner["host"])
                return
            owner, mtime, exists = self._read()
            if not exists:
                continue  # released meanwhile: try again
            why = stale_reason(owner, mtime, self.stale_seconds)
            if why is None:
                raise ConcurrentRunError(
                    f"another refresh run holds the lock {describe(self.path, owner, mtime)}. Wait for it to "
                    f"finish; a lock whose process is gone from its host, or whose heartbeat is older than "
                    f"refresh.lock_stale_seconds ({self.stale_seconds:g} s), is taken over automatically"
                )
            log.warning("taking over the stale lock %s: %s", describe(self.path, owner, mtime), why)
            aside = f"{self.path}.stale-{uuid.uuid4().hex[:8]}"
            if self.store.rename(self.path, aside):
                moved, _, _ = self._read_at(aside)
                if owner is not None and (moved or {}).get("token") != owner.get("token"):
                    # Another run replaced the stale lock between our read and our rename:
                    # that one is live; put it back and look again.
                    self.store.rename(aside, self.path)
                    continue
                self.store.delete(aside)
        raise ConcurrentRunError(f"could not take the lock {self.path}: other runs keep taking it")

    def _read_at(self, path: str):
        try:
            return json.loads(self.store.read_text(path)), None, True
        except (FileNotFoundError, ValueError):
            return None, None, False

    def set_run_id(self, run_id: str) -> None:
        """Record the run-id the holder works on (shown to a refused run)."""
        self.owner["run_id"] = run_id
        self._beat()

    def _beat(self) -> None:
        with self._write_lock:
            owner, _, exists = self._read()
            if not exists or (owner or {}).get("token") != self.owner["token"]:
                self.lost = describe(self.path, owner, None) if exists else f"{self.path} was deleted"
                return
            self.owner["heartbeat"] = time.time()
            self.store.write_text(self.path, self._text())

    def _start_heartbeat(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.heartbeat_seconds):
                try:
                    self._beat()
                except Exception as exc:  # a flaky filesystem: the next beat may succeed
                    log.warning("lock heartbeat failed: %s", exc)
                if self.lost:
                    log.error("lock lost: %s", self.lost)
                    return

        self._thread = threading.Thread(target=loop, name="refresh-lock-heartbeat", daemon=True)
        self._thread.start()

    def verify(self) -> None:
        """Raise ConcurrentRunError when another run took the lock over (this run was
        frozen past lock_stale_seconds); called before each stage and before publishing."""
        if self.lost is None:
            owner, mtime, exists = self._read()
            if not exists:
                self.lost = f"{self.path} was deleted"
            elif (owner or {}).get("token") != self.owner["token"]:
                self.lost = describe(self.path, owner, mtime)
        if self.lost:
            raise ConcurrentRunError(f"this run lost its lock ({self.lost}); stopping without publishing")

    def release(self) -> None:
        """Stop the heartbeat and delete the lock if this run still owns it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if not self.held:
            return
        self.held = False
        owner, _, exists = self._read()
        if exists and (owner or {}).get("token") == self.owner["token"]:
            self.store.delete(self.path)
            log.info("lock %s released", self.path)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
