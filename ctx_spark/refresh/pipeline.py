"""One refresh run: lock, resume or start a snapshot, chain the stages, publish, prune.

The stages are the registry's (:data:`ctx_spark.registry.STAGES`), run in one SparkSession
with the snapshot's directories as their outputs (:mod:`ctx_spark.refresh.chain`):

    label    C/playlists, C/playlist_tracks, C/tracks   -> S/labels
    dataset  S/labels/track_labels                       -> S/dataset
    extract  audio (C/tracks.audio or C/audio) + S/dataset -> S/mels: references into the
             shared mel store, where only new and changed tracks are decoded and written
    score    refresh.model + S/mels                      -> S/scores (only with a model;
             only tracks whose spectrogram or model changed are scored)

A stage whose inputs, settings and code are the previous snapshot's is not run: its output
is reused by reference (ctx_spark/refresh/references.py). The ``current`` pointer moves
only after every stage completed, the manifest is written and the lock is confirmed still
ours; retention and the store's garbage collection run after publication.
"""

from __future__ import annotations

from typing import Any, Optional

from pyspark.sql import SparkSession

from ctx_spark.config import Config
from ctx_spark.errors import InputError
from ctx_spark.logs import get_logger, stage
from ctx_spark.refresh import snapshots as S
from ctx_spark.refresh.chain import (
    Chain,
    Run,
    build_manifest,
    record_failure,
    run_stages,
    write_manifest,
    write_report_site,
)
from ctx_spark.refresh.gc import collect_garbage
from ctx_spark.refresh.guards import check_audio_listing
from ctx_spark.refresh.inputs import changed_parts, check_model, fingerprint, resolve_catalogue
from ctx_spark.refresh.lock import RunLock
from ctx_spark.refresh.settings import RefreshSettings
from ctx_spark.refresh.store import store_for, utc_now

log = get_logger("refresh")


def open_root(root: str, store: Any) -> S.Layout:
    """The root's layout, with ``snapshots/`` created.

    Raises:
        InputError: the root cannot be written (a read-only mount, no permission).
    """
    layout = S.Layout(store.qualify(root))
    try:
        store.make_dirs(layout.snapshots)
    except Exception as exc:
        raise_unwritable(layout.root, exc)
    return layout


def raise_unwritable(root: str, exc: BaseException) -> None:
    """Turn a filesystem's refusal to write under the root into a one-line InputError."""
    text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, OSError) or "AccessControlException" in text or "Permission denied" in text:
        raise InputError(
            f"refresh root {root} is not writable ({getattr(exc, 'strerror', None) or text}): a run writes its "
            "snapshots, lock and pointer there; give a --root this job may write"
        ) from None
    raise exc


def root_lock(store: Any, layout: S.Layout, settings: RefreshSettings) -> RunLock:
    """The root's lock, taken (see :func:`run_refresh`).

    Raises:
        ConcurrentRunError: another live run holds it.
        InputError: the root is not writable.
    """
    lock = RunLock(store, layout.lock, settings.lock_stale_seconds, settings.lock_heartbeat_seconds)
    try:
        lock.acquire()
    except OSError as exc:
        raise_unwritable(layout.root, exc)
    return lock


def run_refresh(
    spark: SparkSession,
    cfg: Config,
    catalogue: str,
    root: str,
    run_id: Optional[str] = None,
    lock: Optional[RunLock] = None,
) -> dict[str, Any]:
    """Refresh root ``root`` from catalogue ``catalogue``; returns the manifest.

    Args:
        run_id: force the run-id (tests, reruns by hand); by default a new time-sorted id,
            or the id of the unfinished run being resumed.
        lock: the root's lock, already taken by the caller (the CLI takes it before it
            starts a SparkSession, so that a refused run costs no session); None: taken here.

    Raises:
        ConcurrentRunError: another live run holds the root's lock.
        InputError, ConfigError: bad catalogue or settings, or an unwritable root.
        Any stage's error: the run is left unfinished (resumable) and ``current`` unchanged.
    """
    settings = cfg.section("refresh", RefreshSettings)
    store = store_for(spark, root)
    layout = open_root(root, store)
    held = lock if lock is not None else root_lock(store, layout, settings)
    try:
        return _locked_run(spark, cfg, catalogue, (store, layout, settings), run_id, held)
    finally:
        if lock is None:
            held.release()


def _locked_run(
    spark: SparkSession, cfg: Config, catalogue: str, where: tuple, run_id: Optional[str], lock: RunLock
) -> dict[str, Any]:
    store, layout, settings = where
    cat = resolve_catalogue(spark, catalogue, settings)
    check_model(settings)
    with stage(log, "fingerprint inputs"):
        fp = fingerprint(spark, cfg, cat, settings)
    check_audio_listing(fp, cat)
    current = S.read_current(store, layout)
    run = _start_or_resume(store, layout, fp, current, run_id)
    lock.set_run_id(run.run_id)
    chain = Chain(spark=spark, cfg=cfg, settings=settings, cat=cat, run=run, lock=lock)
    try:
        run_stages(chain)
        lock.verify()
        manifest = build_manifest(chain, "published")
        write_manifest(store, layout, run.run_id, manifest)
        if settings.report:
            manifest["report"] = write_report_site(chain)
            write_manifest(store, layout, run.run_id, manifest)
        S.write_current(store, layout, run.run_id)
        run.state.update(status=S.PUBLISHED, published_at=utc_now(), error=None)
        run.save()
        log.info("published snapshot %s (%s -> %s)", run.snapshot, layout.pointer, run.run_id)
    except BaseException as exc:
        if lock.lost is None:  # a run that lost its lock must not touch the snapshot
            record_failure(chain, exc)
        raise
    manifest["published_at"] = run.state["published_at"]
    try:
        manifest["pruned"] = S.prune(store, layout, settings.keep_snapshots, run.run_id, frozenset({run.run_id}))
    except Exception as exc:  # the run is published; retention catches up next time
        log.error("retention failed (the snapshot is published): %s", exc)
        manifest["prune_error"] = f"{type(exc).__name__}: {exc}"
    if chain.mel_store is not None and settings.store.gc:
        try:
            with stage(log, "mel store garbage collection"):
                manifest["gc"] = collect_garbage(spark, store, layout, chain.mel_store, settings.store)
        except Exception as exc:  # the run is published; the next collection catches up
            log.error("mel store garbage collection failed (the snapshot is published): %s", exc)
            manifest["gc_error"] = f"{type(exc).__name__}: {exc}"[:2000]
    write_manifest(store, layout, run.run_id, manifest)
    return manifest


def _start_or_resume(store, layout: S.Layout, fp: dict[str, Any], current: Optional[str], run_id: Optional[str]) -> Run:
    snapshots = S.list_snapshots(store, layout, current)
    candidate: Optional[S.Snapshot]
    if run_id is not None:
        S.check_run_id(run_id)
        candidate = next((s for s in snapshots if s.run_id == run_id), None)
        if candidate is not None and (
            candidate.published
            or candidate.state is None
            or candidate.state.get("previous") != current
            or _digest(candidate.state) != fp["digest"]
        ):
            why = (
                "is published" if candidate.published else "belongs to a run with other inputs, settings or predecessor"
            )
            raise InputError(f"snapshot {layout.snapshot(run_id)} {why}; choose another --run-id")
    else:
        candidate = S.resumable(snapshots, current)
        if candidate is not None:
            assert candidate.state is not None  # resumable() picks only runs that have a state
            if _digest(candidate.state) != fp["digest"]:
                log.warning(
                    "inputs or config changed since unfinished run %s began (%s); starting a new run",
                    candidate.run_id,
                    ", ".join(changed_parts(candidate.state.get("fingerprint") or {}, fp)) or "fingerprint",
                )
                candidate = None
    if candidate is not None:
        assert candidate.state is not None  # checked above (--run-id) or picked by resumable()
        state = dict(candidate.state)
        state.update(status=S.RUNNING, attempts=int(state.get("attempts", 1)) + 1, error=None)
        run = Run(store, layout, state)
        log.info("resuming unfinished run %s (attempt %d, started %s)", run.run_id, state["attempts"], state["started"])
    else:
        new_id = run_id or S.new_run_id()
        while run_id is None and store.exists(layout.snapshot(new_id)):
            new_id = S.new_run_id()
        state = {
            "run_id": new_id,
            "started": utc_now(),
            "status": S.RUNNING,
            "previous": current,
            "fingerprint": fp,
            "attempts": 1,
            "stages": {},
            "error": None,
        }
        run = Run(store, layout, state)
        store.make_dirs(run.snapshot)
        log.info("new run %s (previous published snapshot: %s)", new_id, current or "none")
    run.save()
    return run


def _digest(state: dict[str, Any]) -> Optional[str]:
    return (state.get("fingerprint") or {}).get("digest")
