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
    parser.add_argument(
        "--gc",
        action="store_true",
        help="only collect the mel store's garbage (safe while a run is live; no --catalogue) and exit",
    )


def exit_on_sigterm(signum: int, frame: object) -> None:
    """A scheduler's SIGTERM (a timeout, a cancelled task) unwinds like an error: the run
    is recorded as failed, resumable, and its lock released."""
    raise SystemExit(128 + signum)


def _print_current(args: argparse.Namespace, cfg: Config) -> int:
    from ctx_spark.fs import is_local
    from ctx_spark.refresh import current_snapshot

    spark = None if is_local(args.root) else get_spark("ctx-spark refresh", cfg.section("spark", SparkSettings))
    path = current_snapshot(spark, args.root)
    if path is None:
        print(f"{args.root}: nothing published yet", file=sys.stderr)
        return 1
    print(path)
    return 0


def _gc(args: argparse.Namespace, cfg: Config) -> int:
    import json

    from ctx_spark.refresh.gc import collect_garbage
    from ctx_spark.refresh.pipeline import open_root
    from ctx_spark.refresh.settings import RefreshSettings, store_root
    from ctx_spark.refresh.store import store_for

    settings = cfg.section("refresh", RefreshSettings)
    spark = get_spark("ctx-spark refresh --gc", cfg.section("spark", SparkSettings))
    store = store_for(spark, args.root)
    layout = open_root(args.root, store)
    result = collect_garbage(
        spark, store, layout, store_root(settings, layout.root), settings.store, settings.lock_stale_seconds
    )
    print(json.dumps(result, indent=2))
    return 0


def _run(args: argparse.Namespace, cfg: Config) -> int:
    from ctx_spark.fs import is_local

    if args.print_current:
        return _print_current(args, cfg)
    if args.gc:
        return _gc(args, cfg)
    if not args.catalogue:
        print("error: --catalogue is required (unless --print-current or --gc)", file=sys.stderr)
        return 2
    from ctx_spark.refresh.manifest import summary
    from ctx_spark.refresh.pipeline import open_root, root_lock, run_refresh
    from ctx_spark.refresh.settings import RefreshSettings
    from ctx_spark.refresh.store import LocalStore

    lock = None
    if is_local(args.root):  # refuse a second run before paying for a SparkSession
        store = LocalStore()
        lock = root_lock(store, open_root(args.root, store), cfg.section("refresh", RefreshSettings))
    previous = signal.signal(signal.SIGTERM, exit_on_sigterm)
    try:
        spark = get_spark("ctx-spark refresh", cfg.section("spark", SparkSettings))
        manifest = run_refresh(spark, cfg, args.catalogue, args.root, run_id=args.run_id, lock=lock)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if lock is not None:
            lock.release()
    print(summary(manifest))
    return 0


REFRESH = Command(
    description="""Refresh a catalogue's labels, dataset and mel shards (and scores, with refresh.model) as one
resumable run under a root R. Each run writes R/snapshots/<run-id>/ and, only when every
stage succeeded, points R/current at it. A killed or failed run is resumed by the next run
with the same inputs and settings; a run while another holds R/refresh.lock exits with 2.

inputs:   --catalogue C: C/playlists, C/playlist_tracks, C/tracks (Parquet) and the audio
          (an `audio` column in tracks, or C/audio/<track_id>.<ext>; conf/refresh.yaml)
outputs:  R/snapshots/<run-id>/ (labels/, dataset/, mels/ (references), scores/, manifest.json),
          R/melstore/ (every spectrogram once, shared by the snapshots), R/current
setting:  refresh.model (a training run directory to score with; null: no scores)

Unchanged stages are reused by reference and only new or changed tracks are decoded and
scored; --gc deletes the mel store's files no snapshot uses (also run after each publication).

example:
  ctx-spark refresh --catalogue C --root R --set refresh.model=RUN
  ctx-spark refresh --root R --print-current
  ctx-spark refresh --root R --gc""",
    add_arguments=_arguments,
    run=_run,
    sections=("spark", "refresh", "label", "dataset", "audio", "extract", "score"),
)
