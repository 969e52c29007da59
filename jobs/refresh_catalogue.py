"""Refresh a catalogue's labels, dataset and mel shards (and scores) as one resumable run.

  spark-submit jobs/refresh_catalogue.py --catalogue C --root R [--run-id ID] \
      [--conf FILE] [--set key=value ...]
  python -m jobs.refresh_catalogue ...          (same options, local mode)
  python -m jobs.refresh_catalogue --root R --print-current

C holds playlists/, playlist_tracks/, tracks/ (Parquet) and the audio (an `audio` column in
tracks, or C/audio/<track_id>.<ext>; conf/refresh.yaml). Each run writes
R/snapshots/<run-id>/ (labels/, dataset/, mels/, scores/ with a model, manifest.json) and,
only when every stage succeeded, points R/current at it. A run that was killed or failed
is resumed by the next run with the same inputs and settings; a run while another holds
R/refresh.lock exits with code 2. See README, "Scheduled refresh".
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Optional, Sequence

if __package__ in (None, ""):  # run as a file by spark-submit: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ctx_spark.cli import config_from_args, job_parser, run_main
from ctx_spark.refresh.store import is_local
from ctx_spark.spark import SparkSettings, get_spark


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = job_parser(__doc__, prog="refresh_catalogue")
    parser.add_argument("--catalogue", help="catalogue directory (playlists/, playlist_tracks/, tracks/, audio)")
    parser.add_argument("--root", required=True, help="refresh root: snapshots/, current, refresh.lock")
    parser.add_argument("--run-id", help="use this run-id instead of a new time-sorted one (or resume it)")
    parser.add_argument("--print-current", action="store_true",
                        help="print the published snapshot's path (nothing when none) and exit")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    if args.print_current:
        from ctx_spark.refresh import current_snapshot

        spark = None if is_local(args.root) else get_spark("ctx-spark refresh_catalogue", cfg.section("spark", SparkSettings))
        path = current_snapshot(spark, args.root)
        if path is None:
            print(f"{args.root}: nothing published yet", file=sys.stderr)
            return 1
        print(path)
        return 0
    if not args.catalogue:
        parser.error("--catalogue is required (unless --print-current)")
    from ctx_spark.refresh.manifest import summary
    from ctx_spark.refresh.pipeline import run_refresh

    spark = get_spark("ctx-spark refresh_catalogue", cfg.section("spark", SparkSettings))
    # A scheduler's SIGTERM (a timeout, a cancelled task) unwinds like an error: the run is
    # recorded as failed, resumable, and its lock released.
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        manifest = run_refresh(spark, cfg, args.catalogue, args.root, run_id=args.run_id)
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(summary(manifest))
    return 0


def _exit_on_sigterm(signum: int, frame) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(run_main(main))
