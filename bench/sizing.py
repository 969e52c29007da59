"""Measure executor memory of the label job and of mel extraction on a standalone cluster,
and turn it into executor settings.

  python bench/sizing.py [--rows 2M] [--tracks 96] [--repeat 1] [--cores 2]
      [--executor-memory 2g] [--cache DIR] [--only label|extract]

Starts a Spark standalone master and one worker on 127.0.0.1 from the pip-installed
pyspark (tests/standalone.py), then runs each job as its own application, with this
process as the driver (client mode, the package shipped by ``get_spark``):

- label: ``run_label_stage`` on a seeded synthetic catalogue of ``--rows`` playlist-track
  rows (cached under --cache);
- extract: ``run_extract_stage --audio-dir`` on ``--tracks`` real 30-60 s MP3/Ogg files
  (bench/extract_mels.py's corpus, cut from ../shared/data/librosa_data/audio; the test
  fixture clips when that is absent), each presented ``--repeat`` times under new track
  ids (hard links), so that a write task fills whole row groups (``extract.row_group_mb``
  of spectrograms, ~390 tracks) as it does at scale.

While a job runs, a sampler reads ``/proc/<pid>/status`` (VmRSS, and VmHWM of the JVM)
of every process under the worker every 0.2 s: the executor JVM and its Python workers
(pyspark's daemon and the workers it forks). After the job, the driver's monitoring REST
API gives Spark's own view: the executor's peak JVM heap and process-tree RSS
(``spark.executor.processTreeMetrics.enabled``), and per stage the shuffle written, the
spill (memory and disk) and the peak execution memory. Prints the figures and the
executor settings they suggest (the rule is printed with them). Memory in MiB.

Timings on a shared machine are noisy; the memory figures are what this script is for.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
for _path in (str(ROOT), str(ROOT / "bench")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from ctx_spark.testing.standalone import EXECUTOR_CLASS, StandaloneCluster, cmdline, process_tree  # noqa: E402

MIB = 1 << 20


def parse_size(text: str) -> int:
    """'2M' -> 2_000_000, '200k' -> 200_000."""
    text = text.strip().lower()
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * factor)


def _status_kib(pid: int, key: str) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Sampler(threading.Thread):
    """Samples the memory of every process under ``root_pid`` (a worker JVM) until stopped.

    Records the peaks (MiB) of: the executor JVM's RSS (and its VmHWM), the largest single
    Python process, and the sum over all Python processes at one instant (what the
    executor's container really holds), and the most Python processes seen at once.
    """

    def __init__(self, root_pid: int, interval: float = 0.2):
        super().__init__(daemon=True)
        self.root_pid = root_pid
        self.interval = interval
        self.peaks = {
            "executor_jvm_rss": 0.0,
            "executor_jvm_hwm": 0.0,
            "python_max": 0.0,
            "python_total": 0.0,
            "python_processes": 0,
        }
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            python_total, python_n = 0.0, 0
            for pid, _ in process_tree(self.root_pid)[1:]:  # [0] is the worker JVM itself
                command = cmdline(pid)
                rss = (_status_kib(pid, "VmRSS") or 0) / 1024
                if EXECUTOR_CLASS in command:
                    self.peaks["executor_jvm_rss"] = max(self.peaks["executor_jvm_rss"], rss)
                    hwm = (_status_kib(pid, "VmHWM") or 0) / 1024
                    self.peaks["executor_jvm_hwm"] = max(self.peaks["executor_jvm_hwm"], hwm)
                elif "python" in command:
                    python_total += rss
                    python_n += 1
                    self.peaks["python_max"] = max(self.peaks["python_max"], rss)
            self.peaks["python_total"] = max(self.peaks["python_total"], python_total)
            self.peaks["python_processes"] = max(self.peaks["python_processes"], python_n)
            self._stop_event.wait(self.interval)

    def stop(self) -> dict[str, float]:
        self._stop_event.set()
        self.join()
        return dict(self.peaks)


def _rest(spark, suffix: str) -> Any:
    sc = spark.sparkContext
    url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}{suffix}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def spark_view(spark) -> dict[str, Any]:
    """Spark's own figures for the finished job: executor peaks and per-stage shuffle/spill."""
    time.sleep(3.0)  # a heartbeat (interval set to 1 s) and the listener bus catch up
    executors = [e for e in _rest(spark, "/allexecutors") if e["id"] != "driver"]
    peaks: dict[str, float] = {}
    for executor in executors:
        for key, value in (executor.get("peakMemoryMetrics") or {}).items():
            peaks[key] = max(peaks.get(key, 0.0), value / MIB)
    stages = _rest(spark, "/stages?status=complete")
    task_peak = 0.0  # the largest peak execution memory of one task (the stage figure is a sum)
    for stage in stages:
        summary = _rest(spark, f"/stages/{stage['stageId']}/{stage['attemptId']}/taskSummary?quantiles=1.0")
        task_peak = max(task_peak, max(summary.get("peakExecutionMemory") or [0.0]))
    return {
        "executors": len(executors),
        "max_heap_mib": max((e.get("maxMemory", 0) for e in executors), default=0) / MIB,
        "peak": peaks,
        "stages": len(stages),
        "shuffle_write_mib": sum(s["shuffleWriteBytes"] for s in stages) / MIB,
        "largest_shuffle_write_mib": max((s["shuffleWriteBytes"] for s in stages), default=0) / MIB,
        "memory_spilled_mib": sum(s["memoryBytesSpilled"] for s in stages) / MIB,
        "disk_spilled_mib": sum(s["diskBytesSpilled"] for s in stages) / MIB,
        "task_execution_memory_mib": task_peak / MIB,
        "input_mib": sum(s["inputBytes"] for s in stages) / MIB,
    }


def measure(
    cluster: StandaloneCluster, name: str, settings: dict[str, str], job: Callable[[Any], dict]
) -> dict[str, Any]:
    """Run ``job(spark)`` as its own application on ``cluster`` and measure it."""
    from ctx_spark.config import load_config
    from ctx_spark.spark import SparkSettings, get_spark

    overrides = [f"spark.master={cluster.url}"] + [f"spark.conf.{k}={v}" for k, v in settings.items()]
    cfg = load_config(overrides=overrides)
    sampler = Sampler(cluster.workers[-1].pid)
    sampler.start()
    spark = get_spark(f"ctx-spark sizing {name}", cfg.section("spark", SparkSettings))
    try:
        started = time.perf_counter()
        report = job(spark)
        seconds = time.perf_counter() - started
        view = spark_view(spark)
    finally:
        peaks = sampler.stop()
        spark.stop()
    return {"job": name, "seconds": seconds, "report": report, "proc": peaks, "spark": view}


def label_job(catalogue: Path, out: Path) -> Callable[[Any], dict]:
    def run(spark) -> dict:
        from ctx_spark.config import load_config
        from ctx_spark.label.run import LabelInputs, run_label_stage
        from ctx_spark.sources.synthetic import table_paths

        paths = table_paths(catalogue)
        inputs = LabelInputs(paths["playlists"], paths["playlist_tracks"], paths["tracks"])
        report = run_label_stage(spark, load_config(), inputs, str(out))
        return {"rows": report["rows_read"]["playlist_tracks"], "tracks_labelled": report["tracks_labelled"]}

    return run


def extract_job(audio: Path, out: Path) -> Callable[[Any], dict]:
    def run(spark) -> dict:
        from ctx_spark.config import load_config
        from ctx_spark.extract.run import ExtractInputs, run_extract_stage

        report = run_extract_stage(
            spark, load_config(overrides=["extract.incremental=false"]), ExtractInputs(audio_dir=str(audio)), str(out)
        )
        return {"rows": report["tracks_in"], "written": report["written_total"], "failed": report["failed_total"]}

    return run


def ensure_catalogue(cache: Path, rows: int, seed: int = 0) -> Path:
    from dataclasses import asdict

    from ctx_spark.config import load_config
    from ctx_spark.sources.synthetic import MANIFEST, CatalogueParams, generate_catalogue

    cfg = load_config()
    params = CatalogueParams(rows=rows, seed=seed)
    root = cache / f"catalogue-{rows}-seed{seed}"  # the same cache as bench/label_tracks.py
    manifest = root / MANIFEST
    if not (manifest.is_file() and json.loads(manifest.read_text())["params"] == asdict(params)):
        vocabulary = [w for words in cfg.vocabulary.values() for w in words]
        generate_catalogue(root, params, dict(cfg.contexts.keywords), vocabulary)
    return root


def ensure_audio(cache: Path, tracks: int, repeat: int) -> Path:
    """``tracks`` real clips (bench/extract_mels.py's corpus, or the fixture clips), each
    linked ``repeat`` times under new track ids in a fresh directory."""
    clips = ROOT.parent / "shared" / "data" / "librosa_data" / "audio"
    if clips.is_dir():
        from ctx_spark.testing.corpus import build_corpus

        files = build_corpus(cache / f"corpus-{tracks}", tracks, clips)
    else:
        from ctx_spark.testing.audio import HUNGARIAN, VIBE_ACE

        files = [VIBE_ACE if track % 2 else HUNGARIAN for track in range(1, tracks + 1)]
    directory = cache / f"sizing-{tracks}x{repeat}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    for k in range(repeat):
        for track, source in enumerate(files, start=1):
            target = directory / f"{track + k * tracks}{source.suffix}"
            try:
                os.link(source, target)
            except OSError:
                shutil.copy(source, target)
    return directory


def _round_up(mib: float, step: int) -> int:
    return int(math.ceil(mib / step) * step)


def recommend(result: dict[str, Any], cores: int) -> dict[str, str]:
    """Executor settings from the measured peaks (the rule is in the printed legend)."""
    proc, peak = result["proc"], result["spark"]["peak"]
    heap_used = peak.get("JVMHeapMemory", 0.0)
    off_heap = max(0.0, proc["executor_jvm_rss"] - heap_used)  # metaspace, threads, netty buffers
    per_worker = proc["python_max"]
    heap = max(1024, _round_up(1.5 * heap_used, 512))
    overhead = max(384, _round_up(1.25 * (off_heap + cores * per_worker), 128))
    return {
        "spark.executor.cores": str(cores),
        "spark.executor.memory": f"{heap}m",
        "spark.executor.memoryOverhead": f"{overhead}m",
        "per core (container / cores)": f"{(heap + overhead) / cores:,.0f} MiB",
    }


def print_result(result: dict[str, Any], cores: int) -> None:
    proc, view = result["proc"], result["spark"]
    peak = view["peak"]
    print(
        f"\n== {result['job']}: {json.dumps(result['report'])} in {result['seconds']:.1f} s "
        f"({view['stages']} stages, {view['executors']} executor(s) with {cores} cores)"
    )
    print(
        f"  executor JVM      RSS peak {proc['executor_jvm_rss']:8,.0f}   VmHWM {proc['executor_jvm_hwm']:8,.0f}   "
        f"heap used peak {peak.get('JVMHeapMemory', 0):8,.0f}   off-heap peak {peak.get('JVMOffHeapMemory', 0):6,.0f}"
        f"   (storage memory {view['max_heap_mib']:,.0f})"
    )
    print(
        f"  Python workers    largest {proc['python_max']:8,.0f}   all at once {proc['python_total']:8,.0f}   "
        f"processes {proc['python_processes']}   (Spark's view: tree RSS "
        f"{peak.get('ProcessTreePythonRSSMemory', 0):,.0f}, JVM tree RSS {peak.get('ProcessTreeJVMRSSMemory', 0):,.0f})"
    )
    print(
        f"  shuffle written   {view['shuffle_write_mib']:8,.1f} "
        f"(largest stage {view['largest_shuffle_write_mib']:,.1f})   "
        f"spilled memory {view['memory_spilled_mib']:,.1f} disk {view['disk_spilled_mib']:,.1f}   "
        f"peak execution memory of a task {view['task_execution_memory_mib']:,.1f}   input {view['input_mib']:,.1f}"
    )
    print("  suggested         " + "   ".join(f"{k}={v}" for k, v in recommend(result, cores).items()))


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=parse_size, default=parse_size("2M"), help="label job: playlist-track rows")
    parser.add_argument("--tracks", type=int, default=96, help="extraction: distinct audio files")
    parser.add_argument("--repeat", type=int, default=1, help="extraction: tracks per audio file")
    parser.add_argument("--cores", type=int, default=2, help="executor (= worker) cores")
    parser.add_argument("--executor-memory", default="2g", help="spark.executor.memory of the measured runs")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "ctx-spark-bench"))
    parser.add_argument("--only", choices=("label", "extract"))
    args = parser.parse_args(argv)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    cache = Path(args.cache)
    jobs = []
    if args.only in (None, "label"):
        jobs.append(("label", label_job(ensure_catalogue(cache, args.rows), cache / "sizing-labels")))
    if args.only in (None, "extract"):
        audio = ensure_audio(cache.parent / "ctx-spark-bench-audio", args.tracks, args.repeat)
        jobs.append(("extract", extract_job(audio, cache / "sizing-mels")))
    settings = {
        "spark.driver.host": "127.0.0.1",
        "spark.executor.memory": args.executor_memory,
        "spark.executor.cores": str(args.cores),
        "spark.executor.processTreeMetrics.enabled": "true",
        "spark.executor.metrics.pollingInterval": "200ms",
        "spark.executor.heartbeatInterval": "1s",
        "spark.sql.shuffle.partitions": str(4 * args.cores),
    }
    memory_mib = parse_memory_mib(args.executor_memory) + 1024  # the worker offers a little more
    cluster = StandaloneCluster(
        Path(tempfile.mkdtemp(prefix="ctx-spark-sizing-")), worker_cores=args.cores, worker_memory=f"{memory_mib}m"
    )
    results = []
    try:
        cluster.start(workers=1)
        for name, job in jobs:
            results.append(measure(cluster, name, settings, job))
            print(f"{name}: done in {results[-1]['seconds']:.1f} s", file=sys.stderr)
    finally:
        left = cluster.stop()
        if left:
            print(f"warning: processes left running: {left}", file=sys.stderr)
    print(f"executor: {args.cores} cores, spark.executor.memory={args.executor_memory}; memory in MiB")
    for result in results:
        print_result(result, args.cores)
    print(
        "\nrule: executor.memory = max(1 GiB, 1.5 x heap used peak, to 512 MiB); memoryOverhead = "
        "max(384 MiB, 1.25 x (JVM RSS - heap used + cores x largest Python worker), to 128 MiB). "
        "Python workers live in the overhead (no spark.executor.pyspark.memory set)."
    )
    return 0


def parse_memory_mib(text: str) -> int:
    """'2g' -> 2048, '1536m' -> 1536."""
    text = text.strip().lower()
    return int(float(text[:-1]) * 1024) if text.endswith("g") else int(float(text.rstrip("m")))


if __name__ == "__main__":
    sys.exit(main())
