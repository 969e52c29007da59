"""The dataset stage: ``track_labels`` in; ``dataset/``, co-occurrences and report.json out."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Optional

from pyspark.sql import DataFrame, SparkSession

from ctx_spark import __version__, io, schema
from ctx_spark.config import Config
from ctx_spark.dataset import DatasetSettings
from ctx_spark.dataset import cooccurrence as C
from ctx_spark.dataset.build import build_dataset
from ctx_spark.dataset.weights import positive_summary
from ctx_spark.logs import get_logger, stage

if TYPE_CHECKING:
    from ctx_spark.registry import StageRequest

log = get_logger("dataset")

DATASET_DIR = schema.DATASET_DIR
COOCCURRENCE_CSV = "cooccurrence.csv"
COOCCURRENCE_PNG = "cooccurrence.png"
REPORT_FILE = schema.REPORT_FILE
SPLIT = schema.SPLIT


def run_dataset_stage(
    spark: SparkSession, cfg: Config, labels: str, out: str, previous: Optional[str] = None
) -> dict[str, Any]:
    """Build the dataset from ``labels`` (a ``track_labels`` Parquet table) and write
    ``out/dataset``, ``out/cooccurrence.csv``, ``out/cooccurrence.png`` and
    ``out/report.json``, each atomically. Returns the report.

    The same input and settings (seed included) give the same rows, in the same order.

    Args:
        previous: an earlier dataset stage output (a refresh passes the previous
            snapshot's); with ``dataset.keep_previous_split`` its groups keep their split
            and only new groups are stratified (docs/dataset.md, "Stable splits").
    """
    started = time.perf_counter()
    settings = cfg.section("dataset", DatasetSettings)
    names = cfg.contexts.names
    out = io.qualify(out).rstrip("/")
    io.check_output_path("dataset", out, {"--labels": labels})
    table = io.read_table(spark, labels, schema.TRACK_LABELS, require_rows=True)
    previous_path = f"{io.qualify(previous).rstrip('/')}/{DATASET_DIR}" if previous else None
    previous_splits = None
    if previous_path is not None and settings.keep_previous_split:
        previous_splits = _previous_splits(spark, previous_path)
    build = build_dataset(table, names, settings, source=labels, previous_splits=previous_splits)
    try:
        with stage(log, "write dataset") as timer:
            t0 = time.perf_counter()
            io.write_parquet(build.dataset, f"{out}/{DATASET_DIR}")
            build.seconds["write dataset"] = round(time.perf_counter() - t0, 3)
            timer.rows = build.report["dataset"]["tracks"]
    finally:
        build.release()
    with stage(log, "summaries and co-occurrences"):
        t0 = time.perf_counter()
        written = spark.read.parquet(f"{out}/{DATASET_DIR}")
        build.report["weights"].update(positive_summary(written, len(names), settings.percentile_accuracy))
        counts, conditional = build.cooccurrence
        io.write_text(spark, f"{out}/{COOCCURRENCE_CSV}", C.to_csv(counts, conditional, names))
        title = f"Context co-occurrences, {build.report['dataset']['tracks']} tracks"
        io.write_bytes(spark, f"{out}/{COOCCURRENCE_PNG}", C.heatmap_png(counts, conditional, names, title))
        build.seconds["summaries and co-occurrences"] = round(time.perf_counter() - t0, 3)
    report = {
        "stage": "dataset",
        "version": __version__,
        "inputs": {"track_labels": labels},
        "outputs": {
            "dataset": f"{out}/{DATASET_DIR}",
            "cooccurrence_csv": f"{out}/{COOCCURRENCE_CSV}",
            "cooccurrence_png": f"{out}/{COOCCURRENCE_PNG}",
        },
        "settings": cfg.to_dict()["dataset"],
        "previous_splits_from": previous_path if previous_splits is not None else None,
        "contexts": list(names),
        **build.report,
        "seconds": build.seconds,
        "elapsed_seconds": round(time.perf_counter() - started, 3),
    }
    io.write_json(spark, f"{out}/{REPORT_FILE}", report)
    return report


def _previous_splits(spark: SparkSession, path: str) -> Optional[DataFrame]:
    """(track_id, split) of the dataset table at ``path``, or None (with a warning) when
    there is none to read."""
    if not io.path_exists(spark, path):
        log.warning("no previous dataset at %s: every group is stratified", path)
        return None
    df = io.read_parquet(spark, path, f"previous dataset {path}")
    if schema.TRACK_ID not in df.columns or SPLIT not in df.columns:
        log.warning("previous dataset %s has no track_id/split columns: every group is stratified", path)
        return None
    return df.select(schema.TRACK_ID, SPLIT)


def summary(report: dict[str, Any]) -> str:
    """A few human-readable lines about a finished run."""
    balance, split, groups = report["balance"], report["split"], report["groups"]
    lines = [
        f"dataset written to {report['outputs']['dataset']}",
        f"{report['input']['rows']} labelled tracks in, {balance['tracks_after']} kept"
        + (f" (cap {balance['cap']})" if balance.get("enabled") else " (no balancing)")
        + f", {balance['labels_per_track_after']:.2f} labels per track",
        f"{groups['groups']} artist/album groups (largest {groups['size_max']} tracks); split "
        + ", ".join(f"{s} {v['tracks']} ({v['share']:.3f})" for s, v in split["sizes"].items())
        + f"; max deviation {split['max_deviation']:.4f} (tolerance {split['tolerance']})",
        f"{'context':<10} {'before':>8} {'after':>8} {'train':>7} {'valid':>7} {'test':>7}",
    ]
    for name, counts in balance["per_context"].items():
        share = split["per_context_share"][name]
        lines.append(
            f"{name:<10} {counts['before']:>8} {counts['after']:>8} {share['train']:>7.3f} "
            f"{share['validation']:>7.3f} {share['test']:>7.3f}"
        )
    lines.append(f"done in {report['elapsed_seconds']:.1f} s")
    return "\n".join(lines)


def run_in_chain(request: StageRequest) -> dict[str, Any]:
    """The stage in a chained run: the labelling stage's ``track_labels`` in."""
    labels = f"{request.upstream['label']}/{schema.TRACK_LABELS_DIR}"
    return run_dataset_stage(request.spark, request.cfg, labels, request.out, previous=request.previous)


def manifest_rows(report: dict[str, Any]) -> dict[str, Any]:
    """The counts a refresh manifest keeps from the report."""
    return {
        "labelled_tracks_in": report["input"]["rows"],
        "tracks": report["dataset"]["tracks"],
        "per_split": {s: v["tracks"] for s, v in report["split"]["sizes"].items()},
    }


def manifest_line(rows: dict[str, Any]) -> str:
    return f"dataset: {rows['tracks']} tracks (" + ", ".join(f"{k} {v}" for k, v in rows["per_split"].items()) + ")"
