"""The parameters of the audio -> log-mel transform, and the shape they imply."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


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
        if not self.log_scale > 0:  # NaN too
            # log(1 + s * power) with s <= 0 is NaN (or all 0): no spectrogram would mean anything.
            raise ValueError(f"log_scale must be > 0 (stored: log(1 + log_scale * power)), got {self.log_scale}")
        empty = empty_mel_bands(self.sample_rate, self.n_fft, self.n_mels)
        if empty:
            raise ValueError(
                f"n_mels={self.n_mels} is too many for n_fft={self.n_fft} at sample_rate={self.sample_rate}: {empty} "
                "mel bands cover no FFT bin and would be 0 in every spectrogram; lower n_mels or raise n_fft"
            )

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


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    f_sp, min_log_mel, logstep = 200.0 / 3, 15.0, np.log(6.4) / 27.0
    return np.where(hz >= 1000.0, min_log_mel + np.log(np.maximum(hz, 1000.0) / 1000.0) / logstep, hz / f_sp)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    f_sp, min_log_mel, logstep = 200.0 / 3, 15.0, np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, 1000.0 * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


def empty_mel_bands(sample_rate: int, n_fft: int, n_mels: int) -> int:
    """How many bands of librosa's mel filter bank (Slaney, fmin 0, fmax sr/2) weigh no FFT
    bin at all: such a band is 0 in every spectrogram. The same triangles as
    ``librosa.filters.mel``, without importing librosa (checked against it in the tests)."""
    fft_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(sample_rate / 2.0)), n_mels + 2))
    widths = np.diff(edges)
    ramps = np.subtract.outer(edges, fft_hz)
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.maximum(0.0, np.minimum(-ramps[:-2] / widths[:-1, None], ramps[2:] / widths[1:, None]))
    # A band whose largest weight is rounding noise (an edge on the Nyquist bin) is empty too.
    return int(np.sum(~(np.nan_to_num(weights).max(axis=1) > 1e-9)))
