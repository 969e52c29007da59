"""Run every stage on small fixed inputs and dump their outputs canonically, to compare two
checkouts, two layouts or two environments.

  python scripts/golden_outputs.py run OUT [--model RUN] [--rows N]
  python scripts/golden_outputs.py compare OUT_A OUT_B [--mel-tolerance X]

``run`` generates a catalogue (seed 42), labels it, builds the dataset, extracts the bundled
clips (tests/fixtures/audio) with a small dataset of its own, trains a tiny model (unless
``--model`` names one, so that two runs score with the same weights) and scores the clips.
Every stage runs as its command-line entry point in a subprocess, so the script works on
any layout that keeps the commands. ``OUT/golden.json`` holds, per table, the row count and
the SHA-256 of its rows sorted canonically; ``OUT/mels.npz`` the spectrograms by track id;
``OUT/scores.npz`` the probabilities.

``compare`` prints one line per table (equal or not) and the largest spectrogram and score
differences, and exits 1 when a table differs or a difference exceeds its tolerance.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
CLIPS = ROOT / "tests" / "fixtures" / "audio"
TINY_MODEL = [
    "train.model.conv_filters=[4, 8]",
    "train.model.dense_units=8",
    "train.epochs=1",
    "train.data.batch_size=2",
    "train.data.shuffle_buffer=4",
    "train.early_stopping.patience=1",
]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env["PYSPARK_PYTHON"] = sys.executable
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _console() -> list[str] | None:
    exe = Path(sys.executable).with_name("ctx-spark")
    return [str(exe)] if exe.exists() else None


def _cmd(old: list[str], new: list[str]) -> list[str]:
    console = _console()
    return console + new if console else [sys.executable, "-m"] + old


def _run(args: list[str]) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run(args, check=True, env=_env(), cwd=ROOT)


def canonical_rows(path: str, root: str = "") -> list[str]:
    """Rows of a Parquet dataset as sorted JSON strings (column order ignored; the output
    root replaced by ``<OUT>`` so that two runs in different directories compare)."""
    table = ds.dataset(path, format="parquet", partitioning="hive", exclude_invalid_files=True).to_table()
    rows = []
    for row in table.to_pylist():
        text = json.dumps({k: _plain(v) for k, v in sorted(row.items())}, sort_keys=True, default=str)
        rows.append(text.replace(root, "<OUT>") if root else text)
    return sorted(rows)


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return float(np.float32(value)) if abs(value) < 1e30 else value
    if isinstance(value, bytes):
        return hashlib.sha256(value).hexdigest()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def table_digest(path: str, root: str = "") -> dict[str, Any]:
    rows = canonical_rows(path, root)
    return {"rows": len(rows), "sha256": hashlib.sha256("\n".join(rows).encode()).hexdigest()}


def _clip_dataset(path: Path) -> dict[int, str]:
    """Track ids for the bundled clips (sorted by name) and a dataset with all three splits."""
    clips = sorted(p for p in CLIPS.iterdir() if p.suffix in (".ogg", ".mp3", ".wav", ".flac"))
    ids = {1000 + i: clip for i, clip in enumerate(clips)}
    splits = ["train", "validation", "train", "test"]  # the first two clips are long enough
    m = 15
    rows = []
    for i, track in enumerate(ids):
        labels = [int((i + c) % 3 == 0) for c in range(m)]
        rows.append((track, splits[i % len(splits)], labels))
    table = pa.table(
        {
            "track_id": pa.array([r[0] for r in rows], pa.int64()),
            "split": pa.array([r[1] for r in rows]),
            "labels": pa.array([r[2] for r in rows], pa.list_(pa.int8())),
            **{
                w: pa.array([[1.0] * m for _ in rows], pa.list_(pa.float32()))
                for w in ("neg_exact", "neg_ignore_zeros", "pos_tfidf")
            },
        }
    )
    path.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, str(path / "part-0.parquet"))
    return {track: str(clip) for track, clip in ids.items()}


def run(out: Path, model: str | None, rows: int) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    cat, labels, data = out / "catalogue", out / "labels", out / "dataset"
    _run(
        _cmd(
            ["jobs.generate_catalogue", "--out", str(cat), "--rows", str(rows), "--seed", "42"],
            ["generate-catalogue", "--out", str(cat), "--rows", str(rows), "--seed", "42"],
        )
    )
    label_args = [
        "--playlists",
        f"{cat}/playlists",
        "--playlist-tracks",
        f"{cat}/playlist_tracks",
        "--tracks",
        f"{cat}/tracks",
        "--out",
        str(labels),
    ]
    _run(_cmd(["jobs.label_tracks"] + label_args, ["label"] + label_args))
    _run(
        _cmd(
            ["jobs.build_dataset", "--labels", f"{labels}/track_labels", "--out", str(data)],
            ["dataset", "--labels", f"{labels}/track_labels", "--out", str(data)],
        )
    )
    audio = out / "audio"
    audio.mkdir()
    for track, clip in _clip_dataset(out / "clip_dataset").items():
        shutil.copy(clip, audio / f"{track}{Path(clip).suffix}")
    mels = out / "mels"
    extract_args = ["--audio-dir", str(audio), "--dataset", str(out / "clip_dataset"), "--out", str(mels)]
    _run(_cmd(["jobs.extract_mels"] + extract_args, ["extract"] + extract_args))
    if model is None:
        model = str(out / "run")
        sets = [a for s in TINY_MODEL for a in ("--set", s)]
        _run(
            _cmd(
                ["training.train", "--shards", str(mels), "--out", model] + sets,
                ["train", "--shards", str(mels), "--out", model] + sets,
            )
        )
    scores = out / "scores"
    _run(
        _cmd(
            ["jobs.score_tracks", "--model", model, "--shards", str(mels), "--out", str(scores)],
            ["score", "--model", model, "--shards", str(mels), "--out", str(scores)],
        )
    )
    digest(out, model)


def digest(out: Path, model: str) -> None:
    """Write OUT/golden.json, mels.npz and scores.npz from the outputs of :func:`run`."""
    labels, data, mels, scores = out / "labels", out / "dataset", out / "mels", out / "scores"
    digests = {
        "label/track_context_counts": table_digest(f"{labels}/track_context_counts"),
        "label/track_labels": table_digest(f"{labels}/track_labels"),
        "dataset/dataset": table_digest(f"{data}/dataset"),
        "dataset/cooccurrence.csv": {"sha256": hashlib.sha256((data / "cooccurrence.csv").read_bytes()).hexdigest()},
        "extract/errors": table_digest(f"{mels}/errors", str(out)),
    }
    mel_arrays: dict[str, np.ndarray] = {}
    for split in ("train", "validation", "test", "all"):
        if not (mels / split).exists():
            continue
        digests[f"extract/{split}"] = table_digest(str(mels / split))
        table = ds.dataset(str(mels / split), format="parquet").to_table(columns=["track_id", "mel"])
        for track, blob in zip(table.column("track_id").to_pylist(), table.column("mel").to_pylist()):
            mel_arrays[str(track)] = np.frombuffer(blob, dtype="<f2")
    table = ds.dataset(str(scores / "track_scores"), format="parquet").to_table()
    score_arrays = {
        str(t): np.asarray(p, dtype=np.float32)
        for t, p in zip(table.column("track_id").to_pylist(), table.column("probabilities").to_pylist())
    }
    digests["score/context_rankings"] = {
        "rows": ds.dataset(str(scores / "context_rankings"), format="parquet", partitioning="hive").count_rows()
    }
    np.savez(out / "mels.npz", **mel_arrays)
    np.savez(out / "scores.npz", **score_arrays)
    (out / "golden.json").write_text(json.dumps({"tables": digests, "model": model}, indent=2) + "\n")
    print(json.dumps(digests, indent=2))


def compare(a: Path, b: Path, mel_tolerance: float, score_tolerance: float) -> int:
    left, right = (json.loads((p / "golden.json").read_text())["tables"] for p in (a, b))
    status = 0
    for name in sorted(set(left) | set(right)):
        same = left.get(name) == right.get(name)
        if name.startswith("extract/") and name != "extract/errors":
            same = left.get(name, {}).get("rows") == right.get(name, {}).get("rows")
        print(f"{'same ' if same else 'DIFF '} {name}: {left.get(name)} | {right.get(name)}")
        status |= 0 if same else 1
    for file, tolerance in (("mels.npz", mel_tolerance), ("scores.npz", score_tolerance)):
        x, y = np.load(a / file), np.load(b / file)
        if set(x.files) != set(y.files):
            print(f"DIFF  {file}: tracks {sorted(x.files)} | {sorted(y.files)}")
            status = 1
            continue
        worst = max(
            (float(np.max(np.abs(x[k].astype(np.float64) - y[k].astype(np.float64)))) for k in x.files), default=0.0
        )
        ok = worst <= tolerance
        print(
            f"{'same ' if ok else 'DIFF '} {file}: {len(x.files)} tracks, largest difference {worst:.6g} "
            f"(tolerance {tolerance:g})"
        )
        status |= 0 if ok else 1
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("out", type=Path)
    r.add_argument("--model", help="score with this training run instead of training a tiny one")
    r.add_argument("--rows", type=int, default=200_000, help="playlist-track rows of the catalogue")
    d = sub.add_parser("digest", help="recompute golden.json from the outputs of an earlier run")
    d.add_argument("out", type=Path)
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    c.add_argument("--mel-tolerance", type=float, default=0.0)
    c.add_argument("--score-tolerance", type=float, default=0.0)
    args = parser.parse_args()
    if args.command == "run":
        run(args.out.resolve(), args.model, args.rows)
        return 0
    if args.command == "digest":
        out = args.out.resolve()
        digest(out, json.loads((out / "golden.json").read_text())["model"])
        return 0
    return compare(args.a, args.b, args.mel_tolerance, args.score_tolerance)


if __name__ == "__main__":
    sys.exit(main())
