"""Benchmark of the dataset job, and its figures on the authors' real labels.

  python bench/build_dataset.py [--sizes 50000 1000000] [--workdir DIR] [--set k=v ...]
  python bench/build_dataset.py --ibrahim [--workdir DIR]

Default mode: generates labelled tracks (ctx_spark.testing.labels: skewed contexts,
1-12 labels per track, artists with several tracks over albums, a few themed compilation
albums), then runs the whole stage in local mode on each size and prints the wall time of
every step, with input tracks per second, and the main outcome figures. Generation is not
timed.

--ibrahim: runs the stage on the authors' balanced 49,929 tracks
(../shared/data/deezer_context_ibrahim) and prints what docs/dataset.md reports: balancing on
already-balanced labels, groups, split deviations for both stratification methods, and
the distribution of each loss weight.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ctx_spark.config import load_config  # noqa: E402
from ctx_spark.dataset.run import run_dataset_stage, summary  # noqa: E402
from ctx_spark.dataset.stratify import iterative_stratification, targets  # noqa: E402
from ctx_spark.sources.ibrahim import load_ibrahim_track_labels, write_ibrahim_track_labels  # noqa: E402
from ctx_spark.spark import SparkSettings, get_spark  # noqa: E402
from ctx_spark.testing.labels import write_track_labels  # noqa: E402

IBRAHIM = ROOT.parent / "shared" / "data" / "deezer_context_ibrahim"
SESSION = ["spark.master=local[2]", "spark.conf.spark.driver.memory=6g", "spark.conf.spark.ui.enabled=false"]


def print_steps(report: dict, n_input: int) -> None:
    print(f"{'step':<30} {'seconds':>8} {'tracks/s':>10}")
    for name, seconds in report["seconds"].items():
        rate = n_input / seconds if seconds > 0 else float("inf")
        print(f"{name:<30} {seconds:>8.1f} {rate:>10.0f}")
    total = report["elapsed_seconds"]
    print(f"{'total (stage)':<30} {total:>8.1f} {n_input / total:>10.0f}")


def bench_generated(sizes: list[int], workdir: Path, overrides: list[str]) -> None:
    cfg = load_config(overrides=SESSION + overrides)
    spark = get_spark("ctx-spark bench build_dataset", cfg.section("spark", SparkSettings))
    print(
        f"Spark {spark.version}, master {spark.sparkContext.master}, "
        f"shuffle partitions {spark.conf.get('spark.sql.shuffle.partitions')}"
    )
    for n in sizes:
        labels = workdir / f"labels-{n}"
        started = time.perf_counter()
        write_track_labels(
            labels / "part-0.parquet",
            n,
            cfg.contexts.names,
            seed=n,
            compilations=max(2, n // 20000),
            compilation_size=40,
            themed=True,
        )
        print(f"\n=== {n} generated tracks (generated in {time.perf_counter() - started:.1f} s, not timed below)")
        report = run_dataset_stage(spark, cfg, str(labels), str(workdir / f"out-{n}"))
        print_steps(report, n)
        groups, split = report["groups"], report["split"]
        print(
            f"kept {report['balance']['tracks_after']} tracks (cap {report['balance']['cap']}); "
            f"{groups['groups']} groups, largest {groups['size_max']} tracks, "
            + (
                "components on the driver"
                if groups["components_on_driver"]
                else f"{groups['propagation_rounds']} propagation rounds"
            )
            + f" ({groups['graph_edges']} edges); split {split['method']}: "
            f"max share deviation {split['max_deviation']:.4f}, {split['buckets']} buckets"
        )


def split_methods_on_authors_groups(names) -> None:
    """Both stratification methods on the authors' artist groups (driver only, numpy)."""
    frame = load_ibrahim_track_labels(IBRAHIM, names)
    labels = np.array([[n in set(c) for n in names] for c in frame["contexts"]], dtype=np.int64)
    group = frame["artist_id"].astype("float").fillna(-frame["track_id"].astype(float)).to_numpy()
    codes, _ = pd.factorize(group)
    sizes = np.bincount(codes)
    counts = np.zeros((len(sizes), len(names)), dtype=np.int64)
    np.add.at(counts, codes, labels)
    fractions = np.array([0.65, 0.10, 0.25])
    want, want_l = targets(fractions, float(sizes.sum()), counts.sum(axis=0).astype(float))
    print(
        f"\nstratification of the authors' {len(sizes)} artist groups ({sizes.sum()} tracks, "
        f"largest {sizes.max()}), targets 0.65/0.10/0.25:"
    )
    # Equal-size groups are visited in a random order, as the job does (seeded hashes): the
    # file order is correlated with the labels, and the last, smallest groups are the ones
    # that fine-tune the shares.
    key = np.random.default_rng(0).permutation(len(sizes))
    for method in ("greedy", "sechidis"):
        started = time.perf_counter()
        chosen = iterative_stratification(sizes, counts, want, want_l, key, np.random.default_rng(0), method)
        seconds = time.perf_counter() - started
        share = np.array([sizes[chosen == j].sum() for j in range(3)]) / sizes.sum()
        per_context = np.array([counts[chosen == j].sum(axis=0) for j in range(3)]) / counts.sum(axis=0)
        deviation = max(np.abs(share - fractions).max(), np.abs(per_context - fractions[:, None]).max())
        print(
            f"  {method:<9} tracks {np.round(share, 4).tolist()}, max share deviation {deviation:.5f} "
            f"(contexts included), {seconds:.2f} s"
        )


def bench_ibrahim(workdir: Path, overrides: list[str]) -> None:
    if not IBRAHIM.exists():
        sys.exit(f"the authors' data is not at {IBRAHIM}")
    cfg = load_config(overrides=SESSION + overrides)
    names = cfg.contexts.names
    spark = get_spark("ctx-spark bench build_dataset ibrahim", cfg.section("spark", SparkSettings))
    labels = write_ibrahim_track_labels(IBRAHIM, workdir / "ibrahim" / "part-0.parquet", names)
    report = run_dataset_stage(spark, cfg, str(Path(labels).parent), str(workdir / "out-ibrahim"))
    print(summary(report))
    print_steps(report, report["input"]["rows"])
    print("\nbalancing rounds:")
    for entry in report["balance"]["rounds"]:
        print("  " + json.dumps(entry))
    print("\ngroups: " + json.dumps(report["groups"]))
    print("split sizes: " + json.dumps(report["split"]["sizes"]))
    print(f"split max share deviation: {report['split']['max_deviation']}")
    weights = report["weights"]
    columns = ["entries", "mean", "std", "min", "p05", "p25", "p50", "p75", "p95", "max"]
    print(f"\n{'weight (split)':<28} " + " ".join(f"{c:>8}" for c in columns))
    for name in ("neg_exact", "neg_ignore_zeros", "pos_tfidf"):
        for split, s in weights[name].items():
            print(f"{name + ' (' + split + ')':<28} " + " ".join(f"{s.get(c, float('nan')):>8}" for c in columns))
    for split in ("train", "all"):
        pos = weights["pos_tfidf"][split]
        print(
            f"pos_tfidf ({split}): {pos['entries_at_0']} entries clipped at 0, {pos['entries_at_2']} at 2; "
            f"tracks with all contexts: {pos['entries_all_contexts']} entries, mean {pos['mean_all_contexts']}"
        )
    for name in ("neg_exact", "neg_ignore_zeros"):
        print(f"{name}: fallback entries " + json.dumps({s: v["fallback_entries"] for s, v in weights[name].items()}))
    split_methods_on_authors_groups(names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 1_000_000])
    parser.add_argument("--ibrahim", action="store_true", help="run on the authors' labels instead")
    parser.add_argument("--workdir", help="where inputs and outputs go (default: a temporary directory)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench-dataset-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if args.ibrahim:
            bench_ibrahim(workdir, args.overrides)
        else:
            bench_generated(args.sizes, workdir, args.overrides)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
