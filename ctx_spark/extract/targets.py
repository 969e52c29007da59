"""The tracks to deliver: the dataset's targets joined to the audio catalogue, checked.

Each row is one track to deliver, with its split and target vectors (or split ``all``
when no dataset was given) and its audio's fingerprint.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Optional, cast

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctx_spark import io, schema
from ctx_spark.errors import InputError
from ctx_spark.extract import tasks
from ctx_spark.extract.settings import ExtractSettings
from ctx_spark.schema import SPLIT, TRACK_ID, id_kind
from ctx_spark.shards import contract
from ctx_spark.shards.contract import AUDIO, AUDIO_CHECKSUM, AUDIO_MTIME, AUDIO_SIZE


def _numeric_array(dtype: T.DataType) -> bool:
    return isinstance(dtype, T.ArrayType) and isinstance(dtype.elementType, schema.NUMERIC_TYPES)


def dataset_table(spark: SparkSession, dataset: str) -> str:
    """The ``dataset/`` table of a dataset stage's output root, or ``dataset`` itself."""
    root = io.qualify(dataset).rstrip("/")
    inner = f"{root}/{schema.DATASET_DIR}"
    return inner if io.path_exists(spark, inner) else root


def check_dataset_contexts(spark: SparkSession, dataset: str, configured: Sequence[str]) -> None:
    """Refuse a dataset whose report says it was built for other contexts (or another order).

    The dataset stage records its context list in ``report.json`` beside ``dataset/``; a
    bare table without a report cannot be checked (its vectors' lengths still are).
    """
    root = io.qualify(dataset).rstrip("/")
    report_path = f"{root}/{schema.REPORT_FILE}"
    if not io.path_exists(spark, report_path):
        return
    try:
        found = json.loads(io.read_text(spark, report_path)).get("contexts")
    except ValueError:
        return
    if isinstance(found, list):
        contract.check_contexts(found, configured, f"dataset {root}")


def read_targets(spark: SparkSession, dataset: str) -> DataFrame:
    """The dataset's targets: [track_id, split, labels array<int>, 3 weights array<float>].

    ``dataset`` is the build_dataset output root (its ``dataset/`` table is used) or the
    table itself. Vector lengths and split values are checked by :func:`check_rows`.
    """
    path = dataset_table(spark, dataset)
    io.read_table(spark, path, schema.DATASET)  # checks track_id and split
    raw = spark.read.parquet(path)
    fields = {f.name: f.dataType for f in raw.schema.fields}
    for column in contract.TARGET_COLUMNS:
        if column not in fields:
            raise InputError(f"table 'dataset' ({path}): missing column '{column}' (an array of numbers)")
        if not _numeric_array(fields[column]):
            raise InputError(
                f"table 'dataset' ({path}): column '{column}' has type {fields[column].simpleString()}, "
                "expected an array of numbers"
            )
    id_col = F.col(TRACK_ID).cast("long") if isinstance(fields[TRACK_ID], schema.INTEGRAL_TYPES) else F.col(TRACK_ID)
    return raw.select(
        id_col.alias(TRACK_ID),
        F.col(SPLIT),
        F.col(contract.LABELS).cast("array<int>").alias(contract.LABELS),
        *[F.col(c).cast("array<float>").alias(c) for c in contract.WEIGHT_COLUMNS],
    )


def assemble_rows(
    catalogue: DataFrame, targets: Optional[DataFrame], settings: ExtractSettings, needs_stat: bool
) -> DataFrame:
    """One row per track to deliver: the dataset's tracks (with their targets, null audio
    when the catalogue lacks them), or every catalogue track in split ``all``.

    Fingerprints are computed by the executors (:func:`tasks.fingerprint_batches`) when
    the catalogue could not give them (a table) or a checksum is wanted; only the tracks
    that will be delivered are examined.
    """
    if targets is not None:
        if id_kind(targets.schema[TRACK_ID].dataType) != id_kind(catalogue.schema[TRACK_ID].dataType):
            raise InputError(
                f"track_id is {id_kind(targets.schema[TRACK_ID].dataType)} in the dataset but "
                f"{id_kind(catalogue.schema[TRACK_ID].dataType)} in the audio catalogue; use one type"
            )
        rows = targets.join(catalogue, TRACK_ID, "left")
    else:
        rows = catalogue.withColumn(SPLIT, F.lit(contract.ALL_SPLIT))
    if needs_stat:
        rows = rows.drop(AUDIO_SIZE, AUDIO_MTIME)
        # a DDL list of columns parses to a StructType
        schema = T.StructType(
            rows.schema.fields + cast(T.StructType, T._parse_datatype_string(tasks.FINGERPRINT_DDL)).fields
        )
        rows = rows.mapInArrow(functools.partial(tasks.fingerprint_batches, checksum=settings.checksum), schema)
    else:
        rows = rows.withColumn(AUDIO_CHECKSUM, F.lit(None).cast("string"))
    return rows


@dataclass(frozen=True)
class RowCounts:
    """Tracks to deliver per split, and how many have no audio in the catalogue."""

    per_split: Mapping[str, int]
    without_audio: int

    @property
    def total(self) -> int:
        return sum(self.per_split.values())


def check_rows(rows: DataFrame, n_contexts: Optional[int]) -> RowCounts:
    """Count the rows per split and check the targets (one small aggregation).

    Raises:
        InputError: a split other than train/validation/test, or a target vector whose
            length is not the number of contexts, or a label other than 0/1.
    """
    aggs = [F.count(F.lit(1)).alias("n"), F.sum(F.col(AUDIO).isNull().cast("long")).alias("no_audio")]
    if n_contexts is not None:
        bad_len = F.lit(False)
        for column in contract.TARGET_COLUMNS:
            bad_len = bad_len | F.coalesce(F.size(column) != n_contexts, F.lit(True))
        bad_label = F.exists(contract.LABELS, lambda x: ~x.isin(0, 1))
        aggs += [
            F.sum(bad_len.cast("long")).alias("bad_len"),
            F.sum(F.coalesce(bad_label, F.lit(True)).cast("long")).alias("bad_label"),
        ]
    groups = rows.groupBy(SPLIT).agg(*aggs).limit(64).collect()
    allowed = contract.SPLITS if n_contexts is not None else (contract.ALL_SPLIT,)
    unknown = sorted(str(g[SPLIT]) for g in groups if g[SPLIT] not in allowed)
    if unknown:
        raise InputError(f"table 'dataset': column 'split' holds {', '.join(unknown)}; expected {', '.join(allowed)}")
    if n_contexts is not None:
        n_bad_len = sum(int(g["bad_len"] or 0) for g in groups)
        if n_bad_len:
            raise InputError(
                f"table 'dataset': {n_bad_len} rows have a null target vector or one whose length is not "
                f"{n_contexts} (the number of contexts in conf/contexts.yaml)"
            )
        n_bad_label = sum(int(g["bad_label"] or 0) for g in groups)
        if n_bad_label:
            raise InputError(f"table 'dataset': column 'labels' holds values other than 0 and 1 in {n_bad_label} rows")
    return RowCounts(
        per_split={g[SPLIT]: int(g["n"]) for g in groups},
        without_audio=sum(int(g["no_audio"] or 0) for g in groups),
    )
