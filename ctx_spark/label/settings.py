"""The ``label`` config section (conf/label.yaml), typed and range-checked."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LabelSettings:
    """The ``label`` config section (conf/label.yaml)."""

    max_tracks: int
    max_share: float
    min_playlists: int
    full_table_checks: bool = False
    partitions: int = 0
    broadcast_playlists: int = 5_000_000

    def __post_init__(self) -> None:
        if self.max_tracks < 1:
            raise ValueError(f"max_tracks must be >= 1, got {self.max_tracks}")
        if not 0.0 < self.max_share <= 1.0:
            raise ValueError(f"max_share must be in (0, 1], got {self.max_share}")
        if self.partitions < 0:
            raise ValueError(f"partitions must be >= 0 (0: automatic), got {self.partitions}")
        if self.broadcast_playlists < 0:
            raise ValueError(f"broadcast_playlists must be >= 0 (0: never), got {self.broadcast_playlists}")
        if self.min_playlists < 1:
            raise ValueError(f"min_playlists must be >= 1, got {self.min_playlists}")
