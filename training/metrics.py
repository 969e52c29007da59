"""Per-context and macro metrics of the paper's Tables 1 and 2, in numpy.

For one context with labels y and probabilities p, thresholded at t (positive when p >= t):

* Hamming loss: fraction of tracks whose predicted label differs from the true one;
* ROC-AUC: area under the ROC curve of p (threshold-free; NaN when the context has only
  positives or only negatives);
* recall TP/(TP+FN), precision TP/(TP+FP), F1 = 2PR/(P+R), true-negative rate
  TN/(TN+FP); a ratio with an empty denominator is 0 (scikit-learn's zero_division=0).

Macro values are the unweighted means over contexts (NaN AUCs left out). The macro
Hamming loss equals the multi-label Hamming loss over all track/context pairs.
Thresholds can be tuned per context on another split to maximise that context's F1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Column names and order of the paper's Table 1 (and our per-variant Table 2 rows).
METRICS: tuple[str, ...] = ("hamming_loss", "roc_auc", "recall", "precision", "f1", "tn_rate")
METRIC_TITLES = {
    "hamming_loss": "HL",
    "roc_auc": "AUC",
    "recall": "Recall",
    "precision": "Precision",
    "f1": "F1",
    "tn_rate": "TN-rate",
}


def _check(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=np.float64)
    if labels.shape != probs.shape or labels.ndim != 2:
        raise ValueError(f"labels {labels.shape} and probabilities {probs.shape} must both be (tracks, contexts)")
    return labels.astype(bool), probs


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def roc_auc(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """ROC-AUC per context (C,), via the Mann-Whitney statistic with tie-averaged ranks."""
    labels, probs = _check(labels, probs)
    out = np.full(labels.shape[1], np.nan)
    for c in range(labels.shape[1]):
        y, p = labels[:, c], probs[:, c]
        n_pos = int(y.sum())
        n_neg = y.size - n_pos
        if n_pos == 0 or n_neg == 0:
            continue
        order = np.argsort(p, kind="mergesort")
        sorted_p = p[order]
        ranks = np.empty(p.size)
        # average ranks (1-based) over ties
        _, first, counts = np.unique(sorted_p, return_index=True, return_counts=True)
        avg = first + (counts + 1) / 2.0
        ranks[order] = np.repeat(avg, counts)
        out[c] = (ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    return out


def confusion(labels: np.ndarray, probs: np.ndarray, thresholds) -> dict[str, np.ndarray]:
    """TP, FP, TN, FN per context (C,) at ``thresholds`` (scalar or (C,))."""
    labels, probs = _check(labels, probs)
    predicted = probs >= np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (labels.shape[1],))
    return {
        "tp": (predicted & labels).sum(axis=0),
        "fp": (predicted & ~labels).sum(axis=0),
        "tn": (~predicted & ~labels).sum(axis=0),
        "fn": (~predicted & labels).sum(axis=0),
    }


def per_context(labels: np.ndarray, probs: np.ndarray, thresholds) -> dict[str, np.ndarray]:
    """Every metric of :data:`METRICS` per context, each (C,)."""
    counts = confusion(labels, probs, thresholds)
    tp, fp, tn, fn = (counts[k].astype(np.float64) for k in ("tp", "fp", "tn", "fn"))
    recall = _ratio(tp, tp + fn)
    precision = _ratio(tp, tp + fp)
    return {
        "hamming_loss": (fp + fn) / (tp + fp + tn + fn),
        "roc_auc": roc_auc(labels, probs),
        "recall": recall,
        "precision": precision,
        "f1": _ratio(2 * precision * recall, precision + recall),
        "tn_rate": _ratio(tn, tn + fp),
    }


def macro(values: dict[str, np.ndarray]) -> dict[str, float]:
    """Unweighted mean over contexts of each metric (NaN entries left out)."""
    out = {}
    for name, array in values.items():
        finite = np.asarray(array, dtype=np.float64)
        finite = finite[~np.isnan(finite)]
        out[name] = float(finite.mean()) if finite.size else float("nan")
    return out


def tune_thresholds(labels: np.ndarray, probs: np.ndarray, default: float = 0.5) -> np.ndarray:
    """Per-context threshold maximising F1 on (labels, probs), shape (C,).

    Candidate thresholds are the distinct probabilities (predict positive when p >= t);
    the midpoint between the chosen probability and the next lower one is returned, so the
    threshold does not sit exactly on a training example's score. A context without
    positives keeps ``default``.
    """
    labels, probs = _check(labels, probs)
    out = np.full(labels.shape[1], float(default))
    for c in range(labels.shape[1]):
        y, p = labels[:, c], probs[:, c]
        n_pos = int(y.sum())
        if n_pos == 0:
            continue
        order = np.argsort(-p, kind="mergesort")
        sp, sy = p[order], y[order]
        tp = np.cumsum(sy)
        k = np.arange(1, sp.size + 1)
        # only cut where the score changes: the last index of each run of equal scores
        last = np.r_[sp[1:] != sp[:-1], True]
        f1 = np.where(last, 2 * tp / (k + n_pos), -1.0)
        best = int(np.argmax(f1))
        lower = sp[best + 1] if best + 1 < sp.size else 0.0
        out[c] = float((sp[best] + lower) / 2.0) if best + 1 < sp.size else float(sp[best])
    return out


def evaluate_predictions(labels: np.ndarray, probs: np.ndarray, contexts: Sequence[str], thresholds) -> dict:
    """Per-context and macro metrics at ``thresholds``, as a JSON-able dict."""
    values = per_context(labels, probs, thresholds)
    thresholds = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (len(contexts),))
    return {
        "per_context": {
            name: {
                **{m: float(values[m][c]) for m in METRICS},
                "threshold": float(thresholds[c]),
                "positives": int(np.asarray(labels)[:, c].sum()),
            }
            for c, name in enumerate(contexts)
        },
        "macro": macro(values),
        "tracks": int(np.asarray(labels).shape[0]),
    }
