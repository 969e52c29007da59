"""``ctx-spark dataset``."""

from __future__ import annotations

import argparse

from ctx_spark.cli import Command
from ctx_spark.config import Config
from ctx_spark.spark import SparkSettings, get_spark


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--labels",
        required=True,
        help="Parquet table track_labels (track_id, artist_id, album_id, contexts, n_playlists)",
    )
    parser.add_argument("--out", required=True, help="output directory")


def _run(args: argparse.Namespace, cfg: Config) -> int:
    from ctx_spark.dataset.run import run_dataset_stage, summary

    spark = get_spark("ctx-spark dataset", cfg.section("spark", SparkSettings))
    print(summary(run_dataset_stage(spark, cfg, args.labels, args.out)))
    return 0


DATASET = Command(
    description="""Balance the labelled tracks, split them 65/10/25 with no artist or album on two sides,
and add the paper's sample-level loss weights.

inputs:   --labels: the labelling stage's track_labels table
outputs:  OUT/dataset (track_id, split, labels, weights...), OUT/cooccurrence.csv,
          OUT/cooccurrence.png, OUT/report.json (docs/dataset.md)
setting:  dataset.cap (tracks per context after balancing; null: the rarest context's count)

example:
  ctx-spark dataset --labels L/track_labels --out D --set dataset.cap=5000""",
    add_arguments=_arguments,
    run=_run,
    sections=("spark", "dataset"),
)
