"""Reading validated tables and writing outputs atomically, on any Hadoop filesystem.

Every output is first written under a hidden staging path beside its final place and only
then renamed into place, so a crashed or killed run never leaves a half-written directory
that looks complete; readers see either the previous output or the new one. Paths go through
Hadoop's FileSystem API (via the session's JVM), so the same code serves local paths,
``file://``, ``hdfs://`` and object stores (``s3a://``, ``gs://``, ``abfs://``). On object
stores a rename is a copy, hence not atomic; the staging step still guarantees that an
output's ``_SUCCESS`` marker and report appear only after its data.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Optional

from pyspark.sql import DataFrame, SparkSession

from ctx_spark import fs, tables
from ctx_spark.causes import job_errors, output_errors, read_errors
from ctx_spark.errors import InputError
from ctx_spark.schema import TableContract, validate

STAGING_PREFIX = "._staging-"
RETIRED_PREFIX = "._retired-"


def _jvm_path(spark: SparkSession, path: str):
    jvm = spark.sparkContext._jvm
    assert jvm is not None  # set while the SparkContext is running
    return jvm.org.apache.hadoop.fs.Path(path)


def _fs(spark: SparkSession, path: str):
    hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()
    return _jvm_path(spark, path).getFileSystem(hadoop_conf)


qualify = fs.qualify


def _comparable(path: str) -> str:
    """A form of ``path`` in which one path inside another is a string prefix."""
    local = fs.local_path(path)
    if local is not None:
        return os.path.realpath(local).rstrip("/") or "/"
    scheme, rest = path.split("://", 1)
    return f"{fs.ARROW_SCHEMES.get(scheme.lower(), scheme.lower())}://{rest.rstrip('/')}"


def overlaps(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` are the same path or one lies inside the other."""
    x, y = _comparable(a), _comparable(b)
    return x == y or x.startswith(y.rstrip("/") + "/") or y.startswith(x.rstrip("/") + "/")


def check_output_path(job: str, out: str, inputs: Mapping[str, Optional[str]]) -> None:
    """Refuse an output path that equals, contains or lies inside one of the job's inputs.

    A job replaces its outputs; writing them into (or around) an input would overwrite
    or delete that input, or read back the job's own files as input next time.

    Args:
        job: the job's name, for the message.
        inputs: option name (``--tracks``) -> path, None for options not given.

    Raises:
        InputError: naming the option and both paths.
    """
    for option, path in inputs.items():
        if path and overlaps(out, path):
            raise InputError(
                f"{job}: --out {out} overlaps the input {option} {path} (the same path, or one inside the "
                "other); write the output somewhere else"
            )


def check_replaceable(spark: SparkSession, job: str, out: str, owned: Collection[str]) -> None:
    """Refuse to replace a directory that holds anything but this job's own outputs.

    A job that publishes its whole output directory at once (the extraction job) would
    delete whatever else the directory holds; it may only replace what is recognisably its
    own earlier output: the names in ``owned``, and hidden names (``.`` or ``_`` first:
    staging directories, ``_SUCCESS``).

    Raises:
        InputError: ``out`` is a file, or holds other entries (the first ten are named).
    """
    if not path_exists(spark, out):
        return
    jpath = _jvm_path(spark, out)
    if not _fs(spark, out).getFileStatus(jpath).isDirectory():
        raise InputError(f"{job}: --out {out} is a file, not a directory")
    foreign = [name for name in list_dir(spark, out) if name not in owned and not name.startswith((".", "_"))]
    if foreign:
        shown = ", ".join(foreign[:10]) + (f" and {len(foreign) - 10} more" if len(foreign) > 10 else "")
        raise InputError(
            f"{job}: --out {out} already holds files that are not this job's output ({shown}); the job replaces "
            "its whole output directory, so give it a new or empty directory (or its own earlier output)"
        )


def path_exists(spark: SparkSession, path: str) -> bool:
    """Whether ``path`` (file or directory, any Hadoop filesystem) exists."""
    return bool(_fs(spark, path).exists(_jvm_path(spark, path)))


def delete_path(spark: SparkSession, path: str) -> None:
    """Delete ``path`` recursively; no error when it does not exist."""
    _fs(spark, path).delete(_jvm_path(spark, path), True)


def make_dirs(spark: SparkSession, path: str) -> None:
    """Create ``path`` and its parents."""
    _fs(spark, path).mkdirs(_jvm_path(spark, path))


def list_dir(spark: SparkSession, path: str) -> list[str]:
    """Names (not paths) of the entries directly under ``path``; empty when absent."""
    fs = _fs(spark, path)
    jpath = _jvm_path(spark, path)
    if not fs.exists(jpath):
        return []
    return sorted(status.getPath().getName() for status in fs.listStatus(jpath))


def _rename(spark: SparkSession, src: str, dst: str) -> None:
    if not _fs(spark, src).rename(_jvm_path(spark, src), _jvm_path(spark, dst)):
        raise OSError(f"could not rename {src} to {dst}")


def publish(spark: SparkSession, staging: str, final: str) -> None:
    """Move a complete ``staging`` path to ``final``, replacing any previous ``final``.

    The previous output is first renamed aside and deleted only after the new one is in
    place, so at every instant ``final`` is absent or complete, never partial.
    """
    parent, name = final.rstrip("/").rsplit("/", 1)
    retired = None
    if path_exists(spark, final):
        retired = f"{parent}/{RETIRED_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
        _rename(spark, final, retired)
    try:
        _rename(spark, staging, final)
    except Exception:
        if retired is not None:
            _rename(spark, retired, final)
        raise
    if retired is not None:
        delete_path(spark, retired)


def staging_path(final: str) -> str:
    """A unique hidden sibling of ``final`` for writing before :func:`publish`."""
    parent, name = qualify(final).rstrip("/").rsplit("/", 1)
    return f"{parent}/{STAGING_PREFIX}{name}-{uuid.uuid4().hex[:8]}"


@contextmanager
def atomic_output(spark: SparkSession, final: str) -> Iterator[str]:
    """Yield a staging path to write to; publish it at ``final`` when the block succeeds.

    On an exception the staging path is deleted and ``final`` is left untouched. A full
    disk, a missing permission or a read-only filesystem ends as an ``OutputError`` naming
    ``final``, and an input file the job could not read as an ``InputError`` naming the file
    (:func:`ctx_spark.causes.job_errors`); other errors keep their traceback.
    """
    final = qualify(final)
    parent = final.rstrip("/").rsplit("/", 1)[0]
    with job_errors(final):
        make_dirs(spark, parent)
        staging = staging_path(final)
        try:
            yield staging
        except BaseException:
            _delete_quietly(spark, staging)
            raise
        publish(spark, staging, final)


def _delete_quietly(spark: SparkSession, path: str) -> None:
    """Delete a staging path after a failure without hiding that failure."""
    try:
        delete_path(spark, path)
    except Exception:  # the original error matters more; a stale staging path is skipped by readers
        pass


def write_parquet(
    df: DataFrame, final: str, *, partition_by: tuple[str, ...] = (), sort_by: tuple[str, ...] = ()
) -> None:
    """Write ``df`` as Parquet at ``final`` atomically (see :func:`atomic_output`), in files
    sized for the data (:mod:`ctx_spark.output_files`, docs/labelling.md, "Output files").

    Args:
        partition_by: columns that name sub-directories (``context=car/``).
        sort_by: the output's order; the writer sorts (a range partitioning into as many
            partitions as the output needs files, each sorted), so a caller passes the
            columns here instead of sorting ``df`` itself.
    """
    from ctx_spark import output_files

    spark = df.sparkSession
    target = output_files.target_file_bytes(spark)
    with atomic_output(spark, final) as staging:
        output_files.write_sized(df, staging, output_files.Layout(target, partition_by, sort_by))


def write_text(spark: SparkSession, final: str, text: str) -> None:
    """Write a small text file on the driver, atomically, on any Hadoop filesystem."""
    write_bytes(spark, final, text.encode("utf-8"))


def write_bytes(spark: SparkSession, final: str, data: bytes) -> None:
    """Write a small binary file (an image) on the driver, atomically, on any Hadoop filesystem."""
    final = qualify(final)
    parent = final.rstrip("/").rsplit("/", 1)[0]
    with output_errors(final):
        make_dirs(spark, parent)
        staging = staging_path(final)
        try:
            hadoop_fs = _fs(spark, staging)
            hadoop_fs.setWriteChecksum(False)  # no .crc sidecar for small driver-written files
            stream = hadoop_fs.create(_jvm_path(spark, staging), True)
            try:
                stream.write(bytearray(data))
            finally:
                stream.close()
        except BaseException:
            _delete_quietly(spark, staging)
            raise
        publish(spark, staging, final)


def write_json(spark: SparkSession, final: str, obj: Mapping[str, Any]) -> None:
    """Write ``obj`` as indented JSON (report.json, manifests), atomically."""
    write_text(spark, final, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def read_text(spark: SparkSession, path: str) -> str:
    """Read a small text file through Hadoop's filesystem API."""
    fs = _fs(spark, path)
    jpath = _jvm_path(spark, path)
    if not fs.exists(jpath):
        raise FileNotFoundError(path)
    jvm = spark.sparkContext._jvm
    assert jvm is not None  # set while the SparkContext is running
    stream = fs.open(jpath)
    try:
        data = jvm.org.apache.commons.io.IOUtils.toByteArray(stream)
    finally:
        stream.close()
    return bytes(data).decode("utf-8")


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def read_parquet(spark: SparkSession, path: str, what: str) -> DataFrame:
    """``spark.read.parquet(path)``, with Spark's errors (not Parquet, an empty directory,
    no such path) as one-line :class:`InputError` starting with ``what``."""
    with read_errors(f"{what}: cannot read Parquet at {path}"):
        return spark.read.parquet(path)


def read_table(spark: SparkSession, path: str, contract: TableContract, *, require_rows: bool = False) -> DataFrame:
    """Read a Parquet table and check it against its contract.

    Every file's footer is read first (:mod:`ctx_spark.tables`), so a table whose files
    disagree (a column missing from some, or of another type) or that holds a file that is
    not Parquet is refused before any job runs, instead of failing the job that writes, or
    silently reading nulls.

    Args:
        require_rows: refuse a table whose footers count no row (a job for which an empty
            input can only give an empty, meaningless output).

    Raises:
        InputError: the path does not exist, is not Parquet, its files disagree, it breaks
            the contract, or (``require_rows``) it is empty; the message names the table
            and the path, file or column.
    """
    path = qualify(path)
    if not path_exists(spark, path):
        raise InputError(f"table '{contract.name}': path {path} does not exist")
    scan = tables.scan_table(spark, path, list(contract.columns))
    if scan is not None:
        tables.check_agreement(scan, contract)
        if scan.files == 0:
            raise InputError(f"table '{contract.name}': {path} holds no Parquet file (only hidden or empty files)")
    df = read_parquet(spark, path, f"table '{contract.name}'")
    validated = validate(df, contract)
    if require_rows and scan is not None and scan.rows == 0:
        raise InputError(
            f"table '{contract.name}': {path} has no rows ({scan.files} file{'s' if scan.files != 1 else ''}, 0 rows); "
            "an empty input gives an empty result, so the job refuses it"
        )
    if require_rows and scan is None and validated.isEmpty():
        raise InputError(f"table '{contract.name}': {path} has no rows")
    return validated
