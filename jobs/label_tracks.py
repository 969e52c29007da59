"""Label tracks with listening contexts from the titles of the playlists that hold them.

  spark-submit jobs/label_tracks.py --playlists P --playlist-tracks PT --tracks T --out O \
      [--conf FILE] [--set key=value ...]
  python -m jobs.label_tracks ...   (same options, local mode)

Writes O/track_context_counts, O/track_labels and O/report.json (see README).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence

if __package__ in (None, ""):  # run as a file by spark-submit: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ctx_spark.cli import config_from_args, job_parser, run_main
from ctx_spark.spark import SparkSettings, get_spark
from ctx_spark.label.run import LabelInputs, run_label_stage, summary


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = job_parser(__doc__, prog="label_tracks")
    parser.add_argument("--playlists", required=True, help="Parquet table (playlist_id, title)")
    parser.add_argument("--playlist-tracks", required=True, help="Parquet table (playlist_id, track_id)")
    parser.add_argument("--tracks", required=True, help="Parquet table (track_id, artist_id, album_id)")
    parser.add_argument("--out", required=True, help="output directory")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    spark = get_spark("ctx-spark label_tracks", cfg.section("spark", SparkSettings))
    report = run_label_stage(spark, cfg, LabelInputs(args.playlists, args.playlist_tracks, args.tracks), args.out)
    print(summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
