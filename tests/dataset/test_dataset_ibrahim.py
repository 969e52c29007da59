"""The dataset code on the authors' real label matrix (../shared/data/deezer_context_ibrahim,
49,929 balanced tracks with per-context playlist counts): the Spark weights against a
direct computation, and the balancing on labels that are already balanced.
Skipped when the data is absent."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.sql import functions as F

from ctx_spark.dataset import patterns as P
from ctx_spark.dataset import weights as W
from ctx_spark.dataset.balance import balance
from ctx_spark.dataset.inputs import prepare_tracks
from ctx_spark.schema import TRACK_LABELS, WEIGHT_COLUMNS, validate
from ctx_spark.sources.ibrahim import write_ibrahim_track_labels
from ctx_spark.testing.weights import positive_reference
from tests.conftest import shared_data
from tests.dataset_helpers import reference_negative


@pytest.fixture(scope="module")
def authors(spark, config, tmp_path_factory):
    """The authors' labels as a prepared DataFrame, with their own split in ``split``."""
    directory = shared_data("deezer_context_ibrahim")
    path = write_ibrahim_track_labels(
        directory, tmp_path_factory.mktemp("ibrahim") / "labels.parquet", config.contexts.names, with_split=True
    )
    raw = spark.read.parquet(path)
    prepared = prepare_tracks(validate(raw, TRACK_LABELS), config.contexts.names)
    splits = raw.select("track_id", F.col("authors_split").alias("split"))
    return prepared.join(splits, "track_id").persist()


def test_loader_shape(authors, config):
    stats = authors.agg(
        F.count(F.lit(1)).alias("n"),
        F.count("artist_id").alias("with_artist"),
        F.avg("n_labels").alias("labels"),
        F.count("split").alias("with_split"),
    ).first()
    assert stats["n"] == 49929 and stats["with_artist"] == 48582 and stats["with_split"] == 48582
    assert stats["labels"] == pytest.approx(7.2, abs=0.05)  # the paper: about 7.2 labels per track


def test_weights_on_the_authors_split_match_a_direct_computation(authors, config):
    m = len(config.contexts.names)
    rows = authors.where(F.col("split").isNotNull())
    by_split = P.collect_pattern_counts(rows, ["split"])
    train_counts = P.dense_counts([(p, n) for s, p, n in by_split if s == "train"], m)
    negative = W.negative_weights(train_counts, [p for _, p, _ in by_split], m)
    stats = W.positive_stats(W.positive_sums(rows.where(F.col("split") == "train")), m)
    weighted = W.add_weights(rows, negative, stats, m)
    out = weighted.select("split", "labels", "n_playlists", *WEIGHT_COLUMNS).orderBy("track_id").toPandas()
    labels = np.stack(out["labels"].to_numpy()).astype(int)
    counts = np.stack(out["n_playlists"].to_numpy()).astype(int)
    train = (out["split"] == "train").to_numpy()
    assert train.sum() == 32771
    pos = np.stack(out["pos_tfidf"].to_numpy())
    assert pos == pytest.approx(positive_reference(labels, counts, train), abs=1e-5)
    sample = np.random.default_rng(0).choice(len(out), 250, replace=False)
    fallbacks = 0
    for i in sample:
        exact, ignore = reference_negative(labels[train], labels[i])
        assert list(out["neg_exact"][i]) == pytest.approx(exact, abs=1e-6), (i, out["split"][i])
        assert list(out["neg_ignore_zeros"][i]) == pytest.approx(ignore, abs=1e-6), (i, out["split"][i])
        fallbacks += not train[i] and not (labels[train] == labels[i]).all(axis=1).any()
    assert fallbacks > 0  # the sample exercises validation/test patterns unseen in training


def test_balancing_the_already_balanced_labels(authors, config):
    names = config.contexts.names
    counts = P.dense_counts([(p, n) for p, n in P.collect_pattern_counts(authors)], len(names))
    result = balance(authors, names, None, seed=1, input_counts=counts)
    report = result.report
    result.release()
    # The rarest contexts hold exactly 20,000 tracks: the cap; every context keeps it.
    assert report["cap"] == 20000
    assert all(v["after"] >= 20000 for v in report["per_context"].values())
    # Nearly every track is kept (they were selected by this very procedure).
    assert report["tracks_after"] >= 0.97 * 49929
    assert report["labels_per_track_after"] == pytest.approx(7.2, abs=0.1)
