"""What the scoring stage reads: the tracks of a mel output (self-contained shards, or a
snapshot's references into the mel store), their spectrograms for the tracks to score,
and the previous snapshot's scores that can be kept.

A track's score is kept when the previous scores were made by the same model (digest of
model.keras) on the same transform, and the track's spectrogram key (its audio fingerprint:
size, mtime and checksum, null-safe) is unchanged; every other track is scored again. The
tables here carry no spectrograms until :func:`with_mels` adds them to the rows to score.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from typing import Any, Optional

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctx_spark import io, schema
from ctx_spark.audio.params import MelParams
from ctx_spark.errors import InputError
from ctx_spark.extract.store_tasks import FetchSpec, fetch_mel_batches
from ctx_spark.shards import contract
from ctx_spark.shards.contract import AUDIO_CHECKSUM, AUDIO_MTIME, AUDIO_SIZE, FINGERPRINT_COLUMNS
from ctx_spark.shards.store import REFS_FILE, STORE_COLUMNS, STORE_FILE, STORE_GROUP, STORE_ROW, RefsInfo, parse_refs

SPLIT = "split"
#: Rows per fetch task when spectrograms are read back from the store.
FETCH_ROWS_PER_TASK = 1024


def check_shards(
    spark: SparkSession, shards: str, params: MelParams, contexts: Sequence[str]
) -> tuple[str, list[str], Optional[RefsInfo]]:
    """(root, splits present, the store the root references or None).

    Raises:
        InputError: no split directory, mel parameters differing from the model's, or
            target vectors recorded for other contexts.
    """
    root = io.qualify(shards).rstrip("/")
    info_path = f"{root}/{contract.INFO_FILE}"
    info_text = io.read_text(spark, info_path) if io.path_exists(spark, info_path) else None
    found_contexts = contract.parse_info(params, info_text, root).contexts
    contract.check_contexts(found_contexts, contexts, f"mel shards {root}")
    params_path = f"{root}/{contract.PARAMS_FILE}"
    try:
        found = contract.params_from_json(io.read_text(spark, params_path))
    except FileNotFoundError:
        raise InputError(f"mel shards {shards}: {contract.PARAMS_FILE} is missing") from None
    except (ValueError, TypeError) as exc:
        raise InputError(f"mel shards {shards}: {params_path} is not valid mel parameters: {exc}") from None
    if found != params:
        raise InputError(
            f"mel shards {shards}: mel_params.json {found.to_dict()} differs from the model's {params.to_dict()}"
        )
    splits = [s for s in contract.SPLITS + (contract.ALL_SPLIT,) if io.path_exists(spark, f"{root}/{s}")]
    if not splits:
        raise InputError(f"mel shards {shards}: none of {', '.join(contract.SPLITS + (contract.ALL_SPLIT,))} exists")
    refs_path = f"{root}/{REFS_FILE}"
    refs = parse_refs(io.read_text(spark, refs_path), root) if io.path_exists(spark, refs_path) else None
    return root, splits, refs


def track_keys(spark: SparkSession, root: str, splits: Sequence[str], refs: Optional[RefsInfo]) -> DataFrame:
    """(track_id, split, fingerprint columns[, store position]) of every track, no mel."""
    wanted = (contract.TRACK_ID,) + ((contract.MEL,) if refs is None else STORE_COLUMNS)
    frames = []
    for split in splits:
        where = f"mel shards {root}/{split}"
        if not [name for name in io.list_dir(spark, f"{root}/{split}") if not name.startswith((".", "_"))]:
            raise InputError(f"{where}: the split directory holds no Parquet file (an interrupted extraction?)")
        df = io.read_parquet(spark, f"{root}/{split}", where)
        missing = [c for c in wanted if c not in df.columns]
        if missing:
            raise InputError(f"mel shards {root}/{split}: columns {missing} are missing")
        columns = [F.col(contract.TRACK_ID), F.lit(split).alias(SPLIT)]
        for name, kind in ((AUDIO_SIZE, "bigint"), (AUDIO_MTIME, "bigint"), (AUDIO_CHECKSUM, "string")):
            columns.append(F.col(name) if name in df.columns else F.lit(None).cast(kind).alias(name))
        if refs is not None:
            columns += [F.col(c) for c in STORE_COLUMNS]
        frames.append(df.select(*columns))
    union = frames[0]
    for frame in frames[1:]:
        union = union.unionByName(frame)
    return union


def with_mels(
    spark: SparkSession, keys: DataFrame, source: tuple[str, Sequence[str], Optional[RefsInfo]], every: bool, n: int
) -> DataFrame:
    """``keys`` (the rows to score, ``n`` of them) with their ``mel``: read back from the
    store by position (only the store row groups they use), or from the shards' ``mel``
    column (read whole when ``every`` row is scored, else joined to the keys)."""
    root, splits, refs = source
    if refs is not None:
        fetch_schema = T.StructType(keys.schema.fields + [T.StructField(contract.MEL, T.BinaryType(), True)])
        parts = max(spark.sparkContext.defaultParallelism, math.ceil(n / FETCH_ROWS_PER_TASK))
        fetch = functools.partial(fetch_mel_batches, spec=FetchSpec(refs.layout.data, FETCH_ROWS_PER_TASK))
        fetched = (
            keys.repartition(parts, STORE_FILE)
            .sortWithinPartitions(STORE_FILE, STORE_GROUP, STORE_ROW)
            .mapInArrow(fetch, fetch_schema)
        )
        return fetched.select(contract.TRACK_ID, SPLIT, contract.MEL, *FINGERPRINT_COLUMNS)
    frames = []
    for split in splits:
        df = spark.read.parquet(f"{root}/{split}")
        columns = [F.col(contract.TRACK_ID), F.lit(split).alias(SPLIT), F.col(contract.MEL)]
        for name, kind in ((AUDIO_SIZE, "bigint"), (AUDIO_MTIME, "bigint"), (AUDIO_CHECKSUM, "string")):
            columns.append(F.col(name) if name in df.columns else F.lit(None).cast(kind).alias(name))
        frames.append(df.select(*columns))
    mels = frames[0]
    for frame in frames[1:]:
        mels = mels.unionByName(frame)
    if every:
        return mels
    return mels.join(keys.select(contract.TRACK_ID, SPLIT), [contract.TRACK_ID, SPLIT], "left_semi")


def previous_scores(
    spark: SparkSession, previous: Optional[str], model_digest: str, params: MelParams
) -> tuple[Optional[DataFrame], str]:
    """The previous scores that can be kept [track_id, probabilities, fingerprint], or
    (None, why not)."""
    if not previous:
        return None, "no previous scores"
    report_path = f"{previous}/{schema.REPORT_FILE}"
    try:
        report: dict[str, Any] = json.loads(io.read_text(spark, report_path))
    except (FileNotFoundError, ValueError):
        return None, f"no readable {report_path}"
    if report.get("model_digest") != model_digest:
        return None, "the model changed: every track is scored"
    if report.get("mel_params") != params.to_dict():
        return None, "the transform changed: every track is scored"
    table = f"{previous}/{schema.TRACK_SCORES_DIR}"
    df = spark.read.parquet(table)
    if any(c not in df.columns for c in FINGERPRINT_COLUMNS):
        return None, "the previous scores carry no spectrogram keys"
    kept = df.select(contract.TRACK_ID, "probabilities", *FINGERPRINT_COLUMNS)
    return kept, f"keeping unchanged scores of {previous}"


def split_rescore(keys: DataFrame, previous: Optional[DataFrame]) -> tuple[Optional[DataFrame], DataFrame]:
    """(kept scores [track_id, split, probabilities, fingerprint], keys of the rows to score)."""
    if previous is None:
        return None, keys
    same = F.col(f"cur.{contract.TRACK_ID}") == F.col(f"prev.{contract.TRACK_ID}")
    for column in FINGERPRINT_COLUMNS:
        same = same & F.col(f"cur.{column}").eqNullSafe(F.col(f"prev.{column}"))
    has_key = F.col(f"cur.{AUDIO_SIZE}").isNotNull() | F.col(f"cur.{AUDIO_CHECKSUM}").isNotNull()
    cur, prev = keys.alias("cur"), previous.alias("prev")
    kept = cur.join(prev, same & has_key, "inner").select(
        F.col(f"cur.{contract.TRACK_ID}").alias(contract.TRACK_ID),
        F.col(f"cur.{SPLIT}").alias(SPLIT),
        F.col("prev.probabilities").alias("probabilities"),
        *[F.col(f"cur.{c}").alias(c) for c in FINGERPRINT_COLUMNS],
    )
    to_score = keys.join(kept.select(contract.TRACK_ID), contract.TRACK_ID, "left_anti")
    return kept, to_score
