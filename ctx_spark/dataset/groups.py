"""Groups of tracks that must stay on one side of the split: connected components of the
bipartite graph track - artist / album.

Two tracks are in the same group when a chain of shared artists or shared albums links
them (a compilation album links all its artists, and through them all their other tracks).
The graph's nodes are artists and albums; each distinct (artist, album) pair of a track is
an edge. Components are found by min-label propagation with pointer jumping, entirely in
DataFrames (no GraphFrames): every node starts with its own id as label; each round a node
takes the smallest label among itself and its neighbours, then the label of its label
(pointer jumping, which makes long chains converge in a logarithmic number of rounds). The
rounds stop when no label changes, which happens only when every edge joins two equal
labels, i.e. each component carries one label (its smallest node id). Every round is
checkpointed, so the query plan stays one round long.

Node ids are strings ``artist:<id>`` and ``album:<id>``, which serves integer and string
ids alike and keeps the group id readable; a track with neither artist nor album is its own
group, ``track:<id>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ctx_spark.logs import get_logger

log = get_logger("dataset.groups")


def _node(prefix: str, column: str) -> F.Column:
    return F.when(F.col(column).isNotNull(), F.concat(F.lit(prefix), F.col(column).cast("string")))


@dataclass
class GroupResult:
    """Tracks with their group, and how the components were found.

    Attributes:
        tracks: the input rows plus ``group_id`` (string).
        iterations: propagation rounds run (the last one changed nothing; 0 on the driver).
        nodes: artists and albums sharing a track with another node; ``edges``: distinct
            artist-album pairs.
        on_driver: whether the components were found on the driver (small graph).
        albums_unlinked: albums left out of the graph by ``max_album_artists``.
    """

    tracks: DataFrame
    iterations: int
    nodes: int
    edges: int
    albums_unlinked: int = 0
    on_driver: bool = False

    def report(self) -> dict[str, Any]:
        return {
            "linked_nodes": self.nodes,
            "graph_edges": self.edges,
            "components_on_driver": self.on_driver,
            "propagation_rounds": self.iterations,
            "albums_unlinked": self.albums_unlinked,
        }


class _Checkpointer:
    """Reliable checkpoints in ``directory`` when given, else local checkpoints."""

    def __init__(self, spark: SparkSession, directory: Optional[str]):
        self.reliable = directory is not None
        if directory is not None:
            spark.sparkContext.setCheckpointDir(directory)

    def __call__(self, df: DataFrame) -> DataFrame:
        return df.checkpoint(eager=True) if self.reliable else df.localCheckpoint(eager=True)


def unlink_large_albums(tracks: DataFrame, max_album_artists: Optional[int]) -> tuple[DataFrame, int]:
    """Null the album of tracks whose album has more than ``max_album_artists`` distinct
    artists (compilations), so that such albums link nothing.

    Returns:
        (tracks with ``_link_album`` = the album id or null, number of albums unlinked).
        With ``max_album_artists`` None every album links and nothing is counted.
    """
    if max_album_artists is None:
        return tracks.withColumn("_link_album", F.col("album_id")), 0
    large = (
        tracks.where(F.col("album_id").isNotNull())
        .groupBy("album_id")
        .agg(F.countDistinct("artist_id").alias("_artists"))
        .where(F.col("_artists") > max_album_artists)
        .select(F.col("album_id").alias("_large"))
    )
    n_large = large.count()  # one extra aggregation, only when the setting is used
    flagged = tracks.join(large, tracks["album_id"] == large["_large"], "left")
    return (
        flagged.withColumn("_link_album", F.when(F.col("_large").isNull(), F.col("album_id"))).drop("_large"),
        n_large,
    )


def driver_components(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Components of a small graph on the driver (scipy), labelled like the Spark path.

    Args:
        pairs: undirected edges (node, node).

    Returns:
        (node, label) for every node of an edge; ``label`` is the smallest node id of its
        component (string order; the same as Spark's for UTF-8 strings).
    """
    if not pairs:
        return []
    ends = np.array([a for a, _ in pairs] + [b for _, b in pairs], dtype=object)
    nodes, index = np.unique(ends, return_inverse=True)  # sorted: position order = string order
    k = len(pairs)
    graph = coo_matrix((np.ones(k, dtype=np.int8), (index[:k], index[k:])), shape=(len(nodes), len(nodes)))
    n_components, component = connected_components(graph, directed=False)
    smallest = np.full(n_components, len(nodes), dtype=np.int64)
    np.minimum.at(smallest, component, np.arange(len(nodes)))
    return list(zip(nodes.tolist(), nodes[smallest[component]].tolist()))


def _spark_components(edges: DataFrame, checkpoint: _Checkpointer, max_iterations: int) -> tuple[DataFrame, int, int]:
    """Min-label propagation with pointer jumping; returns (labels (node, label), nodes, rounds)."""
    labels = checkpoint(edges.select(F.col("src").alias("node")).distinct().withColumn("label", F.col("node")))
    n_nodes = labels.count()
    iterations = 0
    while True:
        iterations += 1
        if iterations > max_iterations:
            raise RuntimeError(
                f"connected components: labels still change after {max_iterations} rounds; "
                "raise dataset.max_component_iterations"
            )
        neighbour = (
            edges.join(labels.withColumnRenamed("node", "dst").withColumnRenamed("label", "_l"), "dst")
            .groupBy("src")
            .agg(F.min("_l").alias("_cand"))
        )
        propagated = labels.join(neighbour, labels["node"] == neighbour["src"], "left").select(
            "node",
            F.col("label").alias("_old"),
            F.least(F.col("label"), F.coalesce(F.col("_cand"), F.col("label"))).alias("label"),
        )
        parent = propagated.select(F.col("node").alias("_p"), F.col("label").alias("_pl"))
        jumped = propagated.join(parent, propagated["label"] == parent["_p"], "left").select(
            "node", F.least(F.col("label"), F.coalesce(F.col("_pl"), F.col("label"))).alias("label"), "_old"
        )
        new = checkpoint(jumped.withColumn("_changed", F.col("label") != F.col("_old")).drop("_old"))
        changed = new.where(F.col("_changed")).count()  # a scan of the checkpoint, no shuffle
        labels = new.drop("_changed")
        log.info("connected components: round %d, %d labels changed", iterations, changed)
        if changed == 0:
            return labels, n_nodes, iterations


def connected_groups(
    tracks: DataFrame,
    max_iterations: int,
    checkpoint_dir: Optional[str] = None,
    max_album_artists: Optional[int] = None,
    driver_max_edges: int = 0,
) -> GroupResult:
    """Attach to every track the id of its artist/album connected component.

    Only artists and albums that share a track (the graph's edges) need a label: any
    other node is alone in its component and is its own label.

    Args:
        tracks: rows with ``track_id``, ``artist_id`` and ``album_id`` (either may be
            null; a null links to nothing).
        max_iterations: rounds after which the propagation gives up.
        checkpoint_dir: reliable checkpoint directory, or None for local checkpoints.
        max_album_artists: albums with more distinct artists than this link nothing (see
            :func:`unlink_large_albums`); None: every album links (strictly album-disjoint).
        driver_max_edges: when the graph has at most this many edges they are collected
            (bounded by this setting) and the components found on the driver with scipy,
            which saves the propagation rounds; 0 = always propagate in Spark. Both paths
            give the same group ids.

    Returns:
        A :class:`GroupResult`; ``group_id`` is the smallest node id (as a string) of the
        component, the same on every run.

    Raises:
        RuntimeError: the labels still change after ``max_iterations`` rounds.
    """
    spark = tracks.sparkSession
    checkpoint = _Checkpointer(spark, checkpoint_dir)
    tracks, unlinked = unlink_large_albums(tracks, max_album_artists)
    keyed = tracks.select(_node("artist:", "artist_id").alias("a"), _node("album:", "_link_album").alias("b"))
    pairs = checkpoint(keyed.where(F.col("a").isNotNull() & F.col("b").isNotNull()).distinct())
    n_edges = pairs.count()
    if n_edges <= driver_max_edges:
        found = driver_components([(r["a"], r["b"]) for r in pairs.collect()])
        schema = "_node string, _group string"
        component = spark.createDataFrame(found, schema) if found else spark.createDataFrame([], schema)
        n_nodes, iterations, on_driver = len(found), 0, True
    else:
        edges = checkpoint(
            pairs.select(F.col("a").alias("src"), F.col("b").alias("dst")).unionByName(
                pairs.select(F.col("b").alias("src"), F.col("a").alias("dst"))
            )
        )
        labels, n_nodes, iterations = _spark_components(edges, checkpoint, max_iterations)
        component = labels.select(F.col("node").alias("_node"), F.col("label").alias("_group"))
        on_driver = False

    own = F.coalesce(_node("artist:", "artist_id"), _node("album:", "_link_album"))
    grouped = (
        tracks.withColumn("_node", own)
        .join(component, "_node", "left")
        .withColumn(
            "group_id",
            F.coalesce(F.col("_group"), F.col("_node"), F.concat(F.lit("track:"), F.col("track_id").cast("string"))),
        )
        .drop("_node", "_group", "_link_album")
    )
    return GroupResult(
        tracks=grouped,
        iterations=iterations,
        nodes=n_nodes,
        edges=n_edges,
        albums_unlinked=unlinked,
        on_driver=on_driver,
    )
