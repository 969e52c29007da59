"""TensorBoard scalars without the ``tensorboard`` package.

``keras.callbacks.TensorBoard`` needs the tensorboard package for ``tf.summary.scalar``,
which tensorflow-cpu does not install. The event files TensorBoard reads only need
TensorFlow core: ``tf.summary.write`` with the scalars plugin's metadata is what the
plugin's own ``scalar`` summary writes. Point ``tensorboard --logdir RUN/tensorboard`` at
the directory from any machine that has TensorBoard.
"""

from __future__ import annotations

import os
from typing import Optional

import keras
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

_SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
)


class ScalarLogger(keras.callbacks.Callback):
    """Per-epoch scalars: metrics into ``train/`` and ``validation/`` (``val_`` ones),
    and the learning rate of the optimiser's step counter."""

    def __init__(self, log_dir: str):
        super().__init__()
        self.writers = {
            "train": tf.summary.create_file_writer(os.path.join(log_dir, "train")),
            "validation": tf.summary.create_file_writer(os.path.join(log_dir, "validation")),
        }

    def _write(self, writer: str, tag: str, value: float, step: int) -> None:
        with self.writers[writer].as_default():
            tf.summary.write(tag, tf.constant(float(value), tf.float32), step=step, metadata=_SCALAR_METADATA)

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        for name, value in (logs or {}).items():
            if name.startswith("val_"):
                self._write("validation", f"epoch_{name[4:]}", value, epoch)
            else:
                self._write("train", f"epoch_{name}", value, epoch)
        optimizer = self.model.optimizer
        rate = optimizer.learning_rate
        self._write("train", "epoch_learning_rate", float(rate.numpy() if hasattr(rate, "numpy") else rate), epoch)
        for writer in self.writers.values():
            writer.flush()

    def on_train_end(self, logs: Optional[dict] = None) -> None:
        for writer in self.writers.values():
            writer.close()
