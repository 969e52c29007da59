"""Decode only the excerpt the model uses: seek, read 30 s, mix to mono, resample once.

A track's excerpt starts at ``min(offset, max(0, duration - excerpt))`` seconds (30 s into
the track, moved earlier so that it stays whole; a 30 s preview is used from its start).
libsndfile (through soundfile) decodes MP3, Ogg, FLAC and WAV itself and seeks inside the
compressed stream, so a 4-minute MP3 costs the same as its 30 s excerpt; nothing goes
through an ffmpeg process or a temporary file. The reading mirrors ``librosa.load(path,
sr=22050, offset=start, duration=30)`` step by step (same frame arithmetic, same soxr "HQ"
resampler), so the result equals librosa's while skipping its slow strided mono mix.

Only what libsndfile cannot open (AAC and ALAC in MP4/M4A, Opus in WebM, WMA...) goes to
FFmpeg through PyAV (:mod:`ctx_spark.audio.av_decode`), with the same excerpt arithmetic,
mono mix and resampler; a file neither reads is ``unsupported_format`` (audio in a codec
no decoder here has) or ``not_audio``.

Sources: a local path, a ``file:`` URI, any URI pyarrow's filesystems open (``hdfs://``,
``s3://`` and ``s3a://``, ``gs://``...) or fsspec opens, or a binary file-like object with
``read``/``seek``/``tell``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import BinaryIO, Optional, Union

import numpy as np
import soundfile as sf
import soxr

from ctx_spark.audio.errors import (
    CORRUPT,
    EMPTY,
    OUT_OF_RANGE,
    OUT_OF_RANGE_PEAK,
    SILENT,
    TOO_SHORT,
    TRUNCATED,
    TRUNCATION_TOLERANCE_SECONDS,
    AudioError,
)
from ctx_spark.audio.params import MelParams
from ctx_spark.audio.sources import Source, describe, open_binary

#: soxr quality used by librosa's default ``res_type="soxr_hq"``.
RESAMPLE_QUALITY = "soxr_hq"


def excerpt_start(duration: float, params: MelParams) -> float:
    """Start of the excerpt in seconds: min(offset, max(0, duration - excerpt))."""
    return min(params.offset_seconds, max(0.0, duration - params.excerpt_seconds))


@dataclass(frozen=True)
class Excerpt:
    """The decoded excerpt and what it took.

    Attributes:
        samples: float32 mono at ``params.sample_rate``, exactly ``params.excerpt_samples``
            long (zero-padded at the end when the audio is shorter than the excerpt).
        duration_seconds: the whole file's duration according to its header.
        start_seconds: where the excerpt starts in the file.
        decoded_seconds: audio actually decoded (at most one excerpt).
        native_rate: the file's sample rate in Hz.
        channels: the file's channel count.
    """

    samples: np.ndarray
    duration_seconds: float
    start_seconds: float
    decoded_seconds: float
    native_rate: int
    channels: int


def _mono(data: np.ndarray) -> np.ndarray:
    """Average the channels of a (frames, channels) float32 block.

    Equals ``np.mean(data, axis=1)`` bit for bit (a sequential sum divided by the count,
    which is what numpy does over fewer than 9 values) without its slow strided reduction.
    """
    channels = data.shape[1]
    if channels == 1:
        return data[:, 0]
    mono = data[:, 0].copy()
    for c in range(1, channels):
        mono += data[:, c]
    mono /= np.float32(channels)
    return mono


class EofWatch:
    """A binary file wrapper that records whether the decoder asked for bytes past the end."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.hit_eof = False

    def readinto(self, buffer) -> int:
        view = memoryview(buffer)
        data = self.raw.read(len(view))
        n = len(data)
        view[:n] = data
        if n < len(view):
            self.hit_eof = True
        return n

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if n is None or n < 0 or len(data) < n:
            self.hit_eof = True
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()


def _ran_out_of_bytes(target: Union[str, BinaryIO], start_frame: int, wanted: int) -> bool:
    """Decode the excerpt again, watching the bytes: did the decoder fail at the end of the
    file (``truncated``: the data stops before the announced end) rather than inside it
    (``corrupt``)? Only run after a decoding error, so normal decoding keeps libsndfile's
    own file access.
    """
    try:
        raw = open(target, "rb") if isinstance(target, str) else target
        if not isinstance(target, str):
            target.seek(0)
        watch = EofWatch(raw)
        try:
            with sf.SoundFile(watch) as again:
                if start_frame:
                    again.seek(start_frame)
                again.read(wanted, dtype="float32")
        except Exception:
            pass
        finally:
            if isinstance(target, str):
                raw.close()
        return watch.hit_eof
    except Exception:
        return False


def _silence_threshold(silence_peak_dbfs: Optional[float]) -> float:
    return 0.0 if silence_peak_dbfs is None else float(10.0 ** (silence_peak_dbfs / 20.0))


@dataclass(frozen=True)
class ExcerptPlan:
    """Which frames of a file the excerpt takes, by librosa.load's arithmetic (both decoders).

    ``frames``: the file's length as its header announces it; ``start``: seconds
    (:func:`excerpt_start`); ``start_frame = int(start * rate)``; ``wanted =
    min(int(excerpt * rate), frames - start_frame)``: the frames to decode.
    """

    rate: int
    channels: int
    frames: int
    start: float
    start_frame: int
    wanted: int

    @property
    def duration(self) -> float:
        return self.frames / self.rate


def plan_excerpt(name: str, rate: int, channels: int, frames: int, params: MelParams) -> ExcerptPlan:
    """The excerpt of a file whose header announces ``frames`` frames at ``rate`` Hz.

    Raises:
        AudioError: ``corrupt`` for an impossible header, ``too_short`` below
            ``params.min_seconds``.
    """
    if rate <= 0 or channels <= 0 or frames < 0:
        raise AudioError(CORRUPT, f"{name}: impossible header ({rate} Hz, {channels} channels, {frames} frames)")
    duration = frames / rate
    if duration < params.min_seconds:
        raise AudioError(
            TOO_SHORT, f"{name}: {duration:.2f} s of audio, less than the {params.min_seconds:g} s minimum"
        )
    start = excerpt_start(duration, params)
    # The same frame arithmetic as librosa.load(offset=start, duration=excerpt).
    start_frame = int(start * rate)
    wanted = min(int(params.excerpt_seconds * rate), frames - start_frame)
    return ExcerptPlan(rate, channels, frames, start, start_frame, wanted)


def _read_libsndfile(
    handle: sf.SoundFile, target: Union[str, BinaryIO], name: str, params: MelParams
) -> tuple[np.ndarray, ExcerptPlan]:
    """The excerpt's (frames, channels) float32 block, read by libsndfile."""
    plan = plan_excerpt(name, handle.samplerate, handle.channels, handle.frames, params)
    try:
        if plan.start_frame:
            handle.seek(plan.start_frame)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(
            TRUNCATED,
            f"{name}: cannot seek to {plan.start:.2f} s of the {plan.duration:.2f} s the header announces ({exc})",
        ) from None
    try:
        return handle.read(plan.wanted, dtype="float32", always_2d=True), plan
    except (sf.LibsndfileError, RuntimeError) as exc:
        if _ran_out_of_bytes(target, plan.start_frame, plan.wanted):
            raise AudioError(
                TRUNCATED, f"{name}: the data ends before the {plan.duration:.2f} s the header announces ({exc})"
            ) from None
        raise AudioError(CORRUPT, f"{name}: decoding failed inside the excerpt at {plan.start:.2f} s ({exc})") from None


def read_excerpt(source: Source, params: MelParams, *, silence_peak_dbfs: Optional[float] = None) -> Excerpt:
    """Decode the excerpt of ``source`` described by ``params``.

    libsndfile reads what it can open; everything else goes to PyAV
    (:func:`ctx_spark.audio.av_decode.read_native`). Both deliver the native-rate block of
    exactly the excerpt's frames; the checks, mono mix and resampling below are shared.

    Args:
        source: path, URI or binary file object (see module docstring).
        params: the transform's parameters (rate, offset, excerpt and minimum lengths).
        silence_peak_dbfs: an excerpt whose peak is at or below this level (dB full scale)
            is ``silent``; None rejects only digital silence (all samples exactly 0).

    Raises:
        AudioError: with one of the reasons of :mod:`ctx_spark.audio.errors`.
    """
    name = describe(source)
    with open_binary(source) as (target, size):
        if size == 0:
            raise AudioError(EMPTY, f"{name}: file is empty (0 bytes)")
        try:
            handle = sf.SoundFile(target)
        except (sf.LibsndfileError, TypeError, RuntimeError, ValueError):
            handle = None
        if handle is None:
            from ctx_spark.audio.av_decode import read_native  # imports av only when needed

            data, plan = read_native(target, name, size, params)
        else:
            with handle:
                data, plan = _read_libsndfile(handle, target, name, params)
    return _finish(data, plan, name, params, silence_peak_dbfs)


def _finish(
    data: np.ndarray, plan: ExcerptPlan, name: str, params: MelParams, silence_peak_dbfs: Optional[float]
) -> Excerpt:
    """Check the decoded block, mix it to mono, resample it and pad it to one excerpt."""
    rate, got = plan.rate, data.shape[0]
    if got < plan.wanted - TRUNCATION_TOLERANCE_SECONDS * rate:
        raise AudioError(
            TRUNCATED,
            f"{name}: stream ends after {(plan.start_frame + got) / rate:.2f} s, "
            f"header announces {plan.duration:.2f} s",
        )
    if (plan.start_frame + got) / rate < params.min_seconds:
        raise AudioError(TOO_SHORT, f"{name}: only {(plan.start_frame + got) / rate:.2f} s of audio could be decoded")
    # NaN and inf propagate through max/min. A peak far above full scale is a float file
    # written at the wrong scale, not loud music (errors.py, out_of_range).
    full_peak = float(max(data.max(), -data.min())) if data.size else 0.0
    if not np.isfinite(full_peak):
        raise AudioError(CORRUPT, f"{name}: decoded samples are not finite")
    if full_peak > OUT_OF_RANGE_PEAK:
        raise AudioError(
            OUT_OF_RANGE,
            f"{name}: samples peak at {full_peak:.4g} ({20 * np.log10(full_peak):+.1f} dBFS) "
            f"in the excerpt at {plan.start:.2f} s, beyond the {OUT_OF_RANGE_PEAK:g} allowed",
        )
    mono = _mono(data)
    if rate != params.sample_rate:
        resampled = soxr.resample(mono, rate, params.sample_rate, quality=RESAMPLE_QUALITY)
        # librosa.resample's fix_length: ceil(n * ratio) samples.
        target_len = int(np.ceil(got * params.sample_rate / rate))
        mono = resampled[:target_len]
    peak = float(np.max(np.abs(mono))) if mono.size else 0.0
    threshold = _silence_threshold(silence_peak_dbfs)
    if peak <= threshold:
        level = "digital silence" if peak == 0 else f"peak {20 * np.log10(peak):.1f} dBFS"
        raise AudioError(SILENT, f"{name}: the excerpt at {plan.start:.2f} s is silent ({level})")
    samples = np.zeros(params.excerpt_samples, dtype=np.float32)
    n = min(mono.size, params.excerpt_samples)
    samples[:n] = mono[:n]
    return Excerpt(
        samples=samples,
        duration_seconds=plan.duration,
        start_seconds=plan.start,
        decoded_seconds=got / rate,
        native_rate=rate,
        channels=plan.channels,
    )
