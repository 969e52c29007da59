"""The ``train`` config section (conf/train.yaml) as frozen, validated dataclasses.

Defaults live in the YAML only; these classes name the keys, their types and their valid
ranges, so a typo or an out-of-range value fails before TensorFlow is even imported.
"""

from __future__ import annotations

from dataclasses import dataclass

from ctx_spark.config import Config
from ctx_spark.schema import SPLITS

#: Loss variants, named as in the paper's Table 2.
LOSS_VARIANTS = ("none", "negative_exact", "negative_ignore_zeros", "both_exact", "both_ignore_zeros")
READERS = ("pyarrow", "petastorm")
OPTIMIZERS = ("adadelta", "adam", "sgd")
DENSE_ACTIVATIONS = ("relu", "sigmoid")
DROPOUT_MODES = ("drop", "keep")


@dataclass(frozen=True)
class LossSettings:
    variant: str
    epsilon: float

    def __post_init__(self) -> None:
        if self.variant not in LOSS_VARIANTS:
            raise ValueError(f"loss.variant must be one of {', '.join(LOSS_VARIANTS)}; got {self.variant!r}")
        if not 0.0 < self.epsilon < 0.5:
            raise ValueError(f"loss.epsilon must be in (0, 0.5), got {self.epsilon}")


@dataclass(frozen=True)
class ModelSettings:
    conv_filters: tuple[int, ...]
    kernel_size: int
    pool_size: int
    dense_units: int
    dense_activation: str
    dropout: float
    dropout_mode: str
    input_batch_norm: bool

    def __post_init__(self) -> None:
        if not self.conv_filters or any(f < 1 for f in self.conv_filters):
            raise ValueError("model.conv_filters must be a non-empty list of positive integers")
        if self.kernel_size < 1 or self.pool_size < 1 or self.dense_units < 1:
            raise ValueError("model.kernel_size, pool_size and dense_units must be positive")
        if self.dense_activation not in DENSE_ACTIVATIONS:
            raise ValueError(
                f"model.dense_activation must be one of {DENSE_ACTIVATIONS}, got {self.dense_activation!r}"
            )
        if self.dropout_mode not in DROPOUT_MODES:
            raise ValueError(f"model.dropout_mode must be one of {DROPOUT_MODES}, got {self.dropout_mode!r}")
        if not 0.0 <= self.dropout <= 1.0 or self.drop_rate >= 1.0:
            raise ValueError(f"model.dropout={self.dropout} with dropout_mode={self.dropout_mode} drops every unit")

    @property
    def drop_rate(self) -> float:
        """The fraction of dense units dropped in training (Keras ``Dropout(rate)``)."""
        return self.dropout if self.dropout_mode == "drop" else 1.0 - self.dropout


@dataclass(frozen=True)
class OptimizerSettings:
    name: str
    learning_rate: float
    decay_rate: float
    decay_steps: int
    staircase: bool
    rho: float
    epsilon: float

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ValueError(f"optimizer.name must be one of {OPTIMIZERS}, got {self.name!r}")
        if self.learning_rate <= 0 or not 0 < self.decay_rate <= 1 or self.decay_steps < 1:
            raise ValueError("optimizer: learning_rate > 0, decay_rate in (0, 1] and decay_steps >= 1 required")
        if not 0 < self.rho < 1 or self.epsilon <= 0:
            raise ValueError("optimizer: rho must be in (0, 1) and epsilon > 0")


@dataclass(frozen=True)
class EarlyStoppingSettings:
    patience: int
    min_delta: float

    def __post_init__(self) -> None:
        if self.patience < 1 or self.min_delta < 0:
            raise ValueError("early_stopping: patience >= 1 and min_delta >= 0 required")


@dataclass(frozen=True)
class DataSettings:
    reader: str
    batch_size: int
    shuffle_buffer: int
    workers: int
    prefetch: int

    def __post_init__(self) -> None:
        if self.reader not in READERS:
            raise ValueError(f"data.reader must be one of {READERS}, got {self.reader!r}")
        if self.batch_size < 1 or self.shuffle_buffer < 1 or self.workers < 1 or self.prefetch < 0:
            raise ValueError("data: batch_size, shuffle_buffer, workers >= 1 and prefetch >= 0 required")


@dataclass(frozen=True)
class CheckpointSettings:
    keep: int

    def __post_init__(self) -> None:
        if self.keep < 1:
            raise ValueError("checkpoint.keep must be >= 1")


@dataclass(frozen=True)
class LoggingSettings:
    verbose: int
    tensorboard: bool

    def __post_init__(self) -> None:
        if self.verbose not in (-1, 0, 1, 2):
            raise ValueError("logging.verbose must be -1, 0, 1 or 2")


@dataclass(frozen=True)
class EvaluationSettings:
    threshold: float
    tune_split: str
    test_split: str
    batch_size: int

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0 or self.batch_size < 1:
            raise ValueError("evaluation: threshold in (0, 1) and batch_size >= 1 required")
        for key in ("tune_split", "test_split"):
            if getattr(self, key) not in SPLITS:
                raise ValueError(f"evaluation.{key} must be one of {', '.join(SPLITS)}, got {getattr(self, key)!r}")
        if self.tune_split == self.test_split:
            raise ValueError(
                f"evaluation.tune_split and test_split are both {self.test_split!r}: thresholds tuned on the test "
                "split make its scores optimistic; tune on another split"
            )


@dataclass(frozen=True)
class TrainSettings:
    """The whole ``train`` section."""

    seed: int
    epochs: int
    loss: LossSettings
    model: ModelSettings
    optimizer: OptimizerSettings
    early_stopping: EarlyStoppingSettings
    data: DataSettings
    checkpoint: CheckpointSettings
    logging: LoggingSettings
    evaluation: EvaluationSettings

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError("train.epochs must be >= 1")


def train_settings(cfg: Config) -> TrainSettings:
    """The typed ``train`` section of a loaded configuration."""
    return cfg.section("train", TrainSettings)
