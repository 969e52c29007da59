"""The dataset job end to end on a generated labels table: outputs, invariants of the
split, and determinism under a fixed seed across different Spark partitionings."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ctx_spark.cli import run_main
from ctx_spark.config import load_config
from ctx_spark.dataset.run import run_dataset_stage
from ctx_spark.testing.labels import write_track_labels
from ctx_spark.testing.weights import positive_reference
from tests.dataset_helpers import reference_negative

#: Small buckets and few giants, so both split passes run on a small table.
SETTINGS = ["dataset.giant_groups=5", "dataset.groups_per_bucket=300", "dataset.cap=300"]


@pytest.fixture(scope="module")
def built(spark, config, tmp_path_factory):
    """Run the job through its CLI entry point once; return (labels path, out dir, rows)."""
    from jobs.build_dataset import main

    root = tmp_path_factory.mktemp("dataset")
    write_track_labels(
        root / "track_labels" / "part-0.parquet",
        6000,
        config.contexts.names,
        seed=21,
        tracks_per_artist=3.0,
        compilations=2,
        compilation_size=12,
        themed=True,
    )
    out = root / "out"
    argv = ["--labels", str(root / "track_labels"), "--out", str(out)]
    for item in SETTINGS:
        argv += ["--set", item]
    assert run_main(main, argv) == 0
    rows = pd.read_parquet(out / "dataset").sort_values("track_id").reset_index(drop=True)
    return root, out, rows


def test_outputs_and_schema(built, config):
    _, out, rows = built
    names = config.contexts.names
    report = json.loads((out / "report.json").read_text())
    assert list(rows.columns) == [
        "track_id",
        "artist_id",
        "album_id",
        "group_id",
        "split",
        "labels",
        "n_playlists",
        "neg_exact",
        "neg_ignore_zeros",
        "pos_tfidf",
    ]
    assert set(rows["split"]) == {"train", "validation", "test"}
    assert rows["track_id"].is_unique and len(rows) == report["balance"]["tracks_after"]
    labels = np.stack(rows["labels"].to_numpy())
    assert labels.shape[1] == len(names) and set(np.unique(labels)) <= {0, 1} and labels.dtype == np.int8
    # Balancing: the dataset's per-context counts are the report's, every context at the cap.
    per_context = labels.sum(axis=0)
    assert per_context.tolist() == [report["balance"]["per_context"][n]["after"] for n in names]
    assert (per_context >= 300).all()
    # Weights: ranges, and the entries the definitions fix.
    neg_exact, neg_iz, pos = (np.stack(rows[c].to_numpy()) for c in ("neg_exact", "neg_ignore_zeros", "pos_tfidf"))
    assert neg_exact.dtype == np.float32
    for w in (neg_exact, neg_iz):
        assert ((w >= 0) & (w <= 1)).all() and (w[labels == 1] == 1).all()
    assert ((pos >= 0) & (pos <= 2)).all() and (pos[labels == 0] == 0).all()
    train_pos = pos[(rows["split"] == "train").to_numpy()][labels[(rows["split"] == "train").to_numpy()] == 1]
    assert train_pos.mean() == pytest.approx(1.0, abs=0.15)  # z-scored, shifted to 1 (then clipped)
    assert report["weights"]["neg_exact"]["train"]["fallback_entries"] == 0
    # Co-occurrences: 15 x 15 tidy rows whose diagonal is the per-context count; a PNG.
    table = pd.read_csv(out / "cooccurrence.csv")
    assert len(table) == len(names) ** 2
    diagonal = table[table["context"] == table["co_context"]].set_index("context")["tracks"]
    assert diagonal.reindex(names).tolist() == per_context.tolist()
    assert (out / "cooccurrence.png").read_bytes()[:4] == b"\x89PNG"
    assert set(report["seconds"]) >= {"balance", "connected components", "split", "weights", "write dataset"}


def test_no_artist_or_album_on_two_sides_and_proportions(built, config):
    _, out, rows = built
    report = json.loads((out / "report.json").read_text())
    for column in ("artist_id", "album_id", "group_id"):
        sides = rows.dropna(subset=[column]).groupby(column)["split"].nunique()
        assert (sides == 1).all(), f"{column} on two sides: {sides[sides > 1].index.tolist()[:5]}"
    # Every album and every artist lies in one group (so, above, on one side); the
    # compilation albums that survived balancing still link several artists.
    for column in ("artist_id", "album_id"):
        assert (rows.dropna(subset=[column]).groupby(column)["group_id"].nunique() == 1).all()
    compilation = rows[rows["album_id"] > 10_000_000]
    assert compilation.groupby("album_id")["artist_id"].nunique().min() >= 3
    assert report["groups"]["size_max"] > 20 and report["split"]["giant_groups"] == 5
    # Proportions, recomputed from the rows: all tracks and every context.
    labels = np.stack(rows["labels"].to_numpy())
    targets = {"train": 0.65, "validation": 0.10, "test": 0.25}
    for split, target in targets.items():
        mask = (rows["split"] == split).to_numpy()
        assert mask.mean() == pytest.approx(target, abs=0.02)
        shares = labels[mask].sum(axis=0) / labels.sum(axis=0)
        assert np.abs(shares - target).max() <= 0.03, (split, shares)
    assert report["split"]["within_tolerance"] is True


def test_rerun_with_other_partitioning_gives_the_same_rows(built, spark):
    root, _, rows = built
    cfg = load_config(overrides=SETTINGS)
    previous = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "7")
    try:
        run_dataset_stage(spark, cfg, str(root / "track_labels"), str(root / "again"))
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", previous)
    again = pd.read_parquet(root / "again" / "dataset").sort_values("track_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(rows, again)


def test_weights_match_a_direct_computation(built, config):
    _, _, rows = built
    labels = np.stack(rows["labels"].to_numpy()).astype(int)
    counts = np.stack(rows["n_playlists"].to_numpy()).astype(int)
    train = (rows["split"] == "train").to_numpy()
    expected = positive_reference(labels, counts, train)
    assert np.stack(rows["pos_tfidf"].to_numpy()) == pytest.approx(expected, abs=1e-5)
    for i in range(0, len(rows), 5):  # the direct computation is slow: a sample of rows
        exact, ignore = reference_negative(labels[train], labels[i])
        assert list(rows["neg_exact"][i]) == pytest.approx(exact, abs=1e-6), (i, rows["split"][i])
        assert list(rows["neg_ignore_zeros"][i]) == pytest.approx(ignore, abs=1e-6), (i, rows["split"][i])
