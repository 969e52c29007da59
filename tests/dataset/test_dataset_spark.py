"""Dataset assembly steps on a real local SparkSession: balancing, connected components,
input checks. (The Spark weights are checked against a direct computation in
test_dataset_pipeline.py and, on the authors' data, in test_dataset_ibrahim.py.)"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from ctx_spark.cli import run_main
from ctx_spark.dataset import patterns as P
from ctx_spark.dataset.balance import balance
from ctx_spark.dataset.groups import connected_groups
from ctx_spark.dataset.inputs import check_track_labels, prepare_tracks
from ctx_spark.errors import InputError
from ctx_spark.schema import TRACK_LABELS, validate
from ctx_spark.testing.labels import generate_track_labels
from tests.conftest import write_parquet_table

LABEL_SCHEMA = "track_id long, artist_id long, album_id long, contexts array<string>, n_playlists array<int>"


def labels_df(spark, rows):
    return spark.createDataFrame(rows, LABEL_SCHEMA)


def prepared_with_counts(df, names):
    prepared = prepare_tracks(df, names)
    counts = P.dense_counts([(p, n) for p, n in P.collect_pattern_counts(prepared)], len(names))
    return prepared, counts


def test_balancing_hand_example(spark):
    names = ("x", "y", "z")
    rows = []
    for t in range(1, 21):
        contexts = []
        if t <= 4:
            contexts.append("x")
        if t in (1, 2) or 5 <= t <= 10:
            contexts.append("y")
        if t == 5 or t >= 11:
            contexts.append("z")
        rows.append((t, t, None, contexts, [1, 1, 1]))
    prepared, counts = prepared_with_counts(labels_df(spark, rows), names)
    result = balance(prepared, names, None, seed=7, input_counts=counts)
    chosen = result.selected.select("track_id", "labels").collect()
    ids = [r["track_id"] for r in chosen]
    assert len(ids) == len(set(ids)), "a track was selected twice"
    per_context = np.array([list(r["labels"]) for r in chosen]).sum(axis=0)
    assert result.report["cap"] == 4 and result.report["order"] == ["x", "y", "z"]
    assert per_context.tolist() == [4, 4, 4]
    assert {k: v["after"] for k, v in result.report["per_context"].items()} == {"x": 4, "y": 4, "z": 4}
    assert {1, 2, 3, 4} <= set(ids)
    result.release()


def test_balancing_reaches_cap_on_generated_tracks(spark, config):
    # (Partition independence of the draw is tested end to end in test_dataset_pipeline.py.)
    names = config.contexts.names
    table = generate_track_labels(1500, names, seed=11)
    df = validate(spark.createDataFrame(table.to_pandas(), LABEL_SCHEMA), TRACK_LABELS)
    prepared, counts = prepared_with_counts(df, names)
    result = balance(prepared, names, 60, seed=3, input_counts=counts)
    rows = result.selected.select("track_id", "labels").collect()
    ids = [r["track_id"] for r in rows]
    assert len(ids) == len(set(ids)), "a track was selected twice"
    after = np.array([list(r["labels"]) for r in rows]).sum(axis=0)
    report = result.report
    assert after.tolist() == [report["per_context"][n]["after"] for n in names]
    for entry in report["rounds"]:
        if entry["candidates"] >= entry["shortfall"]:
            assert report["per_context"][entry["context"]]["after"] >= 60, entry
    assert all(v["reached_cap"] for v in report["per_context"].values())
    assert report["order"][0] == names[int(np.argmin(P.context_counts(counts, len(names))))]
    result.release()


def _groups(spark, rows, **kwargs):
    df = spark.createDataFrame(rows, "track_id long, artist_id long, album_id long")
    result = connected_groups(df, max_iterations=30, **kwargs)
    by_group: dict[str, set] = {}
    for r in result.tracks.collect():
        by_group.setdefault(r["group_id"], set()).add(r["track_id"])
    return {k: sorted(v) for k, v in by_group.items()}, result


def test_components_with_a_compilation_and_a_chain(spark):
    rows = []
    for artist in range(1, 11):  # artists 1..10, two tracks each on their own album
        rows += [(artist * 10, artist, artist * 100), (artist * 10 + 1, artist, artist * 100)]
    rows += [(900 + a, a, 999) for a in range(1, 6)]  # a compilation album linking artists 1..5
    rows += [(5000, None, None), (5001, None, 600), (5002, 77, None)]  # no link; album of artist 6; artist only
    chain = [(7000 + i, 100 + i, 3000 + i) for i in range(7)] + [(7100 + i, 101 + i, 3000 + i) for i in range(6)]
    rows += chain  # artist 100 - album 3000 - artist 101 - album 3001 - ... - artist 106: 13 edges
    # In Spark (propagation rounds) and on the driver (scipy): the same group ids.
    spark_groups, result = _groups(spark, rows)
    assert not result.on_driver and result.iterations < 7  # pointer jumping: fewer rounds than the chain
    driver_groups, on_driver = _groups(spark, rows, driver_max_edges=1000)
    assert on_driver.on_driver and driver_groups == spark_groups
    assert result.edges == on_driver.edges == 10 + 5 + 13
    groups = sorted(spark_groups.values())
    compilation = sorted(
        [a * 10 for a in range(1, 6)] + [a * 10 + 1 for a in range(1, 6)] + [900 + a for a in range(1, 6)]
    )
    assert compilation in groups
    assert [60, 61, 5001] in groups and [5000] in groups and [5002] in groups
    assert sorted(t for t, _, _ in chain) in groups
    assert len(groups) == 1 + 5 + 1 + 1 + 1  # compilation, artists 6..10, two loners, chain
    assert spark_groups.keys() >= {"track:5000", "artist:77", "album:1000"}  # smallest node id of each
    # Unlinking albums with more than 3 artists splits the compilation into its artists.
    groups, result = _groups(spark, [r for r in rows if r[0] < 1000], max_album_artists=3, driver_max_edges=1000)
    assert result.albums_unlinked == 1
    assert [10, 11, 901] in groups.values() and [50, 51, 905] in groups.values()


def test_input_checks_name_table_and_column(spark, config, tmp_path, capsys):
    names = config.contexts.names
    good = [(1, 1, 1, ["car"], [3] + [0] * 14), (2, 1, None, ["chill", "sad"], [0, 4] + [0] * 13)]
    check_track_labels(labels_df(spark, good), names)
    bad_length = good + [(3, 2, 2, ["car"], [3, 0, 0])]
    with pytest.raises(InputError, match=r"track_labels.*'n_playlists'.*15 counts.*length 3"):
        check_track_labels(labels_df(spark, bad_length), names)
    with pytest.raises(InputError, match=r"track_labels.*'contexts'.*'beach'"):
        check_track_labels(labels_df(spark, good + [(3, 2, 2, ["beach"], [0] * 15)]), names)
    with pytest.raises(InputError, match=r"track_labels.*'track_id' must be unique.*e\.g\. 1 appears 2"):
        check_track_labels(labels_df(spark, good + [good[0]]), names)
    with pytest.raises(InputError, match=r"track_labels.*no rows"):
        check_track_labels(labels_df(spark, []), names)
    # Through the job: a missing column and an empty table exit with code 2 and a message.
    from jobs.build_dataset import main

    missing = write_parquet_table(
        tmp_path / "missing.parquet", {"track_id": [1], "artist_id": [1], "album_id": [1], "contexts": [["car"]]}
    )
    assert main(["--labels", missing, "--out", str(tmp_path / "out")]) == 2
    assert "error: table 'track_labels': missing column 'n_playlists'" in capsys.readouterr().err
    empty = write_parquet_table(
        tmp_path / "empty.parquet",
        {k: [] for k in ("track_id", "artist_id", "album_id")} | {"contexts": [], "n_playlists": []},
        pa.schema(
            [
                ("track_id", pa.int64()),
                ("artist_id", pa.int64()),
                ("album_id", pa.int64()),
                ("contexts", pa.list_(pa.string())),
                ("n_playlists", pa.list_(pa.int32())),
            ]
        ),
    )
    assert run_main(main, ["--labels", empty, "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out" / "dataset").exists()
