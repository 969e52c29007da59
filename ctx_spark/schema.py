"""Every inter-stage contract: table columns and types, column and directory names.

Each name is defined here once and imported everywhere else, so a stage that writes a
table and the stage that reads it cannot drift apart. Table contracts are checked up front,
before any Spark job runs, so a wrong table fails in a second with a message naming the
table and the column instead of an hour later inside an executor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctx_spark.errors import InputError

#: Spark types an id column may have besides string (widened to int64 when read).
INTEGRAL_TYPES = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
#: Spark types a numeric target vector's elements may have.
NUMERIC_TYPES = INTEGRAL_TYPES + (T.FloatType, T.DoubleType, T.BooleanType, T.DecimalType)

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
        nullable: columns that may hold nulls (only checked where cheap; see docs/labelling.md, "Input contract").
    """

    name: str
    columns: Mapping[str, str]
    nullable: Sequence[str] = field(default_factory=tuple)


# --- names shared by several stages -----------------------------------------------------

TRACK_ID = "track_id"
#: Optional name columns of a ``tracks`` table, carried into track_labels and the scoring outputs.
TRACK_NAME_COLUMNS: tuple[str, ...] = ("track_name", "artist_name", "album_name")
#: Split names, in the order of every per-split vector.
SPLITS: tuple[str, ...] = ("train", "validation", "test")
#: The split of tracks extracted without a dataset (a whole catalogue, for scoring).
ALL_SPLIT = "all"
SPLIT = "split"
#: The 0/1 target vector (one entry per context, conf/contexts.yaml order).
LABELS = "labels"
#: The paper's sample-level loss weights (sections 4.2-4.3), one vector per track each.
WEIGHT_COLUMNS: tuple[str, ...] = ("neg_exact", "neg_ignore_zeros", "pos_tfidf")
#: Every per-track target vector, in the order the trainer concatenates them.
TARGET_COLUMNS: tuple[str, ...] = (LABELS,) + WEIGHT_COLUMNS
#: Every stage writes this file last, so its presence means the stage completed.
REPORT_FILE = "report.json"

# Output tables of the stages (sub-directories of a stage's --out).
TRACK_CONTEXT_COUNTS_DIR = "track_context_counts"
TRACK_LABELS_DIR = "track_labels"
DATASET_DIR = "dataset"
TRACK_SCORES_DIR = "track_scores"
CONTEXT_RANKINGS_DIR = "context_rankings"

# A training run directory's exported model (read by evaluation, prediction, scoring).
MODEL_FILE = "model.keras"
META_FILE = "model_meta.json"

# --- table contracts ---------------------------------------------------------------------

PLAYLISTS = TableContract("playlists", {"playlist_id": ID, "title": STRING}, nullable=("title",))
PLAYLIST_TRACKS = TableContract("playlist_tracks", {"playlist_id": ID, TRACK_ID: ID})
TRACKS = TableContract("tracks", {TRACK_ID: ID, "artist_id": ID, "album_id": ID}, nullable=("album_id",))
#: The labelling stage's output, as the dataset stage reads it. Artist and album may be
#: null (a null links the track to no other track).
TRACK_LABELS = TableContract(
    "track_labels",
    {TRACK_ID: ID, "artist_id": ID, "album_id": ID, "contexts": STRING_ARRAY, "n_playlists": INT_ARRAY},
    nullable=("artist_id", "album_id"),
)
#: The extraction job's ``--tracks`` table: one audio path or URI per track (null: none).
AUDIO_TRACKS = TableContract("audio_tracks", {TRACK_ID: ID, "audio": STRING}, nullable=("audio",))
#: The dataset columns the extraction job needs (the dataset stage writes more).
DATASET = TableContract("dataset", {TRACK_ID: ID, SPLIT: STRING})


def _kind_matches(kind: str, dtype: T.DataType) -> bool:
    if kind == ID:
        return isinstance(dtype, INTEGRAL_TYPES + (T.StringType,))
    if kind == STRING:
        return isinstance(dtype, T.StringType)
    if kind == INT_ARRAY:
        return isinstance(dtype, T.ArrayType) and isinstance(dtype.elementType, INTEGRAL_TYPES)
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
        if kind == ID and isinstance(dtype, INTEGRAL_TYPES) and not isinstance(dtype, T.LongType):
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


def id_kind(dtype: T.DataType) -> str:
    """``string`` or ``int64``: how an id column of this Spark type is stored."""
    return "string" if isinstance(dtype, T.StringType) else "int64"
