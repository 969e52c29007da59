"""The labelling stage: three input tables in, counts, labels and report.json out."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyspark.sql import SparkSession

from ctx_spark import __version__, io, schema
from ctx_spark.config import Config
from ctx_spark.label.rules import label_catalogue
from ctx_spark.label.settings import LabelSettings
from ctx_spark.logs import get_logger, stage
from ctx_spark.track_names import read_track_names, with_names

if TYPE_CHECKING:
    from ctx_spark.registry import StageRequest

log = get_logger("label")

COUNTS_DIR = schema.TRACK_CONTEXT_COUNTS_DIR
LABELS_DIR = schema.TRACK_LABELS_DIR
REPORT_FILE = schema.REPORT_FILE


@dataclass(frozen=True)
class LabelInputs:
    """Paths of the three input tables (Parquet, any Hadoop path)."""

    playlists: str
    playlist_tracks: str
    tracks: str

    def paths(self) -> dict[str, str]:
        """Option name -> path, for messages and the output-path check."""
        return {"--playlists": self.playlists, "--playlist-tracks": self.playlist_tracks, "--tracks": self.tracks}


def read_inputs(spark: SparkSession, inputs: LabelInputs):
    """Read and validate the three tables; ids must agree in type across tables.

    An empty table is refused (``require_rows``, from the Parquet footers, no Spark job):
    with no playlists, rows or tracks every label is missing, and an empty output that
    exits 0 would replace a good one.
    """
    playlists = io.read_table(spark, inputs.playlists, schema.PLAYLISTS, require_rows=True)
    playlist_tracks = io.read_table(spark, inputs.playlist_tracks, schema.PLAYLIST_TRACKS, require_rows=True)
    tracks = io.read_table(spark, inputs.tracks, schema.TRACKS, require_rows=True)
    schema.check_same_id_type(
        [("playlists", playlists, "playlist_id"), ("playlist_tracks", playlist_tracks, "playlist_id")]
    )
    schema.check_same_id_type([("playlist_tracks", playlist_tracks, "track_id"), ("tracks", tracks, "track_id")])
    return playlists, playlist_tracks, tracks


def run_label_stage(spark: SparkSession, cfg: Config, inputs: LabelInputs, out: str) -> dict[str, Any]:
    """Label the catalogue and write ``out/track_context_counts``, ``out/track_labels``
    and ``out/report.json``, each atomically. Returns the report.

    Outputs are sorted by track (and context), so a re-run on the same inputs writes the
    same rows in the same order. ``track_labels`` carries the tracks table's name columns
    when it has them (:mod:`ctx_spark.track_names`).

    Raises:
        InputError: the tables' ids do not agree (matched playlists without rows, or without
            one known track): nothing is written.
    """
    started = time.perf_counter()
    settings = cfg.section("label", LabelSettings)
    out = io.qualify(out).rstrip("/")
    io.check_output_path("label", out, inputs.paths())
    with stage(log, "read inputs"):
        playlists, playlist_tracks, tracks = read_inputs(spark, inputs)
        names = read_track_names(spark, inputs.tracks)
    with stage(log, "match titles and playlist tracks"), described(spark, "label: match"):
        result = label_catalogue(playlists, playlist_tracks, tracks, cfg.contexts, settings)
    try:
        with stage(log, "check matches"), described(spark, "label: check"):
            warnings = result.check()
        with stage(log, "count track contexts"), described(spark, "label: count"):
            result.materialize()
        with stage(log, "write track_context_counts"), described(spark, "label: write counts"):
            io.write_parquet(result.counts, f"{out}/{COUNTS_DIR}", sort_by=("track_id", "context"))
        with stage(log, "write track_labels"), described(spark, "label: write labels"):
            io.write_parquet(with_names(result.labels, names), f"{out}/{LABELS_DIR}", sort_by=("track_id",))
        with stage(log, "report") as timer, described(spark, "label: report"):
            report = result.report()
            timer.rows = report["rows_read"]["playlist_tracks"]
    finally:
        result.release()
    report = {
        "stage": "label",
        "version": __version__,
        "inputs": {"playlists": inputs.playlists, "playlist_tracks": inputs.playlist_tracks, "tracks": inputs.tracks},
        "outputs": {"track_context_counts": f"{out}/{COUNTS_DIR}", "track_labels": f"{out}/{LABELS_DIR}"},
        "settings": cfg.to_dict()["label"],
        "spark": {"master": spark.sparkContext.master, "version": spark.version},
        "contexts": {name: list(cfg.contexts.keywords[name]) for name in cfg.contexts.names},
        **report,
        "warnings": warnings,
        "elapsed_seconds": round(time.perf_counter() - started, 3),
    }
    io.write_json(spark, f"{out}/{REPORT_FILE}", report)
    return report


@contextmanager
def described(spark: SparkSession, text: str) -> Iterator[None]:
    """Name the Spark jobs of a step (the Spark UI and its REST API show it per job and stage)."""
    sc = spark.sparkContext
    sc.setLocalProperty("spark.job.description", text)
    try:
        yield
    finally:
        sc.setLocalProperty("spark.job.description", None)  # type: ignore[arg-type]


def summary(report: dict[str, Any]) -> str:
    """A few human-readable lines about a finished labelling run."""
    lines = [
        f"labels written to {report['outputs']['track_labels']}",
        f"counts written to {report['outputs']['track_context_counts']}",
        f"read {report['rows_read']['playlists']} playlists, "
        f"{report['rows_read']['playlist_tracks']} playlist-track rows, "
        f"{report['rows_read']['tracks']} tracks; kept {report['playlists_kept']} of {report['playlists_matched']} "
        f"keyword-matched playlists; labelled {report['tracks_labelled']} tracks in {report['elapsed_seconds']:.1f} s",
        f"{'context':<10} {'playlists':>10} {'tracks':>8}",
    ]
    for name, matched in report["playlists_matched_per_context"].items():
        lines.append(f"{name:<10} {matched:>10} {report['tracks_labelled_per_context'][name]:>8}")
    return "\n".join(lines)


def run_in_chain(request: StageRequest) -> dict[str, Any]:
    """The stage in a chained run (the refresh): the run's three input tables in."""
    inputs = LabelInputs(request.inputs["playlists"], request.inputs["playlist_tracks"], request.inputs["tracks"])
    return run_label_stage(request.spark, request.cfg, inputs, request.out)


def manifest_rows(report: dict[str, Any]) -> dict[str, Any]:
    """The counts a refresh manifest keeps from the report."""
    return {
        "read": report["rows_read"],
        "playlists_kept": report["playlists_kept"],
        "tracks_labelled": report["tracks_labelled"],
    }


def manifest_line(rows: dict[str, Any]) -> str:
    return f"labels: {rows['tracks_labelled']} tracks"
