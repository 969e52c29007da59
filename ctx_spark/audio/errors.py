"""Why a track's audio could not be turned into a spectrogram: one machine-readable reason.

Every failure of :func:`ctx_spark.audio.mel.compute_mel` is an :class:`AudioError` whose
``reason`` is one of :data:`REASONS`, so the extraction job can count failures by reason and
record them in ``errors/`` instead of failing, and inference can tell a user exactly what is
wrong with a file. The definitions (also in the docs/extraction.md, "Mel extraction"):

``missing``
    The path or URI does not exist (or a dataset track has no audio listed: reason
    ``no_audio`` instead, see :data:`JOB_REASONS`).
``empty``
    The file exists and holds 0 bytes.
``unreadable``
    The file exists but cannot be opened or read (permissions, I/O error, unknown scheme).
``not_audio``
    The file is not empty, but no decoder recognises it as audio: neither libsndfile (MP3,
    Ogg Vorbis/Opus, FLAC, WAV...) nor FFmpeg (through PyAV: AAC/ALAC in MP4, WebM, WMA...)
    opens it, or FFmpeg opens it and it holds no audio stream (a video without sound). A
    text file, an image, an HTML error page saved as ``.mp3``. The message gives the size
    and, when the first bytes are a known signature, what the file looks like ("looks like
    an HTML page"); it never quotes the file's content.
``unsupported_format``
    FFmpeg recognises an audio stream, but no decoder here reads its codec (neither
    libsndfile nor the FFmpeg build in PyAV's wheel); the message names the container and,
    where FFmpeg knows it, the codec ("wav container, codec sonic has no decoder"). The
    audio may be fine: transcoding it makes it usable.
``corrupt``
    The header was recognised but the stream is unusable: the decoder fails inside the
    excerpt, the header is impossible (no channels, no sample rate), the first bytes are a
    media container's but FFmpeg cannot read its header, or the decoded samples or the
    spectrogram are not finite.
``truncated``
    The stream ends before the length its header announces: seeking to the excerpt fails,
    or the decoder delivers more than :data:`TRUNCATION_TOLERANCE_SECONDS` less audio than
    the header promises for the excerpt (a download cut short). Formats whose length is
    derived from the data itself (Ogg, WAV after libsndfile's size check) simply look
    shorter; they are then judged by ``too_short``. An MP4 whose boxes run past the end
    of the file before its index (``moov``, written last by default) is also truncated.
``too_short``
    The audio lasts less than ``audio.min_seconds`` (20 s by default); audio between
    ``min_seconds`` and the excerpt length is zero-padded instead.
``out_of_range``
    A decoded sample of the excerpt (any channel, native rate) lies beyond
    +/- :data:`OUT_OF_RANGE_PEAK` (+12 dBFS). Only float formats can hold such values
    (integer PCM stops at full scale): a float file written at the wrong scale (integer
    values stored as floats, a gain applied twice) whose spectrogram would be tens of dB
    off. The file is rejected rather than normalised, because no gain is known to be the
    right one. Lossy decoders legitimately overshoot full scale on clipped masters
    (measured: up to 1.5 at 12 dB of clipping, 2.2 at 24 dB, MP3/Vorbis/AAC/Opus), so the
    limit leaves room for those; a float file peaking between 1 and the limit is used as
    is, as librosa would.
``silent``
    The excerpt actually used (mono, resampled) has a peak absolute amplitude at or below
    the silence threshold: exactly 0 when no threshold is given (digital silence), or
    ``extract.silence_peak_dbfs`` in the extraction job (-60 dBFS by default).
"""

from __future__ import annotations

from typing import Optional

MISSING = "missing"
EMPTY = "empty"
UNREADABLE = "unreadable"
NOT_AUDIO = "not_audio"
UNSUPPORTED_FORMAT = "unsupported_format"
CORRUPT = "corrupt"
TRUNCATED = "truncated"
TOO_SHORT = "too_short"
OUT_OF_RANGE = "out_of_range"
SILENT = "silent"

#: Reasons :func:`compute_mel` raises, in the order a file is checked.
REASONS = (
    MISSING,
    EMPTY,
    UNREADABLE,
    NOT_AUDIO,
    UNSUPPORTED_FORMAT,
    CORRUPT,
    TRUNCATED,
    TOO_SHORT,
    OUT_OF_RANGE,
    SILENT,
)

#: Extra reasons only the extraction job records: a dataset track with no audio listed
#: (``no_audio``), an unexpected exception (``error``, a bug: message holds the exception),
#: and a file whose decoding killed the worker process (``crashed``, see docs/extraction.md).
NO_AUDIO = "no_audio"
ERROR = "error"
CRASHED = "crashed"
JOB_REASONS = (NO_AUDIO, ERROR, CRASHED)

#: The stage of the pipeline each reason is detected in (the ``stage`` column of errors/).
STAGE_OF_REASON = {
    NO_AUDIO: "input",
    MISSING: "open",
    EMPTY: "open",
    UNREADABLE: "open",
    NOT_AUDIO: "open",
    UNSUPPORTED_FORMAT: "open",
    CORRUPT: "decode",
    TRUNCATED: "decode",
    CRASHED: "decode",
    TOO_SHORT: "check",
    OUT_OF_RANGE: "check",
    SILENT: "check",
    ERROR: "mel",
}

#: A stream may end this much before the end its header announces and still be used
#: (zero-padded); MP3 headers without an exact frame count estimate the length.
TRUNCATION_TOLERANCE_SECONDS = 1.0

#: Largest absolute sample value accepted (4.0 = +12 dBFS), see ``out_of_range``.
OUT_OF_RANGE_PEAK = 4.0


class AudioError(Exception):
    """A track's audio cannot be used.

    Attributes:
        reason: one of :data:`REASONS` (or :data:`JOB_REASONS` inside the job).
        message: a human-readable explanation naming the file and what was found.
        stage: where it was detected (``open``, ``decode``, ``check``...).
    """

    def __init__(self, reason: str, message: str, stage: Optional[str] = None):
        if reason not in STAGE_OF_REASON:
            raise ValueError(f"unknown audio error reason {reason!r}")
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.stage = stage or STAGE_OF_REASON[reason]

    def __reduce__(self):
        # Keep reason and message when sent between processes (isolated decoding).
        return (type(self), (self.reason, self.message, self.stage))
