"""Rank the candidate context keywords (conf/contexts.yaml `vocabulary`) by the number of
playlists whose title contains each, with the labelling job's matcher.

  spark-submit jobs/rank_keywords.py --playlists P --out O [--title-column NAME]
  spark-submit jobs/rank_keywords.py --deezer-titles sample_playlists_title.tsv --out O
  python -m jobs.rank_keywords ...   (same options, local mode)

--playlists is a Parquet table (playlist_id, title); --title-column names the title column
when it is not `title` (e.g. `playlist_name` in MPD exports). --deezer-titles reads the TSV
of Ibrahim et al. instead. Writes O/keyword_ranking (Parquet), O/keyword_ranking.csv and
O/report.json, and prints the top of the ranking.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence

if __package__ in (None, ""):  # run as a file by spark-submit: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ctx_spark import io, schema
from ctx_spark.cli import config_from_args, job_parser, run_main
from ctx_spark.errors import InputError
from ctx_spark.label.keywords import ranking_table
from ctx_spark.sources.deezer import read_deezer_titles
from ctx_spark.spark import SparkSettings, get_spark
from ctx_spark.label.rank import run_rank_stage


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = job_parser(__doc__, prog="rank_keywords")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--playlists", help="Parquet table (playlist_id, title)")
    source.add_argument("--deezer-titles", help="the TSV of Ibrahim et al. (playlist_id, editor, title, matches)")
    parser.add_argument("--title-column", default="title", help="title column of --playlists (default: title)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--top", type=int, default=30, help="rows of the ranking to print (default 30)")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    spark = get_spark("ctx-spark rank_keywords", cfg.section("spark", SparkSettings))
    if args.deezer_titles:
        playlists, source_path = read_deezer_titles(spark, args.deezer_titles), args.deezer_titles
    else:
        path = io.qualify(args.playlists)
        if not io.path_exists(spark, path):
            raise InputError(f"table 'playlists': path {path} does not exist")
        raw = spark.read.parquet(path)
        if args.title_column != "title":
            if args.title_column not in raw.columns:
                raise InputError(f"table 'playlists': no column '{args.title_column}' (--title-column); "
                                 f"it has {', '.join(raw.columns)}")
            raw = raw.drop("title").withColumnRenamed(args.title_column, "title")
        playlists, source_path = schema.validate(raw, schema.PLAYLISTS), args.playlists
    report = run_rank_stage(spark, cfg, playlists, source_path, args.out)
    print(f"ranking of {report['keywords']} keywords over {report['playlists']} playlists written to "
          f"{report['outputs']['keyword_ranking']} (and {report['outputs']['csv']})")
    print(ranking_table(report["ranking"], args.top))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
