"""Table contracts: which columns each input table must have, and of which types.

Checked up front, before any Spark job runs, so a wrong table fails in a second with a
message naming the table and the column instead of an hour later inside an executor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctx_spark.errors import InputError

_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)

#: Column kinds a contract can ask for.
ID = "id"  # int64 (any integral type, widened) or string
STRING = "string"
INT_ARRAY = "array<int>"
STRING_ARRAY = "array<string>"


@dataclass(frozen=True)
class TableContract:
    """The columns a table must carry.

    Attributes:
        name: the table's name in messages (``playlists``, ``playlist_tracks``...).
        columns: column -> kind (:data:`ID`, :data:`STRING`, :data:`INT_ARRAY`...).
        nullable: columns that may hold nulls (only checked where cheap; see README).
    """

    name: str
    columns: Mapping[str, str]
    nullable: Sequence[str] = field(default_factory=tuple)


PLAYLISTS = TableContract("playlists", {"playlist_id": ID, "title": STRING}, nullable=("title",))
PLAYLIST_TRACKS = TableContract("playlist_tracks", {"playlist_id": ID, "track_id": ID})
TRACKS = TableContract("tracks", {"track_id": ID, "artist_id": ID, "album_id": ID}, nullable=("album_id",))


def _kind_matches(kind: str, dtype: T.DataType) -> bool:
    if kind == ID:
        return isinstance(dtype, _INTEGRAL + (T.StringType,))
    if kind == STRING:
        return isinstance(dtype, T.StringType)
    if kind == INT_ARRAY:
        return isinstance(dtype, T.ArrayType) and isinstance(dtype.elementType, _INTEGRAL)
    if kind == STRING_ARRAY:
        return isinstance(dtype, T.ArrayType) and isinstance(dtype.elementType, T.StringType)
    raise ValueError(f"unknown column kind {kind!r}")


def _describe(kind: str) -> str:
    return {
        ID: "an id (integer or string)",
        STRING: "a string",
        INT_ARRAY: "an array of integers",
        STRING_ARRAY: "an array of strings",
    }[kind]


def validate(df: DataFrame, contract: TableContract) -> DataFrame:
    """Check ``df`` against ``contract`` and return only the contract's columns.

    Integral ids are widened to int64 so that tables written with int32 and int64 ids join.

    Raises:
        InputError: a column is missing or has an incompatible type; the message names the
            table and the column.
    """
    fields = {f.name: f.dataType for f in df.schema.fields}
    selected = []
    for column, kind in contract.columns.items():
        if column not in fields:
            raise InputError(
                f"table '{contract.name}': missing column '{column}' ({_describe(kind)}); "
                f"it has {', '.join(sorted(fields)) or 'no columns'}"
            )
        dtype = fields[column]
        if not _kind_matches(kind, dtype):
            raise InputError(
                f"table '{contract.name}': column '{column}' has type {dtype.simpleString()}, "
                f"expected {_describe(kind)}"
            )
        col = F.col(column)
        if kind == ID and isinstance(dtype, _INTEGRAL) and not isinstance(dtype, T.LongType):
            col = col.cast(T.LongType())
        selected.append(col.alias(column))
    return df.select(*selected)


def check_same_id_type(columns: Sequence[tuple[str, DataFrame, str]]) -> None:
    """Require one id column to have the same kind (integer or string) in every table.

    Args:
        columns: (table name, validated DataFrame, column) triples naming the same id.

    Raises:
        InputError: one table stores the id as a string and another as an integer.
    """
    kinds = {}
    for table, df, column in columns:
        dtype = df.schema[column].dataType
        kinds[f"{table}.{column}"] = "string" if isinstance(dtype, T.StringType) else "int64"
    if len(set(kinds.values())) > 1:
        described = ", ".join(f"{k} is {v}" for k, v in kinds.items())
        raise InputError(f"id columns disagree on their type: {described}; use one type in every table")
