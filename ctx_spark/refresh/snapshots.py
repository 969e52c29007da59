"""The layout of a refresh root, the ``current`` pointer, per-run state, and retention.

Layout of a root ``R``::

    R/current                      the published run-id (one line), replaced atomically
    R/refresh.lock                 present while a run holds the root (lock.py)
    R/snapshots/<run-id>/          one per run
        state.json                 the run's own bookkeeping (fingerprint, stages, status)
        labels/ dataset/ mels/ [scores/]   the stages' outputs, each with its report.json
        manifest.json              what the run read, did and changed

Readers never list ``snapshots/``: they resolve ``R/current`` (:func:`current_snapshot`),
which only ever names a snapshot whose every stage completed.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Optional

from ctx_spark.errors import InputError
from ctx_spark.logs import get_logger
from ctx_spark.refresh import references
from ctx_spark.refresh.lock import LOCK_FILE
from ctx_spark.refresh.store import store_for
from ctx_spark.registry import STAGES

log = get_logger("refresh")

SNAPSHOTS_DIR = "snapshots"
POINTER_FILE = "current"
STATE_FILE = "state.json"
MANIFEST_FILE = "manifest.json"
#: The stage output directories of a snapshot.
STAGE_OUTPUT_DIRS = tuple(stage.output_dir for stage in STAGES)
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

RUNNING, FAILED, PUBLISHED = "running", "failed", "published"
#: A snapshot retention deleted but for stage directories kept snapshots still reference.
RETIRED = "retired"


def new_run_id() -> str:
    """``YYYYmmddTHHMMSSZ-xxxxxx``: sorts by start time (UTC); the random suffix keeps two
    runs started in the same second apart."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def check_run_id(run_id: str) -> str:
    if not RUN_ID.match(run_id):
        raise InputError(f"run-id {run_id!r}: use letters, digits, '.', '_' and '-' (at most 128)")
    return run_id


class Layout:
    """Paths under one root (already qualified: absolute local path or URI)."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        self.snapshots = f"{self.root}/{SNAPSHOTS_DIR}"
        self.pointer = f"{self.root}/{POINTER_FILE}"
        self.lock = f"{self.root}/{LOCK_FILE}"

    def snapshot(self, run_id: str) -> str:
        return f"{self.snapshots}/{run_id}"

    def state(self, run_id: str) -> str:
        return f"{self.snapshot(run_id)}/{STATE_FILE}"

    def manifest(self, run_id: str) -> str:
        return f"{self.snapshot(run_id)}/{MANIFEST_FILE}"


def read_current(store, layout: Layout) -> Optional[str]:
    """The published run-id, or None when nothing was published yet."""
    try:
        run_id = store.read_text(layout.pointer).strip()
    except FileNotFoundError:
        return None
    if not run_id:
        return None
    if not RUN_ID.match(run_id):
        raise InputError(f"{layout.pointer} holds {run_id[:80]!r}, not a run-id")
    return run_id


def write_current(store, layout: Layout, run_id: str) -> None:
    """Publish ``run_id``: one atomic replacement of the pointer file."""
    store.write_text(layout.pointer, run_id + "\n")


def current_snapshot(spark, root: str) -> Optional[str]:
    """The directory of the published snapshot of refresh root ``root``, or None.

    Args:
        spark: a SparkSession, or None for a local root (a bare path or ``file:`` URI).

    Returns:
        ``<root>/snapshots/<run-id>`` (absolute path or URI): read ``labels/track_labels``,
        ``dataset/dataset``, ``mels/`` and ``scores/`` under it. Resolve it once per job and
        keep the path: a later refresh moves the pointer, and retention eventually deletes
        the snapshot (``refresh.keep_snapshots`` runs later).
    """
    store = store_for(spark, root)
    layout = Layout(store.qualify(root))
    run_id = read_current(store, layout)
    return layout.snapshot(run_id) if run_id else None


def read_state(store, layout: Layout, run_id: str) -> Optional[dict[str, Any]]:
    """A run's state.json, or None when absent or unreadable."""
    try:
        state = json.loads(store.read_text(layout.state(run_id)))
    except (FileNotFoundError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def write_state(store, layout: Layout, state: dict[str, Any]) -> None:
    store.write_text(layout.state(state["run_id"]), json.dumps(state, indent=2, sort_keys=True) + "\n")


@dataclass(frozen=True)
class Snapshot:
    """One directory under ``snapshots/`` as the bookkeeping sees it."""

    run_id: str
    state: Optional[dict[str, Any]]
    published: bool

    @property
    def started(self) -> str:
        return str((self.state or {}).get("started") or "")

    @property
    def published_at(self) -> str:
        return str((self.state or {}).get("published_at") or "")


def list_snapshots(store, layout: Layout, current: Optional[str]) -> list[Snapshot]:
    """Every snapshot, oldest first (by start time, then run-id). A snapshot counts as
    published when its state says so or the pointer names it (a run killed between moving
    the pointer and updating its state)."""
    found = []
    for name in store.list_dir(layout.snapshots):
        if name.startswith(".") or not RUN_ID.match(name):
            continue
        state = read_state(store, layout, name)
        published = name == current or (state or {}).get("status") == PUBLISHED
        found.append(Snapshot(name, state, published))
    return sorted(found, key=lambda s: (s.started, s.run_id))


def resumable(snapshots: list[Snapshot], current: Optional[str]) -> Optional[Snapshot]:
    """The newest unfinished run started while ``current`` was the published snapshot (an
    earlier unfinished run can never be resumed: a later one published over it)."""
    candidates = [
        s
        for s in snapshots
        if not s.published
        and s.state is not None
        and s.state.get("previous") == current
        and s.state.get("status") != RETIRED
    ]
    return candidates[-1] if candidates else None


def prune(store, layout: Layout, keep: int, current: Optional[str], protect: frozenset[str] = frozenset()) -> list[str]:
    """Delete published snapshots beyond the ``keep`` newest (never ``current``) and the
    unfinished ones started before the newest publication (never the ``protect`` ones, e.g.
    the running one). Returns the run-ids deleted or retired.

    A deleted snapshot's stage directory that a kept snapshot references (an output reused
    by reference, ctx_spark/refresh/references.py) is kept, with the snapshot's state marked
    ``retired``; a later prune deletes it once nothing references it. Store files are the
    garbage collector's (ctx_spark/refresh/gc.py).
    """
    snapshots = list_snapshots(store, layout, current)
    published = [s for s in snapshots if s.published]
    newest_first = sorted(published, key=lambda s: (s.published_at or s.started, s.run_id), reverse=True)
    kept = {s.run_id for s in newest_first[:keep]} | ({current} if current else set()) | set(protect)
    newest_publication = max((s.published_at or s.started for s in published), default="")
    doomed = [s for s in published if s.run_id not in kept]
    doomed += [s for s in snapshots if not s.published and s.run_id not in kept and s.started < newest_publication]
    doomed_ids = {s.run_id for s in doomed}
    survivors = [s.run_id for s in snapshots if s.run_id not in doomed_ids]
    needed = references.referenced(
        store, [f"{layout.snapshot(r)}/{d}" for r in survivors for d in STAGE_OUTPUT_DIRS if d]
    )
    changed = []
    for snapshot in doomed:
        directory = layout.snapshot(snapshot.run_id)
        keep_dirs = {d for d in STAGE_OUTPUT_DIRS if f"{directory}/{d}" in needed}
        if not keep_dirs:
            log.info("retention: deleting snapshot %s", snapshot.run_id)
            store.delete(directory)
            changed.append(snapshot.run_id)
            continue
        retired = (snapshot.state or {}).get("status") == RETIRED
        for name in store.list_dir(directory):
            if name not in keep_dirs and name != STATE_FILE:
                store.delete(f"{directory}/{name}")
        if not retired:
            log.info("retention: retiring snapshot %s (kept: %s, referenced)", snapshot.run_id, sorted(keep_dirs))
            state = dict(snapshot.state or {"run_id": snapshot.run_id, "started": snapshot.started})
            state.update(status=RETIRED, retired_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
            write_state(store, layout, state)
            changed.append(snapshot.run_id)
    return sorted(changed)
