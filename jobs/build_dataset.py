"""Assemble the training dataset from track labels: balance, split, weight.

  spark-submit jobs/build_dataset.py --labels O/track_labels --out D \
      [--conf FILE] [--set key=value ...]
  python -m jobs.build_dataset ...   (same options, local mode)

Writes D/dataset (Parquet), D/cooccurrence.csv, D/cooccurrence.png and D/report.json
(see README, "Dataset assembly").
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence

if __package__ in (None, ""):  # run as a file by spark-submit: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ctx_spark.cli import config_from_args, job_parser, run_main
from ctx_spark.spark import SparkSettings, get_spark
from ctx_spark.dataset.run import run_dataset_stage, summary


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = job_parser(__doc__, prog="build_dataset")
    parser.add_argument("--labels", required=True,
                        help="Parquet table track_labels (track_id, artist_id, album_id, contexts, n_playlists)")
    parser.add_argument("--out", required=True, help="output directory")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    spark = get_spark("ctx-spark build_dataset", cfg.section("spark", SparkSettings))
    report = run_dataset_stage(spark, cfg, args.labels, args.out)
    print(summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
