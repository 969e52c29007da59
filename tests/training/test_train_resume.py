"""A training run killed with SIGKILL resumes from its last checkpoint; early stopping's
state survives on disk."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import warnings

import pytest

from ctx_spark.errors import ConfigError
from tests.conftest import ROOT
from tests.train_helpers import N_FRAMES, N_MELS, TINY, tiny_config

warnings.filterwarnings("ignore", category=FutureWarning)
pytest.importorskip("tensorflow")

from ctx_spark.testing.shards import small_params, write_synthetic_shards  # noqa: E402
from training.checkpoint import read_state  # noqa: E402
from training.train import run_training  # noqa: E402

C = 15
EPOCHS = 6
SETTINGS = TINY + (f"train.epochs={EPOCHS}", "train.early_stopping.patience=100")


def _log_epochs(run_dir):
    with open(os.path.join(run_dir, "training_log.csv")) as handle:
        return [row for row in csv.DictReader(handle)]


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    shards = write_synthetic_shards(
        str(tmp_path / "shards"),
        small_params(N_MELS, N_FRAMES),
        C,
        {"train": 256, "validation": 64},
        seed=2,
        row_group_size=32,
    )
    run_dir = str(tmp_path / "run")
    command = [sys.executable, "-m", "ctx_spark", "train", "--shards", shards, "--out", run_dir]
    for item in SETTINGS:
        command += ["--set", item]
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.Popen(command, cwd=str(ROOT), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    try:
        while True:
            state = read_state(run_dir) if os.path.isdir(run_dir) else None
            if state is not None and state.epoch >= 2:
                process.send_signal(signal.SIGKILL)
                break
            if process.poll() is not None:
                pytest.fail(f"training exited before it could be killed: {process.stderr.read().decode()[-2000:]}")
            assert time.monotonic() < deadline, "training did not reach epoch 2 in time"
            time.sleep(0.05)
    finally:
        process.wait(timeout=60)
        process.stderr.close()
    killed_at = read_state(run_dir)
    assert 2 <= killed_at.epoch < EPOCHS
    assert not os.path.exists(os.path.join(run_dir, "model.keras"))

    # resuming with other settings is refused
    with pytest.raises(ConfigError, match="train.loss"):
        run_training(tiny_config(*SETTINGS, "train.loss.variant=both_exact"), shards, run_dir)

    report = run_training(tiny_config(*SETTINGS), shards, run_dir)
    assert report["resumed_from_epoch"] == killed_at.epoch
    assert report["epochs_completed"] == EPOCHS
    assert report["optimizer_steps"] == EPOCHS * 8  # Adadelta's step counter came back with the checkpoint
    rows = _log_epochs(run_dir)
    assert [int(r["epoch"]) for r in rows] == list(range(EPOCHS))  # each epoch logged once
    best = min(range(EPOCHS), key=lambda i: float(rows[i]["val_loss"]))
    assert report["best_epoch"] == best + 1  # best-so-far state survived the kill
    assert report["best_val_loss"] == pytest.approx(float(rows[best]["val_loss"]), rel=1e-5)
    assert sorted(n for n in os.listdir(os.path.join(run_dir, "checkpoints")) if n.endswith(".keras")) == [
        "epoch-0005.keras",
        "epoch-0006.keras",
    ]
    assert os.path.isfile(os.path.join(run_dir, "model.keras"))
    # a finished run is not trained again
    assert run_training(tiny_config(*SETTINGS), shards, run_dir)["elapsed_seconds"] == report["elapsed_seconds"]


def test_early_stopping_ends_the_run_and_keeps_the_best_epoch(tmp_path):
    shards = write_synthetic_shards(
        str(tmp_path / "shards"),
        small_params(N_MELS, N_FRAMES),
        C,
        {"train": 64, "validation": 32},
        seed=3,
        row_group_size=32,
    )
    run_dir = str(tmp_path / "run")
    # no later epoch can beat the first by 10.0: patience 2 stops after epoch 3
    cfg = tiny_config("train.epochs=20", "train.early_stopping.patience=2", "train.early_stopping.min_delta=10.0")
    report = run_training(cfg, shards, run_dir)
    assert report["stopped_early"] and report["epochs_completed"] == 3 and report["best_epoch"] == 1
    state = json.load(open(os.path.join(run_dir, "checkpoints", "latest.json")))
    assert state["stopped"] and state["wait"] == 2
    assert float(_log_epochs(run_dir)[0]["val_loss"]) == pytest.approx(report["best_val_loss"], rel=1e-5)
    assert float(_log_epochs(run_dir)[2]["val_loss"]) != pytest.approx(report["best_val_loss"], rel=1e-5)

    # the exported model holds epoch 1's weights: its validation loss is epoch 1's
    from ctx_spark.shards.reader import open_split
    from training import data
    from training.losses import WeightedContextLoss
    from training.model import load_exported
    from training.settings import train_settings

    model = load_exported(run_dir).model
    ((x, y),) = list(data.evaluation_dataset(open_split(shards, "validation"), train_settings(cfg).data, C))
    loss = WeightedContextLoss("none", C, 1e-7)(y, model(x, training=False))
    assert float(loss) == pytest.approx(report["best_val_loss"], rel=1e-4)
