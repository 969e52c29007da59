"""The paper's balancing: rarest context first, fill each context's shortfall up to ``cap``.

Procedure (Ibrahim et al. 2020, sec. 3): take contexts from the rarest to the most common;
for each, if the tracks selected so far carry it fewer than ``cap`` times, sample the
shortfall from the not-yet-selected tracks that carry it; then no longer consider that
context's remaining tracks.

Because a context's unselected tracks leave the pool once it is processed, a track can only
ever be a candidate for the *first* context, in processing order, that it carries: its
``round``. So the candidates of all rounds are disjoint, each track is drawn at most once
by construction, and one window ranks every round's candidates at once. The draw is a
seeded hash of the track id (not ``rand()``, whose stream depends on the partitioning):
a round takes its candidates with the ``shortfall`` smallest hashes. The per-round
shortfall depends on what earlier rounds drew, so the driver walks the rounds, and needs a
Spark job only for a round that draws part of its candidates (a round that takes all or
none of them is known from the pattern counts alone).

Scale note: the ranking window is partitioned by round, so each of the (at most m) rounds
is ranked in one task; that is fine for tens of millions of labelled tracks (spilling to
disk), but it is the step to revisit beyond that (e.g. pre-filter each round's candidates
below a hash threshold before ranking).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from ctx_spark.dataset import patterns as P
from ctx_spark.logs import get_logger

log = get_logger("dataset.balance")


@dataclass
class BalanceResult:
    """Selected tracks and what the balancing did.

    Attributes:
        selected: the input rows that were selected, same columns.
        report: per-context counts before/after and per-round figures (see docs/dataset.md, "Balancing").
        selected_counts: dense pattern counts (2^m,) of the selected tracks.
    """

    selected: DataFrame
    report: dict[str, Any]
    selected_counts: np.ndarray
    _cached: list[DataFrame] = field(default_factory=list)

    def release(self) -> None:
        for df in self._cached:
            df.unpersist()


def processing_order(per_context: np.ndarray) -> list[int]:
    """Context indices from the rarest to the most common (ties: configuration order);
    contexts no track carries are left out."""
    return [i for i in sorted(range(len(per_context)), key=lambda i: (per_context[i], i)) if per_context[i] > 0]


def round_of_patterns(order: Sequence[int], m: int) -> np.ndarray:
    """(2^m,) int: each pattern's round (position in ``order`` of its first carried
    context), -1 for patterns carrying none of them."""
    rounds = np.full(1 << m, -1, dtype=np.int64)
    patterns = np.arange(1 << m)
    for position in reversed(range(len(order))):
        rounds[(patterns >> order[position]) & 1 == 1] = position
    return rounds


def round_expr(order: Sequence[int]) -> F.Column:
    """Spark expression of a row's round from its ``pattern`` (null when none)."""
    expr = None
    for position, context in enumerate(order):
        carries = (F.col("pattern").bitwiseAND(F.lit(1 << context))) != 0
        expr = F.when(carries, F.lit(position)) if expr is None else expr.when(carries, F.lit(position))
    return expr if expr is not None else F.lit(None).cast("int")


def draw_key(seed: int) -> list[F.Column]:
    """Sort key of the seeded draw: a 64-bit hash of (track_id, seed), then the id."""
    return [F.xxhash64(F.col("track_id"), F.lit(seed)), F.col("track_id")]


def balance(
    tracks: DataFrame, names: Sequence[str], cap: Optional[int], seed: int, input_counts: np.ndarray
) -> BalanceResult:
    """Select tracks so that every context reaches about ``cap`` tracks.

    Args:
        tracks: prepared tracks (see :func:`ctx_spark.dataset.inputs.prepare_tracks`):
            ``track_id`` unique, ``pattern`` int; other columns are carried along.
        names: the contexts, in configuration order (m of them).
        cap: target tracks per context; None = the size of the rarest non-empty context.
        seed: seed of the draw.
        input_counts: dense pattern counts (2^m,) of ``tracks`` (already collected by the
            caller, to avoid counting twice).

    Returns:
        A :class:`BalanceResult`. A context reaches ``cap`` unless its round has fewer
        candidates than its shortfall (``reached_cap`` false in the report), and may
        exceed it through tracks drawn for rarer contexts (as in the paper: 34,315 chill
        tracks for a cap of 20,000).
    """
    m = len(names)
    before = P.context_counts(input_counts, m)
    order = processing_order(before)
    if len(order) < m:
        missing = [names[i] for i in range(m) if before[i] == 0]
        log.warning("no track carries %s; they are left out of the balancing", ", ".join(missing))
    if cap is None:
        cap = int(before[order[0]]) if order else 0
    rounds = round_of_patterns(order, m)
    candidates = np.array([input_counts[rounds == k].sum() for k in range(len(order))], dtype=np.int64)

    ranked = (
        tracks.withColumn("_round", round_expr(order))
        .where(F.col("_round").isNotNull())
        .withColumn("_rank", F.row_number().over(Window.partitionBy("_round").orderBy(*draw_key(seed))))
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    selected_counts = np.zeros(1 << m, dtype=np.int64)
    takes: list[int] = []
    rounds_report = []
    for k, context in enumerate(order):
        carried = int(P.context_counts(selected_counts, m)[context])
        shortfall = max(0, cap - carried)
        take = int(min(shortfall, candidates[k]))
        if take == candidates[k]:
            selected_counts += np.where(rounds == k, input_counts, 0)
        elif take > 0:
            drawn = ranked.where((F.col("_round") == k) & (F.col("_rank") <= take))
            selected_counts += P.dense_counts([(p, n) for p, n in P.collect_pattern_counts(drawn)], m)
        takes.append(take)
        rounds_report.append(
            {
                "context": names[context],
                "carried_before_round": carried,
                "shortfall": shortfall,
                "candidates": int(candidates[k]),
                "drawn": take,
            }
        )
    limits = F.array(*[F.lit(t) for t in takes]) if takes else F.array().cast("array<int>")
    selected = ranked.where(F.col("_rank") <= F.element_at(limits, F.col("_round") + 1)).drop("_round", "_rank")

    after = P.context_counts(selected_counts, m)
    n_after = int(selected_counts.sum())
    report: dict[str, Any] = {
        "enabled": True,
        "cap": cap,
        "seed": seed,
        "order": [names[i] for i in order],
        "tracks_before": int(input_counts.sum()),
        "tracks_after": n_after,
        "labels_per_track_before": _mean_labels(input_counts, m),
        "labels_per_track_after": _mean_labels(selected_counts, m),
        "per_context": {
            names[i]: {
                "before": int(before[i]),
                "after": int(after[i]),
                "reached_cap": bool(after[i] >= cap),
            }
            for i in range(m)
        },
        "rounds": rounds_report,
    }
    short = [n for n, v in report["per_context"].items() if not v["reached_cap"]]
    if short:
        log.warning("contexts below the cap of %d after balancing: %s", cap, ", ".join(short))
    return BalanceResult(selected=selected, report=report, selected_counts=selected_counts, _cached=[ranked])


def keep_all(tracks: DataFrame, names: Sequence[str], input_counts: np.ndarray) -> BalanceResult:
    """No balancing (``dataset.balance: false``): every track is kept."""
    m = len(names)
    counts = P.context_counts(input_counts, m)
    report = {
        "enabled": False,
        "tracks_before": int(input_counts.sum()),
        "tracks_after": int(input_counts.sum()),
        "labels_per_track_before": _mean_labels(input_counts, m),
        "labels_per_track_after": _mean_labels(input_counts, m),
        "per_context": {names[i]: {"before": int(counts[i]), "after": int(counts[i])} for i in range(m)},
    }
    return BalanceResult(selected=tracks, report=report, selected_counts=input_counts.copy())


def _mean_labels(dense: np.ndarray, m: int) -> float:
    total = int(dense.sum())
    if total == 0:
        return 0.0
    return round(float(P.context_counts(dense, m).sum()) / total, 4)
