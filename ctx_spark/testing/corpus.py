"""A corpus of real-music audio files for benchmarks: excerpts of CC clips, one per track id.

The clips are the librosa example data in ``../shared/data/librosa_data/audio`` (not in the
repository); each track gets a seeded 30-60 s excerpt as MP3 or Ogg, so extraction
benchmarks decode real music at realistic lengths. Built once per (version, n, seed) and
reused.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import numpy as np

CLIPS = (  # music clips of the librosa example data, 44.1 kHz stereo versions
    "Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg",
    "Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.hq.ogg",
    "Kevin_MacLeod_-_Vibe_Ace.hq.ogg",
    "Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).hq.ogg",
    "442789__lena-orsa__happy-music-pistachio-ice-cream-ragtime.hq.ogg",
    "147793__setuniman__sweet-waltz-0i-22mi.hq.ogg",
)
CORPUS_VERSION = 1


def encode_excerpt(job: tuple[str, str, float, float]) -> None:
    """Write ``seconds`` of ``source`` from ``offset`` (looped when too short) to ``target``
    as MP3 or Ogg (by its extension), via a temporary name, so a killed build leaves no
    half file. ``job`` is (source, target, offset, seconds)."""
    import soundfile as sf

    source, target, offset, seconds = job
    data, rate = sf.read(source, dtype="float32", always_2d=True)
    start = int(offset * rate) % len(data)
    n = int(seconds * rate)
    reps = int(np.ceil((start + n) / len(data)))
    cut = np.concatenate([data] * reps)[start : start + n]
    fmt, subtype = ("MP3", "MPEG_LAYER_III") if target.endswith(".mp3") else ("OGG", "VORBIS")
    tmp = target + ".part"
    with sf.SoundFile(tmp, "w", rate, cut.shape[1], format=fmt, subtype=subtype) as handle:
        for i in range(0, len(cut), 16384):  # blocks: libsndfile's Vorbis encoder crashes on huge writes
            handle.write(cut[i : i + 16384])
    os.replace(tmp, target)


def build_corpus(directory: Path, n: int, clips_dir: Path, seed: int = 7) -> list[Path]:
    """N files named <track_id>.<mp3|ogg>, 30-60 s each; cached by (version, n, seed)."""
    marker = directory / f"complete-v{CORPUS_VERSION}-n{n}-s{seed}"
    rng = np.random.default_rng(seed)
    jobs = []
    for track_id in range(1, n + 1):
        clip = clips_dir / CLIPS[(track_id - 1) % len(CLIPS)]
        ext = "mp3" if track_id % 2 else "ogg"
        jobs.append(
            (str(clip), str(directory / f"{track_id}.{ext}"), float(rng.uniform(0, 60)), float(rng.uniform(30, 60)))
        )
    if not marker.exists():
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.iterdir():
            stale.unlink()
        started = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            pool.map(encode_excerpt, jobs, chunksize=4)
        marker.write_text("")
        print(f"built {n} files in {time.perf_counter() - started:.0f} s under {directory}", flush=True)
    return [Path(j[1]) for j in jobs]
