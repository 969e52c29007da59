"""The ``track_labels`` input: its contract, its checks, and the 0/1 label vectors.

Every later step works on the label *pattern*: the bitmask with bit ``i`` set when the
track carries context ``i`` (conf/contexts.yaml order). There are at most 2^m patterns
(32,768 for 15 contexts), so any statistic that depends on a track only through its labels
is computed on a pattern-count table that is safe to collect, whatever the catalogue size.

:func:`load_ibrahim_track_labels` turns the paper's released label files into a table of
the same shape, so the pipeline can be checked on the authors' real label matrix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctx_spark import schema
from ctx_spark.errors import InputError

#: The labelling stage's output, as this stage reads it. Artist and album may be null (a
#: null links the track to no other track).
TRACK_LABELS = schema.TableContract(
    "track_labels",
    {
        "track_id": schema.ID,
        "artist_id": schema.ID,
        "album_id": schema.ID,
        "contexts": schema.STRING_ARRAY,
        "n_playlists": schema.INT_ARRAY,
    },
    nullable=("artist_id", "album_id"),
)

#: Most contexts the pattern tables support: they are dense arrays of 2^m entries.
MAX_CONTEXTS = 20


def check_contexts(names: Sequence[str]) -> None:
    """Refuse context lists the pattern arithmetic cannot hold."""
    if len(names) > MAX_CONTEXTS:
        raise InputError(
            f"{len(names)} contexts configured; the dataset stage supports at most {MAX_CONTEXTS} "
            "(its label-pattern tables have 2^contexts entries)"
        )


def check_track_labels(df: DataFrame, names: Sequence[str], source: str = "track_labels") -> dict[str, int]:
    """Check the rows of a contract-validated ``track_labels`` table (one Spark job).

    Args:
        df: (track_id, artist_id, album_id, contexts, n_playlists).
        names: the configured contexts, in order.
        source: where the table came from, for messages.

    Returns:
        {"rows": n}.

    Raises:
        InputError: the table is empty, a track id is null or repeated, an ``n_playlists``
            vector is null or does not have one count per configured context, or
            ``contexts`` holds a name that is not configured (the labels were made with
            another context list). Each of these makes the dataset meaningless, so none
            is skipped silently.
    """
    m = len(names)
    known = F.array(*[F.lit(n) for n in names])
    unknown = F.array_except(F.coalesce(F.col("contexts"), F.array().cast("array<string>")), known)
    bad_length = F.col("n_playlists").isNull() | (F.size("n_playlists") != m)
    stats = df.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count_distinct("track_id").alias("distinct_ids"),
        F.count(F.when(F.col("track_id").isNull(), 1)).alias("null_id"),
        F.count(F.when(bad_length, 1)).alias("bad_length"),
        F.min(F.when(bad_length, F.coalesce(F.size("n_playlists"), F.lit(-1)))).alias("bad_length_example"),
        F.count(F.when(F.size(unknown) > 0, 1)).alias("unknown"),
        F.min(F.when(F.size(unknown) > 0, F.array_join(unknown, ","))).alias("unknown_example"),
    ).first()
    table = f"table '{TRACK_LABELS.name}' ({source})"
    if stats["rows"] == 0:
        raise InputError(f"{table} has no rows: nothing to build a dataset from")
    if stats["null_id"]:
        raise InputError(f"{table}: column 'track_id' is null in {stats['null_id']} rows")
    if stats["bad_length"]:
        example = stats["bad_length_example"]
        got = "null" if example == -1 else f"length {example}"
        raise InputError(
            f"{table}: column 'n_playlists' must hold {m} counts (one per configured context, in "
            f"conf/contexts.yaml order) but {stats['bad_length']} rows do not (e.g. {got})"
        )
    if stats["unknown"]:
        raise InputError(
            f"{table}: column 'contexts' holds names that are not configured contexts in "
            f"{stats['unknown']} rows (e.g. '{stats['unknown_example']}'); configured: {', '.join(names)}"
        )
    if stats["distinct_ids"] != stats["rows"]:
        dup = df.groupBy("track_id").count().where(F.col("count") > 1)
        repeated = dup.orderBy("track_id").limit(1).collect()
        raise InputError(
            f"{table}: column 'track_id' must be unique, but {dup.count()} ids repeat "
            f"(e.g. {repeated[0]['track_id']} appears {repeated[0]['count']} times)"
        )
    return {"rows": int(stats["rows"])}


def prepare_tracks(df: DataFrame, names: Sequence[str]) -> DataFrame:
    """Add the label columns derived from ``contexts``.

    Returns:
        The input columns (``contexts`` dropped) plus ``labels`` (array<tinyint> of m 0/1
        values in ``names`` order), ``pattern`` (int bitmask, bit i = context i) and
        ``n_labels`` (int, number of positives).
    """
    check_contexts(names)
    has = [F.coalesce(F.array_contains("contexts", n), F.lit(False)) for n in names]
    labels = F.array(*[h.cast(T.ByteType()) for h in has])
    pattern = sum((F.when(h, F.lit(1 << i)).otherwise(F.lit(0)) for i, h in enumerate(has)), F.lit(0))
    n_labels = sum((h.cast(T.IntegerType()) for h in has), F.lit(0))
    return df.select(
        "track_id", "artist_id", "album_id",
        labels.alias("labels"),
        pattern.cast(T.IntegerType()).alias("pattern"),
        n_labels.cast(T.IntegerType()).alias("n_labels"),
        F.col("n_playlists").cast(T.ArrayType(T.IntegerType())).alias("n_playlists"),
    )


# --- the paper's released labels ---------------------------------------------------------

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
    return pd.DataFrame({
        "track_id": hot["song_id"].astype("int64").to_numpy(),
        "artist_id": folds["artist_id"].reindex(hot["song_id"]).astype("Int64").to_numpy(),
        "album_id": pd.array([pd.NA] * len(hot), dtype="Int64"),
        "contexts": [sorted(name_array[row].tolist()) for row in onehot],
        "n_playlists": [row.tolist() for row in counts[list(names)].to_numpy(dtype="int32")],
        "authors_split": split.to_numpy(),
    })


def write_ibrahim_track_labels(directory: str | Path, path: str | Path, names: Sequence[str],
                               with_split: bool = False) -> str:
    """Write :func:`load_ibrahim_track_labels` as a Parquet file; returns its path."""
    frame = load_ibrahim_track_labels(directory, names)
    fields: list[Any] = [
        ("track_id", pa.int64()), ("artist_id", pa.int64()), ("album_id", pa.int64()),
        ("contexts", pa.list_(pa.string())), ("n_playlists", pa.list_(pa.int32())),
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
