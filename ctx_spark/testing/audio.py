"""Audio files for tests and benchmarks: the CC fixture clips and files generated from them.

The clips live in a source checkout's ``tests/fixtures/audio`` (``$CTX_SPARK_FIXTURE_AUDIO``
elsewhere); they are not part of the installed package. Generated files are written to
the caller's temporary directories, never to the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

FIXTURE_AUDIO = Path(
    os.environ.get("CTX_SPARK_FIXTURE_AUDIO", Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "audio")
)
VIBE_ACE = FIXTURE_AUDIO / "Kevin_MacLeod_-_Vibe_Ace.ogg"  # 22,050 Hz mono, 61.5 s
HUNGARIAN = FIXTURE_AUDIO / "Hungarian_Dance_number_5.hq.ogg"  # 44,100 Hz stereo, 45.8 s
TRUMPET = FIXTURE_AUDIO / "sorohanro_-_solo-trumpet-06.hq.ogg"  # 44,100 Hz stereo, 5.3 s
SPLEETER = FIXTURE_AUDIO / "audio_example.mp3"  # 44,100 Hz stereo, 10.9 s

_FORMATS = {
    ".mp3": ("MP3", "MPEG_LAYER_III"),
    ".ogg": ("OGG", "VORBIS"),
    ".flac": ("FLAC", "PCM_16"),
    ".wav": ("WAV", "FLOAT"),
}


def write_audio(path: Path, samples: np.ndarray, rate: int) -> Path:
    """Encode float samples ((frames,) or (frames, channels)) by the file's extension.

    Written in blocks: libsndfile 1.2's Vorbis encoder crashes on very large writes.
    """
    fmt, subtype = _FORMATS[path.suffix.lower()]
    data = samples if samples.ndim == 2 else samples[:, None]
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(str(path), "w", rate, data.shape[1], format=fmt, subtype=subtype) as handle:
        for start in range(0, len(data), 16384):
            handle.write(data[start : start + 16384])
    return path


def clip(source: Path, seconds: float, offset: float = 0.0) -> tuple[np.ndarray, int]:
    """``seconds`` of a fixture clip from ``offset``, looped when the clip is shorter."""
    data, rate = sf.read(str(source), dtype="float32", always_2d=True)
    start = int(offset * rate) % len(data)
    n = int(seconds * rate)
    reps = int(np.ceil((start + n) / len(data)))
    return np.concatenate([data] * reps)[start : start + n], rate


def noise(seconds: float, rate: int = 22050, seed: int = 0, level: float = 0.3) -> np.ndarray:
    """Deterministic white noise, mono float32: every excerpt of it is distinguishable."""
    rng = np.random.default_rng(seed)
    return (level * rng.standard_normal(int(seconds * rate))).astype(np.float32)


def corrupt_copy(source: Path, target: Path, fraction: float = 0.5, length: int = 20000, seed: int = 0) -> Path:
    """Overwrite ``length`` bytes at ``fraction`` of the file with random bytes."""
    data = bytearray(source.read_bytes())
    at = int(len(data) * fraction)
    data[at : at + length] = np.random.default_rng(seed).integers(0, 256, length, dtype=np.uint8).tobytes()
    target.write_bytes(bytes(data))
    return target


def truncated_copy(source: Path, target: Path, keep: float = 0.5) -> Path:
    """The first ``keep`` fraction of the file's bytes (a download cut short)."""
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target


def make_mp3(target: Path, source: Path = HUNGARIAN, seconds: float = 40.0, offset: float = 0.0) -> Path:
    """An MP3 (or any format, by ``target``'s extension) of ``seconds`` of a fixture clip."""
    data, rate = clip(source, seconds, offset)
    return write_audio(target, data, rate)


# Formats libsndfile cannot read, written with PyAV's bundled FFmpeg encoders (the tests
# need nothing but PyPI packages, no ffmpeg program).


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Float samples quantised to int16 once, so that lossless copies hold identical values."""
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int16)


def write_av(
    path: Path,
    samples: np.ndarray,
    rate: int,
    codec: str,
    *,
    container_format: str | None = None,
    codec_options: dict | None = None,
    container_options: dict | None = None,
    stream_rate: int | None = None,
) -> Path:
    """Encode (frames, channels) samples with FFmpeg's ``codec`` (aac, alac, libopus...).

    float32 input is given to the encoder as float, int16 as 16-bit integers (ALAC then
    stores exactly those values); ``stream_rate`` resamples in the encoder (Opus: 48 kHz).
    """
    import av

    data = samples if samples.ndim == 2 else samples[:, None]
    layout = {1: "mono", 2: "stereo"}[data.shape[1]]
    frame_format = "s16p" if data.dtype == np.int16 else "fltp"
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=container_format, options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=stream_rate or rate, layout=layout, options=codec_options or {})
        assert isinstance(stream, av.AudioStream)  # an audio codec gives an audio stream
        if data.dtype == np.int16 and codec == "alac":
            stream.format = "s16p"  # 16-bit ALAC, not the 24-bit default
        pts = 0
        for start in range(0, len(data), 4096):
            block = np.ascontiguousarray(data[start : start + 4096].T)
            frame = av.AudioFrame.from_ndarray(block, format=frame_format, layout=layout)
            frame.sample_rate, frame.pts = rate, pts
            pts += block.shape[1]
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def remux(
    source: Path, target: Path, container_format: str | None = None, container_options: dict | None = None
) -> Path:
    """Copy the audio packets into another container or layout without re-encoding
    (MP4 with the index first or last, raw ADTS)."""
    import av

    with (
        av.open(str(source)) as src,
        av.open(str(target), "w", format=container_format, options=container_options or {}) as out,
    ):
        in_stream = src.streams.audio[0]
        out_stream = out.add_stream_from_template(in_stream)
        for packet in src.demux(in_stream):
            if packet.dts is None:
                continue
            packet.stream = out_stream
            out.mux(packet)
    return target


def write_video_without_audio(path: Path, frames: int = 10) -> Path:
    """A valid MP4 video (MPEG-4 part 2, 32 x 32 px) with no audio stream."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            image = np.full((32, 32, 3), 20 * i, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def write_wav_with_codec_tag(path: Path, tag: int, seconds: float = 2.0, rate: int = 44100, channels: int = 2) -> Path:
    """A RIFF/WAVE file whose format tag names a codec (0x2048: Sonic, which FFmpeg knows
    but has no decoder for), followed by deterministic bytes as its data."""
    import struct

    body = np.random.default_rng(tag).integers(0, 256, int(seconds * rate) * channels * 2, dtype=np.uint8).tobytes()
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * channels * 2, channels * 2, 16)
    riff = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(body)) + body
    path.write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)
    return path
