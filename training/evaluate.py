"""Evaluate an exported model on the shards: the paper's Table 1, at 0.5 and tuned thresholds.

  ctx-spark evaluate --model RUN --shards S --out DIR [--conf FILE] [--set k=v ...]

Predicts the tuning split (validation) and the test split, tunes one threshold per context
on the tuning split for F1, and writes into DIR (atomically: staging directory + rename):
metrics.json, table1.md (both tables), table1_fixed.csv, table1_tuned.csv, roc_curves.png,
predictions.parquet (test split: track_id, labels, probabilities).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ctx_spark import __version__
from ctx_spark.causes import output_errors
from ctx_spark.config import Config
from ctx_spark.errors import InputError
from ctx_spark.logs import get_logger, stage
from ctx_spark.shards.contract import check_contexts
from ctx_spark.shards.reader import ShardSplit, open_split
from training import metrics, tables
from training.settings import train_settings

log = get_logger("evaluate")

METRICS_FILE = "metrics.json"


def predict_split(
    model, split: ShardSplit, data_settings, n_contexts: int, batch_size: int, with_targets: bool
) -> dict[str, np.ndarray]:
    """Probabilities for every row of ``split`` in reading order.

    Returns: ``track_id`` (N,), ``probs`` (N, C) float32 and, with targets, ``labels``
    (N, C) uint8. Memory grows with N x C only (spectrograms are streamed).
    """
    from training import data

    ids, probs, labels = [], [], []
    with data.input_errors():
        for batch in data.prediction_batches(split, data_settings, n_contexts, batch_size, with_targets):
            probs.append(np.asarray(model.predict_on_batch(batch["x"]), dtype=np.float32))
            ids.append(batch["track_id"])
            if with_targets:
                labels.append(batch["labels"])
    out = {"track_id": np.concatenate(ids), "probs": np.concatenate(probs)}
    if with_targets:
        out["labels"] = np.concatenate(labels)
    return out


def check_compatible(exported, split: ShardSplit, contexts: Sequence[str]) -> None:
    """The shards must hold the transform and the context order the model was trained on."""
    if split.params != exported.params:
        raise InputError(
            f"mel shards {split.root}: mel parameters {split.params.to_dict()} differ from the model's "
            f"{exported.params.to_dict()} (model_meta.json)"
        )
    check_contexts(exported.contexts, contexts, "the model")
    check_contexts(split.info.contexts, contexts, f"mel shards {split.root}")


def _write_predictions(path: str, result: dict, contexts: Sequence[str]) -> None:
    ids = result["track_id"]
    id_array = pa.array([i.decode() for i in ids], pa.string()) if ids.dtype.kind in "SO" else pa.array(ids, pa.int64())
    n, c = result["probs"].shape

    def lists(values, item):
        return pa.ListArray.from_arrays(
            pa.array(np.arange(0, n * c + 1, c, dtype=np.int32)), pa.array(values.reshape(-1), item)
        )

    table = pa.table(
        {
            "track_id": id_array,
            "labels": lists(result["labels"], pa.uint8()),
            "probabilities": lists(result["probs"], pa.float32()),
        }
    )
    table = table.replace_schema_metadata({b"contexts": ",".join(contexts).encode()})
    pq.write_table(table, path)


def run_evaluation(cfg: Config, model_dir: str, shards: str, out: str) -> dict[str, Any]:
    """Evaluate ``model_dir``'s exported model on ``shards``; write ``out``; return metrics."""
    started = time.perf_counter()
    settings = train_settings(cfg)
    ev = settings.evaluation
    contexts = cfg.contexts.names
    tune_split, test_split = open_split(shards, ev.tune_split), open_split(shards, ev.test_split)
    for split in (tune_split, test_split):
        split.require_targets()

    from training import data
    from training.model import load_exported, write_json_file

    exported = load_exported(model_dir)
    n = len(contexts)
    for split in (tune_split, test_split):
        check_compatible(exported, split, contexts)
        data.check_split(split, n, with_targets=True)
    with stage(log, f"predict {ev.tune_split}") as timer:
        tuned_on = predict_split(exported.model, tune_split, settings.data, n, ev.batch_size, True)
        timer.rows = len(tuned_on["probs"])
    with stage(log, f"predict {ev.test_split}") as timer:
        test = predict_split(exported.model, test_split, settings.data, n, ev.batch_size, True)
        timer.rows = len(test["probs"])
    thresholds = metrics.tune_thresholds(tuned_on["labels"], tuned_on["probs"], default=ev.threshold)
    fixed = metrics.evaluate_predictions(test["labels"], test["probs"], contexts, ev.threshold)
    tuned = metrics.evaluate_predictions(test["labels"], test["probs"], contexts, thresholds)
    result = {
        "stage": "evaluate",
        "version": __version__,
        "model": os.path.abspath(model_dir),
        "shards": shards,
        "loss_variant": exported.meta.get("loss_variant"),
        "best_epoch": exported.meta.get("best_epoch"),
        "tune_split": ev.tune_split,
        "test_split": ev.test_split,
        "fixed_threshold": {"threshold": ev.threshold, **fixed},
        "tuned_thresholds": {"tuned_on": ev.tune_split, **tuned},
        "paper_table1_macro": tables.PAPER_TABLE1_MACRO,
        "elapsed_seconds": None,
    }
    out = os.path.abspath(out)
    with output_errors(out):
        parent = os.path.dirname(out)
        os.makedirs(parent, exist_ok=True)
        staging = os.path.join(parent, f".staging-{os.path.basename(out)}-{uuid.uuid4().hex[:8]}")
        os.makedirs(staging)
        try:
            with open(os.path.join(staging, "table1.md"), "w", encoding="utf-8") as handle:
                handle.write(tables.table1_markdown(fixed, f"Test split, threshold {ev.threshold}"))
                handle.write("\n")
                handle.write(
                    tables.table1_markdown(tuned, f"Test split, per-context thresholds tuned on {ev.tune_split} for F1")
                )
            for name, part in (("fixed", fixed), ("tuned", tuned)):
                with open(os.path.join(staging, f"table1_{name}.csv"), "w", encoding="utf-8") as handle:
                    handle.write(tables.table1_csv(part))
            aucs = [fixed["per_context"][c]["roc_auc"] for c in contexts]
            tables.roc_figure(
                test["labels"],
                test["probs"],
                contexts,
                aucs,
                os.path.join(staging, "roc_curves.png"),
                f"ROC curves, {ev.test_split} split (macro AUC {fixed['macro']['roc_auc']:.2f})",
            )
            _write_predictions(os.path.join(staging, "predictions.parquet"), test, contexts)
            result["elapsed_seconds"] = round(time.perf_counter() - started, 3)
            write_json_file(os.path.join(staging, METRICS_FILE), result)
            if os.path.exists(out):
                retired = os.path.join(parent, f".retired-{os.path.basename(out)}-{uuid.uuid4().hex[:8]}")
                os.replace(out, retired)
                os.replace(staging, out)
                shutil.rmtree(retired)
            else:
                os.replace(staging, out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return result


def summary(result: dict) -> str:
    lines = [
        f"evaluation of {result['model']} on {result['test_split']} ({result['fixed_threshold']['tracks']} tracks)"
    ]
    for key, label in (
        ("fixed_threshold", f"threshold {result['fixed_threshold']['threshold']}"),
        ("tuned_thresholds", f"thresholds tuned on {result['tune_split']}"),
    ):
        m = result[key]["macro"]
        lines.append(
            f"  macro, {label}: " + ", ".join(f"{tables.METRIC_TITLES[k]} {m[k]:.3f}" for k in metrics.METRICS)
        )
    p = tables.PAPER_TABLE1_MACRO
    lines.append(
        "  paper Table 1 macro: " + ", ".join(f"{tables.METRIC_TITLES[k]} {p[k]:.2f}" for k in metrics.METRICS)
    )
    return "\n".join(lines)
