"""The extraction stage: audio catalogue (+ dataset) in, mel shards, errors/ and report out.

The whole output root is built under a hidden staging sibling and published in one rename
(:func:`ctx_spark.io.atomic_output`), so a run killed at any point leaves the previous
complete output in place, and an incremental run reads its spectrograms from there. As the
root is replaced whole, the job refuses a ``--out`` that holds anything but its own earlier
output, or that overlaps one of its inputs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Optional

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession

from ctx_spark import io
from ctx_spark.audio.params import MelParams
from ctx_spark.config import Config
from ctx_spark.errors import InputError
from ctx_spark.extract import guards, listing, plan, rejected, reuse, targets, tasks
from ctx_spark.extract.report import extract_report
from ctx_spark.extract.settings import ExtractSettings
from ctx_spark.fs import arrow_filesystem
from ctx_spark.logs import get_logger, stage
from ctx_spark.schema import ALL_SPLIT, SPLITS, TRACK_ID, id_kind
from ctx_spark.shards import contract
from ctx_spark.shards.store import REFS_FILE, StoreSettings
from ctx_spark.shards.writer import rows_per_group

if TYPE_CHECKING:
    from ctx_spark.registry import StageRequest

log = get_logger("extract")

ARROW_BATCH_CONF = "spark.sql.execution.arrow.maxRecordsPerBatch"

#: What an extraction output root holds; anything else there makes the job refuse --out.
OWNED_NAMES = frozenset(
    SPLITS + (ALL_SPLIT, contract.ERRORS_DIR, contract.PARAMS_FILE, contract.INFO_FILE, contract.REPORT_FILE, REFS_FILE)
)


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

    def paths(self) -> dict[str, Optional[str]]:
        """Option name -> path, for messages and the output-path check."""
        return {"--tracks": self.tracks, "--audio-dir": self.audio_dir, "--dataset": self.dataset}


@dataclass
class ExtractRun:
    """One extraction run: what it reads, where it writes, its settings, and its rows."""

    spark: SparkSession
    cfg: Config
    inputs: ExtractInputs
    out: str
    previous_root: str
    params: MelParams
    settings: ExtractSettings
    started: float
    catalogue: Optional[listing.Catalogue] = None
    targets: Optional[DataFrame] = None
    rows: Optional[DataFrame] = None
    # The shared mel store (chained runs only; ctx_spark/extract/stored.py): its root and
    # settings, its rows as read at the start, and the batch this run writes.
    store_root: Optional[str] = None
    store: Optional[StoreSettings] = None
    store_rows: Optional[DataFrame] = None
    batch: Optional[str] = None

    @property
    def with_targets(self) -> bool:
        return self.targets is not None

    @property
    def contexts(self) -> Optional[tuple[str, ...]]:
        """The context order of the target vectors written (None without a dataset)."""
        return self.cfg.contexts.names if self.with_targets else None


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


def _read_rows(run: ExtractRun) -> None:
    spark, inputs, settings = run.spark, run.inputs, run.settings
    if inputs.dataset:
        targets.check_dataset_contexts(spark, inputs.dataset, run.cfg.contexts.names)
        run.targets = targets.read_targets(spark, inputs.dataset)
    id_type = settings.id_type
    if id_type == "auto" and run.targets is not None:
        id_type = id_kind(run.targets.schema[TRACK_ID].dataType)
    if inputs.audio_dir is not None:
        run.catalogue = listing.list_audio_dir(spark, inputs.audio_dir, settings, id_type)
    else:
        assert inputs.tracks is not None
        run.catalogue = listing.read_audio_table(spark, inputs.tracks)
    needs_stat = inputs.tracks is not None or settings.checksum
    run.rows = plan.persist(targets.assemble_rows(run.catalogue.df, run.targets, settings, needs_stat))


def _union(computed: Optional[DataFrame], reused: Optional[DataFrame]) -> Optional[DataFrame]:
    if computed is None:
        return reused
    return computed if reused is None else computed.unionByName(reused)


def run_extract_stage(
    spark: SparkSession,
    cfg: Config,
    inputs: ExtractInputs,
    out: str,
    previous: Optional[str] = None,
    mel_store: Optional[str] = None,
    settings: Optional[ExtractSettings] = None,
) -> dict[str, Any]:
    """Extract spectrograms and write ``out/{train,validation,test}/`` (or ``out/all/``),
    ``out/errors/``, ``out/mel_params.json``, ``out/shards.json`` and ``out/report.json``.
    Returns the report.

    Args:
        previous: the earlier output whose spectrograms incremental runs reuse; None (the
            default) reuses the one at ``out`` itself. A scheduled refresh writes each run
            to a new snapshot and passes the last published snapshot's output here.
        mel_store: the shared mel store of a chained run: spectrograms are written there
            once and ``out`` holds references (ctx_spark/extract/stored.py); ``previous`` is
            then only read when it is a self-contained shard root, to import from.
        settings: the ``extract`` section to use instead of ``cfg``'s (a chained run
            passes its own failure-rate rule).

    Raises:
        InputError: bad inputs, or an ``out`` that overlaps an input or holds files that
            are not an extraction output.
    """
    started = time.perf_counter()
    out = io.qualify(out).rstrip("/")
    io.check_output_path("extract", out, inputs.paths())
    io.check_replaceable(spark, "extract", out, OWNED_NAMES)
    run = ExtractRun(
        spark=spark,
        cfg=cfg,
        inputs=inputs,
        out=out,
        previous_root=io.qualify(previous).rstrip("/") if previous else out,
        params=cfg.section("audio", MelParams),
        settings=settings or cfg.section("extract", ExtractSettings),
        started=started,
    )
    if mel_store is not None:
        run.store_root = io.qualify(mel_store).rstrip("/")
        run.store = store_settings(cfg)
        io.check_output_path("extract", out, {**inputs.paths(), "refresh.store.path": run.store_root})
    with _arrow_batch_rows(spark, run.settings.batch_rows):
        try:
            with stage(log, "read inputs"):
                _read_rows(run)
            if run.store_root is not None:
                from ctx_spark.extract.stored import extract_to_store

                return extract_to_store(run)
            return _extract(run)
        finally:
            if run.rows is not None:
                run.rows.unpersist()
            if run.catalogue is not None:
                run.catalogue.release()


def _count_rows(run: ExtractRun) -> targets.RowCounts:
    assert run.rows is not None and run.catalogue is not None
    if run.with_targets:
        with stage(log, "check and count tracks") as timer:
            counts = targets.check_rows(run.rows, len(run.cfg.contexts))
            timer.rows = counts.total
        return counts
    # Nothing to check: the listing's count sizes the work (the report's exact counts come
    # from the write tasks), which saves a query.
    return targets.RowCounts({ALL_SPLIT: run.catalogue.tracks}, 0)


def _extract(run: ExtractRun) -> dict[str, Any]:
    spark, settings, params, rows = run.spark, run.settings, run.params, run.rows
    assert rows is not None
    counts = _count_rows(run)
    guards.refuse_inputs(run, counts)  # before any work: an empty input, tracks without audio
    kind = id_kind(rows.schema[TRACK_ID].dataType)
    previous, previous_note = (
        reuse.previous_output(spark, run.previous_root, params, kind)
        if settings.incremental
        else (None, "incremental disabled")
    )
    log.info("incremental: %s", previous_note)
    reused, to_compute = reuse.split_reuse(rows, previous, settings.checksum)
    if previous is None:
        n_compute = counts.total
    else:
        with stage(log, "find tracks to compute") as timer:
            n_compute = to_compute.count()
            timer.rows = n_compute
    partitions = plan.audio_partitions(n_compute, settings, spark.sparkContext.defaultParallelism)
    group_rows = rows_per_group(params, settings.row_group_mb)
    layout = plan.shard_layout(counts.per_split, group_rows * settings.row_groups_per_file)
    log.info(
        "%d of %d tracks to compute in %d tasks; shard files per split: %s", n_compute, counts.total, partitions, layout
    )
    with guards.output_errors(run.out), io.atomic_output(spark, run.out) as staging:
        spec = plan.audio_spec(params, settings, _no_audio_message(run.inputs, settings))
        computed = plan.compute_mels(to_compute, spec, partitions) if n_compute else None
        union = _union(computed, reused)
        with stage(log, "decode, compute and write shards") as timer:
            stats = []
            if union is not None:
                write = plan.write_spec(staging, rows, params, settings, group_rows, run.contexts)
                stats = plan.summarise(plan.write_shards(union, layout, write))
            assert run.catalogue is not None
            unused = rejected.write_rejected(run.catalogue.rejected, staging, kind, settings.compression)
            guards.refuse_outcome(run, stats, unused)  # before publishing: never replace a good output
            _remove_attempt_leftovers(spark, staging)
            errors_written = sum(s["n"] for s in stats if s["status"] == tasks.FAILED) + sum(unused.counts.values())
            if not errors_written:  # every task skipped errors/: an empty table, same schema
                _write_empty_errors(staging, kind)
            timer.rows = sum(s["n"] for s in stats if not s["reused"])
        io.write_text(spark, f"{staging}/{contract.PARAMS_FILE}", params.to_json() + "\n")
        io.write_text(spark, f"{staging}/{contract.INFO_FILE}", contract.info_json(run.contexts))
        assert run.catalogue is not None
        report = extract_report(run, staging, previous_note, stats, unused.counts)
        report["errors_written"] = errors_written
        report["previous_output"] = run.previous_root
        io.write_json(spark, f"{staging}/{contract.REPORT_FILE}", report)
    return report


def _no_audio_message(inputs: ExtractInputs, settings: ExtractSettings) -> str:
    if inputs.audio_dir is not None:
        return f"no <track_id>.{{{','.join(settings.extensions)}}} file under {inputs.audio_dir}"
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


def _write_empty_errors(staging: str, kind: str) -> None:
    fs, root = arrow_filesystem(staging)
    fs.create_dir(f"{root}/{contract.ERRORS_DIR}", recursive=True)
    schema = tasks.errors_schema(pa.int64() if kind == "int64" else pa.string())
    pq.write_table(schema.empty_table(), f"{root}/{contract.ERRORS_DIR}/part-00000-000.parquet", filesystem=fs)


def store_settings(cfg: Config) -> StoreSettings:
    """The ``refresh.store`` settings (the store is the refresh's; see conf/refresh.yaml)."""
    from ctx_spark.config import from_mapping

    raw = (cfg.data.get("refresh") or {}).get("store") or {}
    return from_mapping(StoreSettings, raw, "refresh.store")


def run_in_chain(request: StageRequest) -> dict[str, Any]:
    """The stage in a chained run: the run's audio (a table or a directory) and the
    dataset stage's output in. With the run's mel store (input ``mel_store``) only new and
    changed tracks are decoded and the snapshot holds references; without it the previous
    run's shards are reused for unchanged tracks and copied into this snapshot.

    The stage publishes its output however many tracks failed (``extract.max_failure_rate``
    is lifted): the refresh applies ``refresh.max_failure_rate`` to the stage's report
    instead, before anything is published (ctx_spark/refresh/guards.py), so that a rerun
    with the limit raised resumes the run without extracting again."""
    inputs = ExtractInputs(
        tracks=request.inputs.get("audio_table"),
        audio_dir=request.inputs.get("audio_dir"),
        dataset=request.upstream["dataset"],
    )
    return run_extract_stage(
        request.spark,
        request.cfg,
        inputs,
        request.out,
        previous=request.previous,
        mel_store=request.inputs.get("mel_store"),
        settings=replace(request.cfg.section("extract", ExtractSettings), max_failure_rate=1.0),
    )


def manifest_rows(report: dict[str, Any]) -> dict[str, Any]:
    """The counts a refresh manifest keeps from the report."""
    rows = {
        "tracks_in": report["tracks_in"],
        "written": report["written_total"],
        "per_split": report["written"],
        "computed": report["computed"],
        "reused": report["reused"],
        "failed": report["failed_total"],
        "failed_by_reason": report["failed"],
    }
    if report.get("layout") == "store":  # where the reused spectrograms came from
        rows.update(
            from_store=report["from_store"],
            copied=report["copied"],
            imported=report["imported"],
            store_bytes_written=report["store"]["bytes_written"],
        )
    return rows


def manifest_line(rows: dict[str, Any]) -> str:
    return (
        f"mels: {rows['written']} written, {rows['computed']} computed, {rows['reused']} reused, "
        f"{rows['failed']} failed"
    )
