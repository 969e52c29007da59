"""The small commands that read rather than compute: ``ctx-spark top`` and ``ctx-spark config``."""

from __future__ import annotations

import argparse
import json
from typing import Any

import yaml

from ctx_spark.cli import Command
from ctx_spark.config import OPEN_MAPPINGS, Config
from ctx_spark.errors import InputError


def _top_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--scores", help="a `ctx-spark score` output directory")
    source.add_argument("--snapshot", metavar="ROOT", help="a refresh root: its current snapshot's scores")
    parser.add_argument("--context", required=True, help="a context name (conf/contexts.yaml)")
    parser.add_argument("-n", "--top", type=int, default=20, help="how many tracks (default 20)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per track")


def _top(args: argparse.Namespace, cfg: Config) -> int:
    from ctx_spark.results import format_top, scores_of_snapshot, top_tracks

    if args.context not in cfg.contexts.names:
        raise InputError(
            f"--context {args.context!r} is not a configured context; one of: {', '.join(cfg.contexts.names)}"
        )
    if args.top < 1:
        raise InputError("--top must be at least 1")
    scores = args.scores or scores_of_snapshot(args.snapshot)
    rows = top_tracks(scores, args.context, args.top)
    if args.json:
        for row in rows:
            print(json.dumps(row, default=str))
    else:
        print(format_top(rows, args.context, scores))
    return 0


TOP = Command(
    description="""Print the top N tracks of a context, by the model's probability: from a scoring output
(--scores P) or from the current snapshot of a refresh root (--snapshot R). Reads only that
context's ranking rows with rank <= N.

inputs:   --scores P (P/context_rankings/context=<name>/) or --snapshot R
outputs:  the tracks on stdout: rank, probability, split, track id (and names when present)
setting:  -n (how many)

example:
  ctx-spark top --snapshot R --context sleep -n 10""",
    add_arguments=_top_arguments,
    run=_top,
    sections=("spark",),
)


def _flatten(data: Any, where: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict) and data and (where not in OPEN_MAPPINGS or not where):
        items: list[tuple[str, Any]] = []
        for key, value in data.items():
            items += _flatten(value, f"{where}.{key}" if where else str(key))
        return items
    if isinstance(data, dict) and where in OPEN_MAPPINGS:
        return [(f"{where}.{k}", v) for k, v in data.items()]
    return [(where, data)]


def _config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("section", nargs="?", help="print only this section (e.g. label)")
    parser.add_argument("--yaml", action="store_true", help="print the merged configuration as YAML, without origins")


def _config(args: argparse.Namespace, cfg: Config) -> int:
    data = cfg.to_dict()
    if args.section:
        if args.section not in data:
            raise InputError(f"no config section '{args.section}'; sections: {', '.join(sorted(data))}")
        data = {args.section: data[args.section]}
    if args.yaml:
        print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), end="")
        return 0
    for key, value in _flatten(data):
        if key == "contexts":
            value = [c["name"] if isinstance(c, dict) else c for c in value]
        text = json.dumps(value, ensure_ascii=False)
        print(f"{key} = {text}    # {cfg.origin(key)}")
    return 0


CONFIG = Command(
    description="""Print the effective configuration (the defaults shipped with the package, then --conf,
then --set) with where each value came from.

inputs:   --conf FILE, --set key=value
outputs:  one `key = value    # origin` line per setting on stdout (or YAML with --yaml)
setting:  the optional section name, e.g. `ctx-spark config label`

example:
  ctx-spark config dataset --conf conf/examples/small.yaml --set dataset.seed=7""",
    add_arguments=_config_arguments,
    run=_config,
)
