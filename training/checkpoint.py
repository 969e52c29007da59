"""Epoch checkpoints and early stopping whose whole state lives on disk.

A run directory holds, under ``checkpoints/``:

* ``epoch-NNNN.keras``: the model after epoch NNNN with its optimiser state (Adadelta's
  accumulators and the step counter that drives the learning-rate decay);
* ``best.weights.h5``: the weights of the epoch with the lowest validation loss so far;
* ``latest.json``: completed epochs, the file of the last checkpoint, and the early-stopping
  state (best loss, best epoch, epochs without improvement, whether it stopped).

Each file is written under a temporary name and renamed into place, and ``latest.json``
is written last, so a run killed at any instant resumes from a consistent epoch: Keras'
own EarlyStopping keeps its state (and the best weights) in memory only, which a killed
run would lose.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass
from typing import Optional

import keras

from ctx_spark.causes import output_errors
from ctx_spark.logs import get_logger
from training.model import write_json_file

log = get_logger("train")

CHECKPOINT_DIR = "checkpoints"
LATEST_FILE = "latest.json"
BEST_WEIGHTS = "best.weights.h5"
_EPOCH_FILE = re.compile(r"^epoch-(\d{4,})\.keras$")


@dataclass
class RunState:
    """What a resumed run needs besides the model file.

    Attributes:
        epoch: epochs completed (the next epoch's 0-based index).
        checkpoint: file name of the model saved after ``epoch`` epochs.
        best_loss: lowest validation loss so far (inf before the first epoch).
        best_epoch: 1-based epoch that reached ``best_loss`` (0 before the first epoch).
        wait: epochs since ``best_epoch`` without an improvement larger than min_delta.
        stopped: early stopping has ended the run.
    """

    epoch: int = 0
    checkpoint: str = ""
    best_loss: float = math.inf
    best_epoch: int = 0
    wait: int = 0
    stopped: bool = False

    def to_json(self) -> dict:
        data = asdict(self)
        data["best_loss"] = None if math.isinf(self.best_loss) else self.best_loss
        return data

    @classmethod
    def from_json(cls, data: dict) -> RunState:
        data = dict(data)
        data["best_loss"] = math.inf if data.get("best_loss") is None else float(data["best_loss"])
        return cls(**data)


def checkpoint_dir(run_dir: str) -> str:
    return os.path.join(run_dir, CHECKPOINT_DIR)


def read_state(run_dir: str) -> Optional[RunState]:
    """The state of the last completed epoch, or None for a fresh run."""
    path = os.path.join(checkpoint_dir(run_dir), LATEST_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return RunState.from_json(json.load(handle))


def _save_model(model: keras.Model, path: str) -> None:
    _save(path, model.save)


def _save_weights(model: keras.Model, path: str) -> None:
    _save(path, model.save_weights)


def _save(path: str, save) -> None:
    """``save`` to a temporary name, then rename: a full disk or a lost permission ends as
    an OutputError naming ``path``, with the last complete checkpoint left in place."""
    tmp = os.path.join(os.path.dirname(path), ".tmp-" + os.path.basename(path))
    with output_errors(path):
        try:
            save(tmp)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise


class CheckpointAndEarlyStop(keras.callbacks.Callback):
    """Early stopping on ``val_loss`` plus a checkpoint at the end of every epoch.

    Args:
        run_dir: the run directory.
        state: the restored state (a fresh :class:`RunState` for a new run).
        patience: epochs without improvement before stopping.
        min_delta: an improvement must lower the loss by more than this.
        keep: epoch checkpoints kept (oldest deleted first).
    """

    def __init__(self, run_dir: str, state: RunState, patience: int, min_delta: float, keep: int):
        super().__init__()
        self.directory = checkpoint_dir(run_dir)
        with output_errors(self.directory):
            os.makedirs(self.directory, exist_ok=True)
        self.state = state
        self.patience = patience
        self.min_delta = min_delta
        self.keep = keep

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        logs = logs or {}
        if "val_loss" not in logs:
            raise RuntimeError("early stopping needs val_loss; was validation data given to fit()?")
        loss = float(logs["val_loss"])
        state = self.state
        state.epoch = epoch + 1
        if loss < state.best_loss - self.min_delta:
            state.best_loss, state.best_epoch, state.wait = loss, epoch + 1, 0
            _save_weights(self.model, os.path.join(self.directory, BEST_WEIGHTS))
        else:
            state.wait += 1
        if state.wait >= self.patience:
            state.stopped = True
            self.model.stop_training = True
        state.checkpoint = f"epoch-{epoch + 1:04d}.keras"
        _save_model(self.model, os.path.join(self.directory, state.checkpoint))
        write_json_file(os.path.join(self.directory, LATEST_FILE), state.to_json())
        self._prune()
        log.info(
            "epoch %d: val_loss %.5f; best %.5f at epoch %d; %d epoch(s) without improvement%s",
            epoch + 1,
            loss,
            state.best_loss,
            state.best_epoch,
            state.wait,
            " -> early stop" if state.stopped else "",
        )

    def _prune(self) -> None:
        epochs = sorted(
            (int(m.group(1)), name) for name in os.listdir(self.directory) if (m := _EPOCH_FILE.match(name))
        )
        for _, name in epochs[: max(0, len(epochs) - self.keep)]:
            os.remove(os.path.join(self.directory, name))


def load_checkpoint(run_dir: str, state: RunState) -> keras.Model:
    """The compiled model (weights and optimiser state) saved after ``state.epoch``."""
    import training.losses  # noqa: F401  (registers the custom loss for deserialisation)
    import training.model  # noqa: F401  (registers the custom metric)

    path = os.path.join(checkpoint_dir(run_dir), state.checkpoint)
    return keras.models.load_model(path, compile=True)


def restore_best(model: keras.Model, run_dir: str) -> None:
    """Load the best epoch's weights into ``model``."""
    model.load_weights(os.path.join(checkpoint_dir(run_dir), BEST_WEIGHTS))
