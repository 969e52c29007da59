"""Evaluation metrics against scikit-learn on fixed predictions; threshold tuning; tables."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from sklearn import metrics as skm

from training import metrics, tables

CONTEXTS = ["car", "chill", "club", "dance", "gym", "happy"]


@pytest.fixture(scope="module")
def fixed():
    rng = np.random.default_rng(42)
    n = 300
    labels = (rng.random((n, len(CONTEXTS))) < 0.4).astype(np.uint8)
    noise = rng.random((n, len(CONTEXTS)))
    probs = np.clip(0.35 * labels + 0.65 * noise, 0, 1)
    probs[:, 1] = np.round(probs[:, 1], 1)  # many ties
    probs[:, 4] = 0.3 * noise[:, 4]  # never reaches 0.5: no predicted positive
    labels[:, 5] = 0  # no positive at all: AUC undefined
    return labels, probs


def test_metrics_match_scikit_learn(fixed):
    labels, probs = fixed
    values = metrics.per_context(labels, probs, 0.5)
    predicted = (probs >= 0.5).astype(int)
    for c in range(len(CONTEXTS)):
        y, p, yhat = labels[:, c], probs[:, c], predicted[:, c]
        assert values["hamming_loss"][c] == pytest.approx(skm.hamming_loss(y, yhat))
        assert values["recall"][c] == pytest.approx(skm.recall_score(y, yhat, zero_division=0))
        assert values["precision"][c] == pytest.approx(skm.precision_score(y, yhat, zero_division=0))
        assert values["f1"][c] == pytest.approx(skm.f1_score(y, yhat, zero_division=0))
        tn, fp, fn, tp = skm.confusion_matrix(y, yhat, labels=[0, 1]).ravel()
        assert values["tn_rate"][c] == pytest.approx(tn / (tn + fp))
        if y.min() != y.max():
            assert values["roc_auc"][c] == pytest.approx(skm.roc_auc_score(y, p))
        else:
            assert np.isnan(values["roc_auc"][c])
    assert values["precision"][4] == 0.0 and values["recall"][4] == 0.0
    macro = metrics.macro(values)
    assert macro["hamming_loss"] == pytest.approx(skm.hamming_loss(labels, predicted))
    valid = [c for c in range(len(CONTEXTS)) if labels[:, c].min() != labels[:, c].max()]
    assert macro["roc_auc"] == pytest.approx(skm.roc_auc_score(labels[:, valid], probs[:, valid], average="macro"))
    assert macro["f1"] == pytest.approx(skm.f1_score(labels, predicted, average="macro", zero_division=0))
    assert macro["recall"] == pytest.approx(skm.recall_score(labels, predicted, average="macro", zero_division=0))
    assert macro["precision"] == pytest.approx(skm.precision_score(labels, predicted, average="macro", zero_division=0))


def test_tuned_thresholds_reach_the_best_f1(fixed):
    labels, probs = fixed
    thresholds = metrics.tune_thresholds(labels, probs, default=0.5)
    for c in range(len(CONTEXTS)):
        y, p = labels[:, c], probs[:, c]
        if y.sum() == 0:
            assert thresholds[c] == 0.5
            continue
        cuts = np.unique(p)[:, None]  # brute force over every candidate threshold
        tp = ((p >= cuts) & (y == 1)).sum(axis=1)
        fp = ((p >= cuts) & (y == 0)).sum(axis=1)
        best = np.max(2 * tp / (2 * tp + fp + (y.sum() - tp)))
        assert skm.f1_score(y, (p >= thresholds[c]).astype(int), zero_division=0) == pytest.approx(best)
        assert not np.any(p == thresholds[c]) or thresholds[c] == p.min()  # not on a sample's score
    # per-context thresholds are used by the tuned evaluation
    tuned = metrics.evaluate_predictions(labels, probs, CONTEXTS, thresholds)
    assert tuned["per_context"]["car"]["threshold"] == pytest.approx(thresholds[0])
    assert tuned["macro"]["f1"] >= metrics.evaluate_predictions(labels, probs, CONTEXTS, 0.5)["macro"]["f1"]


def test_tables_are_shaped_like_the_papers(fixed):
    labels, probs = fixed
    result = metrics.evaluate_predictions(labels, probs, CONTEXTS, 0.5)
    markdown = tables.table1_markdown(result, "test")
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    assert lines[0] == "| context | HL | AUC | Recall | Precision | F1 | TN-rate | threshold |"
    assert len(lines) == 2 + len(CONTEXTS) + 1 and lines[-1].startswith("| macro average |")
    assert "n/a" in lines[2 + 5]  # the context without positives has no AUC
    rows = list(csv.reader(io.StringIO(tables.table1_csv(result))))
    assert rows[0][:3] == ["context", "HL", "AUC"] and len(rows) == len(CONTEXTS) + 2
    assert float(rows[-1][5]) == pytest.approx(result["macro"]["f1"])
    table2 = tables.table2_markdown({"none": {"fixed 0.5": result["macro"]}}, "t")
    assert (
        "| none | fixed 0.5 |" in table2
        and "| paper Table 1 (macro) | 0.5 | 0.32 | 0.73 | 0.66 | 0.69 | 0.67 | 0.64 |" in table2
    )
