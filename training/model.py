"""The paper's CNN (section 4.1), its optimiser, and the exported-model format.

Input (n_frames, n_mels) float32 log-mel (646 x 96 by default, from the shards'
mel_params.json); batch normalisation of the input; one block per ``conv_filters`` entry:
3x3 convolution + ReLU + 2x2 max pooling ("same" padding, as the authors' code: 646 x 96
becomes 41 x 6 after four blocks); flatten; dense + ReLU (or sigmoid, the authors' code);
dropout; dense sigmoid, one unit per context.

An exported model is ``RUN/model.keras`` plus ``RUN/model_meta.json`` (the mel parameters,
the ordered context names, the loss variant and the best epoch), so inference computes
exactly the transform the model was trained on and names its outputs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

import keras

from ctx_spark.audio.params import MelParams
from ctx_spark.causes import output_errors
from ctx_spark.errors import InputError
from ctx_spark.schema import META_FILE, MODEL_FILE
from training.losses import WeightedContextLoss
from training.meta import check_archive, mel_params, read_meta
from training.settings import ModelSettings, OptimizerSettings, TrainSettings


def build_model(
    settings: ModelSettings, input_shape: tuple[int, int], n_contexts: int, seed: Optional[int] = None
) -> keras.Model:
    """The CNN for inputs of ``input_shape`` = (n_frames, n_mels); outputs (B, n_contexts)
    probabilities in context order."""
    n_frames, n_mels = input_shape
    inputs = keras.Input(shape=(n_frames, n_mels), name="mel")
    x = keras.layers.Reshape((n_frames, n_mels, 1), name="add_channel")(inputs)
    if settings.input_batch_norm:
        x = keras.layers.BatchNormalization(axis=-1, name="input_norm")(x)
    for i, filters in enumerate(settings.conv_filters, start=1):
        x = keras.layers.Conv2D(filters, settings.kernel_size, padding="same", activation="relu", name=f"conv_{i}")(x)
        x = keras.layers.MaxPooling2D(settings.pool_size, padding="same", name=f"pool_{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(settings.dense_units, activation=settings.dense_activation, name="dense")(x)
    x = keras.layers.Dropout(settings.drop_rate, seed=seed, name="dropout")(x)
    outputs = keras.layers.Dense(n_contexts, activation="sigmoid", name="contexts")(x)
    return keras.Model(inputs, outputs, name="context_cnn")


def build_optimizer(settings: OptimizerSettings) -> keras.optimizers.Optimizer:
    """Adadelta (or Adam/SGD) with the staircase exponential learning-rate decay."""
    schedule = keras.optimizers.schedules.ExponentialDecay(
        settings.learning_rate,
        decay_steps=settings.decay_steps,
        decay_rate=settings.decay_rate,
        staircase=settings.staircase,
    )
    if settings.name == "adadelta":
        return keras.optimizers.Adadelta(learning_rate=schedule, rho=settings.rho, epsilon=settings.epsilon)
    if settings.name == "adam":
        return keras.optimizers.Adam(learning_rate=schedule, epsilon=settings.epsilon)
    return keras.optimizers.SGD(learning_rate=schedule)


@keras.saving.register_keras_serializable(package="ctx_spark")
class LabelAUC(keras.metrics.AUC):
    """Macro ROC-AUC over the label block of the (B, 4C) targets (progress display only;
    the reported metrics come from training/metrics.py)."""

    def __init__(self, n_contexts: int, name: str = "auc", **kwargs):
        kwargs.pop("num_labels", None)
        kwargs.pop("multi_label", None)
        super().__init__(name=name, multi_label=True, num_labels=n_contexts, **kwargs)
        self.n_contexts = int(n_contexts)

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(y_true[:, : self.n_contexts], y_pred, sample_weight)

    def get_config(self) -> dict:
        config = super().get_config()
        config["n_contexts"] = self.n_contexts
        return config


def compile_model(model: keras.Model, settings: TrainSettings, n_contexts: int) -> keras.Model:
    model.compile(
        optimizer=build_optimizer(settings.optimizer),
        loss=WeightedContextLoss(settings.loss.variant, n_contexts, settings.loss.epsilon),
        metrics=[LabelAUC(n_contexts)],
    )
    return model


@dataclass(frozen=True)
class ExportedModel:
    """A trained model with what it expects: mel params and the context order."""

    model: keras.Model
    params: MelParams
    contexts: tuple[str, ...]
    meta: dict[str, Any]

    @property
    def input_shape(self) -> tuple[int, int]:
        """(n_frames, n_mels)."""
        n_mels, n_frames = self.params.shape
        return (n_frames, n_mels)


def export_meta(params: MelParams, contexts: Sequence[str], **extra: Any) -> dict[str, Any]:
    n_mels, n_frames = params.shape
    return {
        "mel_params": params.to_dict(),
        "input_shape": [n_frames, n_mels],
        "input_layout": "(frames, mels) float32, the stored log-mel transposed",
        "contexts": list(contexts),
        **extra,
    }


def write_export(run_dir: str, model: keras.Model, meta: dict[str, Any]) -> None:
    """Write model.keras and model_meta.json, each via a temporary file and a rename.

    Raises:
        OutputError: no space, no permission or a read-only filesystem (the previous
            export, if any, is left as it was).
    """
    tmp_model = os.path.join(run_dir, ".tmp-" + MODEL_FILE)
    with output_errors(os.path.join(run_dir, MODEL_FILE)):
        os.makedirs(run_dir, exist_ok=True)
        try:
            model.save(tmp_model)
            os.replace(tmp_model, os.path.join(run_dir, MODEL_FILE))
        except BaseException:
            _remove_quietly(tmp_model)
            raise
    write_json_file(os.path.join(run_dir, META_FILE), meta)


def load_exported(run_dir: str) -> ExportedModel:
    """Load ``run_dir/model.keras`` (without its training configuration) and its meta.

    Keras loads in safe mode: a model whose layers would run arbitrary Python (a
    ``Lambda``) is refused, here on the driver, with the reason.

    Raises:
        InputError: a file is missing, not a Keras archive or not a model_meta.json, the
            model cannot be loaded, or its input or output shape disagrees with its meta.
    """
    model_path = os.path.join(run_dir, MODEL_FILE)
    meta_path = os.path.join(run_dir, META_FILE)
    if not os.path.isfile(model_path) or not os.path.isfile(meta_path):
        raise InputError(
            f"model: {run_dir} holds no exported model ({MODEL_FILE} and {META_FILE}); has training finished?"
        )
    meta = read_meta(meta_path)
    check_archive(model_path)
    try:
        model = keras.models.load_model(model_path, compile=False, safe_mode=True)
    except Exception as exc:  # a broken archive, a refused layer, an unknown class: the file's fault
        lines = str(exc).strip().splitlines()
        raise InputError(f"model: {model_path} cannot be loaded: {lines[0] if lines else type(exc).__name__}") from None
    params = mel_params(meta)
    contexts = tuple(meta["contexts"])
    if model.output_shape[-1] != len(contexts):
        raise InputError(
            f"model: {model_path} has {model.output_shape[-1]} outputs but its meta lists {len(contexts)} contexts"
        )
    n_mels, n_frames = params.shape
    if tuple(model.input_shape[1:]) != (n_frames, n_mels):
        raise InputError(
            f"model: {model_path} takes inputs of shape {tuple(model.input_shape[1:])} but its meta's mel "
            f"parameters give {(n_frames, n_mels)} (frames, mels)"
        )
    return ExportedModel(model, params, contexts, meta)


def write_json_file(path: str, obj: Any) -> None:
    """Write JSON atomically on the local filesystem (temporary file + rename).

    Raises:
        OutputError: no space, no permission or a read-only filesystem; ``path`` is then
            left as it was and the temporary file removed.
    """
    tmp = f"{path}.tmp-{os.getpid()}"
    with output_errors(path):
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(obj, handle, indent=2, default=_json_default)
                handle.write("\n")
            os.replace(tmp, path)
        except BaseException:
            _remove_quietly(tmp)
            raise


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
