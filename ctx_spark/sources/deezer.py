"""Reading the Deezer playlist-title sample of Ibrahim et al. as a playlists table.

The file (``sample_playlists_title.tsv``: playlist_id, editor, title, matches) is
tab-separated with a header and *no quoting*: titles contain quote characters and
backslashes that are plain text, so quote and escape handling are both turned off (the
result equals Python's ``csv`` with ``QUOTE_NONE``, row for row). ``matches`` is the
comma-separated list of vocabulary keywords the paper's authors found in the title.
An empty field reads as null (an empty title, like a null one, matches nothing).
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctx_spark import io
from ctx_spark.errors import InputError

SCHEMA = T.StructType(
    [
        T.StructField("playlist_id", T.LongType()),
        T.StructField("editor", T.IntegerType()),
        T.StructField("title", T.StringType()),
        T.StructField("matches", T.StringType()),
        T.StructField("_malformed", T.StringType()),
    ]
)


def read_deezer_titles(spark: SparkSession, path: str) -> DataFrame:
    """Read the TSV as (playlist_id long, title string, editor int, matches array<string>).

    Raises:
        InputError: the file does not exist or a line does not have the four columns with
            an integer playlist id (the message names the file and the first bad line).
    """
    path = io.qualify(path)
    if not io.path_exists(spark, path):
        raise InputError(f"Deezer titles: {path} does not exist")
    raw = (
        spark.read.schema(SCHEMA)
        .options(
            sep="\t",
            header=True,
            quote="",
            escape="",
            mode="PERMISSIVE",
            columnNameOfCorruptRecord="_malformed",
            ignoreLeadingWhiteSpace=False,
            ignoreTrailingWhiteSpace=False,
            emptyValue="",
            encoding="UTF-8",
        )
        .csv(path)
    )
    bad = raw.where(F.col("_malformed").isNotNull() | F.col("playlist_id").isNull()).select("_malformed").first()
    if bad is not None:
        raise InputError(
            f"Deezer titles {path}: malformed line (expected playlist_id, editor, title, matches "
            f"separated by tabs): {str(bad['_malformed'])[:200]!r}"
        )
    return raw.select(
        "playlist_id",
        "title",
        "editor",
        F.when(F.col("matches").isNull() | (F.col("matches") == ""), F.array().cast("array<string>"))
        .otherwise(F.split("matches", ","))
        .alias("matches"),
    )
