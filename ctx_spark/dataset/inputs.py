"""The ``track_labels`` input: its contract, its checks, and the 0/1 label vectors.

Every later step works on the label *pattern*: the bitmask with bit ``i`` set when the
track carries context ``i`` (conf/contexts.yaml order). There are at most 2^m patterns
(32,768 for 15 contexts), so any statistic that depends on a track only through its labels
is computed on a pattern-count table that is safe to collect, whatever the catalogue size.

The paper's released label files are read into a table of the same shape by
:mod:`ctx_spark.sources.ibrahim`.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctx_spark import schema
from ctx_spark.errors import InputError

#: Most contexts the pattern tables support: they are dense arrays of 2^m entries.
MAX_CONTEXTS = 20


def check_contexts(names: Sequence[str]) -> None:
    """Refuse context lists the pattern arithmetic cannot hold."""
    if len(names) > MAX_CONTEXTS:
        raise InputError(
            f"{len(names)} contexts configured; the dataset stage supports at most {MAX_CONTEXTS} "
            "(its label-pattern tables have 2^contexts entries)"
        )


def check_track_labels(df: DataFrame, names: Sequence[str], source: str = "track_labels") -> dict[str, int]:
    """Check the rows of a contract-validated ``track_labels`` table (one Spark job).

    Args:
        df: (track_id, artist_id, album_id, contexts, n_playlists).
        names: the configured contexts, in order.
        source: where the table came from, for messages.

    Returns:
        {"rows": n}.

    Raises:
        InputError: the table is empty, a track id is null or repeated, an ``n_playlists``
            vector is null or does not have one count per configured context, or
            ``contexts`` holds a name that is not configured (the labels were made with
            another context list). Each of these makes the dataset meaningless, so none
            is skipped silently.
    """
    m = len(names)
    known = F.array(*[F.lit(n) for n in names])
    unknown = F.array_except(F.coalesce(F.col("contexts"), F.array().cast("array<string>")), known)
    bad_length = F.col("n_playlists").isNull() | (F.size("n_playlists") != m)
    stats = df.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count_distinct("track_id").alias("distinct_ids"),
        F.count(F.when(F.col("track_id").isNull(), 1)).alias("null_id"),
        F.count(F.when(bad_length, 1)).alias("bad_length"),
        F.min(F.when(bad_length, F.coalesce(F.size("n_playlists"), F.lit(-1)))).alias("bad_length_example"),
        F.count(F.when(F.size(unknown) > 0, 1)).alias("unknown"),
        F.min(F.when(F.size(unknown) > 0, F.array_join(unknown, ","))).alias("unknown_example"),
    ).first()
    assert stats is not None  # a global aggregation always returns one row
    table = f"table '{schema.TRACK_LABELS.name}' ({source})"
    if stats["rows"] == 0:
        raise InputError(f"{table} has no rows: nothing to build a dataset from")
    if stats["null_id"]:
        raise InputError(f"{table}: column 'track_id' is null in {stats['null_id']} rows")
    if stats["bad_length"]:
        example = stats["bad_length_example"]
        got = "null" if example == -1 else f"length {example}"
        raise InputError(
            f"{table}: column 'n_playlists' must hold {m} counts (one per configured context, in "
            f"conf/contexts.yaml order) but {stats['bad_length']} rows do not (e.g. {got})"
        )
    if stats["unknown"]:
        raise InputError(
            f"{table}: column 'contexts' holds names that are not configured contexts in "
            f"{stats['unknown']} rows (e.g. '{stats['unknown_example']}'); configured: {', '.join(names)}"
        )
    if stats["distinct_ids"] != stats["rows"]:
        dup = df.groupBy("track_id").count().where(F.col("count") > 1)
        repeated = dup.orderBy("track_id").limit(1).collect()
        raise InputError(
            f"{table}: column 'track_id' must be unique, but {dup.count()} ids repeat "
            f"(e.g. {repeated[0]['track_id']} appears {repeated[0]['count']} times)"
        )
    return {"rows": int(stats["rows"])}


def prepare_tracks(df: DataFrame, names: Sequence[str]) -> DataFrame:
    """Add the label columns derived from ``contexts``.

    Returns:
        The input columns (``contexts`` dropped) plus ``labels`` (array<tinyint> of m 0/1
        values in ``names`` order), ``pattern`` (int bitmask, bit i = context i) and
        ``n_labels`` (int, number of positives).
    """
    check_contexts(names)
    has = [F.coalesce(F.array_contains("contexts", n), F.lit(False)) for n in names]
    labels = F.array(*[h.cast(T.ByteType()) for h in has])
    pattern = sum((F.when(h, F.lit(1 << i)).otherwise(F.lit(0)) for i, h in enumerate(has)), F.lit(0))
    n_labels = sum((h.cast(T.IntegerType()) for h in has), F.lit(0))
    return df.select(
        "track_id",
        "artist_id",
        "album_id",
        labels.alias("labels"),
        pattern.cast(T.IntegerType()).alias("pattern"),
        n_labels.cast(T.IntegerType()).alias("n_labels"),
        F.col("n_playlists").cast(T.ArrayType(T.IntegerType())).alias("n_playlists"),
    )
