"""Decode what libsndfile cannot (AAC and ALAC in MP4/M4A, Opus in WebM...) with PyAV.

PyAV (``av`` on PyPI) bundles FFmpeg's libraries in its wheel, so no ffmpeg program and no
temporary file is involved. :func:`ctx_spark.audio.decode.read_excerpt` calls
:func:`read_native` only for files libsndfile cannot open, and both paths share the excerpt
arithmetic (:func:`~ctx_spark.audio.decode.plan_excerpt`), the mono mix and the soxr
resampler: this module only delivers the excerpt's native-rate float32 frames.

* Length: the stream's duration (sample-exact in MP4, whose edit list FFmpeg applies),
  else the container's (Matroska/WebM: to the millisecond). Raw elementary streams
  (ADTS ``.aac``, AC-3...) carry none, and FFmpeg only estimates one from the bit rate:
  their packets are demuxed (not decoded) to the end to count the frames.
* Start: in MP4 the demuxer's timestamps place every decoded sample exactly, so an
  excerpt starting later than :data:`PREROLL_SECONDS` seeks to that long before its start
  (a lossy decoder's first frame after a seek lacks its overlap) and is cut at the exact
  start sample by ``frame.pts`` (should the seek miss, decoding starts over from the
  start). Elsewhere timestamps are coarser than a sample (Matroska's are in ms) or
  estimated after a seek (raw streams), so decoding starts at the beginning and samples
  are counted; the start is at most ``audio.offset_seconds`` (30 s) in, so this decodes at
  most offset + excerpt seconds, never the whole track. Decoding stops after the excerpt.
* Encoder delay (AAC priming, Opus pre-skip) is removed the way FFmpeg reports it: MP4
  edit lists and Opus headers make the decoder drop those samples, and the first sample
  FFmpeg outputs is sample 0 (raw ADTS has no such field, so its 1024 priming samples
  stay, as in ``ffmpeg -i x.aac``).
* Samples: float32 at the native rate. Float frames (FFmpeg's AAC, Opus, Vorbis
  decoders) are only interleaved; other formats go through ``av.AudioResampler(
  format="flt", layout=<the frame's>, rate=<the frame's>)``, a format conversion that
  scales integers by 2^-15 / 2^-31 as libsndfile does (16-bit ALAC equals the same PCM
  read by libsndfile bit for bit); the rate never changes here.

Failures: no demuxer opens the file -> ``not_audio`` (or ``corrupt``/``truncated`` when its
first bytes are a media container's, see :func:`describe_content`); a container without an
audio stream -> ``not_audio``; an audio stream whose codec has no decoder in this FFmpeg
build -> ``unsupported_format``; a decoding error -> ``truncated`` when the reads had
reached the end of the bytes, else ``corrupt``. Messages never quote the file's bytes.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import BinaryIO, Optional, Union

import numpy as np

from ctx_spark.audio.decode import EofWatch, ExcerptPlan, plan_excerpt
from ctx_spark.audio.errors import CORRUPT, NOT_AUDIO, TRUNCATED, UNSUPPORTED_FORMAT, AudioError
from ctx_spark.audio.params import MelParams
from ctx_spark.platform import av_read_options

#: Decoding starts this long before the excerpt after a seek and the surplus is dropped:
#: a lossy decoder (AAC: 1024 samples, Opus: 80 ms) needs the previous frames' overlap.
PREROLL_SECONDS = 1.0

#: FFmpeg demuxers (names inside ``container.format.name``) whose timestamps place each
#: decoded sample exactly after a seek: the ISO/QuickTime family (MP4, M4A, MOV, 3GP).
SAMPLE_EXACT_SEEK_FORMATS = frozenset({"mov", "mp4", "m4a"})

#: Raw elementary-stream demuxers: no length in any header, FFmpeg estimates one from the
#: bit rate; their packets are counted instead.
RAW_STREAM_FORMATS = frozenset(
    {
        "aac",
        "ac3",
        "eac3",
        "dts",
        "truehd",
        "mlp",
        "loas",
        "amr",
        "amrnb",
        "amrwb",
        "mp3",
        "mpegts",
        "mpeg",
    }
)

#: Magic numbers of files that are not audio, and of media containers, by name only.
_SIGNATURES: tuple[tuple[int, bytes, str, bool], ...] = (
    # (offset, bytes, kind, is a media container)
    (0, b"\xff\xd8\xff", "a JPEG image", False),
    (0, b"\x89PNG\r\n\x1a\n", "a PNG image", False),
    (0, b"GIF8", "a GIF image", False),
    (0, b"%PDF-", "a PDF document", False),
    (0, b"PK\x03\x04", "a ZIP archive", False),
    (0, b"\x1f\x8b", "a gzip archive", False),
    (0, b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", False),
    (0, b"\x7fELF", "an ELF executable", False),
    (4, b"ftyp", "an MP4/M4A file", True),
    (0, b"OggS", "an Ogg file", True),
    (0, b"\x1a\x45\xdf\xa3", "a Matroska/WebM file", True),
    (0, b"fLaC", "a FLAC file", True),
    (0, b"ID3", "an MP3 file (ID3 tag)", True),
    (0, b"RIFF", "a RIFF (WAV/AVI/WebP) file", True),
    (0, b"FORM", "an AIFF file", True),
    (0, b"caff", "a CAF file", True),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "an ASF/WMA file", True),
)

_HEAD_BYTES = 4096


def _read_head(target: Union[str, BinaryIO], n: int = _HEAD_BYTES) -> bytes:
    try:
        if isinstance(target, str):
            with open(target, "rb") as handle:
                return handle.read(n)
        target.seek(0)
        return bytes(target.read(n))
    except Exception:
        return b""


def content_kind(head: bytes) -> tuple[Optional[str], bool]:
    """(what the first bytes look like, whether that is a media container), e.g.
    ("an HTML page", False); (None, False) when unrecognised. Names a kind, never the bytes.
    """
    for offset, magic, kind, media in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return kind, media
    text = _as_text(head)
    if not text or not all(c.isprintable() or c in "\t\r\n" for c in text):
        return None, False
    lowered = text.lstrip("\ufeff \t\r\n").lower()
    if lowered.startswith("<!doctype html") or "<html" in lowered[:1024]:
        return "an HTML page", False
    if lowered.startswith("<"):
        return "XML/markup text", False
    if lowered.startswith(("{", "[")):
        return "JSON text", False
    return "text", False


def _as_text(head: bytes) -> Optional[str]:
    """The head as UTF-8 (allowing a character cut by the end of the head), else None."""
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3 and exc.reason == "unexpected end of data":
            return head[: exc.start].decode("utf-8")
        return None


def describe_content(target: Union[str, BinaryIO], size: int) -> tuple[str, bool]:
    """("12,345 bytes, looks like an HTML page", is a media container) for messages."""
    kind, media = content_kind(_read_head(target))
    return f"{size:,} bytes" + (f", looks like {kind}" if kind else ", no known file signature"), media


def _mp4_cut_short(handle: BinaryIO, size: int) -> bool:
    """Whether an MP4's top-level boxes run past the end of the file before any ``moov``
    box (the index FFmpeg needs; written last by default): a download cut short."""
    position = 0
    while position + 8 <= size:
        handle.seek(position)
        header = handle.read(16)
        length, kind = int.from_bytes(header[:4], "big"), header[4:8]
        if length == 1 and len(header) == 16:
            length = int.from_bytes(header[8:16], "big")
        if kind == b"moov" or length < 8:  # the index is there, or sizes make no sense (0: "to the end")
            return False
        if position + length > size:
            return True
        position += length
    return False


def _container_name(container) -> str:
    names = container.format.name.split(",")
    return "mp4" if "mp4" in names else names[0]


def _codec_name(container, index: int) -> str:
    """The codec FFmpeg identified for a stream it has no decoder for (PyAV exposes no
    codec then): read from FFmpeg's stream summary, of which only this word is used."""
    import av.logging

    level = av.logging.get_level()
    try:
        av.logging.set_level(av.logging.INFO)  # dumps_format captures FFmpeg's log
        summary = container.dumps_format()
    except Exception:
        summary = ""
    finally:
        av.logging.set_level(level)
    match = re.search(rf"^\s*Stream #\d+:{index}\b[^\n]*?: Audio: ([a-z0-9_]+)", summary, re.M)
    return match.group(1) if match and match.group(1) != "none" else "unknown to FFmpeg"


def _count_frames(container, stream, rate: int) -> int:
    """Frames of a stream without a trustworthy length, from its packets' timestamps
    (demuxing only, no decoding); the container's estimate if packets carry none."""
    end = None
    for packet in container.demux(stream):
        if packet.pts is not None and packet.duration:
            end = packet.pts + packet.duration if end is None else max(end, packet.pts + packet.duration)
    if end is not None:
        return int(round((end - (stream.start_time or 0)) * stream.time_base * rate))
    return int(round(container.duration / 1_000_000 * rate)) if container.duration else 0


def _formats(container) -> set[str]:
    return set(container.format.name.split(","))


def _length(container, stream, rate: int) -> tuple[int, bool]:
    """(the stream's length in frames, whether its packets were demuxed to count it)."""
    if _formats(container) & RAW_STREAM_FORMATS or (stream.duration is None and container.duration is None):
        return _count_frames(container, stream, rate), True
    if stream.duration is not None and stream.time_base is not None:
        return int(round(stream.duration * stream.time_base * rate)), False
    return int(round(container.duration / 1_000_000 * rate)), False


class _SeekMissed(Exception):
    """After a seek, the first frame has no timestamp or starts after the excerpt, or the
    decoder failed before reaching the excerpt: decode from the start instead."""


@contextlib.contextmanager
def _opened(target: Union[str, BinaryIO]) -> Iterator[EofWatch]:
    """The bytes as a file object FFmpeg reads through, watching for reads past the end."""
    if isinstance(target, str):
        with open(target, "rb") as handle:
            yield EofWatch(handle)
    else:
        target.seek(0)
        yield EofWatch(target)


def _open_container(av, watch: EofWatch, name: str, size: int, target: Union[str, BinaryIO]):
    watch.seek(0)
    try:
        return av.open(watch, mode="r", **av_read_options(av))
    except (av.FFmpegError, UnicodeDecodeError, ValueError, OSError) as exc:
        what, media = describe_content(target, size)
        if not media:
            raise AudioError(NOT_AUDIO, f"{name}: no decoder recognises this as audio ({what})") from None
        if "MP4" in what and _mp4_cut_short(watch.raw, size):
            raise AudioError(
                TRUNCATED, f"{name}: the MP4 file ends inside its data, before its index ({what})"
            ) from None
        detail = getattr(exc, "strerror", None) or type(exc).__name__
        raise AudioError(CORRUPT, f"{name}: {what}, but FFmpeg cannot read its header ({detail})") from None


def _inspect(container, name: str, params: MelParams, content: Callable[[], str]) -> tuple[int, ExcerptPlan, bool]:
    """(index of the audio stream used, the excerpt plan, whether the packets were counted);
    ``content`` describes the file for messages."""
    kind = _container_name(container)
    audio = list(container.streams.audio)
    if not audio:
        others = ", ".join(sorted({s.type for s in container.streams})) or "no"
        raise AudioError(NOT_AUDIO, f"{name}: {kind} container without an audio stream ({others} streams; {content()})")
    stream = container.streams.best("audio") or audio[0]
    codec = stream.codec_context
    if codec is None:
        raise AudioError(
            UNSUPPORTED_FORMAT,
            f"{name}: {kind} container, codec {_codec_name(container, stream.index)} has no decoder "
            "(neither libsndfile nor PyAV's FFmpeg reads it)",
        )
    rate, channels = int(codec.sample_rate or 0), int(codec.channels or 0)
    frames, counted = _length(container, stream, rate) if rate > 0 else (0, False)
    return stream.index, plan_excerpt(name, rate, channels, frames, params), counted


def read_native(
    target: Union[str, BinaryIO], name: str, size: int, params: MelParams
) -> tuple[np.ndarray, ExcerptPlan]:
    """The excerpt's (frames, channels) float32 block at the native rate, and its plan.

    Args:
        target: a local path or a seekable binary file object (as ``_open_binary`` gives).
        name: the source as messages show it.
        size: the file's size in bytes.
        params: the transform's parameters.

    Raises:
        AudioError: ``not_audio``, ``unsupported_format``, ``corrupt``, ``truncated`` or
            ``too_short`` (module docstring).
    """
    try:
        import av
    except ImportError:
        raise AudioError(UNSUPPORTED_FORMAT, f"{name}: libsndfile cannot read it and PyAV is not installed") from None
    with _opened(target) as watch:
        container = _open_container(av, watch, name, size, target)
        try:
            index, plan, counted = _inspect(container, name, params, lambda: describe_content(target, size)[0])
            seek = (
                bool(_formats(container) & SAMPLE_EXACT_SEEK_FORMATS) and plan.start_frame > PREROLL_SECONDS * plan.rate
            )
            for by_pts in (True, False) if seek else (False,):
                if counted or (seek and not by_pts):  # decoding starts over from the first byte
                    container.close()
                    container = _open_container(av, watch, name, size, target)
                watch.hit_eof = False  # reads at opening (an index at the end) are not the data's
                try:
                    return _decode(av, container, container.streams[index], watch, name, plan, by_pts)
                except _SeekMissed:
                    continue
            raise AssertionError("unreachable: decoding without a seek cannot miss it")
        finally:
            container.close()


def _decode(
    av, container, stream, watch: EofWatch, name: str, plan: ExcerptPlan, by_pts: bool
) -> tuple[np.ndarray, ExcerptPlan]:
    """Decode the excerpt; ``by_pts``: seek first and place frames by their timestamps."""
    if by_pts:
        seconds = plan.start_frame / plan.rate - PREROLL_SECONDS
        container.seek(int(seconds / stream.time_base) + (stream.start_time or 0), stream=stream, backward=True)
    data = np.empty((max(plan.wanted, 0), plan.channels), dtype=np.float32)
    try:
        got = _fill(av, container, stream, data, plan, by_pts)
    except (av.FFmpegError, ValueError) as exc:
        detail = str(exc) if isinstance(exc, ValueError) else (getattr(exc, "strerror", None) or type(exc).__name__)
        if watch.hit_eof:
            raise AudioError(
                TRUNCATED, f"{name}: the data ends before the {plan.duration:.2f} s the header announces ({detail})"
            ) from None
        raise AudioError(
            CORRUPT,
            f"{name}: decoding ({_container_name(container)}, {stream.codec_context.name}) failed inside the "
            f"excerpt at {plan.start:.2f} s ({detail})",
        ) from None
    return data[:got], plan


def _fill(av, container, stream, data: np.ndarray, plan: ExcerptPlan, by_pts: bool) -> int:
    """Decode into ``data`` the frames [start_frame, start_frame + wanted); return how many.

    With ``by_pts`` the first frame's position is its ``pts`` (after a seek); otherwise it
    is 0, the stream's first decoded sample. Later frames follow on, counted.
    """
    resamplers: dict = {}
    position, got, wanted, channels = 0, 0, data.shape[0], data.shape[1]
    frames, sought = container.decode(stream), by_pts
    while got < wanted:
        try:
            frame = next(frames)
        except StopIteration:
            break
        except av.FFmpegError:
            if sought and got == 0:  # perhaps the seek's doing: a damaged excerpt fails again
                raise _SeekMissed() from None
            raise
        if by_pts:
            if frame.pts is None:
                raise _SeekMissed()
            time_base = frame.time_base or stream.time_base
            position = int(round((frame.pts - (stream.start_time or 0)) * time_base * plan.rate))
            if position > plan.start_frame:
                raise _SeekMissed()
            by_pts = False
        n, skip = frame.samples, plan.start_frame - position
        position += n
        if skip >= n:
            continue
        block = _float32(av, frame, channels, resamplers)
        if block.shape[0] != n:
            raise ValueError(f"format conversion turned {n} samples into {block.shape[0]}")
        block = block[max(skip, 0) :][: wanted - got]
        data[got : got + block.shape[0]] = block
        got += block.shape[0]
    return got


def _float32(av, frame, channels: int, resamplers: dict) -> np.ndarray:
    """A decoded frame as (samples, channels) float32 at its own rate and layout.

    Float frames (what FFmpeg's AAC, Opus and Vorbis decoders give) are only interleaved,
    by numpy; other sample formats go through ``av.AudioResampler`` set to float32 with the
    frame's own layout and rate: a format conversion, never a rate change.
    """
    kind = frame.format.name
    if kind == "fltp":
        return frame.to_ndarray().T
    if kind == "flt":
        return frame.to_ndarray().reshape(-1, channels)
    key = (kind, frame.layout.name, frame.sample_rate)
    if key not in resamplers:
        resamplers[key] = av.AudioResampler(format="flt", layout=frame.layout, rate=frame.sample_rate)
    return np.concatenate([f.to_ndarray().reshape(-1, channels) for f in resamplers[key].resample(frame)])
