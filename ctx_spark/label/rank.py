"""The keyword-ranking stage: a playlists table in, the ranked vocabulary out."""

from __future__ import annotations

import time
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from ctx_spark import __version__, io, schema
from ctx_spark.config import Config
from ctx_spark.errors import InputError
from ctx_spark.label.keywords import rank_keywords, ranking_csv
from ctx_spark.logs import get_logger, stage

log = get_logger("keywords")

RANKING_DIR = "keyword_ranking"
RANKING_CSV = "keyword_ranking.csv"
REPORT_FILE = schema.REPORT_FILE


def run_rank_stage(spark: SparkSession, cfg: Config, playlists: DataFrame, source: str, out: str) -> dict[str, Any]:
    """Rank ``cfg.vocabulary`` on ``playlists`` (playlist_id, title) and write
    ``out/keyword_ranking`` (Parquet), ``out/keyword_ranking.csv`` and ``out/report.json``,
    each atomically. Returns the report, whose ``ranking`` lists every keyword in rank order.
    """
    started = time.perf_counter()
    out = io.qualify(out).rstrip("/")
    io.check_output_path("rank-keywords", out, {"--playlists": source})
    with stage(log, "rank keywords") as timer:
        ranking = rank_keywords(playlists, cfg.vocabulary, cfg.contexts)
        rows = ranking.collect()  # one row per vocabulary keyword
        n_playlists = playlists.count()
        timer.rows = n_playlists
    with stage(log, "write ranking"):
        io.write_parquet(spark.createDataFrame(rows, ranking.schema).coalesce(1), f"{out}/{RANKING_DIR}")
        io.write_text(spark, f"{out}/{RANKING_CSV}", ranking_csv(rows))
    contexts = set(cfg.contexts.names)
    top = [r["keyword"] for r in rows[: len(contexts)]]
    report = {
        "stage": "rank_keywords",
        "version": __version__,
        "input": source,
        "outputs": {"keyword_ranking": f"{out}/{RANKING_DIR}", "csv": f"{out}/{RANKING_CSV}"},
        "playlists": n_playlists,
        "playlists_null_title": playlists.where("title IS NULL").count(),
        "keywords": len(rows),
        "keywords_matched": sum(1 for r in rows if r["n_playlists"] > 0),
        "top_keywords_that_are_contexts": sum(1 for r in rows[: len(contexts)] if r["context"] is not None),
        "top_keywords": top,
        "ranking": [r.asDict() for r in rows],
        "elapsed_seconds": round(time.perf_counter() - started, 3),
    }
    io.write_json(spark, f"{out}/{REPORT_FILE}", report)
    return report


def read_playlists(spark: SparkSession, path: str, title_column: str = "title") -> DataFrame:
    """The ``playlists`` table at ``path``, with ``title_column`` read as ``title``.

    Raises:
        InputError: the table is missing, lacks the title column, or breaks the contract.
    """
    path = io.qualify(path)
    if not io.path_exists(spark, path):
        raise InputError(f"table 'playlists': path {path} does not exist")
    raw = spark.read.parquet(path)
    if title_column != "title":
        if title_column not in raw.columns:
            raise InputError(
                f"table 'playlists': no column '{title_column}' (--title-column); it has {', '.join(raw.columns)}"
            )
        raw = raw.drop("title").withColumnRenamed(title_column, "title")
    return schema.validate(raw, schema.PLAYLISTS)
