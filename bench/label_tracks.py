"""Benchmark the labelling job against a plain DuckDB implementation of the same rules.

  python bench/label_tracks.py [--sizes 20M,80M] [--repeat 1] [--master local[2]]
      [--cache DIR] [--seed S] [--driver-memory 4g] [--no-duckdb] [--set key=value ...]
  python bench/label_tracks.py --sizes 20M,80M,320M    # 320M: ~7 GB of disk, ~10 min

For each size: generate the catalogue with ctx_spark.sources.synthetic (cached under
--cache, reused when its manifest matches); then, --repeat times, run the labelling job
(ctx_spark.label.run.run_label_stage, local[2] by default) in a fresh Python process with its
own driver JVM, and bench/label_duckdb.py (DuckDB, 2 threads, titles matched in Python) in
another fresh process, and check that both wrote identical track_context_counts and
track_labels. Prints, per size: playlist-track rows; the wall seconds of each whole process
(start-up included) and their ratio (job / DuckDB, the median over the repeats); the same
without start-up ("in": the job's run_label_stage, DuckDB's matching, SQL and writes); the
job's seconds per million rows; peak resident memory (VmHWM from /proc) of the driver JVM (which
also runs the local-mode executors), the Python driver and the DuckDB process; the job's
completed stages, the stages that wrote shuffle data, and the shuffle records written (from
Spark's monitoring REST API); and whether the outputs agree.

Timings on a shared machine are noisy: compare the figures of one run with each other, and
record the load (printed before and after each size).
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


def shuffle_stages(spark) -> dict[str, int]:
    """Completed stages, those that wrote shuffle data, and the shuffle records written (REST API)."""
    sc = spark.sparkContext
    url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/stages?status=complete"
    time.sleep(1.0)  # let the listener bus deliver the last stage metrics
    with urllib.request.urlopen(url, timeout=30) as response:
        stages = json.load(response)
    writing = [s for s in stages if int(s["shuffleWriteBytes"]) > 0]
    by_step: dict[str, list[int]] = {}
    for s in writing:
        by_step.setdefault(s.get("description") or "(other)", []).append(int(s["shuffleWriteRecords"]))
    slowest = sorted(stages, key=lambda s: -int(s.get("executorRunTime", 0)))[:12]
    for s in slowest:  # where the time went, on stderr
        print(
            f"stage {s['stageId']:>4} {s.get('description') or '':<20} tasks {s['numTasks']:>4} "
            f"run {int(s.get('executorRunTime', 0)) / 1000:>7.1f} s  in {s.get('inputRecords', 0):>10,} "
            f"shuffle r/w {s.get('shuffleReadRecords', 0):>10,} / {s.get('shuffleWriteRecords', 0):>10,}  "
            f"{s['name'][:40]}",
            file=sys.stderr,
        )
    return {
        "stages": len(stages),
        "shuffle_stages": len(writing),
        "shuffle_records": sum(int(s["shuffleWriteRecords"]) for s in writing),
        "shuffles_by_step": {step: sorted(records, reverse=True) for step, records in sorted(by_step.items())},
    }


def worker(catalogue: Path, out: Path, overrides: Sequence[str]) -> dict[str, Any]:
    """Run the stage once in this process and measure it (the --worker mode)."""
    from ctx_spark.label.run import LabelInputs, run_label_stage
    from ctx_spark.spark import SparkSettings, get_spark

    cfg = load_config(overrides=overrides)
    spark = get_spark("ctx-spark bench label", cfg.section("spark", SparkSettings))
    jvm_pid = int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())
    paths = table_paths(catalogue)
    inputs = LabelInputs(paths["playlists"], paths["playlist_tracks"], paths["tracks"])
    started = time.perf_counter()
    report = run_label_stage(spark, cfg, inputs, str(out))
    measured: dict[str, Any] = {
        "stage_seconds": time.perf_counter() - started,
        "jvm_peak_mib": vm_hwm_mib(jvm_pid),
        "python_peak_mib": vm_hwm_mib(),
        "worker_peak_mib": max((vm_hwm_mib(p) or 0.0 for p in descendants(jvm_pid)), default=0.0),
        "rows": report["rows_read"]["playlist_tracks"],
        "playlists": report["rows_read"]["playlists"],
        "tracks_labelled": report["tracks_labelled"],
        **shuffle_stages(spark),
    }
    spark.stop()
    return measured


def same_outputs(job_out: Path, duck_out: Path) -> str:
    """ "same" when the job's and DuckDB's outputs hold the same rows in the same order, else why not."""
    import pyarrow.parquet as pq

    for name in ("track_context_counts", "track_labels"):
        ours = pq.read_table(job_out / name)
        theirs = pq.read_table(duck_out / f"{name}.parquet").select(ours.column_names).cast(ours.schema)
        if ours.num_rows != theirs.num_rows:
            return f"{name}: {ours.num_rows} rows vs {theirs.num_rows}"
        if not ours.equals(theirs):
            return f"{name}: rows differ"
    return "same"


def _timed(command: list[str], env: dict[str, str], tag: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, check=True)
    seconds = time.perf_counter() - started
    line = next(row for row in done.stdout.splitlines() if row.startswith(tag + " "))
    return seconds, json.loads(line[len(tag) + 1 :])


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _mib(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _load() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="20M,80M", help="comma-separated playlist-track row counts")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each side per size (median reported)")
    parser.add_argument("--master", default="local[2]", help="Spark master of the job (default local[2])")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (default 2)")
    parser.add_argument("--no-duckdb", action="store_true", help="time the job alone")
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
    overrides = [f"spark.conf.spark.driver.memory={args.driver_memory}", f"spark.master={args.master}", *args.overrides]
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
    extra = [x for o in args.overrides for x in ("--set", o)]
    results = []
    for rows in sizes:
        catalogue = ensure_catalogue(cache, rows, args.seed)
        before = _load()
        job_runs, duck_runs = [], []
        for _ in range(args.repeat):
            job_command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(catalogue)]
            job_command += [str(cache / f"labels-{rows}"), "--driver-memory", args.driver_memory]
            job_command += ["--master", args.master, *extra]
            seconds, measured = _timed(job_command, env, "BENCH")
            job_runs.append({"seconds": seconds, **measured})
            if not args.no_duckdb:
                duck_command = [sys.executable, str(Path(__file__).resolve().parent / "label_duckdb.py")]
                duck_command += [str(catalogue), str(cache / f"duckdb-{rows}"), "--threads", str(args.threads), *extra]
                seconds, measured = _timed(duck_command, env, "DUCKDB")
                duck_runs.append({"seconds": seconds, **measured})
        result = {"size": rows, "load_before": before, "load_after": _load(), "job": job_runs, "duckdb": duck_runs}
        if duck_runs:
            result["outputs"] = same_outputs(cache / f"labels-{rows}", cache / f"duckdb-{rows}")
        results.append(result)
        print(f"size {rows}: " + json.dumps(result), file=sys.stderr)
    print(
        f"{'rows':>12} {'job s':>7} {'duck s':>7} {'ratio':>6} {'job in':>7} {'duck in':>7} {'in ratio':>8} "
        f"{'job s/Mrow':>10} {'JVM peak':>9} {'Py peak':>8} "
        f"{'duck peak':>9} {'stages':>6} {'shuffle st.':>11} {'shuffled':>11} {'outputs':>8}  load"
    )
    for r in results:
        job = _median([x["seconds"] for x in r["job"]])
        duck = _median([x["seconds"] for x in r["duckdb"]]) if r["duckdb"] else None
        job_in = _median([x["stage_seconds"] for x in r["job"]])
        duck_in = _median([x["inner_seconds"] for x in r["duckdb"]]) if r["duckdb"] else None
        last = r["job"][-1]
        nan = float("nan")
        print(
            f"{last['rows']:>12,} {job:>7.1f} {duck if duck is not None else nan:>7.1f} "
            f"{job / duck if duck else nan:>6.2f} {job_in:>7.1f} {duck_in if duck_in is not None else nan:>7.1f} "
            f"{job_in / duck_in if duck_in else nan:>8.2f} {job / (last['rows'] / 1e6):>10.2f} "
            f"{_mib(max(x['jvm_peak_mib'] or 0 for x in r['job'])):>9} "
            f"{_mib(max(x['python_peak_mib'] or 0 for x in r['job'])):>8} "
            f"{_mib(max((x['duck_peak_mib'] or 0 for x in r['duckdb']), default=None)):>9} "
            f"{last['stages']:>6} {last['shuffle_stages']:>11} {last['shuffle_records']:>11,} "
            f"{r.get('outputs', 'n/a'):>8}  {r['load_before']} / {r['load_after']}"
        )
    print(
        "(seconds: whole process, start-up included, median of the repeats; 'in': from reading the inputs to the "
        "written outputs, without start-up (the job's run_label_stage; DuckDB's matching, SQL and writes); memory: "
        "VmHWM in MiB; ratio = job / DuckDB; 'shuffle st.' = completed stages that wrote shuffle data)"
        if results
        else "no sizes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
