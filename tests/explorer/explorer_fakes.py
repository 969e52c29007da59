"""Hand-made snapshots in the pipeline's output formats, for the explorer's fast tests and
its million-track timing (no Spark: pyarrow and JSON, vectorised with numpy).

``fake_snapshot`` writes ``R/current`` and ``R/snapshots/<run-id>/`` with labels/,
dataset/, mels/ and (optionally) scores/ and a manifest. Every figure is deterministic
(ids, probabilities and labels are functions of the track's index) so tests can compute
the expected ranking. ``evil`` puts HTML into every free-text field the site shows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

NAMES = (
    "car",
    "chill",
    "club",
    "dance",
    "gym",
    "happy",
    "night",
    "party",
    "relax",
    "running",
    "sad",
    "sleep",
    "summer",
    "work",
    "workout",
)
EVIL = "<script>alert('x')</script>"
RUN_ID = "20260105T030000Z-abcdef"


def _write(path: Path, table: pa.Table, **kwargs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, str(path), **kwargs)


def _json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1), encoding="utf-8")


def track_contexts(n: int, k: int = len(NAMES)) -> tuple[np.ndarray, np.ndarray]:
    """Two distinct context indices per track (smaller first): track i carries i % k and
    another one derived from i // k."""
    i = np.arange(n)
    a = i % k
    b = (a + 1 + (i // k) % (k - 1)) % k
    return np.minimum(a, b), np.maximum(a, b)


def _names_columns(ids: np.ndarray, evil: bool) -> dict[str, pa.Array]:
    prefix = EVIL if evil else ""
    return {
        "track_name": pa.array([f"{prefix}Song {i}" for i in ids]),
        "artist_name": pa.array([f"Artist {i % 97}" for i in ids]),
        "album_name": pa.array([f"Album {i % 31}" for i in ids]),
    }


def write_labels(out: Path, n: int, names: Sequence[str], with_names: bool, evil: bool) -> None:
    ids = np.arange(1, n + 1, dtype=np.int64)
    a, b = track_contexts(n, len(names))
    vocab = pa.array(list(names))
    flat = np.empty(2 * n, dtype=np.int32)
    flat[0::2], flat[1::2] = a, b
    contexts = pa.ListArray.from_arrays(
        pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32)), vocab.take(pa.array(flat))
    )
    counts = 3 + (ids * 13) % 17
    cols = {
        "track_id": pa.array(ids),
        "artist_id": pa.array(ids % 97),
        "album_id": pa.array(ids % 31),
        "contexts": contexts,
    }
    if with_names:
        cols.update(_names_columns(ids, evil))
    _write(out / "track_labels" / "part-00000.parquet", pa.table(cols), row_group_size=100_000)
    pairs = pa.table(
        {
            "track_id": pa.array(np.repeat(ids, 2)),
            "context": vocab.take(pa.array(flat)),
            "n_playlists": pa.array(np.repeat(counts, 2).astype(np.int32)),
        }
    )
    _write(out / "track_context_counts" / "part-00000.parquet", pairs, row_group_size=200_000)
    per = {name: int(((a == c) | (b == c)).sum()) for c, name in enumerate(names)}
    keywords = {name: [name] for name in names}
    if evil:
        keywords[names[0]] = [names[0], EVIL]
    _json(
        out / "report.json",
        {
            "stage": "label",
            "contexts": keywords,
            "rows_read": {"playlists": n // 3, "playlist_tracks": 4 * n, "tracks": n},
            "rows_dropped": {"playlists_null_title": 1},
            "playlists_matched": n // 10,
            "playlists_matched_per_context": {name: 1 + c for c, name in enumerate(names)},
            "playlists_removed": {
                "no_known_tracks": 0,
                "oversized": 2,
                "artist_dominated": 1,
                "album_dominated": 0,
                "any_filter": 3,
            },
            "playlists_kept": n // 10 - 3,
            "track_context_pairs": 2 * n,
            "tracks_labelled": n,
            "tracks_labelled_per_context": per,
            "settings": {"min_playlists": 3, "max_tracks": 100},
            "elapsed_seconds": 12.5,
        },
    )


def split_of(ids: np.ndarray) -> np.ndarray:
    return np.where(ids % 4 == 0, "test", np.where(ids % 10 == 1, "validation", "train"))


def write_dataset(out: Path, n: int, names: Sequence[str]) -> None:
    ids = np.arange(1, n + 1, dtype=np.int64)
    _write(
        out / "dataset" / "part-00000.parquet",
        pa.table({"track_id": ids, "split": split_of(ids)}),
        row_group_size=100_000,
    )
    summary = {
        "entries": 10,
        "mean": 0.8,
        "std": 0.2,
        "min": 0.1,
        "p05": 0.3,
        "p25": 0.7,
        "p50": 0.9,
        "p75": 1.0,
        "p95": 1.0,
        "max": 1.0,
        "fallback_entries": 0,
    }
    _json(
        out / "report.json",
        {
            "stage": "dataset",
            "contexts": list(names),
            "input": {"rows": n},
            "balance": {"enabled": False, "per_context": {c: {"before": 5, "after": 5} for c in names}},
            "groups": {"groups": n, "size_max": 1},
            "split": {
                "method": "greedy",
                "sizes": {
                    "train": {"tracks": 7, "share": 0.7, "target": 0.65},
                    "validation": {"tracks": 1, "share": 0.1, "target": 0.1},
                    "test": {"tracks": 2, "share": 0.2, "target": 0.25},
                },
                "per_context_share": {c: {"tracks": 5, "train": 0.6, "validation": 0.2, "test": 0.2} for c in names},
                "max_deviation": 0.05,
                "within_tolerance": False,
            },
            "weights": {
                "neg_exact": {"train": summary, "all": summary},
                "pos_tfidf": {"train": summary},
                "pos_tfidf_constants": {c: {"N_c": 3, "mean": 0.5, "std": 0.1, "train_positives": 3} for c in names},
            },
            "dataset": {"tracks": n, "label_patterns": 20},
            "seconds": {"split": 1.5},
            "elapsed_seconds": 9.0,
        },
    )
    rows = ["context,co_context,tracks,p_co_given_context"]
    rows += [f"{a},{b},{(i * 7 + j) % 5},0.5" for i, a in enumerate(names) for j, b in enumerate(names)]
    (out / "cooccurrence.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def write_mels(
    out: Path, n: int, audio_dir: Path, errors: int, evil: bool, rows_per_group: int = 404, groups_per_file: int = 4
) -> None:
    """Shards laid out as the extraction writes them (sorted by track id, ~404 rows per
    row group, 4 row groups per file), with a 2-byte ``mel`` (only ``audio`` is read)."""
    ids = np.arange(1, n + 1, dtype=np.int64)
    splits = split_of(ids)
    per_file = rows_per_group * groups_per_file
    for split in ("train", "validation", "test"):
        chosen = ids[splits == split]
        for f, start in enumerate(range(0, len(chosen), per_file)):
            part = chosen[start : start + per_file]
            table = pa.table(
                {
                    "track_id": part,
                    "mel": pa.array([b"\x00\x00"] * len(part), pa.binary()),
                    "audio": pa.array([f"file:{audio_dir}/{i}.ogg" for i in part]),
                }
            )
            _write(out / split / f"part-{f:05d}-000.parquet", table, row_group_size=rows_per_group)
    message = (EVIL if evil else "bad bytes") + " no decoder recognises this as audio"
    err = pa.table(
        {
            "track_id": pa.array(np.arange(n + 1, n + 1 + errors, dtype=np.int64)),
            "audio": pa.array([f"file:{audio_dir}/{EVIL if evil else 'x'}{i}.mp3" for i in range(errors)]),
            "stage": pa.array(["open"] * errors),
            "reason": pa.array(["not_audio"] * errors),
            "message": pa.array([message] * errors),
        }
    )
    _write(out / "errors" / "part-00000-000.parquet", err)
    _json(
        out / "report.json",
        {
            "stage": "extract",
            "inputs": {"audio_dir": str(audio_dir)},
            "tracks_in": n + errors,
            "written_total": n,
            "written": {"train": int((splits == "train").sum())},
            "computed": n,
            "reused": 0,
            "failed": {"not_audio": errors} if errors else {},
            "failed_total": errors,
            "elapsed_seconds": 30.0,
        },
    )


def ranking(n: int, names: Sequence[str]) -> dict[str, pa.Table]:
    """Per context, the tracks ``i % k == c`` ranked by a deterministic probability
    (descending, ties by track id), as the scoring stage writes them."""
    ids = np.arange(1, n + 1, dtype=np.int64)
    out = {}
    for c, name in enumerate(names):
        mine = ids[(ids - 1) % len(names) == c]
        prob = ((mine * 2654435761 + c * 97) % 1000003 / 1000003.0).astype(np.float32)
        order = np.lexsort((mine, -prob))
        mine, prob = mine[order], prob[order]
        out[name] = pa.table(
            {
                "rank": pa.array(np.arange(1, len(mine) + 1, dtype=np.int64)),
                "track_id": mine,
                "split": split_of(mine),
                "probability": prob,
            }
        )
    return out


def write_scores(out: Path, n: int, names: Sequence[str], with_names: bool, evil: bool, files: int = 4) -> None:
    for name, table in ranking(n, names).items():
        if with_names:
            for column, values in _names_columns(table.column("track_id").to_numpy(), evil).items():
                table = table.append_column(column, values)
        step = max(1, -(-table.num_rows // files))
        for f, start in enumerate(range(0, table.num_rows, step)):
            _write(out / "context_rankings" / f"context={name}" / f"part-{f:05d}.parquet", table.slice(start, step))
    _json(
        out / "report.json",
        {"stage": "score", "contexts": list(names), "rows_scored": n, "rows_unusable": 0, "elapsed_seconds": 20.0},
    )


def manifest(snapshot: Path, root: Path, names: Sequence[str], scores: bool, first: bool = False) -> dict:
    stages = {
        "label": {"rows": {"tracks_labelled": 10}, "seconds": 12.5},
        "dataset": {"rows": {"tracks": 10, "per_split": {"train": 7}}, "seconds": 9.0},
        "extract": {"rows": {"written": 10, "failed_by_reason": {}}, "seconds": 30.0},
    }
    if scores:
        stages["score"] = {"rows": {"scored": 10}, "seconds": 20.0}
    changes = (
        None
        if first
        else {
            "tracks_added": 4,
            "tracks_removed": 1,
            "tracks_relabelled": 3,
            "labels_gained": {n: (2 if n == "gym" else 0) for n in names},
            "labels_lost": {n: (2 if n == "sad" else 0) for n in names},
        }
    )
    return {
        "run_id": snapshot.name,
        "status": "published",
        "snapshot": str(snapshot),
        "root": str(root),
        "started": "2026-01-05T03:00:00Z",
        "finished": "2026-01-05T03:10:00Z",
        "attempt": 1,
        "previous_snapshot": None if first else "20251229T030000Z-012345",
        "inputs": {
            "catalogue": "/data/catalogue",
            "audio_source": "dir",
            "audio_dir": None,
            "model": None,
            "fingerprint": {
                "digest": "d1",
                "config": "c1",
                "inputs": {"playlists": {"path": f"/data/{EVIL}", "files": 1, "bytes": 10, "digest": "e1"}},
            },
        },
        "code": {"version": "0.1.0", "git_commit": None},
        "stages": stages,
        "changes": {"previous_snapshot": None, "labels": changes, "mels": {"computed": 10, "reused": 0}},
    }


def fake_snapshot(
    root: Path,
    n: int = 60,
    *,
    names: Sequence[str] = NAMES,
    scores: bool = True,
    with_names: bool = False,
    evil: bool = False,
    errors: int = 3,
    audio_dir: Optional[Path] = None,
    first: bool = False,
    parts: Sequence[str] = ("labels", "dataset", "mels"),
) -> Path:
    """Write a refresh root ``root`` whose current snapshot holds ``n`` tracks; returns the
    snapshot directory."""
    snapshot = root / "snapshots" / RUN_ID
    audio_dir = audio_dir or root / "audio"
    if "labels" in parts:
        write_labels(snapshot / "labels", n, names, with_names, evil)
    if "dataset" in parts:
        write_dataset(snapshot / "dataset", n, names)
    if "mels" in parts:
        write_mels(snapshot / "mels", n, audio_dir, errors, evil)
    if scores:
        write_scores(snapshot / "scores", n, names, with_names, evil)
    _json(snapshot / "manifest.json", manifest(snapshot, root, names, scores, first))
    (root / "current").write_text(RUN_ID + "\n", encoding="utf-8")
    return snapshot
