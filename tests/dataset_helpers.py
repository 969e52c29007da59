"""Helpers shared by the dataset tests: slow, direct reference computations of the loss
weights, written from the definitions (loops over tracks), to check the Spark code."""

from __future__ import annotations

import numpy as np


def reference_negative(train_labels: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """neg_exact and neg_ignore_zeros of one label vector ``y`` (m,), by scanning the
    training label matrix (n, m) row by row, with the documented fallbacks."""
    m = len(y)
    rows = [tuple(int(v) for v in r) for r in train_labels]
    target = tuple(int(v) for v in y)
    positives = [c for c in range(m) if target[c] == 1]
    exact, ignore = np.ones(m), np.ones(m)
    for c in range(m):
        if target[c] == 1:
            continue
        carrying_all = [r for r in rows if all(r[j] == 1 for j in positives)]
        if carrying_all:
            ignore[c] = sum(1 for r in carrying_all if r[c] == 0) / len(carrying_all)
        else:
            ignore[c] = sum(1 for r in rows if r[c] == 0) / len(rows)
        switched = tuple(1 if j == c else target[j] for j in range(m))
        n0 = sum(1 for r in rows if r == target)
        n1 = sum(1 for r in rows if r == switched)
        exact[c] = n0 / (n0 + n1) if n0 + n1 else ignore[c]
    return exact, ignore
