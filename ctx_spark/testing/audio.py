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

FIXTURE_AUDIO = Path(os.environ.get(
    "CTX_SPARK_FIXTURE_AUDIO", Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "audio"))
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
            handle.write(data[start:start + 16384])
    return path


def clip(source: Path, seconds: float, offset: float = 0.0) -> tuple[np.ndarray, int]:
    """``seconds`` of a fixture clip from ``offset``, looped when the clip is shorter."""
    data, rate = sf.read(str(source), dtype="float32", always_2d=True)
    start = int(offset * rate) % len(data)
    n = int(seconds * rate)
    reps = int(np.ceil((start + n) / len(data)))
    return np.concatenate([data] * reps)[start:start + n], rate


def noise(seconds: float, rate: int = 22050, seed: int = 0, level: float = 0.3) -> np.ndarray:
    """Deterministic white noise, mono float32: every excerpt of it is distinguishable."""
    rng = np.random.default_rng(seed)
    return (level * rng.standard_normal(int(seconds * rate))).astype(np.float32)


def corrupt_copy(source: Path, target: Path, fraction: float = 0.5, length: int = 20000, seed: int = 0) -> Path:
    """Overwrite ``length`` bytes at ``fraction`` of the file with random bytes."""
    data = bytearray(source.read_bytes())
    at = int(len(data) * fraction)
    data[at:at + length] = np.random.default_rng(seed).integers(0, 256, length, dtype=np.uint8).tobytes()
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
