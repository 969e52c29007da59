"""How the labelling plan joins and where Python runs (docs/design-notes.md, "Labelling: the
title pre-filter and the shuffle count"): a broadcast and a shuffled join give the same
result, and the Python matcher sees each distinct candidate title once."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from ctx_spark.label.rules import context_matcher, label_catalogue, matched_titles
from ctx_spark.label.settings import LabelSettings
from tests.label.test_labels import Catalogue, filler

ONE = LabelSettings(100, 0.25, 1)


def hostile_catalogue() -> Catalogue:
    """Shared titles, a duplicate row, an id with two titles, null ids, unknown and duplicate
    tracks, an oversized and an artist-dominated playlist."""
    cat = Catalogue()
    for pid in range(1, 7):
        cat.playlist(pid, "Car trip" if pid % 2 else "chill vibes", filler(1000 + 3 * pid, 6))
    cat.playlists.append((1, "Car trip"))  # a duplicate row: one playlist
    cat.playlist(7, "gym", filler(2000, 8))
    cat.playlists.append((7, "party"))  # two titles under one id: dropped
    cat.playlists.append((None, "car"))
    cat.playlist(8, "summer", filler(3000, 8), known=False)  # no known track
    cat.playlist_tracks += [(2, None), (3, 999_999)]  # a null and an unknown track
    cat.playlist(9, "work", filler(4000, 120))  # oversized
    cat.playlist(10, "sleep", [cat.track(5000 + i, artist=1) for i in range(8)])  # one artist
    cat.playlist(11, "jazz", filler(1000, 20))  # matches nothing
    return cat


def run(spark, config, settings: LabelSettings):
    """Counts, labels, report, and whether the matched rows' plan holds a broadcast join."""
    labelled = label_catalogue(*hostile_catalogue().frames(spark), config.contexts, settings)
    try:
        counts = [tuple(r) for r in labelled.counts.orderBy("track_id", "context").collect()]
        labels = [tuple(r) for r in labelled.labels.orderBy("track_id").collect()]
        plan = str(labelled.track_rows._jdf.queryExecution().executedPlan())
        return counts, labels, labelled.report(), "BroadcastHashJoin" in plan
    finally:
        labelled.release()


@contextmanager
def no_automatic_broadcast(spark) -> Iterator[None]:
    """Spark broadcasts tables this small on its own; switch that off for one block."""
    key = "spark.sql.autoBroadcastJoinThreshold"
    previous = spark.conf.get(key)
    spark.conf.set(key, "-1")
    try:
        yield
    finally:
        spark.conf.set(key, previous)


def test_broadcast_and_shuffled_joins_give_the_same_counts_labels_and_report(spark, config) -> None:
    with no_automatic_broadcast(spark):
        *broadcast, broadcast_plan = run(spark, config, ONE)
        *shuffled, shuffled_plan = run(spark, config, dataclasses.replace(ONE, broadcast_playlists=0))
    assert broadcast_plan and not shuffled_plan  # the setting alone decides the join
    assert broadcast[0] and broadcast[1]
    assert shuffled == broadcast
    report = broadcast[2]
    assert report["playlists_matched"] == 9  # 1-6, 8, 9, 10; 7 has two titles
    assert report["rows_dropped"]["matched_playlists_conflicting_titles"] == 1
    assert report["playlists_removed"]["oversized"] == 1
    assert report["playlists_removed"]["artist_dominated"] == 1


def test_python_matches_each_distinct_candidate_title_once(spark, config) -> None:
    playlists = hostile_catalogue().frames(spark)[0]
    plan = str(matched_titles(playlists, context_matcher(config.contexts))._jdf.queryExecution().executedPlan())
    # One Python evaluation, fed by the distinct titles (an aggregation), not one per side
    # of the join or below the de-duplication.
    assert plan.count("ArrowEvalPython") == 1
    python_input = plan.split("ArrowEvalPython", 1)[1].splitlines()[1]
    assert "HashAggregate" in python_input


def test_broadcast_limit_is_checked() -> None:
    with pytest.raises(ValueError, match="broadcast_playlists"):
        LabelSettings(100, 0.25, 1, broadcast_playlists=-1)
