"""What the up-front footer check of ``io.read_table`` costs, against opening the table only.

  python bench/table_footers.py [--files 10,300,1000,3000] [--repeat 3]

For each size, writes a table of that many small Parquet files (generated, local disk) and
times, side by side in one run: ``spark.read.parquet`` + its schema (what ``read_table``
cost before), ``io.read_table`` (listing + every footer + the read), and the footer scan
alone on the driver and on the executors. Prints the median of ``--repeat`` runs per cell.
Local disk only: on HDFS or an object store each footer read costs a round trip or two,
which the driver's thread pool and the executors' tasks overlap.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _table(directory: Path, files: int) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True)
    for i in range(files):
        ids = pa.array(range(i * 100, i * 100 + 100), pa.int64())
        pq.write_table(
            pa.table({"playlist_id": ids, "title": [f"t{j}" for j in range(100)]}),
            str(directory / f"part-{i:05d}.parquet"),
        )
    return str(directory)


def _median_seconds(repeat: int, action) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _measure(spark, path: str, files: int, repeat: int) -> tuple[float, ...]:
    from ctx_spark import io, schema, tables

    columns = list(schema.PLAYLISTS.columns)
    _ = spark.read.parquet(path).schema  # warm the JVM and the OS cache
    return (
        _median_seconds(repeat, lambda: spark.read.parquet(path).schema),
        _median_seconds(repeat, lambda: io.read_table(spark, path, schema.PLAYLISTS).schema),
        _median_seconds(repeat, lambda: tables.scan_table(spark, path, columns, driver_max_files=files)),
        _median_seconds(repeat, lambda: tables.scan_table(spark, path, columns, driver_max_files=0)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", default="10,300,1000,3000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from ctx_spark.config import load_config
    from ctx_spark.spark import SparkSettings, get_spark

    cfg = load_config(overrides=["spark.master=local[2]", "spark.conf.spark.ui.enabled=false"])
    spark = get_spark("bench table footers", cfg.section("spark", SparkSettings))
    print(f"load average {os.getloadavg()[0]:.1f}; median of {args.repeat}; seconds")
    print(f"{'files':>6} {'read.parquet':>13} {'read_table':>11} {'scan driver':>12} {'scan executors':>15}")
    with tempfile.TemporaryDirectory(prefix="bench-footers-") as tmp:
        for n in (int(v) for v in args.files.split(",")):
            row = _measure(spark, _table(Path(tmp) / f"t{n}", n), n, args.repeat)
            print(f"{n:>6} " + " ".join(f"{v:>{w}.3f}" for v, w in zip(row, (13, 11, 12, 15))))
    spark.stop()


if __name__ == "__main__":
    main()
