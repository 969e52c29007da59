"""Score a catalogue's mel shards with a trained model: per-track context probabilities and,
per context, the ranked track list.

  spark-submit jobs/score_tracks.py --model RUN --shards S --out P [--conf FILE] [--set key=value ...]
  python -m jobs.score_tracks ...   (same options, local mode)

RUN is a training run directory (model.keras + model_meta.json, read on the driver and
broadcast to the executors). S is a shard root (train/validation/test or all/, with
mel_params.json). Writes P/track_scores, P/context_rankings (partitioned by context) and
P/report.json (see README, "Scoring a catalogue").
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence

if __package__ in (None, ""):  # run as a file by spark-submit: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ctx_spark.cli import config_from_args, job_parser, run_main
from ctx_spark.spark import SparkSettings, get_spark
from training.score.run import run_score_stage, summary


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = job_parser(__doc__, prog="score_tracks")
    parser.add_argument("--model", required=True, help="training run directory (model.keras, model_meta.json)")
    parser.add_argument("--shards", required=True, help="mel shard root")
    parser.add_argument("--out", required=True, help="output directory")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    spark = get_spark("ctx-spark score_tracks", cfg.section("spark", SparkSettings))
    report = run_score_stage(spark, cfg, args.model, args.shards, args.out)
    print(summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
