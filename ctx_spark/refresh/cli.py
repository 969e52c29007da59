"""``ctx-spark refresh``."""

from __future__ import annotations

import argparse
import signal
import sys

from ctx_spark.cli import Command
from ctx_spark.config import Config
from ctx_spark.spark import SparkSettings, get_spark


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalogue", help="catalogue directory (playlists/, playlist_tracks/, tracks/, audio)")
    parser.add_argument("--root", required=True, help="refresh root: snapshots/, current, refresh.lock")
    parser.add_argument("--run-id", help="use this run-id instead of a new time-sorted one (or resume it)")
    parser.add_argument(
        "--print-current", action="store_true", help="print the published snapshot's path (nothing when none) and exit"
    )


def exit_on_sigterm(signum: int, frame: object) -> None:
    """A scheduler's SIGTERM (a timeout, a cancelled task) unwinds like an error: the run
    is recorded as failed, resumable, and its lock released."""
    raise SystemExit(128 + signum)


def _run(args: argparse.Namespace, cfg: Config) -> int:
    from ctx_spark.fs import is_local

    if args.print_current:
        from ctx_spark.refresh import current_snapshot

        spark = None if is_local(args.root) else get_spark("ctx-spark refresh", cfg.section("spark", SparkSettings))
        path = current_snapshot(spark, args.root)
        if path is None:
            print(f"{args.root}: nothing published yet", file=sys.stderr)
            return 1
        print(path)
        return 0
    if not args.catalogue:
        print("error: --catalogue is required (unless --print-current)", file=sys.stderr)
        return 2
    from ctx_spark.refresh.manifest import summary
    from ctx_spark.refresh.pipeline import run_refresh

    spark = get_spark("ctx-spark refresh", cfg.section("spark", SparkSettings))
    previous = signal.signal(signal.SIGTERM, exit_on_sigterm)
    try:
        manifest = run_refresh(spark, cfg, args.catalogue, args.root, run_id=args.run_id)
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(summary(manifest))
    return 0


REFRESH = Command(
    description="""Refresh a catalogue's labels, dataset and mel shards (and scores, with refresh.model) as one
resumable run under a root R. Each run writes R/snapshots/<run-id>/ and, only when every
stage succeeded, points R/current at it. A killed or failed run is resumed by the next run
with the same inputs and settings; a run while another holds R/refresh.lock exits with 2.

inputs:   --catalogue C: C/playlists, C/playlist_tracks, C/tracks (Parquet) and the audio
          (an `audio` column in tracks, or C/audio/<track_id>.<ext>; conf/refresh.yaml)
outputs:  R/snapshots/<run-id>/ (labels/, dataset/, mels/, scores/, manifest.json), R/current
setting:  refresh.model (a training run directory to score with; null: no scores)

example:
  ctx-spark refresh --catalogue C --root R --set refresh.model=RUN
  ctx-spark refresh --root R --print-current""",
    add_arguments=_arguments,
    run=_run,
    sections=("spark", "refresh", "label", "dataset", "audio", "extract", "score"),
)
