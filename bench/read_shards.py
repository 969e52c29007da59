"""Input throughput of the mel-shard readers next to the training step they must feed.

  python bench/read_shards.py --shards S [--split train] [--workers 4] [--train-steps 3]
  python bench/read_shards.py --synthetic 3000 [--rows-per-group 128] [--repeat 3]
                                                (writes full-size synthetic shards to a
                                                 temporary directory)

Prints samples/s, each measured over one full pass of the split:

* reader alone, iterated in Python with nothing downstream: the pyarrow pass
  (``ctx_spark.shards.batches.shard_batches``: read-ahead threads, numpy shuffle buffer,
  batches) and, where the petastorm extra is installed, petastorm ``make_batch_reader``
  (its thread pool, and the single-threaded "dummy" pool the trainer uses);
* tf.data pipeline: ``training.data.training_dataset`` for one epoch with each reader
  (pyarrow: whole float16 batches from the pass, cast in the graph; petastorm: interleaved
  readers, rows through the tf.data shuffle buffer, batched, decoded from bytes), measured
  ``--repeat`` times alternately, side by side, the median reported;
* ceiling: the same model input from samples held in memory (float16 arrays);
* training step: the configured model (full size unless --set says otherwise) on in-memory
  batches, samples/s at the configured batch size.

Each line gives wall-clock samples/s and samples per CPU-second of the whole process (all
threads): on a shared machine the second is the steadier figure, and the load average at
the start and end is printed with them. Files just written sit in the OS page cache, so
the readers' figures are decode/CPU bound, not disk bound. The trainer's input is not the
bottleneck when its pipeline's samples/s is well above the training step's.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections import OrderedDict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402

from ctx_spark.config import load_config  # noqa: E402
from ctx_spark.fs import dataset_url  # noqa: E402
from ctx_spark.shards import contract  # noqa: E402
from ctx_spark.shards.batches import PassPlan, shard_batches  # noqa: E402
from ctx_spark.shards.reader import open_split, table_arrays  # noqa: E402
from training.settings import train_settings  # noqa: E402


def _timed(fn):
    """(rows, wall seconds, CPU seconds of the whole process, all threads)."""
    start, cpu = time.perf_counter(), time.process_time()
    rows = fn()
    return rows, time.perf_counter() - start, time.process_time() - cpu


def petastorm_alone(split, workers: int, pool: str) -> int:
    from petastorm import make_batch_reader

    rows = 0
    with make_batch_reader(
        dataset_url(split.path),
        schema_fields=[contract.MEL] + list(contract.TARGET_COLUMNS),
        num_epochs=1,
        workers_count=workers,
        reader_pool_type=pool,
        shuffle_row_groups=True,
        seed=1,
    ) as reader:
        for batch in reader:
            rows += len(batch.mel)
    return rows


def pyarrow_alone(split, data_settings, n_contexts: int) -> int:
    """The trainer's pyarrow pass, shuffled, in Python with nothing downstream."""
    plan = PassPlan(
        columns=(contract.MEL,) + tuple(contract.TARGET_COLUMNS),
        n_contexts=n_contexts,
        batch_size=data_settings.batch_size,
        shuffle=True,
        seed=1,
        shuffle_buffer=data_settings.shuffle_buffer,
        read_ahead=max(1, data_settings.workers),
        frames_first=True,
    )
    return sum(len(batch[contract.MEL]) for batch in shard_batches(split, plan))


def pipeline(split, data_settings, n_contexts: int) -> int:
    from training import data

    dataset = data.training_dataset(split, data_settings, n_contexts, seed=1, initial_epoch=0, epochs=1)
    return sum(int(x.shape[0]) for x, _ in dataset)


def load_in_memory(split, n_contexts: int, limit: int):
    mels, targets, files = [], [], OrderedDict()
    columns = [contract.MEL] + list(contract.TARGET_COLUMNS)
    for group in split.row_groups:
        arrays = table_arrays(split.read_row_group(group, columns, files), split.params, n_contexts, group.path)
        mels.append(np.array(arrays[contract.MEL]))
        targets.append(np.concatenate([arrays[c].astype(np.float32) for c in contract.TARGET_COLUMNS], axis=1))
        if sum(len(m) for m in mels) >= limit:
            break
    return np.concatenate(mels)[:limit], np.concatenate(targets)[:limit]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", help="shard root (mel_params.json, train/...)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--synthetic", type=int, default=0, help="write this many full-size synthetic rows instead")
    parser.add_argument("--rows-per-group", type=int, default=128, help="row-group size of --synthetic shards")
    parser.add_argument("--keep", help="with --synthetic: write the shards here and keep them")
    parser.add_argument("--workers", type=int, default=None, help="parallel readers (default: train.data.workers)")
    parser.add_argument("--memory-rows", type=int, default=2000, help="rows held in memory for the ceiling")
    parser.add_argument("--train-steps", type=int, default=3, help="timed training steps (0: skip)")
    parser.add_argument("--set", action="append", default=[], dest="overrides", help="config override")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes of each tf.data pipeline (alternating)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()

    cfg = load_config(overrides=args.overrides)
    settings = train_settings(cfg)
    n_contexts = len(cfg.contexts)
    workers = args.workers or settings.data.workers
    tmp = None
    shards = args.shards
    if args.synthetic:
        from ctx_spark.audio.params import MelParams
        from ctx_spark.testing.shards import write_synthetic_shards

        if args.keep:
            target = args.keep
        else:
            tmp = tempfile.TemporaryDirectory(prefix="bench-shards-")
            target = tmp.name
        params = MelParams.from_dict(cfg.data["audio"])
        started = time.perf_counter()
        shards = write_synthetic_shards(
            target,
            params,
            n_contexts,
            {args.split: args.synthetic},
            row_group_size=args.rows_per_group,
            files_per_split=4,
        )
        print(f"wrote {args.synthetic} synthetic {params.shape} rows in {time.perf_counter() - started:.1f} s")
    if not shards:
        parser.error("give --shards or --synthetic")
    split = open_split(shards, args.split)
    size = (
        sum(os.path.getsize(g.path) for g in {g.path: g for g in split.row_groups}.values())
        if "://" not in shards
        else 0
    )
    print(
        f"split {split.path}: {split.rows} rows, {len(split.row_groups)} row groups, mel {split.params.shape}, "
        f"{size / 1e6:.0f} MB; workers {workers}; batch {settings.data.batch_size}; {os.cpu_count()} CPUs"
    )

    from dataclasses import replace

    has_petastorm = importlib.util.find_spec("petastorm") is not None
    readers = ("pyarrow", "petastorm") if has_petastorm else ("pyarrow",)
    figures: dict[str, dict] = {}
    print(f"load average at the start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"  {'':<44} {'rows':>7} {'wall s':>8} {'samples/s':>10} {'samples/CPU-s':>14}")

    def report(name, rows, seconds, cpu):
        figures[name] = {"samples_per_s": rows / seconds, "samples_per_cpu_s": rows / cpu}
        print(f"  {name:<44} {rows:>7} {seconds:8.2f} {rows / seconds:10.1f} {rows / cpu:14.1f}")

    pyarrow_settings = replace(settings.data, reader="pyarrow", workers=workers)
    pyarrow_alone(split, pyarrow_settings, n_contexts)  # warm the page cache and imports
    report(
        f"reader alone: pyarrow pass ({workers} threads)",
        *_timed(lambda: pyarrow_alone(split, pyarrow_settings, n_contexts)),
    )
    if has_petastorm:
        report(
            f"reader alone: petastorm thread pool ({workers})",
            *_timed(lambda: petastorm_alone(split, workers, "thread")),
        )
        report("reader alone: petastorm dummy pool (1)", *_timed(lambda: petastorm_alone(split, 1, "dummy")))
    else:
        print("  (petastorm is not installed: its lines are left out)")

    import tensorflow as tf  # noqa: F401

    runs: dict[str, list[tuple[int, float, float]]] = {reader: [] for reader in readers}
    for reader in readers:
        pipeline(split, replace(settings.data, reader=reader, workers=workers), n_contexts)  # trace once
    for _ in range(args.repeat):  # alternately, so that a change of load affects both alike
        for reader in readers:
            data_settings = replace(settings.data, reader=reader, workers=workers)
            runs[reader].append(_timed(lambda data_settings=data_settings: pipeline(split, data_settings, n_contexts)))
    for reader in readers:
        by_cpu = sorted(runs[reader], key=lambda r: r[0] / r[2])
        median = by_cpu[len(by_cpu) // 2]
        report(f"tf.data pipeline: {reader} ({workers} streams)", *median)
        spread = ", ".join(f"{r[0] / r[2]:.0f}" for r in runs[reader])
        print(f"    {reader}: samples/CPU-s of the {len(runs[reader])} runs: {spread}")
    if has_petastorm:
        ratio = [a[0] / a[2] / (b[0] / b[2]) for a, b in zip(runs["pyarrow"], runs["petastorm"])]
        print(
            "pyarrow / petastorm pipeline, samples per CPU-second, run by run: "
            + ", ".join(f"{r:.2f}" for r in ratio)
            + f" (median {statistics.median(ratio):.2f})"
        )
        figures["pyarrow_over_petastorm_per_cpu_s"] = {"median": statistics.median(ratio), "runs": ratio}

    from training import data

    mel, target = load_in_memory(split, n_contexts, args.memory_rows)
    memory = data.in_memory_dataset(mel, target, settings.data, seed=1)
    sum(int(x.shape[0]) for x, _ in memory)
    report(f"tf.data ceiling: in memory ({len(mel)} rows)", *_timed(lambda: sum(int(x.shape[0]) for x, _ in memory)))

    if args.train_steps:
        from training.model import build_model, compile_model

        n_mels, n_frames = split.params.shape
        model = compile_model(build_model(settings.model, (n_frames, n_mels), n_contexts), settings, n_contexts)
        x, y = next(iter(memory))
        model.train_on_batch(x, y)  # build and trace

        def steps():
            for _ in range(args.train_steps):
                model.train_on_batch(x, y)
            return args.train_steps * int(x.shape[0])

        name = f"training step ({model.count_params():,} params, batch {int(x.shape[0])})"
        report(name, *_timed(steps))
        for reader in readers:
            pipe = figures[f"tf.data pipeline: {reader} ({workers} streams)"]
            print(
                f"{reader} pipeline / training step: {pipe['samples_per_s'] / figures[name]['samples_per_s']:.1f}x "
                f"samples/s, {pipe['samples_per_cpu_s'] / figures[name]['samples_per_cpu_s']:.1f}x samples/CPU-s"
            )
    print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(figures, handle, indent=2)
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
