"""Ranking candidate context keywords by the number of playlist titles that contain them.

The paper chose its 15 contexts as the most frequent keywords of a candidate vocabulary in
four categories (location, activity, time, mood). This module recomputes that ranking for
any playlists table, with the labelling job's own matcher (:mod:`ctx_spark.text`), so a
keyword counted here is exactly a keyword that would mark a playlist in the job.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Optional

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctx_spark.config import Contexts
from ctx_spark.text import KeywordMatcher, match_titles

RANKING_SCHEMA = T.StructType(
    [
        T.StructField("rank", T.IntegerType(), False),
        T.StructField("keyword", T.StringType(), False),
        T.StructField("category", T.StringType(), False),
        T.StructField("context", T.StringType(), True),
        T.StructField("n_playlists", T.LongType(), False),
        T.StructField("share", T.DoubleType(), False),
    ]
)


def keyword_categories(vocabulary: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """keyword -> category, in vocabulary order.

    Raises:
        ValueError: a keyword is listed twice (in one category or in two).
    """
    categories: dict[str, str] = {}
    for category, words in vocabulary.items():
        for word in words:
            if word in categories:
                raise ValueError(f"vocabulary keyword '{word}' is listed twice ({categories[word]}, {category})")
            categories[word] = category
    return categories


def vocabulary_matcher(vocabulary: Mapping[str, Sequence[str]]) -> KeywordMatcher:
    """A matcher whose labels are the vocabulary keywords themselves."""
    return KeywordMatcher({word: [word] for word in keyword_categories(vocabulary)})


def keyword_contexts(vocabulary: Mapping[str, Sequence[str]], contexts: Optional[Contexts]) -> dict[str, str]:
    """keyword -> the context whose keyword list holds it (only keywords that are context keywords)."""
    if contexts is None:
        return {}
    found: dict[str, str] = {}
    for name in contexts.names:
        for word in contexts.keywords[name]:
            found.setdefault(word, name)
    return {w: found[w] for w in keyword_categories(vocabulary) if w in found}


def match_keywords(playlists: DataFrame, vocabulary: Mapping[str, Sequence[str]]) -> DataFrame:
    """Playlists whose title contains vocabulary keywords.

    Args:
        playlists: (playlist_id, title); null titles match nothing.

    Returns:
        Distinct (playlist_id, keyword) rows.
    """
    titled = playlists.where(F.col("title").isNotNull()).select("playlist_id", "title")
    matched = match_titles(titled, "title", vocabulary_matcher(vocabulary), "_keywords")
    return matched.select("playlist_id", F.explode("_keywords").alias("keyword")).distinct()


def rank_keywords(
    playlists: DataFrame, vocabulary: Mapping[str, Sequence[str]], contexts: Optional[Contexts] = None
) -> DataFrame:
    """The vocabulary ranked by the number of playlists whose title matches each keyword.

    Every keyword gets a row, unmatched ones with 0. The matching and counting run in
    Spark; the per-keyword counts (at most one row per keyword, whatever the catalogue's
    size) are then ranked on the driver.

    Args:
        playlists: (playlist_id, title).
        vocabulary: category -> keywords (``cfg.vocabulary``).
        contexts: when given, each keyword that is a context keyword is tagged with it.

    Returns:
        (rank int, keyword, category, context nullable, n_playlists long, share double):
        rank 1 is the most frequent (ties by keyword); ``share`` is ``n_playlists`` over
        the playlists with a non-null title (0 when there are none).
    """
    spark = playlists.sparkSession
    categories = keyword_categories(vocabulary)
    tagged = keyword_contexts(vocabulary, contexts)
    counted = match_keywords(playlists, vocabulary).groupBy("keyword").agg(F.count(F.lit(1)).alias("n"))
    counts = {r["keyword"]: int(r["n"]) for r in counted.collect()}  # at most one row per keyword
    titled = playlists.where(F.col("title").isNotNull()).select("playlist_id").distinct().count()
    ordered = sorted(categories, key=lambda w: (-counts.get(w, 0), w))
    rows = [
        (rank, w, categories[w], tagged.get(w), counts.get(w, 0), counts.get(w, 0) / titled if titled else 0.0)
        for rank, w in enumerate(ordered, start=1)
    ]
    return spark.createDataFrame(rows, RANKING_SCHEMA).coalesce(1)


def ranking_csv(rows: Sequence) -> str:
    """The collected ranking as CSV text, with a header."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["rank", "keyword", "category", "context", "n_playlists", "share"])
    for r in rows:
        writer.writerow(
            [r["rank"], r["keyword"], r["category"], r["context"] or "", r["n_playlists"], f"{r['share']:.6f}"]
        )
    return buffer.getvalue()


def ranking_table(rows: Sequence, top: int) -> str:
    """The first ``top`` rows as a Markdown table (for the console and the docs)."""
    lines = ["| rank | keyword | category | playlists | share | context |", "|---:|---|---|---:|---:|---|"]
    for r in rows[:top]:
        lines.append(
            f"| {r['rank']} | {r['keyword']} | {r['category']} | {r['n_playlists']} | "
            f"{100 * r['share']:.2f}% | {r['context'] or ''} |"
        )
    return "\n".join(lines)
