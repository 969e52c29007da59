"""Executor-side scoring: Arrow batches of (track_id, split, mel) in, probabilities out.

Runs inside Spark's Python workers (``mapInArrow``). The model travels as the bytes of
model.keras in a broadcast variable, so executors need no shared filesystem; each Python
worker loads it once and keeps it in :data:`_MODELS` (workers are reused across tasks,
``spark.python.worker.reuse``), so a task costs one model load per worker process, not
per batch.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from ctx_spark.audio.params import MelParams
from ctx_spark.shards import contract

#: digest of model.keras bytes -> loaded Keras model, one per Python worker process.
_MODELS: dict[str, Any] = {}


def model_digest(model_bytes: bytes) -> str:
    return hashlib.sha256(model_bytes).hexdigest()[:16]


def _configure_tensorflow(threads: int) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if threads > 0:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # TensorFlow already initialised in this worker
            pass


def cached_model(model_bytes: bytes, digest: str, threads: int):
    """The Keras model for ``digest``, loaded from ``model_bytes`` on first use."""
    model = _MODELS.get(digest)
    if model is None:
        _configure_tensorflow(threads)
        import keras

        with tempfile.TemporaryDirectory(prefix="ctx-score-") as tmp:
            path = os.path.join(tmp, "model.keras")
            with open(path, "wb") as handle:
                handle.write(model_bytes)
            model = keras.models.load_model(path, compile=False)
        _MODELS.clear()  # one model per worker; a new job's model replaces the old one
        _MODELS[digest] = model
    return model


def score_batches(
    batches: Iterable[pa.RecordBatch], broadcast, params: MelParams, n_contexts: int, batch_size: int, threads: int
) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body: for each input batch (track_id, split, mel), yield (track_id,
    split, probabilities list<float32> of n_contexts, or null when the mel blob is unusable).
    """
    from ctx_spark.shards.reader import mel_blobs, valid_mel_mask

    model = None
    for batch in batches:
        n = batch.num_rows
        if n == 0:
            continue
        if model is None:
            model_bytes, digest = broadcast.value
            model = cached_model(model_bytes, digest, threads)
        mel = batch.column(batch.schema.get_field_index(contract.MEL))
        valid = valid_mel_mask(mel, params)
        probs = np.zeros((n, n_contexts), dtype=np.float32)
        if valid.any():
            good = pa.array(mel).filter(pa.array(valid)) if not valid.all() else mel
            x = mel_blobs(good, params, "mel")  # (k, n_mels, n_frames) float16
            out = []
            for start in range(0, len(x), batch_size):
                chunk = np.ascontiguousarray(x[start : start + batch_size].transpose(0, 2, 1), dtype=np.float32)
                out.append(np.asarray(model.predict_on_batch(chunk), dtype=np.float32))
            probs[valid] = np.concatenate(out)
        offsets = pa.array(np.arange(0, n * n_contexts + 1, n_contexts, dtype=np.int32))
        lists = pa.ListArray.from_arrays(offsets, pa.array(probs.reshape(-1), pa.float32()), mask=pa.array(~valid))
        yield pa.RecordBatch.from_arrays(
            [
                batch.column(batch.schema.get_field_index(contract.TRACK_ID)),
                batch.column(batch.schema.get_field_index("split")),
                lists,
            ],
            names=[contract.TRACK_ID, "split", "probabilities"],
        )
