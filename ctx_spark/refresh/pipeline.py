"""One refresh run: lock, resume or start a snapshot, chain the stages, publish, prune.

The stages are the registry's (:data:`ctx_spark.registry.STAGES`), run in one SparkSession
with the snapshot's directories as their outputs (:mod:`ctx_spark.refresh.chain`):

    label    C/playlists, C/playlist_tracks, C/tracks   -> S/labels
    dataset  S/labels/track_labels                       -> S/dataset
    extract  audio (C/tracks.audio or C/audio) + S/dataset, reusing the spectrograms of the
             published snapshot's mels for unchanged tracks -> S/mels
    score    refresh.model + S/mels                      -> S/scores (only with a model)

The ``current`` pointer moves only after every stage completed, the manifest is written
and the lock is confirmed still ours.
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
from ctx_spark.refresh.inputs import changed_parts, check_model, fingerprint, resolve_catalogue
from ctx_spark.refresh.lock import RunLock
from ctx_spark.refresh.settings import RefreshSettings
from ctx_spark.refresh.store import store_for, utc_now

log = get_logger("refresh")


def run_refresh(
    spark: SparkSession, cfg: Config, catalogue: str, root: str, run_id: Optional[str] = None
) -> dict[str, Any]:
    """Refresh root ``root`` from catalogue ``catalogue``; returns the manifest.

    Args:
        run_id: force the run-id (tests, reruns by hand); by default a new time-sorted id,
            or the id of the unfinished run being resumed.

    Raises:
        ConcurrentRunError: another live run holds the root's lock.
        InputError, ConfigError: bad catalogue or settings.
        Any stage's error: the run is left unfinished (resumable) and ``current`` unchanged.
    """
    settings = cfg.section("refresh", RefreshSettings)
    store = store_for(spark, root)
    layout = S.Layout(store.qualify(root))
    store.make_dirs(layout.snapshots)
    with RunLock(store, layout.lock, settings.lock_stale_seconds, settings.lock_heartbeat_seconds) as lock:
        cat = resolve_catalogue(spark, catalogue, settings)
        check_model(settings)
        with stage(log, "fingerprint inputs"):
            fp = fingerprint(spark, cfg, cat, settings)
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
