"""The ``dataset`` config section (conf/dataset.yaml), typed and validated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ctx_spark.schema import SPLITS

__all__ = ["SPLITS", "SplitFractions", "DatasetSettings"]


@dataclass(frozen=True)
class SplitFractions:
    """Target shares of tracks per split; they sum to 1."""

    train: float
    validation: float
    test: float

    def __post_init__(self) -> None:
        values = self.as_tuple()
        if any(v < 0 for v in values):
            raise ValueError(f"split fractions must be >= 0, got {values}")
        if abs(sum(values) - 1.0) > 1e-6:
            raise ValueError(f"split fractions must sum to 1, got {values} (sum {sum(values):.6f})")
        if self.train <= 0:
            raise ValueError("split.train must be > 0: the loss weights are computed from the training split")

    def as_tuple(self) -> tuple[float, float, float]:
        """Fractions in :data:`SPLITS` order."""
        return (self.train, self.validation, self.test)


@dataclass(frozen=True)
class DatasetSettings:
    """The ``dataset`` config section; see conf/dataset.yaml for each key's meaning."""

    seed: int
    balance: bool
    cap: Optional[int]
    split: SplitFractions
    stratification: str
    tolerance: float
    max_album_artists: Optional[int]
    giant_groups: int
    groups_per_bucket: int
    max_component_iterations: int
    driver_components_max_edges: int
    checkpoint_dir: Optional[str]
    percentile_accuracy: int
    allow_empty_splits: bool = False
    keep_previous_split: bool = True

    def __post_init__(self) -> None:
        if not self.allow_empty_splits:
            for name, share in zip(SPLITS[1:], self.split.as_tuple()[1:]):
                if share == 0:
                    raise ValueError(
                        f"split.{name} is 0, so the {name} split would be empty (training needs a validation "
                        "split, evaluation a test split); give it a share, or set dataset.allow_empty_splits: true"
                    )
        if self.checkpoint_dir is not None and not self.checkpoint_dir.strip():
            raise ValueError("checkpoint_dir must be null or a directory, got an empty string")
        if self.cap is not None and self.cap < 1:
            raise ValueError(f"cap must be >= 1 or null, got {self.cap}")
        if self.stratification not in ("greedy", "sechidis"):
            raise ValueError(f"stratification must be greedy or sechidis, got {self.stratification!r}")
        if not 0.0 < self.tolerance < 1.0:
            raise ValueError(f"tolerance must be in (0, 1), got {self.tolerance}")
        if self.max_album_artists is not None and self.max_album_artists < 1:
            raise ValueError(f"max_album_artists must be >= 1 or null, got {self.max_album_artists}")
        if self.giant_groups < 0:
            raise ValueError(f"giant_groups must be >= 0, got {self.giant_groups}")
        if self.groups_per_bucket < 1:
            raise ValueError(f"groups_per_bucket must be >= 1, got {self.groups_per_bucket}")
        if self.max_component_iterations < 1:
            raise ValueError(f"max_component_iterations must be >= 1, got {self.max_component_iterations}")
        if self.driver_components_max_edges < 0:
            raise ValueError(f"driver_components_max_edges must be >= 0, got {self.driver_components_max_edges}")
        if self.percentile_accuracy < 1:
            raise ValueError(f"percentile_accuracy must be >= 1, got {self.percentile_accuracy}")
