"""The optional name columns of a ``tracks`` table (track, artist and album names).

The input contract lets a ``tracks`` table carry extra columns; when it has any of
:data:`ctx_spark.schema.TRACK_NAME_COLUMNS` (the MPD importer writes all three), the
labelling and scoring outputs carry them too, so a person reading a ranking sees names, not
only ids (docs/labelling.md, "Input contract"). The join is on the output's tracks only,
which are few next to the catalogue.
"""

from __future__ import annotations

from typing import Optional

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctx_spark import io, schema
from ctx_spark.errors import InputError


def read_track_names(spark: SparkSession, path: str) -> Optional[DataFrame]:
    """(track_id, and the name columns present) of the tracks table at ``path``; None without any.

    Raises:
        InputError: a name column is not a string.
    """
    df = spark.read.parquet(io.qualify(path))
    present = [c for c in schema.TRACK_NAME_COLUMNS if c in df.columns]
    if not present or schema.TRACK_ID not in df.columns:
        return None
    for column in present:
        dtype = df.schema[column].dataType
        if not isinstance(dtype, T.StringType):
            raise InputError(
                f"table 'tracks': column '{column}' has type {dtype.simpleString()}, expected a string "
                "(an optional name column)"
            )
    track_id = F.col(schema.TRACK_ID)
    if isinstance(df.schema[schema.TRACK_ID].dataType, schema.INTEGRAL_TYPES):
        track_id = track_id.cast(T.LongType())
    return df.select(track_id.alias(schema.TRACK_ID), *present)


def with_names(df: DataFrame, names: Optional[DataFrame]) -> DataFrame:
    """``df`` with the name columns of its tracks (null for a track without them).

    ``names`` is cut to ``df``'s track ids before it is grouped; a track id listed twice
    takes the smallest name of each column, as the labelling job takes the smallest artist
    and album ids.
    """
    if names is None:
        return df
    columns = [c for c in names.columns if c != schema.TRACK_ID and c not in df.columns]
    if not columns:
        return df
    ids = df.select(schema.TRACK_ID).distinct()
    per_track = (
        names.join(ids, schema.TRACK_ID, "left_semi")
        .groupBy(schema.TRACK_ID)
        .agg(*[F.min(c).alias(c) for c in columns])
    )
    return df.join(per_track, schema.TRACK_ID, "left")
