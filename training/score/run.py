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
from ctx_spark.logs import get_logger, stage
from ctx_spark.shards import contract
from ctx_spark.spark import SparkSettings, ship_package
from ctx_spark.track_names import read_track_names, with_names
from training.meta import mel_params
from training.score import sources
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
    """The bytes of model.keras and the parsed model_meta.json of a run directory (local).

    The model is first loaded once here, on the driver, as every executor will load it
    (Keras safe mode, shapes checked against the meta): a corrupt file or a model Keras
    refuses fails in one line before any task starts, not in every task.

    Raises:
        InputError: no exported model, or one that cannot be loaded (the reason).
    """
    from training.model import load_exported

    model_path = os.path.join(model_dir, MODEL_FILE)
    exported = load_exported(model_dir)
    with open(model_path, "rb") as handle:
        return handle.read(), exported.meta


def read_shards(
    spark: SparkSession, shards: str, params: MelParams, contexts: Sequence[str]
) -> tuple[DataFrame, list[str]]:
    """(track_id, split, mel, fingerprint columns) over every split present under
    ``shards`` (a shard root, or a snapshot's references into the mel store).

    Raises:
        InputError: no split directory, missing columns, mel parameters differing from
            the model's, or target vectors recorded for other contexts.
    """
    root, splits, refs = sources.check_shards(spark, shards, params, contexts)
    keys = sources.track_keys(spark, root, splits, refs)
    n = keys.count() if refs is not None else 0
    return sources.with_mels(spark, keys, (root, splits, refs), True, n), splits


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


def _scores(
    spark: SparkSession, source: tuple, meta: tuple, settings: ScoreSettings, previous: Optional[str]
) -> tuple[DataFrame, dict[str, Any]]:
    """The new track_scores (kept scores and new ones) and how many of each."""
    root, splits, refs = source
    model_bytes, params, contexts = meta
    from training.score.tasks import model_digest

    keys = sources.track_keys(spark, root, splits, refs)
    kept_prev, why = sources.previous_scores(spark, previous, model_digest(model_bytes), params)
    kept, to_score = sources.split_rescore(keys, kept_prev)
    n_score = to_score.count() if kept is not None or refs is not None else -1
    log.info("scores: %s; %s tracks to score", why, "every" if n_score < 0 else n_score)
    mels = sources.with_mels(spark, to_score, source, kept is None, max(n_score, 0))
    scored = score_tracks(mels, model_bytes, params, len(contexts), settings)
    # the keys again, not the mels (mapInArrow would read the spectrograms twice)
    scored = scored.join(to_score.select(contract.TRACK_ID, *contract.FINGERPRINT_COLUMNS), contract.TRACK_ID)
    if kept is not None:
        scored = scored.unionByName(kept)
    return scored, {"previous_scores": why, "reused_from": previous if kept is not None else None}


def run_score_stage(
    spark: SparkSession,
    cfg: Config,
    model_dir: str,
    shards: str,
    out: str,
    previous: Optional[str] = None,
    tracks: Optional[str] = None,
) -> dict[str, Any]:
    """Score every track of ``shards`` and write ``out/track_scores``,
    ``out/context_rankings`` (partitioned by context) and ``out/report.json``, each
    atomically. Returns the report.

    Args:
        previous: an earlier scoring output whose scores are kept for tracks whose
            spectrogram did not change, when made by the same model (a chained refresh
            passes the previous snapshot's); the rankings are always rebuilt whole.
        tracks: an optional catalogue tracks table; its name columns (track, artist and album
            names, when it has them) are joined into both outputs.
    """
    started = time.perf_counter()
    settings = cfg.section("score", ScoreSettings)
    if cfg.section("spark", SparkSettings).ship_package:
        ship_package(spark, "training")  # the executors run training.score.tasks
    model_bytes, meta = read_model(model_dir)
    params = mel_params(meta)
    contexts = list(meta["contexts"])
    contract.check_contexts(contexts, cfg.contexts.names, f"the model {model_dir}")
    out = io.qualify(out).rstrip("/")
    io.check_output_path("score", out, {"--model": model_dir, "--shards": shards, "--tracks": tracks})
    names = read_track_names(spark, tracks) if tracks else None
    previous_conf = _set_conf(
        spark,
        {
            "spark.sql.execution.arrow.maxRecordsPerBatch": str(settings.arrow_batch_rows),
            "spark.sql.parquet.columnarReaderBatchSize": str(settings.parquet_batch_rows),
        },
    )
    try:
        source = sources.check_shards(spark, shards, params, contexts)
        scores, reuse = _scores(spark, source, (model_bytes, params, contexts), settings, previous)
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
        reused = 0
        if reuse["reused_from"]:
            reused = _kept_count(spark, written, f"{reuse['reused_from']}/{SCORES_DIR}")
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
        _restore_conf(spark, previous_conf)
    top_lists: dict[str, list] = {c: [] for c in contexts}
    for row in sorted(top, key=lambda r: (r["context"], r["rank"])):
        top_lists[row["context"]].append(
            {"track_id": row[contract.TRACK_ID], "probability": round(row["probability"], 4)}
        )
    from training.score.tasks import model_digest

    rows = sum(v["rows"] for v in counts.values())
    report = {
        "stage": "score",
        "version": __version__,
        "model": os.path.abspath(model_dir),
        "model_digest": model_digest(model_bytes),
        "mel_params": params.to_dict(),
        "model_loss_variant": meta.get("loss_variant"),
        "shards": shards,
        "splits": source[1],
        "contexts": contexts,
        "outputs": {"track_scores": f"{out}/{SCORES_DIR}", "context_rankings": f"{out}/{RANKINGS_DIR}"},
        "rows": counts,
        "rows_scored": sum(v["rows"] - (v["unusable_mel"] or 0) for v in counts.values()),
        "rows_unusable": sum(v["unusable_mel"] or 0 for v in counts.values()),
        "rows_computed": rows - reused,
        "rows_reused": reused,
        "previous_scores": reuse["previous_scores"],
        "top": top_lists,
        "settings": cfg.to_dict()["score"],
        "elapsed_seconds": round(time.perf_counter() - started, 3),
    }
    io.write_json(spark, f"{out}/{REPORT_FILE}", report)
    return report


def _kept_count(spark: SparkSession, written: DataFrame, previous_table: str) -> int:
    """Rows of ``written`` whose probabilities came from ``previous_table`` (same track and
    spectrogram key): one join of two small tables."""
    keys = [contract.TRACK_ID, *contract.FINGERPRINT_COLUMNS]
    prev = spark.read.parquet(previous_table).select(*keys)
    same = None
    for key in keys:
        cond = written[key].eqNullSafe(prev[key])
        same = cond if same is None else same & cond
    has_key = written[contract.AUDIO_SIZE].isNotNull() | written[contract.AUDIO_CHECKSUM].isNotNull()
    return written.join(prev, same & has_key, "left_semi").count()


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
    """The stage in a chained run: the configured model and the extraction's output in;
    the previous snapshot's scores kept for tracks whose spectrogram and model did not
    change."""
    return run_score_stage(
        request.spark,
        request.cfg,
        request.inputs["model"],
        request.upstream["extract"],
        request.out,
        previous=request.previous,
        tracks=request.inputs.get("tracks"),
    )


def manifest_rows(report: dict[str, Any]) -> dict[str, Any]:
    """The counts a refresh manifest keeps from the report: tracks scored by this run,
    scores kept from the previous snapshot, and unusable spectrograms."""
    total = report["rows_scored"] + report["rows_unusable"]
    return {
        "scored": report.get("rows_computed", total),
        "reused": report.get("rows_reused", 0),
        "unusable": report["rows_unusable"],
    }


def manifest_line(rows: dict[str, Any]) -> str:
    return f"scores: {rows['scored']} tracks scored, {rows.get('reused', 0)} kept from the previous snapshot"
