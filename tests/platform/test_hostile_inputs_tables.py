"""Hostile table inputs and unwritable outputs, on the floors every stage reads and writes
through (ctx_spark.io, ctx_spark.tables, ctx_spark.causes): generated files, a real
local-mode SparkSession, a real read-only filesystem (/sys) and a real full device (/dev/full)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ctx_spark import causes, io, schema, tables
from ctx_spark.errors import InputError, OutputError

PLAYLISTS = schema.PLAYLISTS


def _dev_full() -> bool:
    """Whether /dev/full is the kernel's full device (a test elsewhere that deletes its
    output on failure can remove it; writing then would create a regular file)."""
    try:
        return stat.S_ISCHR(os.stat("/dev/full").st_mode)
    except OSError:
        return False


needs_dev_full = pytest.mark.skipif(not _dev_full(), reason="/dev/full is not the full device here")


def _write(path: Path, ids, titles=None, id_type=pa.int64(), title_name="title") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {"playlist_id": pa.array(ids, id_type)}
    if titles is not None:
        columns[title_name] = pa.array(titles, pa.string())
    pq.write_table(pa.table(columns), str(path))


def _good_and(tmp_path: Path, name: str, **odd) -> Path:
    """A table of a good file and an odd one (written with ``odd``)."""
    root = tmp_path / name
    _write(root / "part-0.parquet", [1, 2], ["a", "b"])
    _write(root / "part-1.parquet", odd.pop("ids", [3, 4]), ["c", "d"], **odd)
    return root


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text and "An error occurred while calling" not in text
    return text


@pytest.mark.parametrize("driver_max_files", [tables.DRIVER_MAX_FILES, 1])  # driver, then executors
def test_files_disagreeing_on_an_id_type_are_refused_naming_table_file_and_column(spark, tmp_path, driver_max_files):
    root = _good_and(tmp_path, "ids", ids=["3", "4"], id_type=pa.string())
    scan = tables.scan_table(spark, str(root), list(PLAYLISTS.columns), driver_max_files=driver_max_files)
    assert scan is not None and scan.files == 2 and scan.rows == 4
    with pytest.raises(InputError) as exc:
        tables.check_agreement(scan, PLAYLISTS)
    text = _one_line(exc)
    assert "table 'playlists'" in text and "column 'playlist_id'" in text and "part-1.parquet" in text
    assert "string" in text and "int64" in text


def test_read_table_refuses_the_disagreeing_files_before_any_job(spark, tmp_path):
    root = _good_and(tmp_path, "widths", ids=[3, 2**40])
    _write(root / "part-2.parquet", [5], ["e"], id_type=pa.int32())  # Spark cannot mix int32 and int64 files
    with pytest.raises(InputError) as exc:
        io.read_table(spark, str(root), PLAYLISTS)
    assert "column 'playlist_id' is int32 in" in _one_line(exc) and "part-2.parquet" in str(exc.value)


@pytest.mark.parametrize("driver_max_files", [tables.DRIVER_MAX_FILES, 1])
def test_a_file_naming_a_column_differently_is_refused_not_read_as_nulls(spark, tmp_path, driver_max_files):
    root = _good_and(tmp_path, "names", title_name="name")
    scan = tables.scan_table(spark, str(root), list(PLAYLISTS.columns), driver_max_files=driver_max_files)
    assert scan is not None
    with pytest.raises(InputError) as exc:
        tables.check_agreement(scan, PLAYLISTS)
    text = _one_line(exc)
    assert "part-1.parquet has no column 'title'" in text and "name, playlist_id" in text


def test_a_file_that_is_not_parquet_in_a_table_is_named(spark, tmp_path):
    root = tmp_path / "mixed"
    _write(root / "part-0.parquet", [1], ["a"])
    (root / "part-1.parquet").write_text("playlist_id,title\n2,b\n")
    with pytest.raises(InputError) as exc:
        io.read_table(spark, str(root), PLAYLISTS)
    assert "part-1.parquet cannot be read as Parquet" in _one_line(exc)


def test_a_csv_given_as_a_table_is_refused_with_the_cause(spark, tmp_path):
    csv = tmp_path / "playlists.csv"
    csv.write_text("playlist_id,title\n1,a\n")
    with pytest.raises(InputError) as exc:
        io.read_table(spark, str(csv), PLAYLISTS)
    assert "playlists.csv cannot be read as Parquet (Parquet magic bytes not found" in _one_line(exc)
    # Spark's own error, when it is the one reading: the Java cause, not "o123.parquet".
    with pytest.raises(InputError) as exc:
        io.read_parquet(spark, str(csv), "table 'playlists'")
    assert "is not a Parquet file" in _one_line(exc) and "playlists.csv" in str(exc.value)


def test_an_empty_table_directory_says_so(spark, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "_SUCCESS").write_text("")
    with pytest.raises(InputError, match="holds no Parquet file"):
        io.read_table(spark, str(tmp_path / "empty"), PLAYLISTS)


def test_hidden_and_empty_files_are_skipped_as_spark_skips_them(spark, tmp_path):
    root = tmp_path / "table"
    _write(root / "part-0.parquet", [1, 2], ["a", "b"])
    (root / "_SUCCESS").write_text("")
    (root / ".part-0.parquet.tmp").write_bytes(b"a half-written file")  # hidden: Spark skips it
    (root / "part-9.parquet").write_bytes(b"")  # zero bytes: Spark lists and skips it
    _write(root / "_temporary" / "0" / "part-x.parquet", ["x"], ["z"], id_type=pa.string())
    df = io.read_table(spark, str(root), PLAYLISTS)
    assert sorted(r["playlist_id"] for r in df.collect()) == [1, 2]


def test_a_partition_column_counts_as_present(spark, tmp_path):
    root = tmp_path / "partitioned"
    for day in ("1", "2"):
        path = root / f"day={day}" / "part-0.parquet"
        path.parent.mkdir(parents=True)
        pq.write_table(pa.table({"title": ["t" + day]}), str(path))
    contract = schema.TableContract("dated", {"day": schema.ID, "title": schema.STRING})
    assert sorted(r["title"] for r in io.read_table(spark, str(root), contract).collect()) == ["t1", "t2"]


def test_an_empty_table_is_refused_only_when_rows_are_required(spark, tmp_path):
    path = tmp_path / "none.parquet"
    _write(path, [], [])
    assert io.read_table(spark, str(path), PLAYLISTS).count() == 0
    with pytest.raises(InputError) as exc:
        io.read_table(spark, str(path), PLAYLISTS, require_rows=True)
    assert "table 'playlists'" in _one_line(exc) and "has no rows" in str(exc.value)


def test_a_missing_path_and_a_missing_column_keep_their_messages(spark, tmp_path):
    with pytest.raises(InputError, match=r"table 'playlists': path .*nowhere does not exist"):
        io.read_table(spark, str(tmp_path / "nowhere"), PLAYLISTS)
    _write(tmp_path / "ids.parquet", [1])
    with pytest.raises(InputError, match="table 'playlists': missing column 'title'"):
        io.read_table(spark, str(tmp_path / "ids.parquet"), PLAYLISTS)


def test_a_corrupt_data_page_found_while_writing_names_the_file(spark, tmp_path):
    """Footers fine, data broken: only the job that reads the data finds it, and the error
    names the input file and the cause instead of a Py4J traceback."""
    root = tmp_path / "corrupt"
    root.mkdir()
    n = 20_000
    pq.write_table(
        pa.table({"playlist_id": np.arange(n), "title": [f"title {i}" for i in range(n)]}), str(root / "part-0.parquet")
    )
    data = bytearray((root / "part-0.parquet").read_bytes())
    for i in range(200, len(data) // 2, 7):
        data[i] ^= 0x5A
    (root / "part-0.parquet").write_bytes(bytes(data))
    df = io.read_table(spark, str(root), PLAYLISTS)  # the footer is intact
    with pytest.raises(InputError) as exc:
        io.write_parquet(df, str(tmp_path / "out"))
    text = _one_line(exc)
    assert "cannot read an input file" in text and "part-0.parquet" in text
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("write", ["json", "parquet"])
def test_an_output_directory_that_cannot_be_created_is_one_line(spark, write):
    """/sys refuses new entries to every user, root included: a real unwritable filesystem."""
    target = "/sys/ctx-spark-test-out"
    with pytest.raises(OutputError) as exc:
        if write == "json":
            io.write_json(spark, f"{target}/report.json", {"a": 1})
        else:
            io.write_parquet(spark.range(3), f"{target}/table")
    assert _one_line(exc).startswith(f"cannot write {target}/")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_output_directory_is_one_line(spark, tmp_path):
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "report.json").write_text("{}\n")
    os.chmod(tmp_path / "ro", 0o555)
    try:
        with pytest.raises(OutputError, match="permission denied"):
            io.write_json(spark, str(tmp_path / "ro" / "report.json"), {"a": 1})
        assert (tmp_path / "ro" / "report.json").read_text() == "{}\n"  # the old output stays
    finally:
        os.chmod(tmp_path / "ro", 0o755)


@needs_dev_full
def test_a_full_device_met_by_the_jvm_is_one_line(spark):
    """The JVM writing to /dev/full raises the IOException a full disk raises (through a
    plain FileOutputStream: Hadoop's create would also chmod the device)."""
    jvm = spark.sparkContext._jvm
    with pytest.raises(OutputError) as exc, causes.output_errors("/dev/full"):
        stream = jvm.java.io.FileOutputStream("/dev/full")
        try:
            stream.write(bytearray(b"x" * 4096))
        finally:
            stream.close()
    assert _one_line(exc) == "cannot write /dev/full: no space left on device (free space there or write elsewhere)"


@needs_dev_full
def test_a_full_device_met_by_python_is_one_line(tmp_path):
    with pytest.raises(OutputError, match="no space left on device"), causes.output_errors("/dev/full"):
        with open("/dev/full", "w") as handle:
            handle.write("x" * 10)


def test_python_errors_keep_their_traceback_and_spark_errors_become_one_line(spark):
    with pytest.raises(ZeroDivisionError), causes.job_errors("x"), causes.read_errors("x"):
        _ = 1 / 0
    with pytest.raises(InputError) as exc, causes.read_errors("reading"):
        spark.sql("SELECT * FROM no_such_table_anywhere").collect()
    assert _one_line(exc).startswith("reading: ") and "no_such_table_anywhere" in str(exc.value)
