"""The stages of one refresh run, chained: skip what an earlier attempt completed, run the
rest in the registry's order, and record the run's manifest (or why it failed).

Each stage writes its outputs atomically and its report.json last, so "report.json exists
and names outputs that exist" means the stage completed; a resumed run skips those stages.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from pyspark.sql import SparkSession

from ctx_spark import io, schema
from ctx_spark.config import Config
from ctx_spark.logs import get_logger, stage
from ctx_spark.refresh import references
from ctx_spark.refresh import snapshots as S
from ctx_spark.refresh.diff import label_changes, no_label_changes
from ctx_spark.refresh.guards import check_extraction
from ctx_spark.refresh.inputs import Catalogue
from ctx_spark.refresh.lock import RunLock
from ctx_spark.refresh.manifest import code_version, stage_summary
from ctx_spark.refresh.settings import STAGE_DIRS, RefreshSettings, store_root
from ctx_spark.refresh.store import TMP_PREFIX, utc_now
from ctx_spark.registry import StageRequest, stages_for

log = get_logger("refresh")


class InjectedFailure(RuntimeError):
    """Raised by the ``refresh.fail_after_stage`` test/operations hook."""


class Run:
    """The bookkeeping of one run: where it writes and its state.json."""

    def __init__(self, store: Any, layout: S.Layout, state: dict[str, Any]) -> None:
        self.store, self.layout, self.state = store, layout, state

    @property
    def run_id(self) -> str:
        return str(self.state["run_id"])

    @property
    def snapshot(self) -> str:
        return self.layout.snapshot(self.run_id)

    def stage_dir(self, name: str) -> str:
        return f"{self.snapshot}/{STAGE_DIRS[name]}"

    def previous_dir(self, name: str) -> Optional[str]:
        """The previous published snapshot's output of stage ``name``: the directory that
        holds its data (references followed)."""
        previous = self.state.get("previous")
        if not previous:
            return None
        return references.resolve(self.store, f"{self.layout.snapshot(previous)}/{STAGE_DIRS[name]}")

    def previous_key(self, name: str) -> Optional[str]:
        """The key stage ``name`` had in the previous published snapshot (None before keys
        were recorded, or without a previous snapshot)."""
        previous = self.state.get("previous")
        state = S.read_state(self.store, self.layout, previous) if previous else None
        return ((state or {}).get("stages") or {}).get(name, {}).get("key")

    def save(self) -> None:
        S.write_state(self.store, self.layout, self.state)


@dataclass
class Chain:
    """One run's stages: what they need, and what they have reported so far.

    Attributes:
        reports: each finished stage's report, by stage name.
        earlier: stages an earlier attempt of this run had completed (skipped now).
    """

    spark: SparkSession
    cfg: Config
    settings: RefreshSettings
    cat: Catalogue
    run: Run
    lock: RunLock
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    earlier: list[str] = field(default_factory=list)
    keys: dict[str, Optional[str]] = field(default_factory=dict)
    reused: dict[str, str] = field(default_factory=dict)

    @property
    def mel_store(self) -> Optional[str]:
        """The shared mel store's root, or None when ``refresh.store.enabled`` is false."""
        return store_root(self.settings, self.run.layout.root) if self.settings.store.enabled else None

    def inputs(self) -> dict[str, str]:
        """The run's named inputs (see :class:`ctx_spark.registry.StageRequest`)."""
        inputs = self.cat.tables()
        if self.cat.audio_source == "column":
            inputs["audio_table"] = self.cat.tracks
        elif self.cat.audio_dir is not None:
            inputs["audio_dir"] = self.cat.audio_dir
        if self.settings.model:
            inputs["model"] = self.settings.model
        if self.mel_store is not None:
            inputs["mel_store"] = self.mel_store
        return inputs

    def stage_key(self, name: str) -> Optional[str]:
        """This run's key of stage ``name`` (:func:`references.stage_key`); the extraction's
        depends on the store too. None in ``column`` mode for the extraction: the audio
        table's fingerprint does not cover the files it names."""
        extra: dict[str, Any] = {}
        fingerprints = dict(self.run.state["fingerprint"]["inputs"])
        if name == "extract":
            if self.cat.audio_source != "dir":
                return None
            extra = {"mel_store": self.mel_store}
        return references.stage_key(name, self.cfg.to_dict(), fingerprints, dict(self.keys), extra)


def completed_report(store: Any, out: str) -> Optional[dict[str, Any]]:
    """A stage's report when the stage completed (report.json present and every output it
    names present), else None."""
    path = f"{out}/{schema.REPORT_FILE}"
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


def clear_leftovers(store: Any, *directories: str) -> None:
    """Staging directories and temporary files of a killed attempt (io.atomic_output's
    hidden siblings, the store's ``.tmp-`` files)."""
    for directory in directories:
        for name in store.list_dir(directory):
            if name.startswith((io.STAGING_PREFIX, io.RETIRED_PREFIX, TMP_PREFIX)):
                log.info("removing %s/%s left by an interrupted attempt", directory, name)
                store.delete(f"{directory}/{name}")


def _reuse_source(chain: Chain, name: str, key: Optional[str]) -> Optional[str]:
    """The previous snapshot's data directory of stage ``name`` when its key is ``key``."""
    if key is None or chain.run.previous_key(name) != key:
        return None
    return chain.run.previous_dir(name)


def _run_one(chain: Chain, name: str, out: str, upstream: dict[str, str], definition: Any) -> dict[str, Any]:
    """Run stage ``name``, or reuse the previous snapshot's output by reference."""
    run = chain.run
    key = chain.keys[name]
    source = _reuse_source(chain, name, key)
    if source is not None:
        assert key is not None
        source_run = str(run.state["previous"])
        with stage(log, f"refresh {name} (reused)"):
            report = references.write_reference(run.store, out, source, source_run, key, utc_now())
        log.info("stage %s: inputs, settings and code as in %s: its output is reused by reference", name, source_run)
        return report
    request = StageRequest(
        spark=chain.spark,
        cfg=chain.cfg,
        out=out,
        inputs=chain.inputs(),
        upstream=dict(upstream),
        previous=run.previous_dir(name),
    )
    with stage(log, f"refresh {name}"):
        return definition.run(request)


def run_stages(chain: Chain) -> None:
    """Run (or skip, when completed earlier, or reuse, when unchanged) every stage of the
    run, in order."""
    run = chain.run
    upstream: dict[str, str] = {}
    for definition in stages_for(bool(chain.settings.model)):
        name = definition.name
        chain.lock.verify()
        out = run.stage_dir(name)
        chain.keys[name] = chain.stage_key(name)
        report = completed_report(run.store, out)
        if report is not None:
            log.info("stage %s: completed by an earlier attempt (%s), skipped", name, out)
            chain.earlier.append(name)
        else:
            clear_leftovers(run.store, run.snapshot, out)
            report = _run_one(chain, name, out, upstream, definition)
        reference = report.get(references.REFERENCE)
        if isinstance(reference, dict):
            chain.reused[name] = str(reference.get("run_id"))
        upstream[name] = references.resolve(run.store, out)
        chain.reports[name] = report
        if name not in run.state["stages"]:
            run.state["stages"][name] = {
                "finished": utc_now(),
                "attempt": run.state["attempts"],
                "key": chain.keys[name],
                "reused_from": chain.reused.get(name),
            }
            run.save()
        if name == "extract":
            check_extraction(report, chain.settings, chain.cat)
        if chain.settings.fail_after_stage == name:
            raise InjectedFailure(f"refresh.fail_after_stage={name}: stopping after stage {name} (test/ops hook)")


def _changes(chain: Chain) -> dict[str, Any]:
    run, spark = chain.run, chain.spark
    previous = run.state.get("previous")
    labels = None
    previous_labels = run.previous_dir("label")
    current_labels = references.resolve(run.store, run.stage_dir("label"))
    if previous and previous_labels == current_labels:  # reused: nothing changed
        labels = no_label_changes(chain.cfg.contexts.names)
    elif previous and previous_labels:
        before = f"{previous_labels}/{schema.TRACK_LABELS_DIR}"
        if run.store.exists(before):
            with stage(log, "label changes"):
                labels = label_changes(
                    spark.read.parquet(before),
                    spark.read.parquet(f"{current_labels}/{schema.TRACK_LABELS_DIR}"),
                    chain.cfg.contexts.names,
                )
    extract = chain.reports.get("extract", {})
    mels = {"computed": extract.get("computed"), "reused": extract.get("reused")}
    for name in ("from_store", "copied", "imported"):
        if name in extract:
            mels[name] = extract[name]
    if "extract" in chain.reused:  # the whole stage by reference: nothing decoded or written
        written = extract.get("written_total")
        mels = {
            "computed": 0,
            "reused": written,
            **({"from_store": written, "copied": 0, "imported": 0} if "from_store" in extract else {}),
        }
    return {"previous_snapshot": previous, "labels": labels, "mels": mels}


def build_manifest(
    chain: Chain, status: str, error: Optional[str] = None, failed_stage: Optional[str] = None
) -> dict[str, Any]:
    """The run's manifest.json: inputs, configuration, code, per-stage counts, changes."""
    run, cat, cfg, spark = chain.run, chain.cat, chain.cfg, chain.spark
    return {
        "run_id": run.run_id,
        "status": status,
        "snapshot": run.snapshot,
        "root": run.layout.root,
        "started": run.state["started"],
        "finished": utc_now(),
        "attempt": run.state["attempts"],
        "stages_from_earlier_attempts": list(chain.earlier),
        "previous_snapshot": run.state.get("previous"),
        "inputs": {
            "catalogue": cat.root,
            "tables": cat.tables(),
            "audio_source": cat.audio_source,
            "audio_dir": cat.audio_dir,
            "model": chain.settings.model,
            "mel_store": chain.mel_store,
            "fingerprint": run.state["fingerprint"],
        },
        "config": cfg.to_dict(),
        "config_sources": list(cfg.sources),
        "code": code_version(),
        "spark": {"master": spark.sparkContext.master, "version": spark.version},
        "stages": {
            name: stage_summary(name, report, chain.keys.get(name), chain.reused.get(name))
            for name, report in chain.reports.items()
        },
        "changes": _changes(chain) if status == "published" else None,
        "published_at": None,
        "failed_stage": failed_stage,
        "error": error,
        "pruned": [],
    }


def write_manifest(store: Any, layout: S.Layout, run_id: str, manifest: dict[str, Any]) -> None:
    store.write_text(layout.manifest(run_id), json.dumps(manifest, indent=2, default=str) + "\n")


def record_failure(chain: Chain, exc: BaseException) -> None:
    """Leave the run resumable and say why it stopped (best effort: the original error
    is what the caller sees)."""
    run, settings = chain.run, chain.settings
    error = f"{type(exc).__name__}: {exc}".strip()
    failed = next((s.name for s in stages_for(bool(settings.model)) if s.name not in chain.reports), None)
    if isinstance(exc, InjectedFailure):
        failed = settings.fail_after_stage
    try:
        run.state.update(status=S.FAILED, error=error[:2000])
        run.save()
        write_manifest(run.store, run.layout, run.run_id, build_manifest(chain, "failed", error[:2000], failed))
    except Exception as inner:  # the filesystem itself may be what failed
        log.error("could not record the failure of run %s: %s", run.run_id, inner)
    log.error(
        "run %s failed%s: %s; %s still names %s",
        run.run_id,
        f" in stage {failed}" if failed else "",
        error[:500],
        run.layout.pointer,
        run.state.get("previous") or "nothing",
    )


#: The snapshot sub-directory of the report site.
REPORT_DIR = "report"


def write_report_site(chain: Chain) -> dict[str, Any]:
    """Write the snapshot's report site (``S/report/index.html``) after its manifest.

    The site only reads small, already written tables, and a failure to build it never
    stops the publication: it is logged and recorded in the manifest instead. Only local
    roots get a site (the builder reads local files).
    """
    from ctx_spark.explorer import build_site
    from ctx_spark.fs import is_local

    run = chain.run
    if not is_local(run.snapshot):
        return {"skipped": "the report site is built for local roots only"}
    started = time.perf_counter()
    try:
        with stage(log, "report site"):
            index = build_site(run.snapshot, f"{run.snapshot}/{REPORT_DIR}", top_n=chain.settings.report_top)
    except Exception as exc:  # the snapshot is complete; the site is a view of it
        log.warning("the report site of %s could not be written: %s", run.snapshot, exc)
        return {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    return {"path": str(index), "seconds": round(time.perf_counter() - started, 3)}
