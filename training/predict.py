"""Print the listening contexts a trained model hears in audio files.

  ctx-spark predict --model RUN --audio FILE [FILE ...] [--thresholds EVAL/metrics.json]
                             [--threshold T] [--json] [--conf FILE] [--set k=v ...]

Each file goes through the same log-mel transform the model was trained on (the mel
parameters in RUN/model_meta.json, via ctx_spark.audio.mel.compute_mel), files are
predicted in batches, and each file's contexts at or above its threshold are printed with
their probabilities (all 15 with --json). Thresholds: --threshold (default
train.evaluation.threshold), or the per-context thresholds tuned by training.evaluate.
A file that cannot be decoded is reported and skipped; the exit code is 2 only when no
file could be read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from ctx_spark.errors import InputError
from ctx_spark.logs import get_logger
from ctx_spark.schema import META_FILE

log = get_logger("predict")


def _compute_mel():
    try:
        from ctx_spark.audio.mel import compute_mel
    except ImportError as exc:
        raise InputError(f"the audio front end ctx_spark.audio.mel is not available: {exc}") from None
    return compute_mel


def load_thresholds(path: Optional[str], contexts: Sequence[str], default: float) -> np.ndarray:
    """(C,) thresholds: the tuned ones from an evaluation's metrics.json, else ``default``.

    Raises:
        InputError: ``path`` is missing, not JSON, not an evaluation's metrics.json, lacks
            a context, or holds a threshold that is not a number in [0, 1].
    """
    if not path:
        return np.full(len(contexts), float(default))
    where = f"--thresholds {path}"
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise InputError(f"{where}: no such file (give the metrics.json that `ctx-spark evaluate` wrote)") from None
    except IsADirectoryError:
        raise InputError(f"{where}: is a directory; give its metrics.json (`ctx-spark evaluate` output)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{where}: cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: is not JSON ({exc}); give the metrics.json of `ctx-spark evaluate`") from None
    per_context = data.get("tuned_thresholds", {}).get("per_context") if isinstance(data, dict) else None
    if not isinstance(per_context, dict):
        raise InputError(
            f"{where}: has no tuned_thresholds.per_context; it is not the metrics.json that `ctx-spark evaluate` wrote"
        )
    missing = [c for c in contexts if c not in per_context]
    if missing:
        raise InputError(f"{where}: no tuned threshold for contexts {missing} (evaluated with other contexts?)")
    values = []
    for context in contexts:
        entry = per_context[context]
        value = entry.get("threshold") if isinstance(entry, dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
            raise InputError(f"{where}: the threshold of '{context}' is {value!r}, not a number in [0, 1]")
        values.append(float(value))
    return np.array(values, dtype=np.float64)


def predict_files(
    model_dir: str,
    audio: Sequence[str],
    batch_size: int,
    thresholds: Optional[np.ndarray] = None,
    default_threshold: float = 0.5,
) -> list[dict[str, Any]]:
    """One result per file, in order: ``file``, and either ``probabilities`` (context ->
    probability) with ``contexts`` (names at or above threshold, most probable first), or
    ``error`` (why the file could not be used)."""
    from training.model import load_exported

    exported = load_exported(model_dir)
    compute_mel = _compute_mel()
    names = exported.contexts
    if thresholds is None:
        thresholds = np.full(len(names), float(default_threshold))
    results: list[dict[str, Any]] = [{"file": path} for path in audio]
    ready: list[int] = []
    inputs: list[np.ndarray] = []
    for i, path in enumerate(audio):
        try:
            mel = np.asarray(compute_mel(path, exported.params))
        except Exception as exc:  # an unusable file is reported, not fatal
            results[i]["error"] = f"{type(exc).__name__}: {exc}"
            log.warning("%s: %s", path, results[i]["error"])
            continue
        if mel.shape != exported.params.shape:
            results[i]["error"] = f"mel shape {mel.shape} differs from the model's {exported.params.shape}"
            continue
        inputs.append(mel.T.astype(np.float32))  # (n_frames, n_mels), as in training
        ready.append(i)
    for start in range(0, len(inputs), batch_size):
        probs = np.asarray(exported.model.predict_on_batch(np.stack(inputs[start : start + batch_size])))
        for row, i in zip(probs, ready[start : start + batch_size]):
            order = np.argsort(-row, kind="stable")
            results[i]["probabilities"] = {names[c]: round(float(row[c]), 4) for c in range(len(names))}
            results[i]["contexts"] = [names[c] for c in order if row[c] >= thresholds[c]]
    return results


def format_result(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"{result['file']}: error: {result['error']}"
    probs = result["probabilities"]
    chosen = ", ".join(f"{name} {probs[name]:.2f}" for name in result["contexts"]) or "(no context above threshold)"
    return f"{result['file']}: {chosen}"


def model_contexts(model_dir: str) -> list[str]:
    """The model's context order, from its meta file (before TensorFlow is imported)."""
    from training.meta import read_meta

    path = os.path.join(model_dir, META_FILE)
    if not os.path.isfile(path):
        raise InputError(f"model: {path} is missing; has training finished?")
    return list(read_meta(path)["contexts"])
