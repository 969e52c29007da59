"""Dataset assembly: the numpy cores (patterns, stratification, weights, co-occurrences)
on hand-computed examples. No Spark."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ctx_spark.config import from_mapping
from ctx_spark.dataset import DatasetSettings
from ctx_spark.dataset import cooccurrence as C
from ctx_spark.dataset import patterns as P
from ctx_spark.dataset import weights as W
from ctx_spark.dataset.balance import processing_order, round_of_patterns
from ctx_spark.dataset.stratify import iterative_stratification, leftover_fractions, targets
from ctx_spark.errors import ConfigError
from ctx_spark.testing.weights import positive_reference


def dense_from_rows(rows, m):
    return P.dense_counts([(int(P.pattern_of(np.array([r]))[0]), 1) for r in rows], m)


# Training label vectors of the hand-worked example (contexts a, b, c, d; d never occurs).
TRAIN = [[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 0], [0, 1, 1, 0]]


def test_superset_sums_match_brute_force():
    m = 5
    rng = np.random.default_rng(3)
    dense = rng.integers(0, 4, size=1 << m)
    out = P.superset_sums(dense, m)
    for p in range(1 << m):
        assert out[p] == sum(dense[q] for q in range(1 << m) if q & p == p)


def test_bits_and_pattern_round_trip():
    labels = np.array([[1, 0, 1], [0, 0, 0], [1, 1, 1]])
    assert P.pattern_of(labels).tolist() == [5, 0, 7]
    assert P.bits([5, 0, 7], 3).tolist() == labels.tolist()


def test_negative_weights_hand_computed():
    m = 4
    train = dense_from_rows(TRAIN, m)
    patterns = P.pattern_of(np.array(TRAIN + [[0, 0, 1, 0], [0, 0, 0, 0], [1, 0, 0, 1]]))
    w = W.negative_weights(train, patterns, m)
    row = {int(p): i for i, p in enumerate(w.patterns)}

    def get(table, labels):
        return table[row[int(P.pattern_of(np.array([labels]))[0])]].tolist()

    # (a,b): n0 = 2; with c on: 1 -> 2/3; with d on: 0 -> 1.
    assert get(w.exact, [1, 1, 0, 0]) == pytest.approx([1, 1, 2 / 3, 1])
    # supersets of {a,b}: 3 tracks, 2 without c, 3 without d.
    assert get(w.ignore_zeros, [1, 1, 0, 0]) == pytest.approx([1, 1, 2 / 3, 1])
    # (a): n0 = 1; with b: 2 -> 1/3; with c: 0 -> 1; supersets of {a}: 4, 1 without b, 3 without c.
    assert get(w.exact, [1, 0, 0, 0]) == pytest.approx([1, 1 / 3, 1, 1])
    assert get(w.ignore_zeros, [1, 0, 0, 0]) == pytest.approx([1, 1 / 4, 3 / 4, 1])
    # (b,c): n0 = 1, with a: 1 -> 1/2; supersets of {b,c}: 2, 1 without a.
    assert get(w.exact, [0, 1, 1, 0]) == pytest.approx([1 / 2, 1, 1, 1])
    assert get(w.ignore_zeros, [0, 1, 1, 0]) == pytest.approx([1 / 2, 1, 1, 1])
    # Unseen (c): exact for a has n0 + n1 = 0 -> falls back to ignore-zeros (supersets of
    # {c}: 2, 1 without a); for b n1 = 1 (the (b,c) track) -> 0 / 1.
    assert get(w.ignore_zeros, [0, 0, 1, 0]) == pytest.approx([1 / 2, 0, 1, 1])
    assert get(w.exact, [0, 0, 1, 0]) == pytest.approx([1 / 2, 0, 1, 1])
    # No positives: ignore-zeros = marginal P(y_c = 0) over the 5 training tracks.
    marginal = [1 / 5, 1 / 5, 3 / 5, 1]
    assert get(w.ignore_zeros, [0, 0, 0, 0]) == pytest.approx(marginal)
    # exact: n0 = 0; the single-label patterns (a) occurs once -> 0 for a; others fall back.
    assert get(w.exact, [0, 0, 0, 0]) == pytest.approx([0, 1 / 5, 3 / 5, 1])
    # (a,d): no training track carries both -> marginal P(y_c = 0) for b and c.
    assert get(w.ignore_zeros, [1, 0, 0, 1]) == pytest.approx([1, 1 / 5, 3 / 5, 1])
    assert get(w.exact, [1, 0, 0, 1]) == pytest.approx([1, 1 / 5, 3 / 5, 1])
    assert get(w.ignore_zeros_fallback, [1, 0, 0, 1]) == [False, True, True, False]
    assert not w.exact_fallback[[row[int(p)] for p in P.pattern_of(np.array(TRAIN))]].any()


def test_negative_weights_need_training_tracks():
    with pytest.raises(ValueError, match="training split is empty"):
        W.negative_weights(np.zeros(8, dtype=np.int64), [1], 3)


def test_positive_weights_hand_computed():
    labels = np.array([[1, 0, 0], [1, 1, 0], [1, 1, 1]])
    counts = np.array([[4, 0, 0], [2, 6, 1], [6, 3, 3]])
    train = np.ones(3, dtype=bool)
    # Context a: N_a = 12; x = 4/12 log 3, 2/12 log 1.5, 0 (a track with all 3 contexts: IDF 0).
    xa = np.array([4 / 12 * math.log(3), 2 / 12 * math.log(1.5), 0.0])
    za = 1 + (xa - xa.mean()) / xa.std()
    expected_a = np.clip(za, 0, 2)
    assert expected_a[0] == 2.0 and 0 < expected_a[1] < 1 and 0 < expected_a[2] < expected_a[1]
    # Context b: two positives -> z = +1 and -1 -> 2 and 0. Context c: one positive -> std 0 -> 1.
    expected = np.array([[expected_a[0], 0, 0], [expected_a[1], 2, 0], [expected_a[2], 0, 1]])
    assert positive_reference(labels, counts, train) == pytest.approx(expected)
    # The same from the grouped integer sums the Spark job produces.
    sums = {}
    for row_labels, row_counts in zip(labels, counts):
        for c in range(3):
            key = (c, int(row_labels.sum()), int(row_labels[c]))
            k, s1, s2 = sums.get(key, (0, 0, 0))
            sums[key] = (k + 1, s1 + int(row_counts[c]), s2 + int(row_counts[c]) ** 2)
    stats = W.positive_stats(sorted((*key, *v) for key, v in sums.items()), 3)
    assert stats.totals.tolist() == [12, 9, 4]
    assert stats.mean[0] == pytest.approx(xa.mean()) and stats.std[0] == pytest.approx(xa.std())
    assert stats.std[2] == 0.0


@pytest.mark.parametrize("method, tolerance", [("greedy", 0.005), ("sechidis", 0.04)])
def test_stratification_keeps_proportions(method, tolerance):
    rng = np.random.default_rng(0)
    n, m = 3000, 6
    sizes = np.where(rng.random(n) < 0.01, rng.integers(20, 60, n), rng.integers(1, 5, n))
    sizes[0] = 150  # a compilation-sized group
    labels = (rng.random((n, m)) < np.linspace(0.1, 0.6, m)).astype(np.int64)
    label_counts = labels * sizes[:, None]
    fractions = np.array([0.65, 0.10, 0.25])
    want, want_l = targets(fractions, sizes.sum(), label_counts.sum(axis=0).astype(float))
    keys = np.arange(n)
    chosen = iterative_stratification(sizes, label_counts, want, want_l, keys, np.random.default_rng(1), method)
    assert set(chosen.tolist()) <= {0, 1, 2} and (chosen >= 0).all()
    share = np.array([sizes[chosen == j].sum() for j in range(3)]) / sizes.sum()
    assert share == pytest.approx(fractions, abs=tolerance)
    for c in range(m):
        per = np.array([label_counts[chosen == j, c].sum() for j in range(3)]) / label_counts[:, c].sum()
        assert per == pytest.approx(fractions, abs=tolerance)
    # Deterministic for the same keys and generator seed, whatever the input order.
    perm = rng.permutation(n)
    shuffled = iterative_stratification(
        sizes[perm], label_counts[perm], want, want_l, keys[perm], np.random.default_rng(1), method
    )
    assert (shuffled == chosen[perm]).all()


def test_stratification_places_a_giant_group_where_it_fits():
    # One group of 30% of the tracks cannot go to validation (10%) without breaking it.
    sizes = np.array([300] + [1] * 700)
    label_counts = np.ones((701, 1), dtype=np.int64) * sizes[:, None]
    want, want_l = targets(np.array([0.65, 0.10, 0.25]), 1000.0, np.array([1000.0]))
    for method in ("greedy", "sechidis"):
        chosen = iterative_stratification(
            sizes, label_counts, want, want_l, np.arange(701), np.random.default_rng(0), method
        )
        assert chosen[0] == 0, method
        assert [int(sizes[chosen == j].sum()) for j in range(3)] == [650, 100, 250], method


def test_leftover_fractions_ignore_overfull_splits():
    out = leftover_fractions(np.array([0.5, 0.5]), np.array([-10.0, 30.0]), np.array([[5.0], [15.0]]))
    assert out[:, 0].tolist() == [0.0, 1.0]
    assert out[:, 1].tolist() == [0.25, 0.75]


def test_balancing_rounds_follow_rarest_first():
    per_context = np.array([5, 2, 0, 9])
    order = processing_order(per_context)
    assert order == [1, 0, 3]  # context 2 carried by nobody is left out
    rounds = round_of_patterns(order, 4)
    assert rounds[0b0010] == 0 and rounds[0b0011] == 0  # carries context 1 -> round 0
    assert rounds[0b1001] == 1 and rounds[0b1000] == 2 and rounds[0b0100] == -1 and rounds[0] == -1


def test_cooccurrence_matrices_and_csv():
    m = 3
    dense = dense_from_rows([[1, 1, 0], [1, 1, 0], [1, 0, 1], [0, 0, 1]], m)
    counts, conditional = C.matrices(dense, m)
    assert counts.tolist() == [[3, 2, 1], [2, 2, 0], [1, 0, 2]]
    assert conditional[0].tolist() == pytest.approx([1, 2 / 3, 1 / 3])
    assert conditional[1].tolist() == pytest.approx([1, 1, 0])
    text = C.to_csv(counts, conditional, ["a", "b", "c"])
    lines = text.strip().split("\n")
    assert lines[0] == C.CSV_HEADER and len(lines) == 1 + m * m
    assert lines[2] == "a,b,2,0.666667"
    png = C.heatmap_png(counts, conditional, ["a", "b", "c"], "t")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_settings_validation():
    good = {
        "seed": 1,
        "balance": True,
        "cap": None,
        "split": {"train": 0.6, "validation": 0.2, "test": 0.2},
        "stratification": "greedy",
        "tolerance": 0.02,
        "max_album_artists": None,
        "giant_groups": 10,
        "groups_per_bucket": 100,
        "max_component_iterations": 10,
        "driver_components_max_edges": 0,
        "checkpoint_dir": None,
        "percentile_accuracy": 100,
    }
    assert from_mapping(DatasetSettings, good, "dataset").split.as_tuple() == (0.6, 0.2, 0.2)
    for key, value, message in [
        ("split", {"train": 0.6, "validation": 0.3, "test": 0.2}, "sum to 1"),
        ("cap", 0, "cap"),
        ("tolerance", 0, "tolerance"),
        ("stratification", "random", "greedy or sechidis"),
    ]:
        with pytest.raises(ConfigError, match=message):
            from_mapping(DatasetSettings, {**good, key: value}, "dataset")


def test_default_config_has_a_valid_dataset_section(config):
    settings = config.section("dataset", DatasetSettings)
    assert settings.split.as_tuple() == (0.65, 0.10, 0.25) and settings.cap is None
