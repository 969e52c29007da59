"""Label-pattern counts: the bounded summary every label statistic is computed from.

A pattern is the int bitmask of a track's labels (bit i = context i). A table of counts per
pattern has at most 2^m rows whatever the number of tracks, so it is collected to the
driver and worked on with numpy: per-context counts, co-occurrences, the negative loss
weights. Dense arrays are indexed by pattern: ``counts[p]`` is the number of tracks whose
label vector is exactly ``p``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def collect_pattern_counts(df: DataFrame, by: Sequence[str] = ()) -> list[tuple]:
    """Count tracks per (``by`` columns..., pattern) and collect them, sorted.

    Args:
        df: any table with an int ``pattern`` column (and the ``by`` columns).
        by: grouping columns with few distinct values (e.g. ``split``).

    Returns:
        Tuples (*by values, pattern, count), at most (distinct by values) * 2^m of them.
    """
    rows = df.groupBy(*by, "pattern").agg(F.count(F.lit(1)).alias("n")).collect()
    return sorted((*(r[c] for c in by), int(r["pattern"]), int(r["n"])) for r in rows)


def dense_counts(pairs: Sequence[tuple[int, int]], m: int) -> np.ndarray:
    """(pattern, count) pairs -> int64 array of length 2^m indexed by pattern."""
    dense = np.zeros(1 << m, dtype=np.int64)
    for pattern, count in pairs:
        dense[pattern] += count
    return dense


def bits(patterns: np.ndarray | Sequence[int], m: int) -> np.ndarray:
    """Patterns (n,) -> 0/1 int8 matrix (n, m), column i = context i."""
    patterns = np.asarray(patterns, dtype=np.int64)
    return ((patterns[:, None] >> np.arange(m)) & 1).astype(np.int8)


def pattern_of(labels: np.ndarray) -> np.ndarray:
    """0/1 matrix (n, m) -> patterns (n,) int64; inverse of :func:`bits`."""
    labels = np.asarray(labels, dtype=np.int64)
    return (labels << np.arange(labels.shape[1])).sum(axis=1)


def context_counts(dense: np.ndarray, m: int) -> np.ndarray:
    """Tracks carrying each context, (m,) int64, from a dense pattern-count array."""
    nonzero = np.flatnonzero(dense)
    return (bits(nonzero, m).astype(np.int64) * dense[nonzero, None]).sum(axis=0)


def superset_sums(dense: np.ndarray, m: int) -> np.ndarray:
    """Subset-sum (zeta) transform over supersets: ``out[p] = sum(dense[q] for q ⊇ p)``.

    One pass per bit, each a suffix sum along that bit's axis of the (2,)*m view: O(m 2^m),
    about 0.5 M additions for 15 contexts.
    """
    if dense.shape != (1 << m,):
        raise ValueError(f"expected a dense array of {1 << m} pattern counts, got shape {dense.shape}")
    cube = dense.astype(np.int64).reshape((2,) * m) if m else dense.astype(np.int64).copy()
    for axis in range(m):
        cube = np.flip(np.cumsum(np.flip(cube, axis), axis=axis), axis)
    return np.ascontiguousarray(cube).reshape(-1)


def cooccurrence(dense: np.ndarray, m: int) -> np.ndarray:
    """(m, m) int64: tracks carrying both contexts (diagonal: tracks carrying each)."""
    nonzero = np.flatnonzero(dense)
    onehot = bits(nonzero, m).astype(np.int64)
    return onehot.T @ (onehot * dense[nonzero, None])
