"""One refresh run: lock, resume or start a snapshot, chain the stages, publish, prune.

The stages are the existing stage runners (``ctx_spark.stages``), called in one
SparkSession with the snapshot's directories as their outputs:

    label    C/playlists, C/playlist_tracks, C/tracks   -> S/labels
    dataset  S/labels/track_labels                       -> S/dataset
    extract  audio (C/tracks.audio or C/audio) + S/dataset, reusing the spectrograms of the
             published snapshot's mels for unchanged tracks -> S/mels
    score    refresh.model + S/mels                      -> S/scores (only with a model)

Each stage writes its outputs atomically and its report.json last, so "report.json exists
and names outputs that exist" means the stage completed; a resumed run skips those stages.
The ``current`` pointer moves only after every stage completed, the manifest is written
and the lock is confirmed still ours.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Optional

from pyspark.sql import SparkSession

from ctx_spark import io
from ctx_spark.config import Config
from ctx_spark.errors import InputError
from ctx_spark.logs import get_logger, stage
from ctx_spark.refresh import snapshots as S
from ctx_spark.refresh.diff import label_changes
from ctx_spark.refresh.inputs import Catalogue, changed_parts, check_model, fingerprint, resolve_catalogue
from ctx_spark.refresh.lock import RunLock
from ctx_spark.refresh.manifest import code_version, stage_summary
from ctx_spark.refresh.settings import STAGE_DIRS, RefreshSettings
from ctx_spark.refresh.store import TMP_PREFIX, store_for, utc_now

log = get_logger("refresh")

REPORT_FILE = "report.json"


class InjectedFailure(RuntimeError):
    """Raised by the ``refresh.fail_after_stage`` test/operations hook."""


class Run:
    """The bookkeeping of one run: where it writes and its state.json."""

    def __init__(self, store, layout: S.Layout, state: dict[str, Any]) -> None:
        self.store, self.layout, self.state = store, layout, state

    @property
    def run_id(self) -> str:
        return self.state["run_id"]

    @property
    def snapshot(self) -> str:
        return self.layout.snapshot(self.run_id)

    def stage_dir(self, name: str) -> str:
        return f"{self.snapshot}/{STAGE_DIRS[name]}"

    def previous_dir(self, name: str) -> Optional[str]:
        previous = self.state.get("previous")
        return f"{self.layout.snapshot(previous)}/{STAGE_DIRS[name]}" if previous else None

    def save(self) -> None:
        S.write_state(self.store, self.layout, self.state)


def run_refresh(spark: SparkSession, cfg: Config, catalogue: str, root: str,
                run_id: Optional[str] = None) -> dict[str, Any]:
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
        reports: dict[str, dict[str, Any]] = {}
        earlier: list[str] = []
        try:
            _run_stages(spark, cfg, settings, cat, run, lock, reports, earlier)
            lock.verify()
            manifest = _manifest(spark, cfg, settings, cat, run, reports, earlier, "published")
            _write_manifest(store, layout, run.run_id, manifest)
            S.write_current(store, layout, run.run_id)
            run.state.update(status=S.PUBLISHED, published_at=utc_now(), error=None)
            run.save()
            log.info("published snapshot %s (%s -> %s)", run.snapshot, layout.pointer, run.run_id)
        except BaseException as exc:
            if lock.lost is None:  # a run that lost its lock must not touch the snapshot
                _record_failure(spark, cfg, settings, cat, run, reports, earlier, exc)
            raise
        manifest["published_at"] = run.state["published_at"]
        try:
            manifest["pruned"] = S.prune(store, layout, settings.keep_snapshots, run.run_id, frozenset({run.run_id}))
        except Exception as exc:  # the run is published; retention catches up next time
            log.error("retention failed (the snapshot is published): %s", exc)
            manifest["prune_error"] = f"{type(exc).__name__}: {exc}"
        _write_manifest(store, layout, run.run_id, manifest)
        return manifest


def _start_or_resume(store, layout: S.Layout, fp: dict[str, Any], current: Optional[str],
                     run_id: Optional[str]) -> Run:
    snapshots = S.list_snapshots(store, layout, current)
    candidate: Optional[S.Snapshot]
    if run_id is not None:
        S.check_run_id(run_id)
        candidate = next((s for s in snapshots if s.run_id == run_id), None)
        if candidate is not None and (candidate.published or candidate.state is None
                                      or candidate.state.get("previous") != current
                                      or _digest(candidate.state) != fp["digest"]):
            why = "is published" if candidate.published else "belongs to a run with other inputs, settings or predecessor"
            raise InputError(f"snapshot {layout.snapshot(run_id)} {why}; choose another --run-id")
    else:
        candidate = S.resumable(snapshots, current)
        if candidate is not None and _digest(candidate.state) != fp["digest"]:
            log.warning("inputs or config changed since unfinished run %s began (%s); starting a new run",
                        candidate.run_id,
                        ", ".join(changed_parts(candidate.state.get("fingerprint") or {}, fp)) or "fingerprint")
            candidate = None
    if candidate is not None:
        state = dict(candidate.state)
        state.update(status=S.RUNNING, attempts=int(state.get("attempts", 1)) + 1, error=None)
        run = Run(store, layout, state)
        log.info("resuming unfinished run %s (attempt %d, started %s)", run.run_id, state["attempts"], state["started"])
    else:
        new_id = run_id or S.new_run_id()
        while run_id is None and store.exists(layout.snapshot(new_id)):
            new_id = S.new_run_id()
        state = {"run_id": new_id, "started": utc_now(), "status": S.RUNNING, "previous": current,
                 "fingerprint": fp, "attempts": 1, "stages": {}, "error": None}
        run = Run(store, layout, state)
        store.make_dirs(run.snapshot)
        log.info("new run %s (previous published snapshot: %s)", new_id, current or "none")
    run.save()
    return run


def _digest(state: dict[str, Any]) -> Optional[str]:
    return (state.get("fingerprint") or {}).get("digest")


def completed_report(store, out: str) -> Optional[dict[str, Any]]:
    """A stage's report when the stage completed (report.json present and every output it
    names present), else None."""
    path = f"{out}/{REPORT_FILE}"
    try:
        report = json.loads(store.read_text(path))
    except (FileNotFoundError, ValueError):
        return None
    outputs: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, str):
            outputs.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)

    collect(report.get("outputs", {}))
    return report if all(store.exists(p) for p in outputs) else None


def _clear_leftovers(store, *directories: str) -> None:
    """Staging directories and temporary files of a killed attempt (io.atomic_output's
    hidden siblings, the store's ``.tmp-`` files)."""
    for directory in directories:
        for name in store.list_dir(directory):
            if name.startswith((io.STAGING_PREFIX, io.RETIRED_PREFIX, TMP_PREFIX)):
                log.info("removing %s/%s left by an interrupted attempt", directory, name)
                store.delete(f"{directory}/{name}")


def _stage_runners(spark: SparkSession, cfg: Config, settings: RefreshSettings, cat: Catalogue,
                   run: Run) -> dict[str, Callable[[str], dict[str, Any]]]:
    from ctx_spark.dataset.run import run_dataset_stage
    from ctx_spark.extract.run import ExtractInputs, run_extract_stage
    from ctx_spark.label.run import LabelInputs, run_label_stage

    def label(out: str) -> dict[str, Any]:
        return run_label_stage(spark, cfg, LabelInputs(cat.playlists, cat.playlist_tracks, cat.tracks), out)

    def dataset(out: str) -> dict[str, Any]:
        return run_dataset_stage(spark, cfg, f"{run.stage_dir('label')}/track_labels", out)

    def extract(out: str) -> dict[str, Any]:
        inputs = ExtractInputs(tracks=cat.tracks if cat.audio_source == "column" else None,
                               audio_dir=cat.audio_dir, dataset=run.stage_dir("dataset"))
        return run_extract_stage(spark, cfg, inputs, out, previous=run.previous_dir("extract"))

    def score(out: str) -> dict[str, Any]:
        from training.score.run import run_score_stage

        return run_score_stage(spark, cfg, settings.model, run.stage_dir("extract"), out)

    runners = {"label": label, "dataset": dataset, "extract": extract}
    if settings.model:
        runners["score"] = score
    return runners


def _run_stages(spark, cfg, settings, cat, run: Run, lock: RunLock, reports: dict, earlier: list) -> None:
    for name, runner in _stage_runners(spark, cfg, settings, cat, run).items():
        lock.verify()
        out = run.stage_dir(name)
        report = completed_report(run.store, out)
        if report is not None:
            log.info("stage %s: completed by an earlier attempt (%s), skipped", name, out)
            earlier.append(name)
        else:
            _clear_leftovers(run.store, run.snapshot, out)
            with stage(log, f"refresh {name}"):
                report = runner(out)
        reports[name] = report
        if name not in run.state["stages"]:
            run.state["stages"][name] = {"finished": utc_now(), "attempt": run.state["attempts"]}
            run.save()
        if settings.fail_after_stage == name:
            raise InjectedFailure(f"refresh.fail_after_stage={name}: stopping after stage {name} (test/ops hook)")


def _changes(spark, cfg, run: Run, reports: dict) -> dict[str, Any]:
    previous = run.state.get("previous")
    labels = None
    if previous:
        before = f"{run.previous_dir('label')}/track_labels"
        if run.store.exists(before):
            with stage(log, "label changes"):
                labels = label_changes(spark.read.parquet(before),
                                       spark.read.parquet(f"{run.stage_dir('label')}/track_labels"),
                                       cfg.contexts.names)
    extract = reports.get("extract", {})
    return {"previous_snapshot": previous, "labels": labels,
            "mels": {"computed": extract.get("computed"), "reused": extract.get("reused")}}


def _manifest(spark, cfg, settings, cat: Catalogue, run: Run, reports: dict, earlier: list, status: str,
              error: Optional[str] = None, failed_stage: Optional[str] = None) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "status": status,
        "snapshot": run.snapshot,
        "root": run.layout.root,
        "started": run.state["started"],
        "finished": utc_now(),
        "attempt": run.state["attempts"],
        "stages_from_earlier_attempts": list(earlier),
        "previous_snapshot": run.state.get("previous"),
        "inputs": {
            "catalogue": cat.root, "tables": cat.tables(), "audio_source": cat.audio_source,
            "audio_dir": cat.audio_dir, "model": settings.model, "fingerprint": run.state["fingerprint"],
        },
        "config": cfg.to_dict(),
        "config_sources": list(cfg.sources),
        "code": code_version(),
        "spark": {"master": spark.sparkContext.master, "version": spark.version},
        "stages": {name: stage_summary(name, report) for name, report in reports.items()},
        "changes": _changes(spark, cfg, run, reports) if status == "published" else None,
        "published_at": None,
        "failed_stage": failed_stage,
        "error": error,
        "pruned": [],
    }


def _write_manifest(store, layout: S.Layout, run_id: str, manifest: dict[str, Any]) -> None:
    store.write_text(layout.manifest(run_id), json.dumps(manifest, indent=2, default=str) + "\n")


def _record_failure(spark, cfg, settings, cat, run: Run, reports: dict, earlier: list, exc: BaseException) -> None:
    """Leave the run resumable and say why it stopped (best effort: the original error
    is what the caller sees)."""
    error = f"{type(exc).__name__}: {exc}".strip()
    failed = next((n for n in STAGE_DIRS if n not in reports and (n != "score" or settings.model)), None)
    if isinstance(exc, InjectedFailure):
        failed = settings.fail_after_stage
    try:
        run.state.update(status=S.FAILED, error=error[:2000])
        run.save()
        manifest = _manifest(spark, cfg, settings, cat, run, reports, earlier, "failed", error[:2000], failed)
        _write_manifest(run.store, run.layout, run.run_id, manifest)
    except Exception as inner:  # the filesystem itself may be what failed
        log.error("could not record the failure of run %s: %s", run.run_id, inner)
    log.error("run %s failed%s: %s; %s still names %s", run.run_id, f" in stage {failed}" if failed else "",
              error[:500], run.layout.pointer, run.state.get("previous") or "nothing")
