"""The whole pipeline on real music: playlists -> labels -> dataset -> mel shards -> the
paper's CNN with every loss variant -> Tables 1 and 2.

    python bench/real_clips.py [--per-clip 40] [--epochs 6] [--variants none,...] [--work DIR]

There is no public audio with listening-context playlists, so the labels are made up the
only honest way available: seven CC-licensed recordings of ../shared/data/librosa_data
(see ``RECORDINGS``) each get a fixed set of contexts that suits them, every recording is
cut into ``--per-clip`` excerpts of 30-60 s at seeded offsets (re-encoded as MP3 and Ogg,
as bench/extract_mels.py does), and seeded playlists titled with a context's keyword
gather excerpts of the recordings that carry it. From there on everything is the product:
the labelling job, dataset assembly (balancing, grouped split, weights), mel extraction,
training and evaluation, with the paper's model and settings except the ones printed.

What the figures mean: an "artist" here is a group of ``EXCERPTS_PER_ARTIST`` excerpts of
one recording, so the artist-disjoint split still puts other excerpts of every recording
on the training side. A high ROC-AUC shows that the chain from playlists to a trained model
works on real audio; it says nothing about generalising to unseen music, which needs a
real catalogue (the paper: Table 1, macro AUC 0.73).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import multiprocessing
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

#: recording (librosa example data, 44.1 kHz versions) -> the contexts it is labelled with.
RECORDINGS = {
    "admiralbob77_-_Choice_-_Drum-bass.hq.ogg": ("gym", "workout", "running", "club", "party"),
    "442789__lena-orsa__happy-music-pistachio-ice-cream-ragtime.hq.ogg": ("happy", "party", "summer", "dance"),
    "Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).hq.ogg": ("dance", "happy", "running"),
    "Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg": ("car", "summer", "happy", "work"),
    "Kevin_MacLeod_-_Vibe_Ace.hq.ogg": ("chill", "night", "club", "car", "work"),
    "Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.hq.ogg": ("sleep", "night", "relax"),
    "147793__setuniman__sweet-waltz-0i-22mi.hq.ogg": ("relax", "sleep", "sad", "chill"),
}
EXCERPTS_PER_ARTIST = 4
PLAYLIST_SIZE = 12
PLAYLISTS_PER_TRACK = 5  # rounds of playlists per context: each excerpt lands in about this many
TITLES = ("{c}", "{c} mix", "my {c} playlist", "{C} VIBES", "best of {c}", "{c} 2020")


def build_audio(directory: Path, per_clip: int, clips: Path, seed: int) -> dict[int, int]:
    """Cut and encode the excerpts once (cached); returns track_id -> recording index."""
    from ctx_spark.testing.corpus import encode_excerpt

    rng = np.random.default_rng(seed)
    names = list(RECORDINGS)
    jobs, recording_of = [], {}
    for k, name in enumerate(names):
        for j in range(per_clip):
            track_id = 1 + k * per_clip + j
            ext = "mp3" if j % 2 else "ogg"
            jobs.append(
                (
                    str(clips / name),
                    str(directory / f"{track_id}.{ext}"),
                    float(rng.uniform(0, 60)),
                    float(rng.uniform(30, 60)),
                )
            )
            recording_of[track_id] = k
    marker = directory / f"complete-{per_clip}-{seed}"
    if not marker.exists():
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        started = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            pool.map(encode_excerpt, jobs, chunksize=4)
        marker.write_text("")
        print(f"encoded {len(jobs)} excerpts in {time.perf_counter() - started:.0f} s under {directory}", flush=True)
    return recording_of


def write_catalogue(directory: Path, recording_of: dict[int, int], per_clip: int, seed: int) -> dict[str, str]:
    """The three labelling input tables: per context, rounds of seeded playlists over the
    excerpts of the recordings that carry it, plus untitled-context noise playlists."""
    rng = np.random.default_rng(seed)
    contexts = {k: ctxs for k, ctxs in enumerate(RECORDINGS.values())}
    track_ids = sorted(recording_of)
    artist = {t: 1000 * recording_of[t] + ((t - 1) % per_clip) // EXCERPTS_PER_ARTIST for t in track_ids}
    names = sorted({c for ctxs in contexts.values() for c in ctxs})
    playlists, rows = [], []
    for c in names:
        pool = np.array([t for t in track_ids if c in contexts[recording_of[t]]])
        for _ in range(PLAYLISTS_PER_TRACK):
            order = rng.permutation(pool)
            for start in range(0, len(order), PLAYLIST_SIZE):
                pid = len(playlists) + 1
                template = TITLES[int(rng.integers(len(TITLES)))]
                playlists.append((pid, template.format(c=c, C=c.upper())))
                rows += [(pid, int(t)) for t in order[start : start + PLAYLIST_SIZE]]
    for _ in range(len(playlists) // 4):  # playlists whose titles name no context
        pid = len(playlists) + 1
        playlists.append((pid, f"favourites {pid}"))
        rows += [(pid, int(t)) for t in rng.choice(track_ids, PLAYLIST_SIZE, replace=False)]
    directory.mkdir(parents=True, exist_ok=True)
    tables = {
        "playlists": pa.table({"playlist_id": [p for p, _ in playlists], "title": [t for _, t in playlists]}),
        "playlist_tracks": pa.table({"playlist_id": [p for p, _ in rows], "track_id": [t for _, t in rows]}),
        "tracks": pa.table(
            {
                "track_id": track_ids,
                "artist_id": [artist[t] for t in track_ids],
                "album_id": [artist[t] for t in track_ids],
            }
        ),
    }
    paths = {}
    for name, table in tables.items():
        paths[name] = str(directory / f"{name}.parquet")
        pq.write_table(table, paths[name])
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-clip", type=int, default=40, help="excerpts per recording")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=16, help="batch size (the paper: 32)")
    parser.add_argument("--variants", default="none,negative_exact,negative_ignore_zeros,both_exact,both_ignore_zeros")
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=1.0,
        help="Adadelta's learning rate (the paper's 0.1 barely moves in a few hundred steps)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "ctx-spark-real-clips"))
    parser.add_argument("--clips", default=str(ROOT.parent / "shared" / "data" / "librosa_data" / "audio"))
    args = parser.parse_args()
    clips = Path(args.clips)
    if not all((clips / name).exists() for name in RECORDINGS):
        print(f"the librosa example recordings are not under {clips}", file=sys.stderr)
        return 1
    work = Path(args.work)
    audio = work / "audio"
    recording_of = build_audio(audio, args.per_clip, clips, args.seed)
    for stale in ("catalogue", "labels", "dataset", "shards", "compare"):
        shutil.rmtree(work / stale, ignore_errors=True)
    paths = write_catalogue(work / "catalogue", recording_of, args.per_clip, args.seed)

    from ctx_spark.config import load_config
    from ctx_spark.dataset.run import run_dataset_stage
    from ctx_spark.extract.run import ExtractInputs, run_extract_stage
    from ctx_spark.label.run import LabelInputs, run_label_stage
    from ctx_spark.spark import SparkSettings, get_spark

    figures: dict[str, object] = {}
    cfg = load_config(overrides=[f"spark.master={args.master}"])
    spark = get_spark("ctx-spark real clips", cfg.section("spark", SparkSettings))
    started = time.perf_counter()
    label = run_label_stage(spark, cfg, LabelInputs(**paths), str(work / "labels"))
    figures["label"] = {
        "tracks_labelled": label["tracks_labelled"],
        "playlists_kept": label["playlists_kept"],
        "seconds": round(time.perf_counter() - started, 1),
    }
    started = time.perf_counter()
    dataset = run_dataset_stage(spark, cfg, str(work / "labels" / "track_labels"), str(work / "dataset"))
    figures["dataset"] = {"tracks": dataset["dataset"]["tracks"], "seconds": round(time.perf_counter() - started, 1)}
    started = time.perf_counter()
    extract = run_extract_stage(
        spark, cfg, ExtractInputs(audio_dir=str(audio), dataset=str(work / "dataset")), str(work / "shards")
    )
    figures["extract"] = {
        "written": extract["written"],
        "failed": extract["failed"],
        "seconds": round(time.perf_counter() - started, 1),
    }
    spark.stop()
    print(
        json.dumps(
            {
                "tracks_labelled_per_context": label["tracks_labelled_per_context"],
                "dataset": {k: v for k, v in dataset.items() if k in ("dataset", "split")},
            },
            indent=1,
            default=str,
        ),
        flush=True,
    )

    from training.compare import run_comparison

    overrides = [
        f"train.epochs={args.epochs}",
        f"train.optimizer.learning_rate={args.learning_rate}",
        f"train.seed={args.seed}",
        f"train.data.batch_size={args.batch}",
    ]
    started = time.perf_counter()
    comparison = run_comparison(
        None,
        overrides,
        str(work / "shards"),
        str(work / "compare"),
        variants=[v for v in args.variants.split(",") if v],
    )
    figures["train_and_evaluate_seconds"] = round(time.perf_counter() - started, 1)
    figures["runs"] = comparison["runs"]
    print(json.dumps(figures, indent=1, default=str))
    print((work / "compare" / "table2.md").read_text())
    first = args.variants.split(",")[0]
    print((work / "compare" / first / "evaluation" / "table1.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
