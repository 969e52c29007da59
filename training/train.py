"""Train the context CNN on mel shards, resumably.

  ctx-spark train --shards S --out RUN [--restart] [--conf FILE] [--set k=v ...]

Reads S/train and S/validation (streamed, see training/data.py) and writes into RUN:
checkpoints/ (one per epoch; a killed run started again with the same command resumes from
the last one), training_log.csv, tensorboard/, run_config.json, and at the end
model.keras + model_meta.json (the best epoch's weights, the mel parameters and contexts it
expects) and train_report.json. Running it again on a finished RUN does nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from typing import Any, Optional

from ctx_spark import __version__
from ctx_spark.causes import output_errors
from ctx_spark.config import Config
from ctx_spark.errors import ConfigError, InputError
from ctx_spark.logs import get_logger, stage
from ctx_spark.shards.contract import check_contexts
from ctx_spark.shards.reader import describe, open_split
from training.settings import TrainSettings, train_settings

log = get_logger("train")

REPORT_FILE = "train_report.json"
RUN_CONFIG_FILE = "run_config.json"
LOG_FILE = "training_log.csv"
TENSORBOARD_DIR = "tensorboard"
#: Settings that may change when a run is resumed (they do not change what is learnt).
RESUMABLE_CHANGES = ("epochs", "logging", "evaluation", "checkpoint")


def _comparable(section: dict) -> dict:
    return {k: v for k, v in section.items() if k not in RESUMABLE_CHANGES}


def _saved_config(run_dir: str) -> Optional[dict]:
    path = os.path.join(run_dir, RUN_CONFIG_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            saved = json.load(handle)
        if not isinstance(saved.get("train"), dict) or not isinstance(saved.get("contexts"), list):
            raise ValueError("no train section or contexts")
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} cannot be read ({exc}); start over with --restart") from None
    return saved


def _changes(saved: dict, train_section: dict, contexts: Sequence[str], ignore: Sequence[str]) -> list[str]:
    """The settings of ``saved`` (a run_config.json) that differ from these, as
    ``train.key`` names (and ``the context list``), leaving out ``ignore``."""
    keys = (set(saved["train"]) | set(train_section)) - set(ignore)
    changed = [f"train.{k}" for k in sorted(keys) if saved["train"].get(k) != train_section.get(k)]
    if list(saved["contexts"]) != list(contexts):
        changed.append("the context list")
    return changed


def _check_resume_config(run_dir: str, shards: str, train_section: dict, contexts: Sequence[str]) -> None:
    saved = _saved_config(run_dir)
    if saved is None:
        return
    changed = _changes(saved, train_section, contexts, RESUMABLE_CHANGES)
    if changed:
        raise ConfigError(
            f"{run_dir} holds a run with different settings ({', '.join(changed)}); resume it with its own settings "
            "(RUN/run_config.json) or start over with --restart"
        )
    if os.path.abspath(saved["shards"]) != os.path.abspath(shards) and saved["shards"] != shards:
        log.warning("resuming a run started on shards %s with shards %s", saved["shards"], shards)


def _check_finished_run(run_dir: str, shards: str, train_section: dict, contexts: Sequence[str]) -> None:
    """A finished run is left as it is; asking for it with settings that change what is
    learnt (or how long) is refused, so the old model is not taken for a new one.

    Raises:
        ConfigError: naming the settings that differ.
    """
    saved = _saved_config(run_dir)
    if saved is None:
        return
    changed = _changes(saved, train_section, contexts, [k for k in RESUMABLE_CHANGES if k != "epochs"])
    if saved.get("shards") != shards and os.path.abspath(str(saved.get("shards"))) != os.path.abspath(shards):
        log.warning("%s is a finished run trained on shards %s, not %s", run_dir, saved.get("shards"), shards)
    if changed:
        raise ConfigError(
            f"{run_dir} is a finished run trained with other settings ({', '.join(changed)}); its model is kept as "
            "it is: train into another --out, or add --restart to train this one again with these settings"
        )


def _verbose(settings: TrainSettings) -> int:
    if settings.logging.verbose >= 0:
        return settings.logging.verbose
    return 1 if sys.stdout.isatty() else 2


def run_training(cfg: Config, shards: str, run_dir: str, restart: bool = False) -> dict[str, Any]:
    """Train (or resume, or skip when finished) and export the best model. Returns the report.

    Raises:
        InputError: the shards are missing, unreadable or lack labels.
        ConfigError: RUN holds an unfinished run with different settings.
    """
    started = time.perf_counter()
    settings = train_settings(cfg)
    contexts = cfg.contexts.names
    train_section = cfg.to_dict()["train"]
    run_dir = os.path.abspath(run_dir)
    if restart and os.path.isdir(run_dir):
        shutil.rmtree(run_dir)
    report_path = os.path.join(run_dir, REPORT_FILE)
    if os.path.isfile(report_path):
        _check_finished_run(run_dir, shards, train_section, contexts)
        log.info("%s is a finished run (%s); nothing to do (use --restart to train again)", run_dir, REPORT_FILE)
        with open(report_path, encoding="utf-8") as handle:
            return json.load(handle)

    train_split, val_split = open_split(shards, "train"), open_split(shards, "validation")
    for split in (train_split, val_split):
        split.require_targets()
    check_contexts(train_split.info.contexts, contexts, f"mel shards {shards}")
    if train_split.params != val_split.params:
        raise InputError(f"mel shards {shards}: train and validation were written with different mel parameters")
    _check_resume_config(run_dir, shards, train_section, contexts)

    import keras  # late import: config and input errors come before TensorFlow starts

    from training import checkpoint, data
    from training.model import build_model, compile_model, export_meta, write_export, write_json_file

    with output_errors(run_dir):
        os.makedirs(run_dir, exist_ok=True)
    write_json_file(
        os.path.join(run_dir, RUN_CONFIG_FILE),
        {
            "shards": shards,
            "train": train_section,
            "contexts": list(contexts),
            "sources": list(cfg.sources),
        },
    )
    n_contexts = len(contexts)
    n_mels, n_frames = train_split.params.shape
    state = checkpoint.read_state(run_dir)
    resumed_from = state.epoch if state else 0
    keras.utils.set_random_seed(settings.seed + resumed_from)
    if state is None:
        state = checkpoint.RunState()
        model = compile_model(
            build_model(settings.model, (n_frames, n_mels), n_contexts, seed=settings.seed), settings, n_contexts
        )
    else:
        log.info(
            "resuming %s after epoch %d (best val_loss %.5f at epoch %d)",
            run_dir,
            state.epoch,
            state.best_loss,
            state.best_epoch,
        )
        model = checkpoint.load_checkpoint(run_dir, state)

    for split in (train_split, val_split):
        data.check_split(split, n_contexts, with_targets=True)
    steps = data.steps_per_pass(train_split, settings.data.batch_size)
    log.info(
        "train: %s; validation: %s; %d steps per epoch; reader %s",
        describe(train_split),
        describe(val_split),
        steps,
        settings.data.reader,
    )
    fit_seconds = 0.0
    if not state.stopped and state.epoch < settings.epochs:
        train_ds = data.training_dataset(
            train_split, settings.data, n_contexts, settings.seed, state.epoch, settings.epochs
        )
        val_ds = data.evaluation_dataset(val_split, settings.data, n_contexts)
        callbacks = [
            checkpoint.CheckpointAndEarlyStop(
                run_dir,
                state,
                settings.early_stopping.patience,
                settings.early_stopping.min_delta,
                settings.checkpoint.keep,
            ),
            keras.callbacks.CSVLogger(os.path.join(run_dir, LOG_FILE), append=resumed_from > 0),
        ]
        if settings.logging.tensorboard:
            from training.tblog import ScalarLogger

            callbacks.append(ScalarLogger(os.path.join(run_dir, TENSORBOARD_DIR)))
        with stage(log, "fit") as timer, data.input_errors():
            model.fit(
                train_ds,
                validation_data=val_ds,
                epochs=settings.epochs,
                initial_epoch=state.epoch,
                steps_per_epoch=steps,
                callbacks=callbacks,
                verbose=_verbose(settings),
                shuffle=False,
            )
            timer.rows = (state.epoch - resumed_from) * train_split.rows
        fit_seconds = timer.seconds
    if state.best_epoch == 0:
        raise RuntimeError(f"{run_dir}: no epoch completed, nothing to export")
    checkpoint.restore_best(model, run_dir)
    meta = export_meta(
        train_split.params,
        contexts,
        loss_variant=settings.loss.variant,
        best_epoch=state.best_epoch,
        best_val_loss=state.best_loss,
        shards=shards,
        version=__version__,
    )
    write_export(run_dir, model, meta)
    report = {
        "stage": "train",
        "version": __version__,
        "shards": shards,
        "run_dir": run_dir,
        "splits": {"train": describe(train_split), "validation": describe(val_split)},
        "contexts": list(contexts),
        "loss_variant": settings.loss.variant,
        "epochs_completed": state.epoch,
        "best_epoch": state.best_epoch,
        "best_val_loss": state.best_loss,
        "stopped_early": state.stopped,
        "resumed_from_epoch": resumed_from,
        "steps_per_epoch": steps,
        "optimizer_steps": int(model.optimizer.iterations.numpy()) if model.optimizer is not None else None,
        "fit_seconds_this_session": round(fit_seconds, 3),
        "train_samples_per_second_this_session": (
            round((state.epoch - resumed_from) * train_split.rows / fit_seconds, 2) if fit_seconds > 0 else None
        ),
        "elapsed_seconds": round(time.perf_counter() - started, 3),
        "settings": train_section,
    }
    write_json_file(report_path, report)
    return report
