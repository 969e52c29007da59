"""Generate a synthetic catalogue (the labelling job's three input tables) with a seed.

  python -m jobs.generate_catalogue --out DIR --rows N --seed S [--param name=value ...]
      [--conf FILE] [--set key=value ...]

Writes DIR/playlists, DIR/playlist_tracks, DIR/tracks (Parquet, int64 ids) and
DIR/catalogue.json. No Spark: numpy and pyarrow, chunk by chunk. Contexts and vocabulary
come from the configuration (conf/contexts.yaml); generator settings from --param (see
ctx_spark.sources.synthetic.CatalogueParams). The same seed and settings give
byte-identical files.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

if __package__ in (None, ""):  # run as a file: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

from ctx_spark.cli import config_from_args, job_parser, run_main
from ctx_spark.errors import ConfigError
from ctx_spark.sources.synthetic import CatalogueParams, generate_catalogue


def parse_params(rows: int, seed: int, pairs: Sequence[str]) -> CatalogueParams:
    """Build :class:`CatalogueParams` from ``--rows``, ``--seed`` and ``name=value`` pairs."""
    known = {f.name: f for f in dataclasses.fields(CatalogueParams)}
    values: dict[str, Any] = {"rows": rows, "seed": seed}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or name not in known or name in ("rows", "seed"):
            raise ConfigError(f"--param {pair!r}: expected name=value with name one of "
                              f"{', '.join(n for n in known if n not in ('rows', 'seed'))}")
        value = yaml.safe_load(raw)
        expected = type(known[name].default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or isinstance(value, bool):
            raise ConfigError(f"--param {name}: expected {expected.__name__}, got {raw!r}")
        values[name] = value
    try:
        return CatalogueParams(**values)
    except ValueError as exc:
        raise ConfigError(f"catalogue parameters: {exc}") from None


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = job_parser(__doc__, prog="generate_catalogue")
    parser.add_argument("--out", required=True, help="output directory (replaced when it exists)")
    parser.add_argument("--rows", type=int, default=CatalogueParams.rows, help="target playlist-track rows")
    parser.add_argument("--seed", type=int, default=CatalogueParams.seed)
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="any other CatalogueParams field, e.g. --param context_title_rate=0.2")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    params = parse_params(args.rows, args.seed, args.param)
    vocabulary = [w for words in cfg.vocabulary.values() for w in words]
    started = time.perf_counter()
    manifest = generate_catalogue(args.out, params, dict(cfg.contexts.keywords), vocabulary)
    rows = manifest["rows"]
    print(f"catalogue written to {Path(args.out).resolve()} in {time.perf_counter() - started:.1f} s: "
          f"{rows['playlists']} playlists, {rows['playlist_tracks']} playlist-track rows, {rows['tracks']} tracks "
          f"({manifest['artists']} artists, {manifest['albums']} albums)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
