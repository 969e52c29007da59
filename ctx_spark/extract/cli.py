"""``ctx-spark extract``."""

from __future__ import annotations

import argparse

from ctx_spark.cli import Command
from ctx_spark.config import Config
from ctx_spark.spark import SparkSettings, get_spark


def _arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--tracks", help="Parquet table (track_id, audio path or URI)")
    source.add_argument("--audio-dir", help="directory of <track_id>.<ext> audio files")
    parser.add_argument("--dataset", help="output of `ctx-spark dataset` (or its dataset/ table)")
    parser.add_argument("--out", required=True, help="output directory of the shards (replaced as a whole)")


def _run(args: argparse.Namespace, cfg: Config) -> int:
    from ctx_spark.extract.report import summary
    from ctx_spark.extract.run import ExtractInputs, run_extract_stage

    inputs = ExtractInputs(tracks=args.tracks, audio_dir=args.audio_dir, dataset=args.dataset)
    spark = get_spark("ctx-spark extract", cfg.section("spark", SparkSettings))
    print(summary(run_extract_stage(spark, cfg, inputs, args.out)))
    return 0


EXTRACT = Command(
    description="""Decode the audio of every track into a log-mel spectrogram (96 x 646 from a 30 s excerpt)
and write mel shards (Parquet, readable by pyarrow and petastorm), incrementally: an
unchanged track keeps its spectrogram from the previous output at --out.

inputs:   --audio-dir DIR of <track_id>.<ext> files, or --tracks (track_id, audio) table;
          --dataset: the dataset stage's output (splits, labels and weights), optional
outputs:  OUT/{train,validation,test}/ (or OUT/all/ without --dataset), OUT/errors/,
          OUT/mel_params.json, OUT/shards.json, OUT/report.json (docs/extraction.md)
setting:  extract.extensions (audio file extensions listed, by preference)

example:
  ctx-spark extract --audio-dir AUDIO --dataset D --out S""",
    add_arguments=_arguments,
    run=_run,
    sections=("spark", "audio", "extract"),
)
