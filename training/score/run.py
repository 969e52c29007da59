"""The scoring stage: a trained model and a catalogue's mel shards in, per-track
probabilities and per-context ranked track lists out.

"Pick a context, get tracks": ``context_rankings/context=<name>/`` lists every scored
track by descending probability of that context, with its rank.

Scale: inference runs in ``mapInArrow`` on the executors (model loaded once per Python
worker, batched calls; see training/scoring.py). Ranking avoids one giant sort per context
in a single task: rows are range-partitioned on (context, -probability, track_id) and sorted
inside each partition, a row's position inside its partition comes from
``monotonically_increasing_id`` (partition index in the upper bits, row index in the lower
33 bits), and each (partition, context) run gets its rank offset from a table of run lengths
that is at most partitions x contexts rows, the only thing collected.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctx_spark import __version__, io, schema
from ctx_spark.audio.params import MelParams
from ctx_spark.config import Config
from ctx_spark.errors import InputError
from ctx_spark.logs import get_logger, stage
from ctx_spark.shards import contract
from ctx_spark.spark import SparkSettings, ship_package
from ctx_spark.track_names import read_track_names, with_names
from training.score.settings import ScoreSettings

if TYPE_CHECKING:
    from ctx_spark.registry import StageRequest

log = get_logger("score")

SCORES_DIR = schema.TRACK_SCORES_DIR
RANKINGS_DIR = schema.CONTEXT_RANKINGS_DIR
REPORT_FILE = schema.REPORT_FILE
MODEL_FILE = schema.MODEL_FILE
META_FILE = schema.META_FILE


def read_model(model_dir: str) -> tuple[bytes, dict[str, Any]]:
    """The bytes of model.keras and the parsed model_meta.json of a run directory (local)."""
    model_path, meta_path = os.path.join(model_dir, MODEL_FILE), os.path.join(model_dir, META_FILE)
    if not os.path.isfile(model_path) or not os.path.isfile(meta_path):
        raise InputError(f"model: {model_dir} holds no exported model ({MODEL_FILE} and {META_FILE})")
    with open(meta_path, encoding="utf-8") as handle:
        meta = json.load(handle)
    with open(model_path, "rb") as handle:
        return handle.read(), meta


def read_shards(
    spark: SparkSession, shards: str, params: MelParams, contexts: Sequence[str]
) -> tuple[DataFrame, list[str]]:
    """(track_id, split, mel) over every split present under ``shards``.

    Raises:
        InputError: no split directory, missing columns, mel parameters differing from
            the model's, or target vectors recorded for other contexts.
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
    frames = []
    for split in splits:
        df = spark.read.parquet(f"{root}/{split}")
        missing = [c for c in (contract.TRACK_ID, contract.MEL) if c not in df.columns]
        if missing:
            raise InputError(f"mel shards {root}/{split}: columns {missing} are missing")
        frames.append(df.select(contract.TRACK_ID, F.lit(split).alias("split"), contract.MEL))
    union = frames[0]
    for frame in frames[1:]:
        union = union.unionByName(frame)
    return union, splits


def score_tracks(
    mels: DataFrame, model_bytes: bytes, params: MelParams, n_contexts: int, settings: ScoreSettings
) -> DataFrame:
    """(track_id, split, mel) -> (track_id, split, probabilities array<float> of n_contexts,
    null when the mel blob is unusable)."""
    from training.score.tasks import model_digest, score_batches

    spark = mels.sparkSession
    broadcast = spark.sparkContext.broadcast((model_bytes, model_digest(model_bytes)))
    schema = T.StructType(
        [
            mels.schema[contract.TRACK_ID],
            T.StructField("split", T.StringType(), False),
            T.StructField("probabilities", T.ArrayType(T.FloatType(), False), True),
        ]
    )
    batch_size, threads = settings.batch_size, settings.tf_threads

    def run(batches):
        return score_batches(batches, broadcast, params, n_contexts, batch_size, threads)

    return mels.mapInArrow(run, schema)


def rank_contexts(scores: DataFrame, contexts: Sequence[str], partitions: int) -> DataFrame:
    """Per-context ranking of the scored tracks.

    Args:
        scores: (track_id, split, probabilities); rows with null probabilities are skipped.
        partitions: range partitions of the sort.

    Returns:
        (context, rank, track_id, split, probability, and the name columns ``scores`` has):
        rank 1 is the most probable track of the context; ties broken by track_id. The sorted
        rows are persisted (their ids must not change between the two jobs that read them): the caller unpersists
        ``ranked.cached_input`` once the result is written.
    """
    spark = scores.sparkSession
    names = F.array(*[F.lit(c) for c in contexts])
    extra = [c for c in schema.TRACK_NAME_COLUMNS if c in scores.columns]
    exploded = (
        scores.where(F.col("probabilities").isNotNull())
        .select(contract.TRACK_ID, "split", *extra, F.posexplode("probabilities").alias("_pos", "probability"))
        .select(
            F.element_at(names, F.col("_pos") + 1).alias("context"), contract.TRACK_ID, "split", "probability", *extra
        )
    )
    order = [F.col("context"), F.col("probability").desc(), F.col(contract.TRACK_ID)]
    located = (
        exploded.repartitionByRange(partitions, *order)
        .sortWithinPartitions(*order)
        .withColumn("_id", F.monotonically_increasing_id())
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    runs = (
        located.groupBy(F.shiftright("_id", 33).alias("_part"), "context")
        .agg(F.count(F.lit(1)).alias("_n"), F.min("_id").alias("_first"))
        .collect()
    )
    offsets, done = [], {}
    for row in sorted(runs, key=lambda r: (r["context"], r["_part"])):
        offsets.append((row["_part"], row["context"], row["_first"], done.get(row["context"], 0)))
        done[row["context"]] = done.get(row["context"], 0) + row["_n"]
    offset_df = spark.createDataFrame(offsets, "_part long, context string, _first long, _offset long")
    ranked = (
        located.withColumn("_part", F.shiftright("_id", 33))
        .join(F.broadcast(offset_df), ["_part", "context"])
        .select(
            "context",
            (F.col("_id") - F.col("_first") + F.col("_offset") + 1).alias("rank"),
            contract.TRACK_ID,
            "split",
            "probability",
            *extra,
        )
    )
    ranked.cached_input = located  # type: ignore[attr-defined]
    return ranked


def _set_conf(spark: SparkSession, values: dict[str, str]) -> dict[str, Any]:
    previous = {}
    for key, value in values.items():
        previous[key] = spark.conf.get(key, None)
        spark.conf.set(key, value)
    return previous


def _restore_conf(spark: SparkSession, previous: dict[str, Any]) -> None:
    for key, value in previous.items():
        if value is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, value)


def run_score_stage(
    spark: SparkSession, cfg: Config, model_dir: str, shards: str, out: str, tracks: Optional[str] = None
) -> dict[str, Any]:
    """Score every track of ``shards`` and write ``out/track_scores``,
    ``out/context_rankings`` (partitioned by context) and ``out/report.json``, each
    atomically. Returns the report.

    ``tracks``: an optional catalogue tracks table; its name columns (track, artist and album
    names, when it has them) are joined into both outputs."""
    started = time.perf_counter()
    settings = cfg.section("score", ScoreSettings)
    if cfg.section("spark", SparkSettings).ship_package:
        ship_package(spark, "training")  # the executors run training.score.tasks
    model_bytes, meta = read_model(model_dir)
    params = MelParams.from_dict(meta["mel_params"])
    contexts = list(meta["contexts"])
    contract.check_contexts(contexts, cfg.contexts.names, f"the model {model_dir}")
    out = io.qualify(out).rstrip("/")
    io.check_output_path("score", out, {"--model": model_dir, "--shards": shards, "--tracks": tracks})
    names = read_track_names(spark, tracks) if tracks else None
    previous = _set_conf(
        spark,
        {
            "spark.sql.execution.arrow.maxRecordsPerBatch": str(settings.arrow_batch_rows),
            "spark.sql.parquet.columnarReaderBatchSize": str(settings.parquet_batch_rows),
        },
    )
    try:
        mels, splits = read_shards(spark, shards, params, contexts)
        scores = score_tracks(mels, model_bytes, params, len(contexts), settings)
        with stage(log, "score and write track_scores"):
            io.write_parquet(with_names(scores, names), f"{out}/{SCORES_DIR}")
        written = spark.read.parquet(f"{out}/{SCORES_DIR}")
        counts = {
            row["split"]: {"rows": row["rows"], "unusable_mel": row["bad"]}
            for row in written.groupBy("split")
            .agg(
                F.count(F.lit(1)).alias("rows"),
                F.sum(F.col("probabilities").isNull().cast("long")).alias("bad"),
            )
            .collect()
        }
        partitions = settings.ranking_partitions or int(spark.conf.get("spark.sql.shuffle.partitions"))
        with stage(log, "rank and write context_rankings"):
            ranked = rank_contexts(written, contexts, partitions)
            try:
                io.write_parquet(
                    ranked.sortWithinPartitions("context", "rank"), f"{out}/{RANKINGS_DIR}", partition_by=("context",)
                )
            finally:
                ranked.cached_input.unpersist()
        top = (
            spark.read.parquet(f"{out}/{RANKINGS_DIR}")
            .where(F.col("rank") <= settings.report_top)
            .select("context", "rank", contract.TRACK_ID, "probability")
            .collect()
        )
    finally:
        _restore_conf(spark, previous)
    top_lists: dict[str, list] = {c: [] for c in contexts}
    for row in sorted(top, key=lambda r: (r["context"], r["rank"])):
        top_lists[row["context"]].append(
            {"track_id": row[contract.TRACK_ID], "probability": round(row["probability"], 4)}
        )
    report = {
        "stage": "score",
        "version": __version__,
        "model": os.path.abspath(model_dir),
        "model_loss_variant": meta.get("loss_variant"),
        "shards": shards,
        "splits": splits,
        "contexts": contexts,
        "outputs": {"track_scores": f"{out}/{SCORES_DIR}", "context_rankings": f"{out}/{RANKINGS_DIR}"},
        "rows": counts,
        "rows_scored": sum(v["rows"] - (v["unusable_mel"] or 0) for v in counts.values()),
        "rows_unusable": sum(v["unusable_mel"] or 0 for v in counts.values()),
        "top": top_lists,
        "settings": cfg.to_dict()["score"],
        "elapsed_seconds": round(time.perf_counter() - started, 3),
    }
    io.write_json(spark, f"{out}/{REPORT_FILE}", report)
    return report


def summary(report: dict[str, Any]) -> str:
    lines = [
        f"scores written to {report['outputs']['track_scores']}",
        f"rankings written to {report['outputs']['context_rankings']} (one directory per context)",
        f"scored {report['rows_scored']} tracks ({report['rows_unusable']} with an unusable spectrogram) "
        f"in {report['elapsed_seconds']:.1f} s",
    ]
    for context, tracks in report["top"].items():
        lines.append(f"{context:<10} " + ", ".join(f"{t['track_id']} ({t['probability']:.2f})" for t in tracks))
    return "\n".join(lines)


def run_in_chain(request: StageRequest) -> dict[str, Any]:
    """The stage in a chained run: the configured model and the extraction's shards in."""
    return run_score_stage(
        request.spark,
        request.cfg,
        request.inputs["model"],
        request.upstream["extract"],
        request.out,
        tracks=request.inputs.get("tracks"),
    )


def manifest_rows(report: dict[str, Any]) -> dict[str, Any]:
    """The counts a refresh manifest keeps from the report."""
    return {"scored": report["rows_scored"], "unusable": report["rows_unusable"]}


def manifest_line(rows: dict[str, Any]) -> str:
    return f"scores: {rows['scored']} tracks scored"
