"""The parameters of the audio -> log-mel transform, and the shape they imply."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MelParams:
    """The ``audio`` config section (conf/audio.yaml).

    Units: seconds and Hz; ``log_scale`` is the factor inside log(1 + log_scale * power).
    """

    sample_rate: int
    offset_seconds: float
    excerpt_seconds: float
    min_seconds: float
    n_fft: int
    hop_length: int
    n_mels: int
    log_scale: float

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.n_fft <= 0 or self.hop_length <= 0 or self.n_mels <= 0:
            raise ValueError("sample_rate, n_fft, hop_length and n_mels must be positive")
        if not 0 < self.min_seconds <= self.excerpt_seconds:
            raise ValueError("min_seconds must be in (0, excerpt_seconds]")
        if self.offset_seconds < 0:
            raise ValueError("offset_seconds must be >= 0")

    @property
    def excerpt_samples(self) -> int:
        """Samples in one excerpt at ``sample_rate``."""
        return int(round(self.excerpt_seconds * self.sample_rate))

    @property
    def n_frames(self) -> int:
        """Frames of a centred STFT over one excerpt: 1 + samples // hop (646 by default)."""
        return 1 + self.excerpt_samples // self.hop_length

    @property
    def shape(self) -> tuple[int, int]:
        """(mel bands, frames) of one stored spectrogram: (96, 646) by default."""
        return (self.n_mels, self.n_frames)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, with the implied shape, for mel_params.json and model exports."""
        data = dataclasses.asdict(self)
        data["n_frames"] = self.n_frames
        data["transform"] = "log(1 + log_scale * melspectrogram(power=2, center=True))"
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MelParams:
        """Inverse of :meth:`to_dict` (extra keys such as ``n_frames`` are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
