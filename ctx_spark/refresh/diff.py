"""What changed between two snapshots' ``track_labels``, as a bounded set of numbers.

One full outer join of the two tables on ``track_id`` and one aggregation give 3 track
counts and 2 x 15 per-context counts; nothing that grows with the catalogue reaches the
driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T


def _keyed(labels: DataFrame, alias: str, as_string: bool) -> DataFrame:
    track_id = F.col("track_id").cast("string") if as_string else F.col("track_id")
    return labels.select(track_id.alias("track_id"), F.col("contexts").alias(alias))


def label_changes(previous: DataFrame, current: DataFrame, names: Sequence[str]) -> dict[str, Any]:
    """Tracks added, removed and relabelled, and per context the labels gained and lost.

    Args:
        previous, current: ``track_labels`` tables (track_id, contexts array<string>, ...);
            a track absent from a table carries no label there.
        names: the ordered context names.

    Returns:
        ``tracks_added`` (labelled now, not before), ``tracks_removed`` (labelled before,
        not now), ``tracks_relabelled`` (in both, with another context set), and
        ``labels_gained`` / ``labels_lost``: per context (config order), the tracks that
        carry it now and did not before (new tracks included) / the reverse (removed
        tracks included).
    """
    as_string = not (
        isinstance(previous.schema["track_id"].dataType, (T.LongType, T.IntegerType))
        and isinstance(current.schema["track_id"].dataType, (T.LongType, T.IntegerType))
    )
    joined = _keyed(previous, "before", as_string).join(_keyed(current, "after", as_string), "track_id", "full_outer")
    empty = F.array().cast("array<string>")
    before, after = F.coalesce(F.col("before"), empty), F.coalesce(F.col("after"), empty)
    aggs = [
        F.count(F.when(F.col("before").isNull(), 1)).alias("added"),
        F.count(F.when(F.col("after").isNull(), 1)).alias("removed"),
        F.count(
            F.when(
                F.col("before").isNotNull()
                & F.col("after").isNotNull()
                & (F.array_sort("before") != F.array_sort("after")),
                1,
            )
        ).alias("relabelled"),
    ]
    for i, name in enumerate(names):
        has_before, has_after = F.array_contains(before, name), F.array_contains(after, name)
        aggs.append(F.count(F.when(has_after & ~has_before, 1)).alias(f"gained_{i}"))
        aggs.append(F.count(F.when(has_before & ~has_after, 1)).alias(f"lost_{i}"))
    row = joined.agg(*aggs).first()
    assert row is not None  # a global aggregation always returns one row
    return {
        "tracks_added": int(row["added"]),
        "tracks_removed": int(row["removed"]),
        "tracks_relabelled": int(row["relabelled"]),
        "labels_gained": {name: int(row[f"gained_{i}"]) for i, name in enumerate(names)},
        "labels_lost": {name: int(row[f"lost_{i}"]) for i, name in enumerate(names)},
    }


def no_label_changes(names: Sequence[str]) -> dict[str, Any]:
    """What :func:`label_changes` returns for two identical tables (a reused labelling)."""
    return {
        "tracks_added": 0,
        "tracks_removed": 0,
        "tracks_relabelled": 0,
        "labels_gained": {name: 0 for name in names},
        "labels_lost": {name: 0 for name in names},
    }
