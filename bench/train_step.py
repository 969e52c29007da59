"""Speed of the paper's CNN training step alone, on whatever device Keras runs on.

    python bench/train_step.py [--batch 32,64,128] [--steps 50] [--set train.x=y ...]
    KERAS_BACKEND=jax python bench/train_step.py ...    # e.g. on a GPU machine without TensorFlow

Builds the configured model and loss (``training.model``: full size, the configured loss
variant and optimiser), feeds it one random batch of log-mel-shaped inputs and targets
(labels + the three weight vectors) held on the host, and times ``train_on_batch`` after
warm-up steps, per batch size. The step's samples/s is what the input pipeline must beat:
``bench/read_shards.py`` prints the readers' samples/s on the same machine, and the
pipeline must stay above this figure for the step not to wait on its input.

Only Keras is used here, so the figure can be taken on a machine with JAX but no
TensorFlow; the real trainer needs TensorFlow (tf.data), and its step on TensorFlow
differs from JAX's by whatever each backend's kernels and compilation give.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", default="32", help="comma-separated batch sizes")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per batch size")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation)")
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    import keras

    from ctx_spark.audio.params import MelParams
    from ctx_spark.config import load_config
    from ctx_spark.shards import contract
    from training.model import build_model, compile_model
    from training.settings import TrainSettings

    cfg = load_config(overrides=args.overrides)
    settings = cfg.section("train", TrainSettings)
    params = cfg.section("audio", MelParams)
    n_contexts = len(cfg.contexts.names)
    n_mels, n_frames = params.shape
    rng = np.random.default_rng(0)
    figures: dict[str, object] = {
        "backend": keras.backend.backend(),
        "device": _device(keras.backend.backend()),
        "loss_variant": settings.loss.variant,
        "runs": [],
    }
    print(f"Keras {keras.__version__} on {figures['backend']}, device: {figures['device']}", flush=True)
    for batch in [int(b) for b in args.batch.split(",")]:
        model = compile_model(build_model(settings.model, (n_frames, n_mels), n_contexts, seed=1), settings, n_contexts)
        x = rng.normal(2.0, 1.0, size=(batch, n_frames, n_mels)).astype("float32")
        labels = (rng.random((batch, n_contexts)) < 0.4).astype("float32")
        weights = rng.uniform(0.2, 1.5, size=(batch, (len(contract.TARGET_COLUMNS) - 1) * n_contexts)).astype("float32")
        y = np.concatenate([labels, weights], axis=1)
        for _ in range(args.warmup):
            loss = model.train_on_batch(x, y)
        started = time.perf_counter()
        for _ in range(args.steps):
            loss = model.train_on_batch(x, y)
        _ = float(np.asarray(loss if np.ndim(loss) == 0 else loss[0]))  # wait for the device
        seconds = time.perf_counter() - started
        run = {
            "batch": batch,
            "steps": args.steps,
            "seconds": round(seconds, 3),
            "ms_per_step": round(1000 * seconds / args.steps, 2),
            "samples_per_s": round(batch * args.steps / seconds, 1),
            "params": model.count_params(),
        }
        figures["runs"].append(run)
        print(
            f"batch {batch:4d}: {run['ms_per_step']:9.2f} ms/step, {run['samples_per_s']:9.1f} samples/s "
            f"({run['params']:,} params)",
            flush=True,
        )
        keras.backend.clear_session()
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n")
    return 0


def _device(backend: str) -> str:
    try:
        if backend == "jax":
            import jax

            return ", ".join(str(d) for d in jax.devices())
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            return ", ".join(g.name for g in gpus) or f"CPU ({os.cpu_count()} cores)"
    except Exception as exc:  # the figure is still useful without the device name
        return f"unknown ({exc})"
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
