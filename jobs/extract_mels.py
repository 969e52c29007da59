"""Decode each track's audio and write its log-mel spectrogram as Petastorm-readable shards.

  spark-submit jobs/extract_mels.py (--tracks TABLE | --audio-dir DIR) --out S \
      [--dataset D] [--conf FILE] [--set key=value ...]
  python -m jobs.extract_mels ...   (same options, local mode)

TABLE is Parquet with track_id and audio (a path or URI the executors can read); DIR holds
files named <track_id>.<ext> (conf/extract.yaml: extensions), at any depth. With --dataset
(the output of jobs/build_dataset.py) the shards carry labels and weights and are split
into S/train, S/validation and S/test; without it everything goes to S/all. Also writes
S/errors (tracks that could not be used, with the reason), S/mel_params.json and
S/report.json. A re-run only decodes tracks that are new or whose audio changed. See
README, "Mel extraction".
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence

if __package__ in (None, ""):  # run as a file by spark-submit: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ctx_spark.cli import config_from_args, job_parser, run_main
from ctx_spark.spark import SparkSettings, get_spark
from ctx_spark.extract.report import summary
from ctx_spark.extract.run import ExtractInputs, run_extract_stage


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = job_parser(__doc__, prog="extract_mels")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--tracks", help="Parquet table (track_id, audio path or URI)")
    source.add_argument("--audio-dir", help="directory of <track_id>.<ext> audio files")
    parser.add_argument("--dataset", help="output of jobs/build_dataset.py (or its dataset/ table)")
    parser.add_argument("--out", required=True, help="output directory of the shards")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    inputs = ExtractInputs(tracks=args.tracks, audio_dir=args.audio_dir, dataset=args.dataset)
    spark = get_spark("ctx-spark extract_mels", cfg.section("spark", SparkSettings))
    report = run_extract_stage(spark, cfg, inputs, args.out)
    print(summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
