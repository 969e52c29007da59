"""Import Spotify Million Playlist Dataset JSON slices as the labelling job's input tables.

  spark-submit jobs/import_mpd.py --slices 'DIR_OR_GLOB' --out DIR [--conf FILE] [--set key=value ...]
  python -m jobs.import_mpd ...   (same options, local mode)

--slices is a directory (its mpd.slice.*.json files are read) or a glob on any Hadoop
filesystem. Writes DIR/playlists, DIR/playlist_tracks, DIR/tracks (Parquet; track, artist
and album ids are Spotify URIs) and DIR/report.json. Malformed files are reported in
report.json and the log, and skipped. Then:

  spark-submit jobs/label_tracks.py --playlists DIR/playlists \
      --playlist-tracks DIR/playlist_tracks --tracks DIR/tracks --out LABELS
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence

if __package__ in (None, ""):  # run as a file by spark-submit: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ctx_spark.cli import config_from_args, job_parser, run_main
from ctx_spark.sources.mpd import run_import_stage
from ctx_spark.spark import SparkSettings, get_spark


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = job_parser(__doc__, prog="import_mpd")
    parser.add_argument("--slices", required=True, help="directory of mpd.slice.*.json files, or a glob")
    parser.add_argument("--out", required=True, help="output directory")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    spark = get_spark("ctx-spark import_mpd", cfg.section("spark", SparkSettings))
    report = run_import_stage(spark, args.slices, args.out)
    files, rows = report["files"], report["rows"]
    print(f"imported {files['imported']} of {files['found']} slice files into {Path(args.out).resolve()}: "
          f"{rows['playlists']} playlists, {rows['playlist_tracks']} playlist-track rows, {rows['tracks']} tracks")
    for item in report["skipped_files"]:
        print(f"skipped {item['file']}: {item['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
