"""Benchmark of the weekly refresh on the mel store: four weeks of a generated catalogue with
audio, and the store reader against per-snapshot shards.

    python bench/refresh_store.py [--tracks 2000] [--clips 40] [--work DIR] [--no-model]

Weeks (one refresh root, the default settings, a tiny untrained model scoring each run):

1. from scratch;
2. unchanged inputs;
3. 1% new tracks, 0.5% of the tracks with changed audio, 2% of the playlists gone;
4. the same kind of change again.

For each week it prints bytes written under the root (files created or changed by the run),
bytes held under the root, tracks decoded, tracks scored and seconds, and checks the
targets: week 2 decodes and scores 0 tracks and writes under 1% of week 1's bytes; week 3
writes and decodes within 2x of the changed share; bytes held after four weeks under 1.3x
of one week's spectrograms. Then it reads the published snapshot's train split through its
references and from a self-contained copy of it (the same row groups, as the layout before
the store held them), alternately, and prints samples per CPU-second of each.

The audio is ``--clips`` distinct synthetic WAV clips (21 s of seeded noise with a tone,
22,050 Hz mono) hard-linked under the track names: decoding cost is per track, disk is not.
A changed track gets a fresh file (another clip, a new size and mtime). Timings on a shared
machine are noisy: the load average (``uptime``) is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OVERRIDES = (
    "spark.master=local[2]",
    "spark.conf.spark.sql.shuffle.partitions=4",
    "spark.conf.spark.default.parallelism=4",
    "spark.conf.spark.ui.enabled=false",
    "spark.conf.spark.driver.memory=3g",
    "label.min_playlists=1",
    "label.max_share=1.0",
    "dataset.balance=false",
    "refresh.keep_snapshots=4",
)
CONTEXTS = ("car", "chill", "club", "dance", "gym", "happy", "night", "party", "relax", "running", "sad", "sleep",
            "summer", "work", "workout")  # fmt: skip


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


# --- the catalogue ------------------------------------------------------------------------


def write_clips(directory: Path, n: int) -> list[Path]:
    from ctx_spark.testing.audio import noise, write_audio

    clips = []
    for i in range(n):
        path = directory / f"clip-{i:03d}.wav"
        if not path.exists():
            t = np.arange(int(21 * 22050)) / 22050
            samples = 0.5 * noise(21, 22050, seed=i, level=0.2) + 0.3 * np.sin(2 * np.pi * (110 + 20 * i) * t)
            write_audio(path, samples.astype(np.float32), 22050)
        clips.append(path)
    return clips


class Catalogue:
    """Tracks, playlists and audio links of the benchmark's catalogue, changed in place."""

    def __init__(self, root: Path, clips: list[Path], tracks: int, seed: int = 0) -> None:
        self.root, self.clips = root, clips
        self.rng = np.random.default_rng(seed)
        self.tracks = list(range(1, tracks + 1))
        self.playlists: dict[int, tuple[str, list[int]]] = {}
        for pid in range(1, tracks // 5 + 1):
            context = CONTEXTS[pid % len(CONTEXTS)]
            members = self.rng.choice(self.tracks, size=int(self.rng.integers(5, 16)), replace=False)
            self.playlists[pid] = (f"{context} mix {pid}", sorted(int(t) for t in members))
        covered = {t for _, members in self.playlists.values() for t in members}
        for t in self.tracks:  # every track in some playlist: every track labelled
            if t not in covered:
                self.playlists[1 + t % len(self.playlists)][1].append(t)
        (root / "audio").mkdir(parents=True, exist_ok=True)
        for t in self.tracks:
            self.link(t, t % len(clips))
        self.write_tables()

    def link(self, track: int, clip: int) -> None:
        path = self.root / "audio" / f"{track}.wav"
        if path.exists():
            path.unlink()
        os.link(self.clips[clip], path)

    def write_tables(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        for name in ("playlists", "playlist_tracks", "tracks"):
            shutil.rmtree(self.root / name, ignore_errors=True)
            (self.root / name).mkdir(parents=True)
        ids = sorted(self.playlists)
        pq.write_table(
            pa.table({"playlist_id": pa.array(ids, pa.int64()), "title": [self.playlists[p][0] for p in ids]}),
            self.root / "playlists" / "part-0.parquet",
        )
        pairs = [(p, t) for p in ids for t in self.playlists[p][1]]
        pq.write_table(
            pa.table({"playlist_id": pa.array([p for p, _ in pairs], pa.int64()),
                      "track_id": pa.array([t for _, t in pairs], pa.int64())}),
            self.root / "playlist_tracks" / "part-0.parquet",
        )  # fmt: skip
        pq.write_table(
            pa.table({"track_id": pa.array(self.tracks, pa.int64()),
                      "artist_id": pa.array([t // 4 for t in self.tracks], pa.int64()),
                      "album_id": pa.array([t // 2 for t in self.tracks], pa.int64())}),
            self.root / "tracks" / "part-0.parquet",
        )  # fmt: skip

    def change(self, new_share: float, changed_share: float, gone_share: float) -> dict[str, int]:
        """New tracks (in existing playlists), changed audio, playlists gone."""
        n = len(self.tracks)
        new = list(range(max(self.tracks) + 1, max(self.tracks) + 1 + round(n * new_share)))
        for t in new:
            self.playlists[int(self.rng.choice(sorted(self.playlists)))][1].append(t)
            self.link(t, t % len(self.clips))
        changed = self.rng.choice(self.tracks, size=round(n * changed_share), replace=False)
        for t in changed:  # a file of its own: another clip, a new mtime
            path = self.root / "audio" / f"{t}.wav"
            path.unlink()
            shutil.copy(self.clips[(int(t) + 7) % len(self.clips)], path)
        gone = self.rng.choice(sorted(self.playlists), size=round(len(self.playlists) * gone_share), replace=False)
        for p in gone:
            del self.playlists[int(p)]
        self.tracks += new
        self.write_tables()
        return {"new": len(new), "changed": len(changed), "playlists_gone": len(gone)}


# --- measuring a run --------------------------------------------------------------------


def listing(root: Path) -> dict[str, tuple[int, int]]:
    """path -> (size, mtime_ns) of every file under ``root``."""
    out = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            try:
                stat = os.stat(path)
            except FileNotFoundError:
                continue
            out[path] = (stat.st_size, stat.st_mtime_ns)
    return out


def written_bytes(before: dict, after: dict) -> int:
    """Bytes of the files a run created or changed (a file written twice counts once)."""
    return sum(size for path, (size, mtime) in after.items() if before.get(path, (None, None))[1] != mtime)


def store_bytes(root: Path) -> int:
    return sum(size for path, (size, _) in listing(root / "melstore").items() if path.endswith(".parquet"))


def week(spark, cfg_args: tuple, catalogue: Path, root: Path, label: str) -> dict:
    from ctx_spark.config import load_config
    from ctx_spark.refresh.pipeline import run_refresh

    before = listing(root) if root.exists() else {}
    cfg = load_config(overrides=OVERRIDES + cfg_args)
    started, cpu = time.perf_counter(), time.process_time()
    manifest = run_refresh(spark, cfg, str(catalogue), str(root))
    seconds = time.perf_counter() - started
    after = listing(root)
    mels = manifest["changes"]["mels"]
    score = (manifest["stages"].get("score") or {}).get("rows") or {}
    return {
        "week": label,
        "run_id": manifest["run_id"],
        "bytes_written": written_bytes(before, after),
        "bytes_held": sum(size for size, _ in after.values()),
        "store_bytes": store_bytes(root),
        "tracks": manifest["stages"]["extract"]["rows"]["written"],
        "decoded": mels["computed"],
        "copied": mels.get("copied", 0),
        "scored": score.get("scored"),
        "reused": {n: s["reused_from"] is not None for n, s in manifest["stages"].items()},
        "seconds": round(seconds, 1),
        "driver_cpu_s": round(time.process_time() - cpu, 1),
        "load": load(),
    }


def tiny_model(directory: Path) -> str:
    from ctx_spark.audio.params import MelParams
    from ctx_spark.config import from_mapping, load_config
    from training.model import build_model, export_meta, write_export
    from training.settings import ModelSettings

    cfg = load_config()
    settings = from_mapping(
        ModelSettings, {**cfg.data["train"]["model"], "conv_filters": [4], "dense_units": 8}, "train.model"
    )
    params = cfg.section("audio", MelParams)
    n_mels, n_frames = params.shape
    write_export(str(directory), build_model(settings, (n_frames, n_mels), len(CONTEXTS), seed=1),
                 export_meta(params, CONTEXTS))  # fmt: skip
    return str(directory)


# --- the reader ---------------------------------------------------------------------------


def materialise(split, out: Path) -> str:
    """A self-contained shard root holding ``split``'s rows in the same row groups (what a
    snapshot of the layout before the store held)."""
    import pyarrow.parquet as pq

    from ctx_spark.shards import contract

    directory = out / split.name
    directory.mkdir(parents=True)
    columns = [contract.TRACK_ID, contract.MEL, *contract.TARGET_COLUMNS]
    writer = None
    for group in split.row_groups:
        table = split.read_row_group(group, columns)
        if writer is None:
            writer = pq.ParquetWriter(str(directory / "part-00000-000.parquet"), table.schema)
        writer.write_table(table, row_group_size=table.num_rows)
    assert writer is not None
    writer.close()
    for name in (contract.PARAMS_FILE, contract.INFO_FILE):
        shutil.copy(Path(split.root) / name, out / name)
    return str(out)


def read_pass(split, n_contexts: int) -> tuple[int, float]:
    """(samples, CPU seconds) of one pass of the trainer's pyarrow reading over ``split``."""
    from collections import OrderedDict

    from ctx_spark.shards import contract
    from ctx_spark.shards.reader import table_arrays

    columns = [contract.MEL, *contract.TARGET_COLUMNS]
    files: OrderedDict = OrderedDict()
    cpu, rows = time.process_time(), 0
    order = np.random.default_rng(0).permutation(len(split.row_groups))
    for k in order:
        group = split.row_groups[int(k)]
        arrays = table_arrays(split.read_row_group(group, columns, files), split.params, n_contexts, "bench",
                              mel_as_bytes=True)  # fmt: skip
        rows += len(arrays[contract.MEL])
    return rows, time.process_time() - cpu


def compare_readers(snapshot: Path, work: Path, passes: int) -> dict:
    from ctx_spark.shards.reader import open_split

    referenced = open_split(str(snapshot / "mels"), "train")
    copy = open_split(materialise(referenced, work / "shard-copy"), "train")
    figures: dict[str, list[float]] = {"store references": [], "per-snapshot shards": []}
    for _ in range(passes):
        for name, split in (("store references", referenced), ("per-snapshot shards", copy)):
            rows, cpu = read_pass(split, len(CONTEXTS))
            figures[name].append(rows / cpu if cpu > 0 else float("nan"))
    return {
        "rows": referenced.rows,
        "units": len(referenced.row_groups),
        "samples_per_cpu_s": {name: round(float(np.median(v)), 1) for name, v in figures.items()},
        "passes": passes,
        "load": load(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=2000)
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--work", help="working directory (default: a temporary one, removed)")
    parser.add_argument("--no-model", action="store_true", help="no scoring stage (no TensorFlow needed)")
    parser.add_argument("--passes", type=int, default=5, help="reader passes over the train split, per layout")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="ctx-store-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    from ctx_spark.config import load_config
    from ctx_spark.spark import SparkSettings, get_spark

    print(f"start: {load()}")
    clips = write_clips(work / "clips", args.clips)
    catalogue = Catalogue(work / "catalogue", clips, args.tracks)
    root = work / "root"
    extra: tuple[str, ...] = () if args.no_model else (f"refresh.model={tiny_model(work / 'model')}",)
    spark = get_spark("bench refresh_store", load_config(overrides=OVERRIDES).section("spark", SparkSettings))
    weeks = [week(spark, extra, catalogue.root, root, "1 (from scratch)")]
    weeks.append(week(spark, extra, catalogue.root, root, "2 (unchanged)"))
    changes = catalogue.change(0.01, 0.005, 0.02)
    weeks.append(week(spark, extra, catalogue.root, root, f"3 ({changes})"))
    changes4 = catalogue.change(0.01, 0.005, 0.02)
    weeks.append(week(spark, extra, catalogue.root, root, f"4 ({changes4})"))
    print(f"{'week':<58} {'written MB':>10} {'held MB':>9} {'decoded':>8} {'scored':>7} {'seconds':>8}")
    for w in weeks:
        print(f"{w['week']:<58} {w['bytes_written'] / 1e6:>10.2f} {w['bytes_held'] / 1e6:>9.1f} "
              f"{w['decoded']:>8} {str(w['scored']):>7} {w['seconds']:>8}")  # fmt: skip
    one_week = weeks[0]["store_bytes"]
    share = (changes["new"] + changes["changed"]) / args.tracks
    checks = {
        "week 2 decodes 0": weeks[1]["decoded"] == 0,
        "week 2 scores 0": weeks[1]["scored"] in (0, None),
        "week 2 writes < 1% of week 1": weeks[1]["bytes_written"] < 0.01 * weeks[0]["bytes_written"],
        "week 3 decodes <= 2x changed": weeks[2]["decoded"] <= 2 * (changes["new"] + changes["changed"]),
        "week 3 writes <= 2x changed share": weeks[2]["bytes_written"] <= 2 * share * weeks[0]["bytes_written"],
        "held after 4 weeks < 1.3x one week's spectrograms": weeks[3]["bytes_held"] < 1.3 * one_week,
    }
    ratios = {
        "week2_written_share_of_week1": weeks[1]["bytes_written"] / weeks[0]["bytes_written"],
        "week3_written_share_of_week1": weeks[2]["bytes_written"] / weeks[0]["bytes_written"],
        "week3_changed_share": share,
        "held_after_4_weeks_over_week1_spectrograms": weeks[3]["bytes_held"] / one_week,
    }
    readers = compare_readers(root / "snapshots" / weeks[-1]["run_id"], work, args.passes)
    spark.stop()
    print(json.dumps({"weeks": weeks, "checks": checks, "ratios": ratios, "readers": readers}, indent=2))
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
