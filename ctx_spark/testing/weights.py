"""A direct numpy computation of the ``pos_tfidf`` weights, to check the Spark one against."""

from __future__ import annotations

import numpy as np

from ctx_spark.dataset.weights import idf


def positive_reference(labels: np.ndarray, n_playlists: np.ndarray, train: np.ndarray) -> np.ndarray:
    """A direct numpy computation of ``pos_tfidf`` (for tests and checks).

    Args:
        labels: (n, m) 0/1; n_playlists: (n, m) counts; train: (n,) bool, training rows.
    """
    m = labels.shape[1]
    n_labels = labels.sum(axis=1)
    logs = np.array(idf(m))[n_labels]
    totals = (n_playlists[train]).sum(axis=0).astype(float)
    out = np.zeros(labels.shape)
    for c in range(m):
        x = n_playlists[:, c] / totals[c] * logs if totals[c] > 0 else np.zeros(len(labels))
        pos_train = (labels[:, c] == 1) & train
        mu, sd = (x[pos_train].mean(), x[pos_train].std()) if pos_train.any() else (0.0, 0.0)
        w = np.clip(1 + (x - mu) / sd, 0, 2) if sd > 0 and totals[c] > 0 else np.ones(len(labels))
        out[:, c] = np.where(labels[:, c] == 1, w, 0.0)
    return out
