"""``ctx-spark train``, ``evaluate``, ``compare``, ``predict`` and ``score``.

Everything here needs TensorFlow/Keras (the ``train`` extra); the modules doing the work
are imported inside each command so that ``--help`` and input errors come before
TensorFlow starts.
"""

from __future__ import annotations

import argparse
import json
import os

from ctx_spark.cli import Command
from ctx_spark.config import Config


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shards", required=True, help="mel shard root (train/, validation/, mel_params.json)")
    parser.add_argument("--out", required=True, help="run directory (created; resumed when it holds checkpoints)")
    parser.add_argument("--restart", action="store_true", help="delete RUN's checkpoints and train from scratch")


def _train(args: argparse.Namespace, cfg: Config) -> int:
    from training.train import run_training

    report = run_training(cfg, args.shards, args.out, restart=args.restart)
    print(
        f"model: {os.path.join(report['run_dir'], 'model.keras')} (best epoch {report['best_epoch']} of "
        f"{report['epochs_completed']}, val_loss {report['best_val_loss']:.5f}, loss {report['loss_variant']})"
    )
    return 0


TRAIN = Command(
    description="""Train the context CNN on mel shards, resumably (a killed run started again with the same
command resumes from its last epoch; a finished run is left as it is).

inputs:   --shards S: S/train and S/validation (streamed, every row once per epoch)
outputs:  RUN/checkpoints/, RUN/training_log.csv, RUN/tensorboard/, RUN/run_config.json,
          RUN/model.keras + RUN/model_meta.json (best epoch), RUN/train_report.json
setting:  train.loss.variant (none | negative_exact | negative_ignore_zeros | both_exact |
          both_ignore_zeros; paper Table 2); train.optimizer.learning_rate

example:
  ctx-spark train --shards S --out RUN --conf conf/examples/small.yaml""",
    add_arguments=_train_arguments,
    run=_train,
    sections=("train",),
)


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="run directory holding model.keras and model_meta.json")
    parser.add_argument("--shards", required=True, help="mel shard root with validation/ and test/")
    parser.add_argument("--out", required=True, help="output directory (replaced atomically)")


def _evaluate(args: argparse.Namespace, cfg: Config) -> int:
    from training.evaluate import run_evaluation, summary

    print(summary(run_evaluation(cfg, args.model, args.shards, args.out)))
    return 0


EVALUATE = Command(
    description="""Evaluate an exported model: the paper's Table 1 at the fixed threshold and at per-context
thresholds tuned on the validation split for F1.

inputs:   --model RUN (model.keras, model_meta.json), --shards S (validation/, test/)
outputs:  OUT/metrics.json, OUT/table1.md, OUT/table1_fixed.csv, OUT/table1_tuned.csv,
          OUT/roc_curves.png, OUT/predictions.parquet
setting:  train.evaluation.threshold

example:
  ctx-spark evaluate --model RUN --shards S --out EVAL""",
    add_arguments=_evaluate_arguments,
    run=_evaluate,
    sections=("train",),
)


def _compare_arguments(parser: argparse.ArgumentParser) -> None:
    from training.settings import LOSS_VARIANTS

    parser.add_argument("--shards", required=True, help="mel shard root (train/, validation/, test/)")
    parser.add_argument("--out", required=True, help="directory for one run per variant and the Table 2 files")
    parser.add_argument("--variants", default=",".join(LOSS_VARIANTS), help="comma-separated loss variants")


def _compare(args: argparse.Namespace, cfg: Config) -> int:
    from training.compare import run_comparison

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    run_comparison(args.conf, args.overrides, args.shards, args.out, variants)
    with open(os.path.join(args.out, "table2.md"), encoding="utf-8") as handle:
        print(handle.read())
    return 0


COMPARE = Command(
    description="""Train and evaluate every loss variant and write the paper's Table 2 comparison.

inputs:   --shards S (train/, validation/, test/)
outputs:  OUT/<variant>/ (a training run and its evaluation/ each), OUT/table2.md,
          OUT/table2.csv, OUT/table2.json
setting:  --variants (default: all five, paper order)

example:
  ctx-spark compare --shards S --out CMP --variants none,both_exact""",
    add_arguments=_compare_arguments,
    run=_compare,
    sections=("train",),
)


def _predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="run directory holding model.keras and model_meta.json")
    parser.add_argument("--audio", required=True, nargs="+", help="audio files")
    parser.add_argument("--threshold", type=float, help="one threshold for every context")
    parser.add_argument("--thresholds", metavar="METRICS_JSON", help="per-context thresholds from `ctx-spark evaluate`")
    parser.add_argument("--json", action="store_true", help="print one JSON object per file")


def _predict(args: argparse.Namespace, cfg: Config) -> int:
    from ctx_spark.shards.contract import check_contexts
    from training.predict import format_result, load_thresholds, model_contexts, predict_files
    from training.settings import train_settings

    settings = train_settings(cfg)
    default = args.threshold if args.threshold is not None else settings.evaluation.threshold
    contexts = model_contexts(args.model)
    check_contexts(contexts, cfg.contexts.names, f"the model {args.model}")
    thresholds = load_thresholds(args.thresholds, contexts, default)
    results = predict_files(args.model, args.audio, settings.evaluation.batch_size, thresholds)
    for result in results:
        print(json.dumps(result) if args.json else format_result(result))
    return 2 if all("error" in r for r in results) else 0


PREDICT = Command(
    description="""Print the listening contexts a trained model hears in audio files: each file goes through
the transform the model was trained on (RUN/model_meta.json); a file that cannot be decoded
is reported and skipped (exit code 2 only when no file could be read).

inputs:   --model RUN, --audio FILE [FILE ...]
outputs:  one line (or, with --json, one JSON object) per file on stdout
setting:  --thresholds EVAL/metrics.json (tuned per context) or --threshold T

example:
  ctx-spark predict --model RUN --audio song.mp3 --thresholds EVAL/metrics.json""",
    add_arguments=_predict_arguments,
    run=_predict,
    sections=("train",),
)


def _score_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="training run directory (model.keras, model_meta.json)")
    parser.add_argument("--shards", required=True, help="mel shard root")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--tracks", help="catalogue tracks table: its name columns join the outputs (optional)")


def _score(args: argparse.Namespace, cfg: Config) -> int:
    from ctx_spark.spark import SparkSettings, get_spark
    from training.score.run import run_score_stage, summary

    spark = get_spark("ctx-spark score", cfg.section("spark", SparkSettings))
    print(summary(run_score_stage(spark, cfg, args.model, args.shards, args.out, tracks=args.tracks)))
    return 0


SCORE = Command(
    description="""Score a catalogue's mel shards with a trained model on Spark: per-track context
probabilities and, per context, the ranked track list ("pick a context, get tracks").

inputs:   --model RUN (read on the driver, broadcast to the executors), --shards S
          (train/validation/test or all/)
outputs:  OUT/track_scores, OUT/context_rankings/context=<name>/, OUT/report.json
setting:  score.batch_size (spectrograms per model call)

example:
  ctx-spark score --model RUN --shards S --out P
  ctx-spark top --scores P --context sleep -n 20""",
    add_arguments=_score_arguments,
    run=_score,
    sections=("spark", "score"),
)
