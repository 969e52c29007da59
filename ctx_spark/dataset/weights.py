"""Sample-level loss weights (Ibrahim et al. 2020, sections 4.2-4.3).

Three (m,)-float vectors per track, all estimated on the TRAINING split and applied to the
rows of every split:

``neg_exact`` (weights of the negative term, 1 where y_ic = 1)
    for y_ic = 0: n0 / (n0 + n1), n0 = training tracks whose label vector equals y_i,
    n1 = those equal to y_i with context c switched on: the estimated probability that
    c is truly absent given exactly this combination of labels.
``neg_ignore_zeros`` (1 where y_ic = 1)
    for y_ic = 0: P(y_c = 0 | every positive of y_i), the share of training tracks that
    carry all of y_i's positives (supersets of its pattern) and not c. A track with no
    positive gets the marginal P(y_c = 0).
``pos_tfidf`` (weights of the positive term, 0 where y_ic = 0)
    for y_ic = 1: x_ic = (n_ic / N_c) * log(m / n_i), standardised per context over the
    training positives (population z-score), plus 1, clipped to [0, 2].

Both negative weights depend on a track only through its label pattern, so they are
computed once per pattern, in numpy, from the training pattern counts (2^m values; the
superset counts come from a subset-sum transform) and joined back as a broadcast table.
The positive weight's standardisation needs, per context, the mean and variance of x over
training positives; they are assembled from exact integer sums grouped by (context,
n_labels) (at most m (m + 1) rows), so they are the same on every run.

Fallbacks for validation/test patterns never seen in training (docs/dataset.md, "Fallbacks"):

- ``neg_exact`` with n0 + n1 = 0 takes the ``neg_ignore_zeros`` value of the entry;
- ``neg_ignore_zeros`` when no training track carries all of y_i's positives takes the
  marginal P(y_c = 0) of the training split.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctx_spark.dataset import patterns as P

_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


@dataclass(frozen=True)
class NegativeWeights:
    """Per-pattern negative weights.

    Attributes:
        patterns: (p,) the patterns the table covers.
        exact, ignore_zeros: (p, m) float64 weights.
        exact_fallback, ignore_zeros_fallback: (p, m) bool, entries that used a fallback.
    """

    patterns: np.ndarray
    exact: np.ndarray
    ignore_zeros: np.ndarray
    exact_fallback: np.ndarray
    ignore_zeros_fallback: np.ndarray


def negative_weights(train_counts: np.ndarray, patterns: Iterable[int], m: int) -> NegativeWeights:
    """Compute both negative weights for ``patterns`` from the training pattern counts.

    Args:
        train_counts: (2^m,) training tracks per pattern.
        patterns: the patterns to weight (typically every pattern of every split).

    Raises:
        ValueError: the training split is empty.
    """
    total = int(train_counts.sum())
    if total == 0:
        raise ValueError("the training split is empty: no loss weights can be estimated")
    chosen = np.asarray(sorted(set(int(p) for p in patterns)), dtype=np.int64)
    bit = (1 << np.arange(m)).astype(np.int64)
    y = P.bits(chosen, m).astype(bool)  # (p, m)
    switched = chosen[:, None] | bit[None, :]  # (p, m) pattern with c on
    supersets = P.superset_sums(train_counts, m)
    marginal_neg = (supersets[0] - supersets[bit]) / supersets[0]  # (m,) P(y_c = 0)

    s_all = supersets[chosen][:, None].astype(float)  # tracks carrying all positives
    s_with = supersets[switched].astype(float)  # ... and c
    iz_fallback = (~y) & (s_all == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        iz = np.where(s_all > 0, (s_all - s_with) / s_all, marginal_neg[None, :])
    iz = np.where(y, 1.0, iz)

    n0 = train_counts[chosen][:, None].astype(float)
    n1 = train_counts[switched].astype(float)
    exact_fallback = (~y) & (n0 + n1 == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        exact = np.where(n0 + n1 > 0, n0 / (n0 + n1), iz)
    exact = np.where(y, 1.0, exact)
    return NegativeWeights(chosen, exact, iz, exact_fallback, iz_fallback)


def negative_table(spark: SparkSession, weights: NegativeWeights) -> DataFrame:
    """The per-pattern table (pattern int, neg_exact, neg_ignore_zeros array<float>)."""
    schema = T.StructType(
        [
            T.StructField("pattern", T.IntegerType()),
            T.StructField("neg_exact", T.ArrayType(T.FloatType(), False)),
            T.StructField("neg_ignore_zeros", T.ArrayType(T.FloatType(), False)),
        ]
    )
    rows = [
        (int(p), [float(v) for v in e], [float(v) for v in z])
        for p, e, z in zip(weights.patterns, weights.exact, weights.ignore_zeros)
    ]
    return spark.createDataFrame(rows, schema)


def idf(m: int) -> list[float]:
    """log(m / n) for n = 0..m (entry 0 unused: a track without labels has no positive)."""
    return [0.0] + [math.log(m / n) for n in range(1, m + 1)]


@dataclass(frozen=True)
class PositiveStats:
    """Per-context constants of ``pos_tfidf``, from the training split.

    Attributes:
        totals: (m,) N_c, sum of n_ic over all training tracks.
        mean, std: (m,) mean and population std of x_ic over training positives (0 where
            a context has no training positive).
        positives: (m,) training positives per context.
    """

    totals: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    positives: np.ndarray


def positive_sums(train: DataFrame) -> list[tuple[int, int, int, int, int, int]]:
    """Exact integer sums over the training rows, grouped by (context, n_labels, y).

    Returns:
        Sorted tuples (context, n_labels, y, tracks, sum n_ic, sum n_ic^2): at most
        2 m (m + 1) of them.
    """
    exploded = train.select("n_labels", "labels", F.posexplode("n_playlists").alias("c", "n"))
    rows = (
        exploded.select(
            "c", "n_labels", F.col("labels")[F.col("c")].cast("int").alias("y"), F.col("n").cast("long").alias("n")
        )
        .groupBy("c", "n_labels", "y")
        .agg(F.count(F.lit(1)).alias("k"), F.sum("n").alias("s1"), F.sum(F.col("n") * F.col("n")).alias("s2"))
        .collect()
    )
    return sorted((int(r["c"]), int(r["n_labels"]), int(r["y"]), int(r["k"]), int(r["s1"]), int(r["s2"])) for r in rows)


def positive_stats(sums: Sequence[tuple[int, int, int, int, int, int]], m: int) -> PositiveStats:
    """Assemble N_c and the mean/std of x_ic over positives from :func:`positive_sums`."""
    logs = idf(m)
    totals = np.zeros(m)
    count = np.zeros(m)
    first = np.zeros(m)  # sum over positives of n * L(n_i)
    second = np.zeros(m)  # sum over positives of (n * L(n_i))^2
    for c, n_labels, y, k, s1, s2 in sums:
        totals[c] += s1
        if y == 1:
            count[c] += k
            first[c] += logs[n_labels] * s1
            second[c] += logs[n_labels] ** 2 * s2
    mean = np.zeros(m)
    std = np.zeros(m)
    usable = (count > 0) & (totals > 0)
    mean[usable] = first[usable] / (totals[usable] * count[usable])
    variance = np.zeros(m)
    variance[usable] = second[usable] / (totals[usable] ** 2 * count[usable]) - mean[usable] ** 2
    std[usable] = np.sqrt(np.clip(variance[usable], 0.0, None))
    return PositiveStats(totals=totals, mean=mean, std=std, positives=count.astype(np.int64))


def positive_expr(stats: PositiveStats, m: int) -> F.Column:
    """array<float> ``pos_tfidf`` of a row with ``labels``, ``n_playlists``, ``n_labels``.

    A context whose training positives all have the same x (std 0), or no playlist count
    at all (N_c = 0), gets weight 1 on every positive.
    """
    logs = F.array(*[F.lit(v) for v in idf(m)])
    log_n = F.element_at(logs, F.col("n_labels") + 1)
    entries = []
    for c in range(m):
        positive = F.col("labels")[c] == 1
        if stats.std[c] > 0 and stats.totals[c] > 0:
            x = F.col("n_playlists")[c].cast("double") / F.lit(float(stats.totals[c])) * log_n
            z = F.lit(1.0) + (x - F.lit(float(stats.mean[c]))) / F.lit(float(stats.std[c]))
            value = F.least(F.greatest(z, F.lit(0.0)), F.lit(2.0))
        else:
            value = F.lit(1.0)
        entries.append(F.when(positive, value).otherwise(F.lit(0.0)).cast(T.FloatType()))
    return F.array(*entries)


def add_weights(df: DataFrame, negative: NegativeWeights, stats: PositiveStats, m: int) -> DataFrame:
    """Attach ``neg_exact``, ``neg_ignore_zeros`` (broadcast join on ``pattern``) and
    ``pos_tfidf`` (a row expression) to every row of ``df``."""
    table = negative_table(df.sparkSession, negative)
    return df.join(F.broadcast(table), "pattern", "left").withColumn("pos_tfidf", positive_expr(stats, m))


# --- summaries for report.json -----------------------------------------------------------


def _weighted_summary(values: np.ndarray, weights: np.ndarray) -> dict[str, Any]:
    keep = weights > 0
    values, weights = values[keep], weights[keep].astype(float)
    if not len(values):
        return {"entries": 0}
    order = np.argsort(values, kind="mergesort")
    values, weights = values[order], weights[order]
    cumulative = np.cumsum(weights)
    total = cumulative[-1]
    mean = float((values * weights).sum() / total)
    std = float(math.sqrt(max(((values - mean) ** 2 * weights).sum() / total, 0.0)))
    out: dict[str, Any] = {
        "entries": int(total),
        "mean": round(mean, 5),
        "std": round(std, 5),
        "min": round(float(values[0]), 5),
    }
    for q in _QUANTILES:
        index = int(np.searchsorted(cumulative, q * total, side="left"))
        out[f"p{round(q * 100):02d}"] = round(float(values[min(index, len(values) - 1)]), 5)
    out["max"] = round(float(values[-1]), 5)
    return out


def negative_summary(negative: NegativeWeights, counts_by_split: dict[str, np.ndarray], m: int) -> dict[str, Any]:
    """Exact distribution of each negative weight over the y_ic = 0 entries, per split
    and overall, from pattern counts (no Spark job), with the entries that fell back."""
    y = P.bits(negative.patterns, m).astype(bool)
    groups = dict(counts_by_split)
    groups["all"] = cast(np.ndarray, sum(counts_by_split.values()))  # one array per split: never the empty sum 0
    out: dict[str, Any] = {}
    for name, values, fallback in (
        ("neg_exact", negative.exact, negative.exact_fallback),
        ("neg_ignore_zeros", negative.ignore_zeros, negative.ignore_zeros_fallback),
    ):
        per = {}
        for split, dense in groups.items():
            tracks = dense[negative.patterns][:, None] * np.ones((1, m), dtype=np.int64)
            weights = np.where(~y, tracks, 0)
            summary = _weighted_summary(values.reshape(-1), weights.reshape(-1))
            summary["fallback_entries"] = int((tracks * fallback).sum())
            per[split] = summary
        out[name] = per
    return out


def positive_summary(df: DataFrame, m: int, accuracy: int) -> dict[str, Any]:
    """Distribution of ``pos_tfidf`` over the y_ic = 1 entries, per split and overall
    (approximate percentiles), plus its mean on tracks that carry every context."""
    n_labels = F.size(F.filter("labels", lambda y: y == 1)).alias("n_labels")
    entries = (
        df.select("split", n_labels, F.explode(F.arrays_zip("labels", "pos_tfidf")).alias("e"))
        .where(F.col("e.labels") == 1)
        .select("split", "n_labels", F.col("e.pos_tfidf").cast("double").alias("w"))
    )
    q = list(_QUANTILES)
    rows = (
        entries.rollup("split")
        .agg(
            F.count(F.lit(1)).alias("entries"),
            F.avg("w").alias("mean"),
            F.stddev_pop("w").alias("std"),
            F.min("w").alias("min"),
            F.percentile_approx("w", q, accuracy).alias("pct"),
            F.max("w").alias("max"),
            F.count(F.when(F.col("w") == 0.0, 1)).alias("at_0"),
            F.count(F.when(F.col("w") == 2.0, 1)).alias("at_2"),
            F.avg(F.when(F.col("n_labels") == m, F.col("w"))).alias("mean_all_contexts"),
            F.count(F.when(F.col("n_labels") == m, 1)).alias("entries_all_contexts"),
        )
        .collect()
    )
    out: dict[str, Any] = {}
    for r in sorted(rows, key=lambda r: (r["split"] is None, r["split"] or "")):
        summary: dict[str, Any] = {"entries": int(r["entries"])}
        if r["entries"]:
            summary.update({"mean": round(r["mean"], 5), "std": round(r["std"], 5), "min": round(r["min"], 5)})
            summary.update({f"p{round(qq * 100):02d}": round(v, 5) for qq, v in zip(q, r["pct"])})
            summary.update(
                {
                    "max": round(r["max"], 5),
                    "entries_at_0": int(r["at_0"]),
                    "entries_at_2": int(r["at_2"]),
                    "entries_all_contexts": int(r["entries_all_contexts"]),
                    "mean_all_contexts": None if r["mean_all_contexts"] is None else round(r["mean_all_contexts"], 5),
                }
            )
        out[r["split"] or "all"] = summary
    return {"pos_tfidf": out}
