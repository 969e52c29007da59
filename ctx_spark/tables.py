"""The files of a Parquet table and what their footers say, checked before any Spark job.

Spark takes a table's schema from one file (schema merging is off), so a table whose files
disagree is read anyway: a file whose id column is a string where the others hold int64
fails the job that writes the result (a 400-line traceback, an hour in), and a file that
calls ``title`` ``name`` is read as nulls. Every file's footer is therefore read up front
(the footer only: a few KiB per file, never the data), reduced to its *signature* (the type
of each column of the table's contract, or "absent"), and only the distinct signatures come
back, each with one example file, its file count and rows: the check brings back the same
few rows whether the table has ten files or a hundred thousand.

- Up to :data:`DRIVER_MAX_FILES` files: Hadoop's listing on the driver, footers read with
  pyarrow in a thread pool (object stores are latency-bound).
- More: Spark's distributed listing (the ``binaryFile`` source without its content column,
  which also skips the hidden and empty files Spark skips) and the footers read on the
  executors, grouped by signature there; the driver collects one row per signature.

A filesystem that pyarrow cannot open (a scheme it does not know, no libhdfs on the driver)
skips the check with a warning: Spark still reads the table, as it did before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Optional

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from ctx_spark import fs
from ctx_spark.errors import InputError
from ctx_spark.logs import get_logger
from ctx_spark.schema import TableContract

log = get_logger("tables")

#: Largest listing whose footers the driver reads itself; beyond, the executors do.
DRIVER_MAX_FILES = 1000
#: Footers read at once by one process (the driver, or one executor task).
FOOTER_THREADS = 16
#: A contract column a file does not hold, or holds as a partition directory (``col=value``).
ABSENT, PARTITION = "absent", "partition"

_ARROW_SOURCE = re.compile(r"^Could not open Parquet input source '[^']*':\s*")


@dataclass(frozen=True)
class FileGroup:
    """The files of a table that share one signature.

    Attributes:
        types: contract column -> its type in these files (``int64``, ``string``,
            ``array<int32>``...), :data:`ABSENT` or :data:`PARTITION`; empty when ``error``.
        error: why these files' footers cannot be read (not Parquet, truncated), or None.
        io_error: why pyarrow could not open these files (permissions, network), or None.
        example: the first of these files (sorted by path); ``columns``: its columns.
        files, rows: how many files, and their rows (from the footers).
    """

    types: tuple[tuple[str, str], ...]
    error: Optional[str]
    example: str
    columns: tuple[str, ...]
    files: int
    rows: int
    io_error: Optional[str] = None


@dataclass(frozen=True)
class TableScan:
    """What the footers of one table's files say."""

    path: str
    groups: tuple[FileGroup, ...]

    @property
    def files(self) -> int:
        return sum(g.files for g in self.groups)

    @property
    def rows(self) -> int:
        return sum(g.rows for g in self.groups)


def type_name(dtype: pa.DataType) -> str:
    """The name of an Arrow type as Spark reads it back (large and dictionary-encoded
    variants are the same column type to Spark)."""
    if pa.types.is_dictionary(dtype):
        return type_name(dtype.value_type)
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "string"
    if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype):
        return "binary"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype) or pa.types.is_fixed_size_list(dtype):
        return f"array<{type_name(dtype.value_type)}>"
    return str(dtype)


def _without_scheme(path: str) -> str:
    """``file:/a/b``, ``hdfs://host:8020/a/b`` -> ``/a/b``; a bare path is unchanged."""
    match = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:(//[^/]*)?", path)
    return path[match.end() :] if match else path


def _partition_keys(root: str, path: str) -> set[str]:
    """Partition columns (``col=value`` directories) between ``root`` and the file."""
    base, inner = _without_scheme(root).rstrip("/"), _without_scheme(path)
    if not inner.startswith(base + "/"):  # the table is this one file
        return set()
    relative = inner[len(base) :]
    return {part.split("=", 1)[0] for part in relative.strip("/").split("/")[:-1] if "=" in part}


def footer_row(root: str, path: str, columns: Sequence[str]) -> dict[str, Any]:
    """The signature of one file: {types (JSON-able list), error, path, columns, rows}.

    Runs on the driver or inside an executor task, so it only uses pyarrow and this module.
    """
    row: dict[str, Any] = {"types": [], "error": None, "io_error": None, "path": path, "columns": [], "rows": 0}
    try:
        filesystem, inner = fs.arrow_filesystem(path)
        metadata = pq.read_metadata(inner, filesystem=filesystem)
        schema = metadata.schema.to_arrow_schema()
    except Exception as exc:  # the reason is the result
        lines = str(exc).strip().splitlines()
        text = _ARROW_SOURCE.sub("", lines[0] if lines else type(exc).__name__)
        # Not Parquet or truncated: the file's fault. Anything else (permissions, network,
        # credentials pyarrow lacks but Spark has): the check's, which then steps aside.
        broken = isinstance(exc, pa.ArrowInvalid) or any(w in text for w in ("thrift", "Parquet", "parquet"))
        row["error" if broken else "io_error"] = text
        return row
    partitions = _partition_keys(root, path)
    names = set(schema.names)
    row["types"] = [
        [c, type_name(schema.field(c).type) if c in names else PARTITION if c in partitions else ABSENT]
        for c in columns
    ]
    row["columns"] = sorted(names)
    row["rows"] = int(metadata.num_rows)
    return row


def footer_rows(root: str, paths: Sequence[str], columns: Sequence[str]) -> list[dict[str, Any]]:
    """:func:`footer_row` of every path, :data:`FOOTER_THREADS` at a time."""
    if len(paths) <= 1:
        return [footer_row(root, p, columns) for p in paths]
    with ThreadPoolExecutor(max_workers=min(FOOTER_THREADS, len(paths))) as pool:
        return list(pool.map(lambda p: footer_row(root, p, columns), paths))


def _groups(rows: Iterable[dict[str, Any]]) -> tuple[FileGroup, ...]:
    by_key: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        key = (tuple(tuple(t) for t in row["types"]), row["error"], row["io_error"] is not None)
        by_key.setdefault(key, []).append(row)
    groups = []
    for (types, error, _io), members in by_key.items():
        first = min(members, key=lambda r: r["path"])
        rows_total = sum(r["rows"] for r in members)
        groups.append(
            FileGroup(types, error, first["path"], tuple(first["columns"]), len(members), rows_total, first["io_error"])
        )
    return tuple(sorted(groups, key=lambda g: (-g.files, g.example)))


def _hadoop_files(spark: SparkSession, root: str, limit: int) -> Optional[list[str]]:
    """Data files under ``root`` by Spark's rules (no hidden or empty file), from Hadoop's
    listing on the driver; None when there are more than ``limit``."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None  # set while the SparkContext is running
    jpath = jvm.org.apache.hadoop.fs.Path(root)
    hfs = jpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    status = hfs.getFileStatus(jpath)
    if not status.isDirectory():
        return [str(status.getPath().toString())]
    base = str(status.getPath().toString()).rstrip("/")
    files: list[str] = []
    listing = hfs.listFiles(jpath, True)
    while listing.hasNext():
        entry = listing.next()
        path = str(entry.getPath().toString())
        relative = path[len(base) :].strip("/").split("/")
        if entry.getLen() == 0 or any(_hidden(part) for part in relative):
            continue
        files.append(path)
        if len(files) > limit:
            return None
    return sorted(files)


def _hidden(name: str) -> bool:
    """Spark's rule for names its file sources skip."""
    return (name.startswith("_") and "=" not in name) or name.startswith(".") or name.endswith("._COPYING_")


_ROW_SCHEMA = pa.schema(
    [
        ("types", pa.list_(pa.list_(pa.string()))),
        ("error", pa.string()),
        ("io_error", pa.string()),
        ("path", pa.string()),
        ("columns", pa.list_(pa.string())),
        ("rows", pa.int64()),
    ]
)


def _scan_on_executors(spark: SparkSession, root: str, columns: Sequence[str]) -> tuple[FileGroup, ...]:
    listed = spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(root).select("path")
    tasks = max(1, spark.sparkContext.defaultParallelism * 4)

    def read(batches):
        for batch in batches:
            rows = footer_rows(root, batch.column(0).to_pylist(), columns)
            yield pa.RecordBatch.from_pylist(rows, schema=_ROW_SCHEMA)

    spark_schema = (
        "types array<array<string>>, error string, io_error string, path string, columns array<string>, rows long"
    )
    found = (
        listed.coalesce(tasks)
        .mapInArrow(read, spark_schema)
        .groupBy("types", "error", F.col("io_error").isNotNull().alias("io"))
        .agg(
            F.count(F.lit(1)).alias("files"),
            F.sum("rows").alias("rows"),
            F.min(F.struct("path", "columns", "io_error")).alias("first"),
        )
        .collect()
    )
    groups = [
        FileGroup(
            tuple(tuple(t) for t in r["types"]),
            r["error"],
            r["first"]["path"],
            tuple(r["first"]["columns"]),
            int(r["files"]),
            int(r["rows"] or 0),
            r["first"]["io_error"],
        )
        for r in found
    ]
    return tuple(sorted(groups, key=lambda g: (-g.files, g.example)))


def scan_table(
    spark: SparkSession, path: str, columns: Sequence[str], driver_max_files: int = DRIVER_MAX_FILES
) -> Optional[TableScan]:
    """Read the footers of every data file of the table at ``path``.

    Args:
        columns: the columns whose types make up the signature.
        driver_max_files: beyond this many files the footers are read on the executors.

    Returns:
        The distinct signatures, or None when pyarrow cannot open the filesystem (the
        check is skipped with a warning).
    """
    try:
        fs.arrow_filesystem(path)
    except Exception as exc:
        log.warning("cannot read the footers under %s with pyarrow (%s); its files are not checked up front", path, exc)
        return None
    files = _hadoop_files(spark, path, driver_max_files)
    if files is None:
        log.info("%s: more than %d files, reading their footers on the executors", path, driver_max_files)
        groups = _scan_on_executors(spark, path, columns)
    else:
        groups = _groups(footer_rows(path, files, columns))
    unreachable = [g for g in groups if g.io_error is not None]
    if unreachable:
        log.warning(
            "cannot read the footer of %s with pyarrow (%s); the files of %s are not checked up front",
            unreachable[0].example,
            unreachable[0].io_error,
            path,
        )
        return None
    return TableScan(path, groups)


def _others(count: int) -> str:
    return f" and {count - 1} other file{'s' if count > 2 else ''}" if count > 1 else ""


def check_agreement(scan: TableScan, contract: TableContract) -> None:
    """Refuse a table whose files cannot all be read as one table.

    Raises:
        InputError: one line naming the table, a file and the column (or the reason the
            file is not readable): a file that is not Parquet, a contract column that some
            files lack or that has another type in some files.
    """
    table = f"table '{contract.name}'"
    for group in scan.groups:
        if group.error is not None:
            raise InputError(
                f"{table}: {group.example}{_others(group.files)} cannot be read as Parquet ({group.error})"
            )
    if len(scan.groups) < 2:
        return
    for column in contract.columns:
        by_type: dict[str, list[FileGroup]] = {}
        for group in scan.groups:
            by_type.setdefault(dict(group.types)[column], []).append(group)
        if len(by_type) < 2:
            continue
        ranked = sorted(by_type.items(), key=lambda kv: -sum(g.files for g in kv[1]))
        (common, majority), (odd, minority) = ranked[0], ranked[1]
        n_common, n_odd = sum(g.files for g in majority), sum(g.files for g in minority)
        if ABSENT in (common, odd):
            if odd == ABSENT:
                lacking, having, n_lacking, kind = minority[0], majority[0], n_odd, common
            else:
                lacking, having, n_lacking, kind = majority[0], minority[0], n_common, odd
            raise InputError(
                f"{table}: {lacking.example}{_others(n_lacking)} {'has' if n_lacking == 1 else 'have'} "
                f"no column '{column}' "
                f"(columns: {', '.join(lacking.columns) or 'none'}) while {having.example} has it ({kind}); "
                "every file of a table needs the same columns"
            )
        raise InputError(
            f"{table}: column '{column}' is {odd} in {minority[0].example}{_others(n_odd)} but {common} in "
            f"{majority[0].example}{_others(n_common)}; write every file of a table with one type"
        )
