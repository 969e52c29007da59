"""Helpers shared by the dataset tests: direct reference computations of the loss weights,
written from their definitions (masks over the whole training label matrix, one track at a
time), independent of the pattern tables and subset-sum transform the Spark code uses."""

from __future__ import annotations

import numpy as np


def reference_negative(train_labels: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """neg_exact and neg_ignore_zeros of one label vector ``y`` (m,), from the training
    label matrix (n, m), with the documented fallbacks."""
    train_labels = np.asarray(train_labels)
    y = np.asarray(y)
    m = len(y)
    positives = np.flatnonzero(y == 1)
    carrying_all = (train_labels[:, positives] == 1).all(axis=1)
    n0 = int((train_labels == y).all(axis=1).sum())
    exact, ignore = np.ones(m), np.ones(m)
    for c in np.flatnonzero(y == 0):
        if carrying_all.any():
            ignore[c] = (train_labels[carrying_all, c] == 0).mean()
        else:  # no training track carries all of y's positives: marginal P(y_c = 0)
            ignore[c] = (train_labels[:, c] == 0).mean()
        switched = y.copy()
        switched[c] = 1
        n1 = int((train_labels == switched).all(axis=1).sum())
        exact[c] = n0 / (n0 + n1) if n0 + n1 else ignore[c]
    return exact, ignore
