"""``ctx-spark label`` and ``ctx-spark rank-keywords``."""

from __future__ import annotations

import argparse

from ctx_spark.cli import Command
from ctx_spark.config import Config
from ctx_spark.spark import SparkSettings, get_spark


def _label_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--playlists", required=True, help="Parquet table (playlist_id, title)")
    parser.add_argument("--playlist-tracks", required=True, help="Parquet table (playlist_id, track_id)")
    parser.add_argument("--tracks", required=True, help="Parquet table (track_id, artist_id, album_id)")
    parser.add_argument("--out", required=True, help="output directory")


def _label(args: argparse.Namespace, cfg: Config) -> int:
    from ctx_spark.label.run import LabelInputs, run_label_stage, summary

    spark = get_spark("ctx-spark label", cfg.section("spark", SparkSettings))
    report = run_label_stage(spark, cfg, LabelInputs(args.playlists, args.playlist_tracks, args.tracks), args.out)
    print(summary(report))
    return 0


LABEL = Command(
    description="""Label tracks with listening contexts from the titles of the playlists that hold them.

inputs:   --playlists (playlist_id, title), --playlist-tracks (playlist_id, track_id),
          --tracks (track_id, artist_id, album_id): Parquet tables, any Hadoop path
outputs:  OUT/track_context_counts, OUT/track_labels, OUT/report.json (docs/labelling.md)
setting:  label.min_playlists (playlists per track and context needed for a label)

example:
  ctx-spark label --playlists C/playlists --playlist-tracks C/playlist_tracks \\
      --tracks C/tracks --out L --set label.min_playlists=2""",
    add_arguments=_label_arguments,
    run=_label,
    sections=("spark", "label"),
)


def _rank_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--playlists", help="Parquet table (playlist_id, title)")
    source.add_argument("--deezer-titles", help="the TSV of Ibrahim et al. (playlist_id, editor, title, matches)")
    parser.add_argument("--title-column", default="title", help="title column of --playlists (default: title)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--top", type=int, default=30, help="rows of the ranking to print (default 30)")


def _rank(args: argparse.Namespace, cfg: Config) -> int:
    from ctx_spark.label.keywords import ranking_table
    from ctx_spark.label.rank import read_playlists, run_rank_stage
    from ctx_spark.sources.deezer import read_deezer_titles

    spark = get_spark("ctx-spark rank-keywords", cfg.section("spark", SparkSettings))
    if args.deezer_titles:
        playlists, source = read_deezer_titles(spark, args.deezer_titles), args.deezer_titles
    else:
        playlists, source = read_playlists(spark, args.playlists, args.title_column), args.playlists
    report = run_rank_stage(spark, cfg, playlists, source, args.out)
    print(
        f"ranking of {report['keywords']} keywords over {report['playlists']} playlists written to "
        f"{report['outputs']['keyword_ranking']} (and {report['outputs']['csv']})"
    )
    print(ranking_table(report["ranking"], args.top))
    return 0


RANK = Command(
    description="""Rank the candidate context keywords (the `vocabulary` of conf/contexts.yaml) by the number
of playlists whose title contains each, with the labelling job's matcher.

inputs:   --playlists (playlist_id, title) Parquet table, or --deezer-titles TSV
outputs:  OUT/keyword_ranking (Parquet), OUT/keyword_ranking.csv, OUT/report.json
setting:  vocabulary (conf/contexts.yaml)

example:
  ctx-spark rank-keywords --deezer-titles sample_playlists_title.tsv --out K""",
    add_arguments=_rank_arguments,
    run=_rank,
    sections=("spark",),
)
