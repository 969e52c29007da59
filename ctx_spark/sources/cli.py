"""``ctx-spark import-mpd`` and ``ctx-spark generate-catalogue``."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ctx_spark.cli import Command
from ctx_spark.config import Config, from_mapping
from ctx_spark.errors import ConfigError


def _mpd_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--slices", required=True, help="directory of mpd.slice.*.json files, or a glob")
    parser.add_argument("--out", required=True, help="output directory")


def _import_mpd(args: argparse.Namespace, cfg: Config) -> int:
    from ctx_spark.sources.mpd import run_import_stage
    from ctx_spark.spark import SparkSettings, get_spark

    spark = get_spark("ctx-spark import-mpd", cfg.section("spark", SparkSettings))
    report = run_import_stage(spark, args.slices, args.out)
    files, rows = report["files"], report["rows"]
    print(
        f"imported {files['imported']} of {files['found']} slice files into {Path(args.out).resolve()}: "
        f"{rows['playlists']} playlists, {rows['playlist_tracks']} playlist-track rows, {rows['tracks']} tracks"
    )
    for item in report["skipped_files"]:
        print(f"skipped {item['file']}: {item['reason']}")
    return 0


IMPORT_MPD = Command(
    description="""Import Spotify Million Playlist Dataset JSON slices as the labelling job's input tables.

inputs:   --slices: a directory of mpd.slice.*.json files, or a glob (any Hadoop filesystem)
outputs:  OUT/playlists, OUT/playlist_tracks, OUT/tracks (Parquet; ids are Spotify URIs),
          OUT/report.json; malformed files are reported and skipped
setting:  none

example:
  ctx-spark import-mpd --slices mpd/data --out C
  ctx-spark label --playlists C/playlists --playlist-tracks C/playlist_tracks --tracks C/tracks --out L""",
    add_arguments=_mpd_arguments,
    run=_import_mpd,
    sections=("spark",),
)


def parse_params(rows: int, seed: int, pairs: Sequence[str]) -> Any:
    """:class:`CatalogueParams` from ``--rows``, ``--seed`` and ``name=value`` pairs (values
    parsed as YAML and type-checked like configuration values)."""
    from ctx_spark.sources.synthetic import CatalogueParams

    values: dict[str, Any] = {"rows": rows, "seed": seed}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or name in ("rows", "seed"):
            raise ConfigError(f"--param {pair!r}: expected name=value (use --rows and --seed for those two)")
        try:
            values[name] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--param {pair!r}: value is not valid YAML: {exc}") from None
    return from_mapping(CatalogueParams, values, "--param")


def _generate_arguments(parser: argparse.ArgumentParser) -> None:
    from ctx_spark.sources.synthetic import CatalogueParams

    parser.add_argument("--out", required=True, help="output directory (replaced when it exists)")
    parser.add_argument("--rows", type=int, default=CatalogueParams.rows, help="target playlist-track rows")
    parser.add_argument("--seed", type=int, default=CatalogueParams.seed)
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any other CatalogueParams field, e.g. --param context_title_rate=0.2",
    )


def _generate(args: argparse.Namespace, cfg: Config) -> int:
    from ctx_spark.sources.synthetic import generate_catalogue

    params = parse_params(args.rows, args.seed, args.param)
    vocabulary = [w for words in cfg.vocabulary.values() for w in words]
    started = time.perf_counter()
    manifest = generate_catalogue(args.out, params, dict(cfg.contexts.keywords), vocabulary)
    rows = manifest["rows"]
    print(
        f"catalogue written to {Path(args.out).resolve()} in {time.perf_counter() - started:.1f} s: "
        f"{rows['playlists']} playlists, {rows['playlist_tracks']} playlist-track rows, {rows['tracks']} tracks "
        f"({manifest['artists']} artists, {manifest['albums']} albums)"
    )
    return 0


GENERATE = Command(
    description="""Generate a synthetic catalogue (the labelling job's three input tables) with a seed. No Spark:
numpy and pyarrow, chunk by chunk. The same seed and settings give byte-identical files.

inputs:   conf/contexts.yaml (contexts, keywords, vocabulary)
outputs:  OUT/playlists, OUT/playlist_tracks, OUT/tracks (Parquet, int64 ids), OUT/catalogue.json
setting:  --rows (playlist-track rows), --param name=value (see ctx_spark.sources.synthetic.CatalogueParams)

example:
  ctx-spark generate-catalogue --out C --rows 200000 --seed 42""",
    add_arguments=_generate_arguments,
    run=_generate,
)
