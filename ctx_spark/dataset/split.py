"""Assigning whole artist/album groups to train, validation and test, stratified.

The group table has one row per group (size and m label counts), so it grows with the
catalogue and is not collected. Two passes:

The assignment itself is :mod:`ctx_spark.dataset.stratify` (``dataset.stratification``).

1. The ``giant_groups`` largest groups (bounded, collected) are stratified together on the
   driver against the global targets; a compilation linking hundreds of artists is placed
   first, while every split still has room for it.
2. The other groups are spread over hash buckets of about ``groups_per_bucket`` groups and
   each bucket is stratified independently in one pandas task (``applyInPandas``), aiming
   at the shares of every split's target that the giants left. Each bucket meets those
   shares up to about one group, so the union does too.

Everything random derives from the seed: bucket = hash(group id, seed); the order among
equal-size groups = hash(group id, seed); remaining ties = a generator seeded with
(seed, bucket). The assignment is therefore the same on every run and partitioning.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctx_spark.dataset import patterns as P
from ctx_spark.dataset.settings import SPLITS, DatasetSettings
from ctx_spark.dataset.stratify import iterative_stratification, leftover_fractions, targets
from ctx_spark.logs import get_logger
from ctx_spark.platform import array_position

log = get_logger("dataset.split")

_GIANT_STREAM = 0x6A4
_ASSIGNED = T.StructType([T.StructField("group_id", T.StringType()), T.StructField("split_index", T.ByteType())])


def group_table(grouped: DataFrame, m: int, seed: int) -> DataFrame:
    """One row per group.

    Args:
        grouped: tracks with ``group_id`` and ``labels`` (m 0/1 values).

    Returns:
        (group_id, n_tracks long, counts array<long> of m, _key long): ``counts[c]`` is the
        number of the group's tracks carrying context c; ``_key`` is the seeded hash that
        orders equal-size groups.
    """
    sums = [F.sum(F.col("labels")[c].cast("long")) for c in range(m)]
    return (
        grouped.groupBy("group_id")
        .agg(F.count(F.lit(1)).alias("n_tracks"), F.array(*sums).alias("counts"))
        .withColumn("_key", F.xxhash64("group_id", F.lit(seed)))
    )


def group_statistics(groups: DataFrame) -> dict[str, Any]:
    """Number of groups and the distribution of their sizes (tracks); one Spark job."""
    q = [0.5, 0.9, 0.99, 0.999]
    row = groups.agg(
        F.count(F.lit(1)).alias("n"),
        F.max("n_tracks").alias("max"),
        F.avg("n_tracks").alias("mean"),
        F.count(F.when(F.col("n_tracks") == 1, 1)).alias("singletons"),
        F.percentile_approx("n_tracks", q, 10000).alias("pct"),
    ).first()
    assert row is not None  # a global aggregation always returns one row
    return {
        "groups": int(row["n"]),
        "singleton_groups": int(row["singletons"]),
        "size_mean": round(float(row["mean"] or 0.0), 3),
        "size_max": int(row["max"] or 0),
        **{f"size_p{str(p * 100).rstrip('0').rstrip('.')}": int(v) for p, v in zip(q, row["pct"] or [0] * len(q))},
    }


@dataclass
class SplitAssignment:
    """(group_id, split) for every group, and what the assignment did."""

    assignment: DataFrame
    report: dict[str, Any]


def _stratify_bucket(fractions: np.ndarray, seed: int, m: int, method: str):
    """The pandas function run once per bucket (closure over the bounded shares)."""

    def run(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.sort_values(["_key", "group_id"], kind="mergesort").reset_index(drop=True)
        sizes = frame["n_tracks"].to_numpy(dtype=np.int64)
        counts = np.stack(frame["counts"].to_numpy()).astype(np.int64).reshape(len(frame), m)
        want, want_labels = targets(fractions, float(sizes.sum()), counts.sum(axis=0).astype(float))
        bucket = int(frame["_bucket"].iloc[0])
        rng = np.random.default_rng([seed, bucket])
        chosen = iterative_stratification(sizes, counts, want, want_labels, np.arange(len(frame)), rng, method)
        return pd.DataFrame({"group_id": frame["group_id"], "split_index": chosen.astype(np.int8)})

    return run


def previous_groups(grouped: DataFrame, previous_splits: DataFrame) -> DataFrame:
    """(group_id, split_index) of every group with tracks in the previous dataset: the split
    holding most of them (ties: the first in :data:`SPLITS`), so that a group the week's
    changes merged from groups on two sides still lies on one side.

    Args:
        grouped: this run's tracks with ``group_id``.
        previous_splits: (track_id, split) of the previous dataset.
    """
    from pyspark.sql import Window

    index = array_position(F.array(*[F.lit(s) for s in SPLITS]), F.col("split")) - 1
    previous = previous_splits.select("track_id", index.cast("byte").alias("split_index")).where("split_index >= 0")
    per_split = (
        grouped.select("track_id", "group_id").join(previous, "track_id").groupBy("group_id", "split_index").count()
    )
    order = Window.partitionBy("group_id").orderBy(F.desc("count"), "split_index")
    return (
        per_split.withColumn("_n", F.row_number().over(order)).where(F.col("_n") == 1).select("group_id", "split_index")
    )


def _kept_loads(groups: DataFrame, kept: DataFrame, k: int, m: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(k,) tracks and (k, m) tracks per context that the kept groups put in each split,
    and the number of kept groups (one small aggregation: k rows)."""
    sums = [F.sum(F.col("counts")[c]).alias(f"c{c}") for c in range(m)]
    rows = (
        groups.join(kept, "group_id")
        .groupBy("split_index")
        .agg(F.count(F.lit(1)).alias("groups"), F.sum("n_tracks").alias("tracks"), *sums)
        .collect()
    )
    tracks, labels, n = np.zeros(k), np.zeros((k, m)), 0
    for row in rows:
        j = int(row["split_index"])
        tracks[j] = float(row["tracks"])
        labels[j] = [float(row[f"c{c}"] or 0) for c in range(m)]
        n += int(row["groups"])
    return tracks, labels, n


def assign_splits(
    groups: DataFrame,
    settings: DatasetSettings,
    totals: np.ndarray,
    m: int,
    n_groups: int,
    kept: Optional[DataFrame] = None,
) -> SplitAssignment:
    """Stratify whole groups into :data:`SPLITS`.

    Args:
        groups: the output of :func:`group_table` (persisted by the caller).
        settings: fractions, seed, ``giant_groups``, ``groups_per_bucket``.
        totals: (m + 1,) tracks in all, then tracks per context.
        m: number of contexts.
        n_groups: rows of ``groups`` (from :func:`group_statistics`), to size the buckets.
        kept: (group_id, split_index) of groups whose split is already decided
            (:func:`previous_groups`, persisted by the caller); the others are stratified
            towards what these leave of each split's target.

    Returns:
        :class:`SplitAssignment` with ``assignment`` (group_id, split string).
    """
    spark = groups.sparkSession
    fractions = np.array(settings.split.as_tuple())
    seed = settings.seed
    total, total_labels = float(totals[0]), totals[1:].astype(float)
    want, want_labels = targets(fractions, total, total_labels)
    n_kept, kept_tracks = 0, np.zeros(len(fractions))
    if kept is not None:
        kept_tracks, kept_labels, n_kept = _kept_loads(groups, kept, len(fractions), m)
        # what is left of each target (negative where the kept groups overshoot it: the
        # other splits then take the new groups, see leftover_fractions)
        want, want_labels = want - kept_tracks, want_labels - kept_labels
        groups = groups.join(kept.select("group_id"), "group_id", "left_anti")

    giants = []
    if settings.giant_groups > 0:
        giants = (
            groups.where(F.col("n_tracks") > 1)
            .orderBy(F.desc("n_tracks"), "_key", "group_id")
            .limit(settings.giant_groups)
            .collect()
        )
    if giants:
        sizes = np.array([g["n_tracks"] for g in giants], dtype=np.int64)
        counts = np.array([list(g["counts"]) for g in giants], dtype=np.int64).reshape(len(giants), m)
        rng = np.random.default_rng([seed, _GIANT_STREAM])
        chosen = iterative_stratification(
            sizes, counts, want, want_labels, np.arange(len(giants)), rng, settings.stratification
        )
        for j in range(len(fractions)):
            mask = chosen == j
            want[j] -= sizes[mask].sum()
            want_labels[j] -= counts[mask].sum(axis=0)
        giant_rows = [(g["group_id"], int(c)) for g, c in zip(giants, chosen)]
    else:
        giant_rows = []
    rest_fractions = leftover_fractions(fractions, want, want_labels)

    giant_df = spark.createDataFrame(giant_rows, _ASSIGNED)
    n_rest = n_groups - n_kept - len(giant_rows)
    n_buckets = max(1, math.ceil(n_rest / settings.groups_per_bucket))
    rest = (
        groups.join(F.broadcast(giant_df.select("group_id")), "group_id", "left_anti")
        .withColumn("_bucket", F.pmod(F.xxhash64("group_id", F.lit(seed), F.lit("bucket")), F.lit(n_buckets)))
        .groupBy("_bucket")
        .applyInPandas(_stratify_bucket(rest_fractions, seed, m, settings.stratification), _ASSIGNED)
    )
    names = F.element_at(F.array(*[F.lit(s) for s in SPLITS]), F.col("split_index").cast("int") + 1)
    assigned = giant_df.unionByName(rest)
    if kept is not None:
        assigned = kept.select("group_id", "split_index").unionByName(assigned)
    assignment = assigned.select("group_id", names.alias("split"))
    report = {
        "method": settings.stratification,
        "kept_groups": n_kept,
        "kept_tracks_per_split": {s: int(kept_tracks[j]) for j, s in enumerate(SPLITS)},
        "giant_groups": len(giant_rows),
        "giant_tracks": int(sum(g["n_tracks"] for g in giants)),
        "giant_tracks_per_split": {
            s: int(sum(g["n_tracks"] for g, (_, c) in zip(giants, giant_rows) if c == j)) for j, s in enumerate(SPLITS)
        },
        "buckets": n_buckets,
        "groups": n_groups,
    }
    log.info("split: %d giant groups on the driver, %d other groups in %d buckets", len(giant_rows), n_rest, n_buckets)
    return SplitAssignment(assignment=assignment, report=report)


def split_report(
    counts_by_split: dict[str, np.ndarray], fractions: Sequence[float], names: Sequence[str], tolerance: float
) -> dict[str, Any]:
    """Achieved sizes and per-context shares of each split, from dense pattern counts.

    Returns:
        tracks and share per split; per context, its tracks and the share of them in each
        split; ``max_deviation`` (largest |share - target| over splits, for all tracks and
        every context carried by at least one track); ``within_tolerance``.
    """
    m = len(names)
    tracks = {s: int(counts_by_split.get(s, np.zeros(1)).sum()) for s in SPLITS}
    per_split = {
        s: P.context_counts(counts_by_split[s], m) if s in counts_by_split else np.zeros(m, np.int64) for s in SPLITS
    }
    total = sum(tracks.values())
    deviation = 0.0
    sizes = {}
    for s, target in zip(SPLITS, fractions):
        share = tracks[s] / total if total else 0.0
        deviation = max(deviation, abs(share - target))
        sizes[s] = {"tracks": tracks[s], "share": round(share, 5), "target": target}
    per_context = {}
    for c, name in enumerate(names):
        n_c = int(sum(per_split[s][c] for s in SPLITS))
        entry: dict[str, Any] = {"tracks": n_c}
        for s, target in zip(SPLITS, fractions):
            share = per_split[s][c] / n_c if n_c else 0.0
            if n_c:
                deviation = max(deviation, abs(share - target))
            entry[s] = round(float(share), 5)
        per_context[name] = entry
    return {
        "sizes": sizes,
        "per_context_share": per_context,
        "max_deviation": round(deviation, 5),
        "tolerance": tolerance,
        "within_tolerance": bool(deviation <= tolerance),
    }
