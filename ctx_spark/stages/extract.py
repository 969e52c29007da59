"""The extraction stage: audio catalogue (+ dataset) in, mel shards, errors/ and report out.

The whole output root is built under a hidden staging sibling and published in one rename
(:func:`ctx_spark.io.atomic_output`), so a run killed at any point leaves the previous
complete output in place, and an incremental run reads its spectrograms from there.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Optional

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession

from ctx_spark import __version__, io
from ctx_spark.audio import contract, pipeline, tasks
from ctx_spark.audio.params import MelParams
from ctx_spark.audio.settings import ExtractSettings
from ctx_spark.audio.shards import filesystem, rows_per_group
from ctx_spark.config import Config
from ctx_spark.errors import InputError
from ctx_spark.logs import get_logger, stage

log = get_logger("extract")

ARROW_BATCH_CONF = "spark.sql.execution.arrow.maxRecordsPerBatch"


@dataclass(frozen=True)
class ExtractInputs:
    """Where the audio is (exactly one of ``tracks`` and ``audio_dir``) and the optional
    dataset whose targets and splits the shards carry."""

    tracks: Optional[str] = None
    audio_dir: Optional[str] = None
    dataset: Optional[str] = None

    def __post_init__(self) -> None:
        if (self.tracks is None) == (self.audio_dir is None):
            raise InputError("give exactly one of --tracks TABLE and --audio-dir DIR")


@contextmanager
def _arrow_batch_rows(spark: SparkSession, rows: int) -> Iterator[None]:
    """Small Arrow batches while spectrograms (125 KB a row) travel to and from Python."""
    previous = spark.conf.get(ARROW_BATCH_CONF, None)
    spark.conf.set(ARROW_BATCH_CONF, str(rows))
    try:
        yield
    finally:
        if previous is None:
            spark.conf.unset(ARROW_BATCH_CONF)
        else:
            spark.conf.set(ARROW_BATCH_CONF, previous)


def _read_rows(spark: SparkSession, cfg: Config, inputs: ExtractInputs, settings: ExtractSettings):
    targets = pipeline.read_targets(spark, inputs.dataset) if inputs.dataset else None
    id_type = settings.id_type
    if id_type == "auto" and targets is not None:
        id_type = pipeline._id_kind(targets.schema[contract.TRACK_ID].dataType)
    if inputs.audio_dir is not None:
        catalogue = pipeline.list_audio_dir(spark, inputs.audio_dir, settings, id_type)
    else:
        catalogue = pipeline.read_audio_table(spark, inputs.tracks)
    needs_stat = inputs.tracks is not None or settings.checksum
    rows = pipeline.assemble_rows(catalogue.df, targets, settings, needs_stat)
    return catalogue, targets, pipeline.persist(rows)


def _union(computed: Optional[DataFrame], reused: Optional[DataFrame]) -> Optional[DataFrame]:
    if computed is None:
        return reused
    return computed if reused is None else computed.unionByName(reused)


def run_extract_stage(spark: SparkSession, cfg: Config, inputs: ExtractInputs, out: str,
                      previous: Optional[str] = None) -> dict[str, Any]:
    """Extract spectrograms and write ``out/{train,validation,test}/`` (or ``out/all/``),
    ``out/errors/``, ``out/mel_params.json`` and ``out/report.json``. Returns the report.

    Args:
        previous: the earlier output whose spectrograms incremental runs reuse; None (the
            default) reuses the one at ``out`` itself. A scheduled refresh writes each run
            to a new snapshot and passes the last published snapshot's output here.
    """
    started = time.perf_counter()
    params = cfg.section("audio", MelParams)
    settings = cfg.section("extract", ExtractSettings)
    out = io.qualify(out).rstrip("/")
    previous = io.qualify(previous).rstrip("/") if previous else out
    with _arrow_batch_rows(spark, settings.batch_rows):
        with stage(log, "read inputs"):
            catalogue, targets, rows = _read_rows(spark, cfg, inputs, settings)
        try:
            report = _extract(spark, cfg, inputs, out, params, settings, catalogue, targets, rows, started, previous)
        finally:
            rows.unpersist()
    return report


def _extract(spark, cfg, inputs, out, params, settings, catalogue, targets, rows, started, previous_root) -> dict[str, Any]:
    with_targets = targets is not None
    if with_targets:
        with stage(log, "check and count tracks") as timer:
            counts = pipeline.check_rows(rows, len(cfg.contexts))
            timer.rows = counts.total
    else:
        # Nothing to check: the listing's count sizes the work (the report's exact counts
        # come from the write tasks), which saves a query.
        counts = pipeline.RowCounts({contract.ALL_SPLIT: catalogue.entries - catalogue.bad_names}, 0)
    id_kind = pipeline._id_kind(rows.schema[contract.TRACK_ID].dataType)
    previous, previous_note = (
        pipeline.previous_output(spark, previous_root, params, id_kind) if settings.incremental
        else (None, "incremental disabled")
    )
    log.info("incremental: %s", previous_note)
    reused, to_compute = pipeline.split_reuse(rows, previous, settings.checksum)
    if previous is None:
        n_compute = counts.total
    else:
        with stage(log, "find tracks to compute") as timer:
            n_compute = to_compute.count()
            timer.rows = n_compute
    partitions = pipeline.audio_partitions(n_compute, settings, spark.sparkContext.defaultParallelism)
    group_rows = rows_per_group(params, settings.row_group_mb)
    layout = pipeline.shard_layout(counts.per_split, group_rows * settings.row_groups_per_file)
    log.info("%d of %d tracks to compute in %d tasks; shard files per split: %s",
             n_compute, counts.total, partitions, layout)
    with io.atomic_output(spark, out) as staging:
        computed = (
            pipeline.compute_mels(to_compute, params, settings, partitions, _no_audio_message(inputs, settings))
            if n_compute else None
        )
        union = _union(computed, reused)
        with stage(log, "decode, compute and write shards") as timer:
            stats = []
            if union is not None:
                task_stats = pipeline.write_shards(union, staging, layout, params, settings, group_rows, with_targets)
                stats = pipeline.summarise(task_stats)
            _remove_attempt_leftovers(spark, staging)
            errors_written = sum(s["n"] for s in stats if s["status"] == tasks.FAILED)
            if not errors_written:  # every task skipped errors/: an empty table, same schema
                _write_empty_errors(staging, id_kind)
            timer.rows = sum(s["n"] for s in stats if not s["reused"])
        io.write_text(spark, f"{staging}/{contract.PARAMS_FILE}", params.to_json() + "\n")
        report = _report(spark, cfg, inputs, out, staging, params, catalogue, previous_note, stats, started)
        report["errors_written"] = errors_written
        report["previous_output"] = previous_root
        io.write_json(spark, f"{staging}/{contract.REPORT_FILE}", report)
    return report


def _no_audio_message(inputs: ExtractInputs, settings: ExtractSettings) -> str:
    if inputs.audio_dir is not None:
        return (f"no <track_id>.{{{','.join(settings.extensions)}}} file under {inputs.audio_dir} "
                "(zero-byte files are not listed)")
    return f"the audio table {inputs.tracks} gives no audio for this track"


def _remove_attempt_leftovers(spark: SparkSession, staging: str) -> None:
    """Delete the hidden ``.part-*.tmp`` files of write attempts that died (an executor
    lost mid-write): the retried attempt wrote the real file, and the half-written one
    must not be published with it."""
    for directory in io.list_dir(spark, staging):
        for name in io.list_dir(spark, f"{staging}/{directory}"):
            if name.startswith(".") and name.endswith(".tmp"):
                log.warning("removing %s/%s/%s, left by a failed write attempt", staging, directory, name)
                io.delete_path(spark, f"{staging}/{directory}/{name}")


def _write_empty_errors(staging: str, id_kind: str) -> None:
    fs, root = filesystem(staging)
    fs.create_dir(f"{root}/{contract.ERRORS_DIR}", recursive=True)
    schema = tasks.errors_schema(pa.int64() if id_kind == "int64" else pa.string())
    pq.write_table(schema.empty_table(), f"{root}/{contract.ERRORS_DIR}/part-00000-000.parquet", filesystem=fs)


def _report(spark, cfg, inputs, out, staging, params, catalogue, previous_note, stats, started) -> dict[str, Any]:
    elapsed = time.perf_counter() - started
    written: dict[str, int] = {}
    failed: dict[str, int] = {}
    tracks_in: dict[str, int] = {}
    reused = computed = 0
    seconds = 0.0
    for s in stats:
        tracks_in[s["split"]] = tracks_in.get(s["split"], 0) + s["n"]
        if s["status"] == tasks.WRITTEN:
            written[s["split"]] = written.get(s["split"], 0) + s["n"]
        else:
            failed[s["reason"]] = failed.get(s["reason"], 0) + s["n"]
        if s["reused"]:
            reused += s["n"]
        elif s["reason"] != "no_audio":
            computed += s["n"]
        seconds += s["seconds"]
    files = {split: len([n for n in io.list_dir(spark, f"{staging}/{split}") if n.endswith(".parquet")])
             for split in sorted(written)}
    return {
        "stage": "extract",
        "version": __version__,
        "inputs": {"tracks": inputs.tracks, "audio_dir": inputs.audio_dir, "dataset": inputs.dataset},
        "outputs": {
            "root": out,
            "shards": {split: f"{out}/{split}" for split in sorted(written)},
            "errors": f"{out}/{contract.ERRORS_DIR}",
            "mel_params": f"{out}/{contract.PARAMS_FILE}",
        },
        "mel_params": params.to_dict(),
        "settings": cfg.to_dict()["extract"],
        "catalogue_entries": catalogue.entries,
        "catalogue_bad_names": catalogue.bad_names,
        "tracks_in": sum(tracks_in.values()),
        "tracks_in_per_split": dict(sorted(tracks_in.items())),
        "tracks_without_audio": failed.get("no_audio", 0),
        "incremental": previous_note,
        "written": dict(sorted(written.items())),
        "written_total": sum(written.values()),
        "shard_files": files,
        "reused": reused,
        "computed": computed,
        "failed": dict(sorted(failed.items())),
        "failed_total": sum(failed.values()),
        "audio_seconds_decoded": round(seconds, 3),
        "tracks_per_second": round(computed / elapsed, 3) if elapsed > 0 else None,
        "elapsed_seconds": round(elapsed, 3),
    }


def summary(report: dict[str, Any]) -> str:
    """A few human-readable lines about a finished extraction run."""
    lines = [
        f"shards written to {report['outputs']['root']}: "
        + ", ".join(f"{split} {n}" for split, n in report["written"].items()) if report["written"] else
        f"no shards written to {report['outputs']['root']}",
        f"{report['tracks_in']} tracks in; {report['computed']} computed, {report['reused']} reused from the previous "
        f"output, {report['failed_total']} failed; {report['audio_seconds_decoded']:.0f} s of audio decoded in "
        f"{report['elapsed_seconds']:.1f} s ({report['tracks_per_second']} tracks/s)",
    ]
    if report["failed"]:
        lines.append("failed by reason: " + ", ".join(f"{k} {v}" for k, v in report["failed"].items())
                     + f" (see {report['outputs']['errors']})")
    return "\n".join(lines)
