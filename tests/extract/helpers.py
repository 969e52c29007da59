"""Helpers of the extraction tests: configuration, a dataset stage's output, an audio table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from ctx_spark.config import load_config
from ctx_spark.shards import contract
from tests.conftest import TEST_SPARK_OVERRIDES, write_parquet_table

N_CONTEXTS = 15


def make_config(*overrides: str):
    return load_config(overrides=TEST_SPARK_OVERRIDES + tuple(overrides))


def targets_for(track_ids, seed: int = 0) -> dict[int, dict]:
    rng = np.random.default_rng(seed)
    return {
        t: {
            "labels": rng.integers(0, 2, N_CONTEXTS).tolist(),
            "neg_exact": rng.random(N_CONTEXTS).tolist(),
            "neg_ignore_zeros": rng.random(N_CONTEXTS).tolist(),
            "pos_tfidf": rng.random(N_CONTEXTS).tolist(),
        }
        for t in track_ids
    }


def write_dataset(root: Path, split_of: dict[int, str], targets: dict[int, dict]) -> str:
    """A build_dataset-like output: root/dataset with int8 labels and float64 weights."""
    ids = sorted(split_of)
    columns = {
        "track_id": ids,
        "artist_id": [i * 10 for i in ids],
        "album_id": [i * 100 for i in ids],
        "labels": [targets[i]["labels"] for i in ids],
        "split": [split_of[i] for i in ids],
        **{w: [targets[i][w] for i in ids] for w in contract.WEIGHT_COLUMNS},
    }
    schema = pa.schema(
        [
            ("track_id", pa.int64()),
            ("artist_id", pa.int64()),
            ("album_id", pa.int64()),
            ("labels", pa.list_(pa.int8())),
            ("split", pa.string()),
            *[(w, pa.list_(pa.float64())) for w in contract.WEIGHT_COLUMNS],
        ]
    )
    write_parquet_table(root / "dataset" / "part-0.parquet", columns, schema)
    return str(root)


def write_tracks(path: Path, audio_of: dict[int, str]) -> str:
    ids = sorted(audio_of)
    return write_parquet_table(
        path,
        {"track_id": ids, "audio": [audio_of[i] for i in ids]},
        pa.schema([("track_id", pa.int64()), ("audio", pa.string())]),
    )
