"""Benchmark the labelling stage on synthetic catalogues of growing size (local mode).

  python bench/label_tracks.py [--sizes 1M,5M,20M] [--cache DIR] [--seed S]
      [--driver-memory 4g] [--set key=value ...]

For each size: generate the catalogue with ctx_spark.sources.synthetic (cached under
--cache, reused when its manifest matches), then run ctx_spark.label.run.run_label_stage
in a fresh Python process with its own Spark driver JVM, so every size starts cold and
its peak memory is its own. Prints, per size: playlist-track rows, wall seconds, rows/s,
the peak resident memory (VmHWM from /proc) of the driver JVM (which also runs the
local-mode executors), of the Python driver and of the largest Python worker; and how
many playlist-track rows could enter the wide aggregations (the rows of keyword-matched
playlists, ctx_spark/labels.py) next to the total, with the records Spark actually wrote
to shuffles (from its monitoring REST API).

Timings on a shared machine are noisy: compare the sizes of one run with each other.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ctx_spark.config import load_config  # noqa: E402
from ctx_spark.sources.synthetic import MANIFEST, CatalogueParams, generate_catalogue, table_paths  # noqa: E402


def parse_size(text: str) -> int:
    """'1M' -> 1_000_000, '200k' -> 200_000, '5000' -> 5000."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"bad size {text!r}; use e.g. 200k, 1M, 20M")
    factor = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    return int(float(match.group(1)) * factor)


def vm_hwm_mib(pid: int | str = "self") -> Optional[float]:
    """Peak resident set size of a process in MiB (Linux /proc), None when unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def descendants(pid: int) -> list[int]:
    """All live descendants of ``pid`` (from /proc/*/stat)."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                parent[int(entry)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        children = [p for p, pp in parent.items() if pp == current]
        found += children
        frontier += children
    return found


def ensure_catalogue(cache: Path, rows: int, seed: int) -> Path:
    """Generate (or reuse) the catalogue of ``rows`` rows under ``cache``."""
    cfg = load_config()
    params = CatalogueParams(rows=rows, seed=seed)
    root = cache / f"catalogue-{rows}-seed{seed}"
    manifest = root / MANIFEST
    if manifest.is_file() and json.loads(manifest.read_text())["params"] == asdict(params):
        return root
    started = time.perf_counter()
    vocabulary = [w for words in cfg.vocabulary.values() for w in words]
    generate_catalogue(root, params, dict(cfg.contexts.keywords), vocabulary)
    print(f"generated {rows} rows in {time.perf_counter() - started:.1f} s -> {root}", file=sys.stderr)
    return root


def _shuffle_records(spark) -> tuple[int, int]:
    """(total shuffle records written, largest per stage) over the application's stages."""
    sc = spark.sparkContext
    url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/stages?status=complete"
    time.sleep(1.0)  # let the listener bus deliver the last stage metrics
    with urllib.request.urlopen(url, timeout=30) as response:
        stages = json.load(response)
    records = [int(s["shuffleWriteRecords"]) for s in stages]
    return sum(records), max(records, default=0)


def worker(catalogue: Path, out: Path, overrides: Sequence[str]) -> dict[str, Any]:
    """Run the stage once in this process and measure it (the --worker mode)."""
    from pyspark.sql import functions as F

    from ctx_spark.label.rules import context_matcher, match_playlists
    from ctx_spark.label.run import LabelInputs, read_inputs, run_label_stage
    from ctx_spark.spark import SparkSettings, get_spark

    cfg = load_config(overrides=overrides)
    spark = get_spark("ctx-spark bench label", cfg.section("spark", SparkSettings))
    jvm_pid = int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())
    paths = table_paths(catalogue)
    inputs = LabelInputs(paths["playlists"], paths["playlist_tracks"], paths["tracks"])
    started = time.perf_counter()
    report = run_label_stage(spark, cfg, inputs, str(out))
    seconds = time.perf_counter() - started
    measured = {
        "seconds": seconds,
        "jvm_peak_mib": vm_hwm_mib(jvm_pid),
        "python_peak_mib": vm_hwm_mib(),
        "worker_peak_mib": max((vm_hwm_mib(p) or 0.0 for p in descendants(jvm_pid)), default=0.0),
        "jvm_max_heap_mib": int(spark.sparkContext._jvm.java.lang.Runtime.getRuntime().maxMemory()) / 2**20,
    }
    measured["shuffle_records"], measured["largest_shuffle"] = _shuffle_records(spark)
    # Not timed: the rows of keyword-matched playlists, i.e. what may enter the wide operations.
    playlists, playlist_tracks, _ = read_inputs(spark, inputs)
    matched = match_playlists(playlists, context_matcher(cfg.contexts)).select("playlist_id").distinct()
    measured["matched_rows"] = playlist_tracks.join(F.broadcast(matched), "playlist_id", "left_semi").count()
    measured["rows"] = report["rows_read"]["playlist_tracks"]
    measured["playlists"] = report["rows_read"]["playlists"]
    measured["tracks_labelled"] = report["tracks_labelled"]
    spark.stop()
    return measured


def _mib(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1M,5M,20M", help="comma-separated playlist-track row counts")
    parser.add_argument(
        "--cache",
        default=str(Path(tempfile.gettempdir()) / "ctx-spark-bench"),
        help="where generated catalogues and outputs live (reused between runs)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--driver-memory", default="4g", help="spark.driver.memory of each run")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        dest="overrides",
        metavar="KEY=VALUE",
        help="config override passed to each run (repeatable)",
    )
    parser.add_argument("--worker", nargs=2, metavar=("CATALOGUE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    overrides = [f"spark.conf.spark.driver.memory={args.driver_memory}", *args.overrides]
    if args.worker:
        print("BENCH " + json.dumps(worker(Path(args.worker[0]), Path(args.worker[1]), overrides)))
        return 0
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    cache = Path(args.cache)
    env = dict(
        os.environ,
        SPARK_LOCAL_IP=os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
        PYSPARK_PYTHON=os.environ.get("PYSPARK_PYTHON", sys.executable),
    )
    results = []
    for rows in sizes:
        catalogue = ensure_catalogue(cache, rows, args.seed)
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            str(catalogue),
            str(cache / f"labels-{rows}"),
            "--driver-memory",
            args.driver_memory,
        ]
        command += [x for o in args.overrides for x in ("--set", o)]
        done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, check=True)
        line = next(row for row in done.stdout.splitlines() if row.startswith("BENCH "))
        results.append(json.loads(line[len("BENCH ") :]))
        r = results[-1]
        print(f"size {rows}: {r['rows']} rows in {r['seconds']:.1f} s", file=sys.stderr)
    print(
        f"{'rows':>11} {'playlists':>9} {'seconds':>8} {'rows/s':>9} {'JVM peak':>9} {'Py peak':>8} "
        f"{'worker':>7} {'matched rows':>13} {'matched %':>9} {'shuffled':>10} {'largest':>10} {'labelled':>8}"
    )
    for r in results:
        print(
            f"{r['rows']:>11,} {r['playlists']:>9,} {r['seconds']:>8.1f} {r['rows'] / r['seconds']:>9,.0f} "
            f"{_mib(r['jvm_peak_mib']):>9} {_mib(r['python_peak_mib']):>8} {_mib(r['worker_peak_mib']):>7} "
            f"{r['matched_rows']:>13,} {100 * r['matched_rows'] / r['rows']:>8.1f}% {r['shuffle_records']:>10,} "
            f"{r['largest_shuffle']:>10,} {r['tracks_labelled']:>8,}"
        )
    print(
        f"(memory in MiB, VmHWM; driver max heap {_mib(results[0]['jvm_max_heap_mib'])} MiB; 'shuffled' = all "
        "shuffle records written by the run, 'largest' = by its largest stage)"
        if results
        else "no sizes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
