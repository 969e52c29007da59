"""The paper's released label files (Ibrahim et al. 2020) as a ``track_labels`` table.

The authors published their balanced 49,929-track x 15-context label matrix, the
per-context playlist counts, artist ids and their train/validation/test split; reading
them into the labelling stage's output shape lets the dataset stage be checked on the
authors' real labels (``../shared/data/deezer_context_ibrahim``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ctx_spark.errors import InputError

IBRAHIM_COUNTS = "balanced_ground_truth_track_count.csv"
IBRAHIM_HOT = "balanced_ground_truth_hot_vector.csv"
IBRAHIM_FOLDS = "ground_truth_folds.csv"
IBRAHIM_SPLITS = {
    "train": "train_ground_truth_binarized.csv",
    "validation": "validation_ground_truth_binarized.csv",
    "test": "test_ground_truth_binarized.csv",
}


def _read_matrix(path: Path, names: Sequence[str]) -> pd.DataFrame:
    frame = pd.read_csv(path)
    expected = ["song_id", *names]
    if list(frame.columns) != expected:
        raise InputError(f"{path}: expected columns {expected}, found {list(frame.columns)}")
    return frame


def load_ibrahim_track_labels(directory: str | Path, names: Sequence[str]) -> pd.DataFrame:
    """The authors' balanced 49,929 tracks as a ``track_labels``-shaped pandas table.

    Labels come from the one-hot file (the authors' ground truth; a handful of its
    positives have fewer than 3 playlists in the count file); ``n_playlists`` from the count
    file; ``artist_id`` from the folds file (null for the 1,347 tracks it lacks); there are
    no album ids (all null). Adds ``authors_split`` (train/validation/test from the
    authors' binarized files, null for tracks in none of them).

    Raises:
        InputError: a file lacks the configured contexts in order.
    """
    directory = Path(directory)
    hot = _read_matrix(directory / IBRAHIM_HOT, names)
    counts = _read_matrix(directory / IBRAHIM_COUNTS, names).set_index("song_id").loc[hot["song_id"]]
    folds = pd.read_csv(directory / IBRAHIM_FOLDS).drop_duplicates("song_id").set_index("song_id")
    split = pd.Series(pd.NA, index=hot["song_id"], dtype="object")
    for name, file in IBRAHIM_SPLITS.items():
        ids = pd.read_csv(directory / file, usecols=["song_id"])["song_id"]
        split.loc[split.index.isin(ids)] = name
    onehot = hot[list(names)].to_numpy(dtype=bool)
    name_array = np.array(names, dtype=object)
    return pd.DataFrame(
        {
            "track_id": hot["song_id"].astype("int64").to_numpy(),
            "artist_id": folds["artist_id"].reindex(hot["song_id"]).astype("Int64").to_numpy(),
            "album_id": pd.array([pd.NA] * len(hot), dtype="Int64"),
            "contexts": [sorted(name_array[row].tolist()) for row in onehot],
            "n_playlists": [row.tolist() for row in counts[list(names)].to_numpy(dtype="int32")],
            "authors_split": split.to_numpy(),
        }
    )


def write_ibrahim_track_labels(
    directory: str | Path, path: str | Path, names: Sequence[str], with_split: bool = False
) -> str:
    """Write :func:`load_ibrahim_track_labels` as a Parquet file; returns its path."""
    frame = load_ibrahim_track_labels(directory, names)
    fields: list[Any] = [
        ("track_id", pa.int64()),
        ("artist_id", pa.int64()),
        ("album_id", pa.int64()),
        ("contexts", pa.list_(pa.string())),
        ("n_playlists", pa.list_(pa.int32())),
    ]
    if with_split:
        fields.append(("authors_split", pa.string()))
    else:
        frame = frame.drop(columns=["authors_split"])
    table = pa.Table.from_pandas(frame, schema=pa.schema(fields), preserve_index=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, str(path))
    return str(path)
