"""The model's input: a log-compressed mel spectrogram of one 30 s excerpt.

:func:`compute_mel` is THE function extraction (jobs/extract_mels.py) and inference
(training/predict.py) share, so a model always sees at prediction time exactly the
transform it was trained on. Transform (Ibrahim et al. 2020 and their code): mono,
22,050 Hz, ``librosa.feature.melspectrogram(n_fft=1024, hop_length=1024, n_mels=96,
power=2, center=True)``, then ``log(1 + 100 * mel)`` stored as float16 (raw power
underflows in float16; the log keeps about three significant digits over the whole range).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ctx_spark.audio.decode import Excerpt, read_excerpt
from ctx_spark.audio.errors import CORRUPT, AudioError
from ctx_spark.audio.params import MelParams
from ctx_spark.audio.sources import Source, describe

MEL_DTYPE = np.float16


@functools.lru_cache(maxsize=8)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """librosa's default mel filter bank (Slaney, fmin 0, fmax sr/2), built once per worker."""
    import librosa

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)


def log_mel(samples: np.ndarray, params: MelParams) -> np.ndarray:
    """The stored spectrogram of a waveform.

    Args:
        samples: float32 mono at ``params.sample_rate``; one excerpt
            (``params.excerpt_samples`` long) gives ``params.shape``.

    Returns:
        float16 array (n_mels, frames) of log(1 + log_scale * mel power).

    Equals ``librosa.feature.melspectrogram(y, sr, n_fft, hop_length, n_mels)`` (which
    rebuilds the filter bank on every call) followed by the log.
    """
    import librosa

    spectrum = np.abs(librosa.stft(samples, n_fft=params.n_fft, hop_length=params.hop_length, center=True)) ** 2
    mel = np.einsum("ft,mf->mt", spectrum, _mel_basis(params.sample_rate, params.n_fft, params.n_mels), optimize=True)
    return np.log1p(np.float32(params.log_scale) * mel).astype(MEL_DTYPE)


@dataclass(frozen=True)
class MelResult:
    """A spectrogram and the decoding facts behind it (for reports and debugging)."""

    mel: np.ndarray
    excerpt: Excerpt


def compute_mel_info(source: Source, params: MelParams, *, silence_peak_dbfs: Optional[float] = None) -> MelResult:
    """:func:`compute_mel`, also returning the excerpt's duration, start and decoded seconds."""
    excerpt = read_excerpt(source, params, silence_peak_dbfs=silence_peak_dbfs)
    mel = log_mel(excerpt.samples, params)
    if mel.shape != params.shape:  # a parameter set whose frames disagree with n_frames
        raise ValueError(f"spectrogram shape {mel.shape} differs from the expected {params.shape}")
    # Finite samples can still overflow: power beyond float32, or a log beyond float16.
    if not np.isfinite(mel).all():
        raise AudioError(CORRUPT, f"{describe(source)}: the spectrogram is not finite (inf or NaN)")
    return MelResult(mel=mel, excerpt=excerpt)


def compute_mel(source: Source, params: MelParams, *, silence_peak_dbfs: Optional[float] = None) -> np.ndarray:
    """Decode the excerpt of one audio file and return its stored spectrogram.

    Args:
        source: a local path, a ``file:`` URI, any URI pyarrow or fsspec can open, or a
            binary file-like object (read/seek/tell).
        params: the transform (the ``audio`` config section, or a dataset's
            ``mel_params.json`` through :meth:`MelParams.from_dict`).
        silence_peak_dbfs: reject excerpts whose peak is at or below this level; None
            rejects only digital silence.

    Returns:
        float16 array of shape ``params.shape`` (96 x 646 by default).

    Raises:
        AudioError: the audio cannot be used; ``.reason`` says why (missing, empty,
            unreadable, not_audio, unsupported_format, corrupt, truncated, too_short,
            out_of_range, silent).
    """
    return compute_mel_info(source, params, silence_peak_dbfs=silence_peak_dbfs).mel
