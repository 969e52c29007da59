"""Benchmark of mel extraction: the decode+mel function alone, and the Spark job around it.

    python bench/extract_mels.py [--tracks 240] [--master local[2]] [--cache-dir DIR]

1. Builds N real 30-60 s MP3 and Ogg files (44.1 kHz stereo) by cutting the music clips of
   ../shared/data/librosa_data/audio at seeded offsets and re-encoding them with soundfile,
   under a cache directory (never in the repository); later runs reuse them.
2. Times, on the same files:
   (a) a single-process Python loop over ``compute_mel``;
   (r) the bare reference: ``librosa.load(path, sr=22050, offset, duration=30)`` +
       ``librosa.feature.melspectrogram`` (the excerpt start is computed outside the timing);
   (b) ``run_extract_stage`` (the job, --audio-dir) on a local[2] session, twice: the
       first job of the session (Python workers start and import librosa) and a second,
       non-incremental job on warm workers. The session's start-up is timed apart.
3. Reads the written shards back: plain pyarrow vs petastorm's ``make_batch_reader``.

Prints tracks/s, the ratio of (b) per core to (a) (target >= 0.85) and of (a) to (r) per
track (target <= 1.5). Every process runs its numerical libraries on one thread, so that
"per core" means the same thing in (a) and (b). Timings on a shared machine are noisy: run
it when ``uptime`` shows a low load, and read the ratios, not the absolute figures. Two
load-robust controls are printed too: (a2) the same loop spread over as many processes as
Spark has cores (on a busy Linux machine with autogroup scheduling, all the processes of
one session share one session's CPU share, so two Spark workers cannot get twice the CPU
of one loop; (b) / (a2) compares like with like), and the CPU seconds the whole Spark job
(driver, JVM, Python workers) spent against the loop's.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import multiprocessing
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ctx_spark.testing.corpus import build_corpus  # noqa: E402


def repeated(files: list[Path], repeat: int, cache: Path) -> Path:
    """The directory the job reads: the corpus itself, or ``repeat`` hard links of every
    file under new track ids (id + k * n) in a sibling directory."""
    if repeat == 1:
        return files[0].parent
    directory = cache / f"{files[0].parent.name}x{repeat}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    n = len(files)
    for k in range(repeat):
        for f in files:
            os.link(f, directory / f"{int(f.stem) + k * n}{f.suffix}")
    return directory


def time_loop(files, fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) to call ``fn`` on every file."""
    started, cpu = time.perf_counter(), time.process_time()
    for f in files:
        fn(f)
    return time.perf_counter() - started, time.process_time() - cpu


_POOL_PARAMS = None


def _pool_init(params_dict: dict, warm_file: str) -> None:
    global _POOL_PARAMS
    from ctx_spark.audio.mel import compute_mel
    from ctx_spark.audio.params import MelParams

    _POOL_PARAMS = MelParams.from_dict(params_dict)
    compute_mel(warm_file, _POOL_PARAMS)  # imports and first-call costs before the timing


def _pool_compute(path: str) -> int:
    from ctx_spark.audio.mel import compute_mel

    return compute_mel(path, _POOL_PARAMS).shape[1]


def time_pool(files, params, processes: int) -> float:
    """Wall seconds for ``processes`` forked workers to run compute_mel on every file: the
    loop spread over as many processes as Spark has cores, scheduled like Spark's workers."""
    context = multiprocessing.get_context("fork")
    with context.Pool(processes, initializer=_pool_init, initargs=(params.to_dict(), str(files[0]))) as pool:
        pool.map(_pool_compute, [str(files[0])] * processes, chunksize=1)  # every worker started
        started = time.perf_counter()
        for _ in pool.imap_unordered(_pool_compute, [str(f) for f in files], chunksize=1):
            pass
        return time.perf_counter() - started


def tree_cpu_seconds() -> float:
    """CPU seconds used so far by this process and all its descendants (the Spark JVM,
    its Python daemon and workers), from /proc: a load-independent measure of the work."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry))
    total, todo = 0.0, [os.getpid()]
    while todo:
        pid = todo.pop()
        fields = stats.get(pid)
        if fields:  # utime, stime, cutime, cstime (fields 14-17 of stat)
            total += sum(int(v) for v in fields[11:15]) / tick
        todo.extend(children.get(pid, []))
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=240)
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="present every file this many times to the job (hard links under new track ids), "
        "to see how the job's fixed costs amortise; the loops run on the unique files",
    )
    parser.add_argument("--jobs", type=int, default=3, help="Spark jobs run one after the other in one session")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        dest="overrides",
        metavar="KEY=VALUE",
        help="config override for the Spark jobs, e.g. --set extract.tracks_per_task=128",
    )
    parser.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(), "ctx-spark-bench-audio"))
    parser.add_argument("--clips", default=str(ROOT.parent / "shared" / "data" / "librosa_data" / "audio"))
    parser.add_argument("--skip-read", action="store_true", help="do not time reading the shards back")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()

    import librosa
    import soundfile as sf

    from ctx_spark.audio.decode import excerpt_start
    from ctx_spark.audio.mel import compute_mel
    from ctx_spark.audio.params import MelParams
    from ctx_spark.config import load_config
    from ctx_spark.extract.settings import ExtractSettings

    cores = (
        int(args.master[len("local[") : -1]) if args.master.startswith("local[") and args.master[6:-1].isdigit() else 2
    )
    files = build_corpus(Path(args.cache_dir) / f"n{args.tracks}", args.tracks, Path(args.clips))
    cfg = load_config(overrides=[f"spark.master={args.master}", "spark.conf.spark.ui.enabled=false"])
    params = cfg.section("audio", MelParams)
    settings = cfg.section("extract", ExtractSettings)
    durations = [sf.info(str(f)).duration for f in files]
    starts = {f: excerpt_start(d, params) for f, d in zip(files, durations)}
    print(
        f"{len(files)} files, {min(durations):.1f}-{max(durations):.1f} s, "
        f"{sum(f.stat().st_size for f in files) / 2**20:.0f} MiB; load average {os.getloadavg()}",
        flush=True,
    )

    def bare(path):
        y, _ = librosa.load(str(path), sr=params.sample_rate, offset=starts[path], duration=params.excerpt_seconds)
        return librosa.feature.melspectrogram(
            y=y, sr=params.sample_rate, n_fft=params.n_fft, hop_length=params.hop_length, n_mels=params.n_mels
        )

    def ours(path):
        return compute_mel(path, params, silence_peak_dbfs=settings.silence_peak_dbfs)

    ours(files[0]), bare(files[0])  # imports and first-call costs out of the timings
    # Interleave the loops in halves so a change of machine load hits both alike; (a) is
    # measured again after the Spark jobs and averaged.
    half = len(files) // 2
    a1, a1_cpu = time_loop(files[:half], ours)
    r1, _ = time_loop(files[:half], bare)
    r2, _ = time_loop(files[half:], bare)
    a2, a2_cpu = time_loop(files[half:], ours)
    t_ours, t_bare, cpu_ours = a1 + a2, r1 + r2, a1_cpu + a2_cpu
    figures = {
        "tracks": len(files),
        "load_average_start": os.getloadavg(),
        "a_loop_tracks_per_s_before": round(len(files) / t_ours, 2),
        "a_loop_cpu_ms_per_track": round(1000 * cpu_ours / len(files), 1),
        "a_loop_ms_per_track": round(1000 * t_ours / len(files), 1),
        "r_bare_librosa_ms_per_track": round(1000 * t_bare / len(files), 1),
        "compute_mel_over_bare_librosa": round(t_ours / t_bare, 3),
    }
    print(
        f"(a) compute_mel loop:        {len(files) / t_ours:7.2f} tracks/s ({figures['a_loop_ms_per_track']} ms/track, "
        f"{figures['a_loop_cpu_ms_per_track']} CPU ms/track)"
    )
    print(
        f"(r) bare librosa load+mel:   {len(files) / t_bare:7.2f} tracks/s "
        f"({figures['r_bare_librosa_ms_per_track']} ms/track)"
    )
    print(
        f"    compute_mel / bare librosa time: {figures['compute_mel_over_bare_librosa']:.3f}  (target <= 1.5)",
        flush=True,
    )

    pool_s = time_pool(files, params, cores)
    pool_tps = len(files) / pool_s
    figures["a2_pool_tracks_per_s"] = round(pool_tps, 2)
    print(
        f"(a2) compute_mel in {cores} processes: {pool_tps:7.2f} tracks/s "
        f"({pool_tps / cores / (len(files) / t_ours):.2f} x the loop per process)",
        flush=True,
    )

    from ctx_spark.extract.run import ExtractInputs, run_extract_stage
    from ctx_spark.spark import SparkSettings, get_spark

    work = Path(tempfile.mkdtemp(prefix="ctx-spark-bench-out-"))
    try:
        started = time.perf_counter()
        spark = get_spark("ctx-spark bench extract_mels", cfg.section("spark", SparkSettings))
        figures["spark_session_start_s"] = round(time.perf_counter() - started, 2)
        audio_dir = repeated(files, args.repeat, Path(args.cache_dir))
        n_job = len(files) * args.repeat
        jobs = {}
        for j in range(args.jobs):
            label, out = f"b_spark_job{j + 1}", work / f"job{j + 1}"
            run_cfg = load_config(
                overrides=[f"spark.master={args.master}", "extract.incremental=false", *args.overrides]
            )
            started, cpu = time.perf_counter(), tree_cpu_seconds()
            report = run_extract_stage(spark, run_cfg, ExtractInputs(audio_dir=str(audio_dir)), str(out))
            jobs[label] = (time.perf_counter() - started, tree_cpu_seconds() - cpu)
            assert report["written_total"] == n_job, report["failed"]
        # (a) once more, after the jobs: the loop's speed is the mean of both measurements.
        a3, a3_cpu = time_loop(files, ours)
        loop_tps = 2 * len(files) / (t_ours + a3)
        loop_cpu = (cpu_ours + a3_cpu) / 2
        figures["a_loop_tracks_per_s_after"] = round(len(files) / a3, 2)
        figures["a_loop_tracks_per_s"] = round(loop_tps, 2)
        print(f"(a) compute_mel loop again:  {len(files) / a3:7.2f} tracks/s; mean {loop_tps:.2f} tracks/s")
        figures["b_spark_tracks"] = n_job
        for label, (elapsed, cpu) in jobs.items():
            tps = n_job / elapsed
            figures[f"{label}_s"] = round(elapsed, 2)
            figures[f"{label}_tracks_per_s"] = round(tps, 2)
            figures[f"{label}_per_core_over_loop"] = round(tps / cores / loop_tps, 3)
            figures[f"{label}_over_pool"] = round(tps / pool_tps, 3)
            figures[f"{label}_cpu_s"] = round(cpu, 2)
            figures[f"{label}_cpu_efficiency"] = round(loop_cpu * args.repeat / cpu, 3)
            print(
                f"(b) Spark {label[8:]} {args.master}, {n_job} tracks: {tps:7.2f} tracks/s in {elapsed:.1f} s; "
                f"per core / loop = {tps / cores / loop_tps:.3f}  (target >= 0.85); / (a2) = {tps / pool_tps:.3f}; "
                f"CPU: {cpu:.1f} s for "
                f"{loop_cpu * args.repeat:.1f} s in the loop ({loop_cpu * args.repeat / cpu:.3f})",
                flush=True,
            )
        print(f"    session start-up (not in the job timings): {figures['spark_session_start_s']} s")
        shards = work / f"job{args.jobs}" / "all"
        size = sum(p.stat().st_size for p in shards.glob("*.parquet"))
        raw = n_job * params.shape[0] * params.shape[1] * 2
        figures["shard_bytes_over_raw_float16"] = round(size / raw, 3)
        print(
            f"    shards: {size / 2**20:.1f} MiB for {raw / 2**20:.1f} MiB of raw float16 "
            f"({settings.compression}: {size / raw:.3f})"
        )
        spark.stop()
        if not args.skip_read:
            figures.update(time_reads(shards, params))
        figures["load_average_end"] = os.getloadavg()
        print(f"load average at the end: {figures['load_average_end']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def time_reads(shards: Path, params) -> dict:
    """Samples/s decoding every spectrogram: plain pyarrow vs petastorm make_batch_reader."""
    import pyarrow.parquet as pq
    from petastorm import make_batch_reader

    from ctx_spark.shards.contract import MEL_DTYPE

    def decode_column(column) -> int:
        values = column.to_pylist()
        stack = np.frombuffer(b"".join(values), dtype=MEL_DTYPE).reshape((len(values),) + tuple(params.shape))
        return stack.shape[0]

    figures = {}
    for _attempt in range(2):  # the first pass warms the page cache
        started = time.perf_counter()
        n = 0
        for path in sorted(shards.glob("*.parquet")):
            f = pq.ParquetFile(str(path))
            for g in range(f.num_row_groups):
                n += decode_column(f.read_row_group(g, columns=["mel"]).column("mel"))
        t_arrow = time.perf_counter() - started
        started = time.perf_counter()
        m = 0
        with make_batch_reader(
            shards.as_uri(), schema_fields=["track_id", "mel"], num_epochs=1, workers_count=2
        ) as reader:
            for batch in reader:
                values = list(batch.mel)
                m += (
                    np.frombuffer(b"".join(values), dtype=MEL_DTYPE)
                    .reshape((len(values),) + tuple(params.shape))
                    .shape[0]
                )
        t_peta = time.perf_counter() - started
        assert m == n, f"petastorm read {m} spectrograms, pyarrow {n}"
    figures["read_pyarrow_samples_per_s"] = round(n / t_arrow, 1)
    figures["read_petastorm_batch_samples_per_s"] = round(m / t_peta, 1)
    print(f"read back: pyarrow {n / t_arrow:.0f} samples/s, petastorm make_batch_reader {m / t_peta:.0f} samples/s")
    return figures


if __name__ == "__main__":
    sys.exit(main())
