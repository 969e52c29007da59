"""Shared settings for the training tests: tiny shards and a tiny model, CPU-fast."""

from __future__ import annotations

from ctx_spark.config import load_config

#: A two-block model small enough to train in seconds on 2 CPU cores. Adadelta keeps the
#: paper's optimiser; learning rate 1.0 (Adadelta's original) instead of 0.1 because a test
#: run has ~300 steps where the paper's runs have tens of thousands.
TINY = (
    "train.model.conv_filters=[8, 16]",
    "train.model.dense_units=32",
    "train.optimizer.learning_rate=1.0",
    "train.data.batch_size=32",
    "train.data.shuffle_buffer=256",
    "train.data.workers=2",
    "train.logging.tensorboard=false",
    "train.logging.verbose=0",
    "train.evaluation.batch_size=64",
)

#: Small spectrograms: 32 mel bands (two per context) x 16 frames.
N_MELS, N_FRAMES = 32, 16


def tiny_config(*extra: str):
    return load_config(overrides=TINY + tuple(extra))
