"""The few file operations the refresh's bookkeeping needs, on a local disk or any Hadoop
filesystem.

The pointer, the lock and the run state are small files whose replacement and exclusive
creation must be atomic; that is done with the operating system's own primitives on a
local root (``os.replace``, ``os.link``), which need no SparkSession (readers resolving
``R/current`` may not have one), and through Hadoop's FileSystem/FileContext API for other
schemes (``hdfs://``, ``s3a://``, ``gs://``, ``abfs://``).

Atomicity on object stores: S3 and GCS have no atomic rename (a rename is copy + delete)
and S3A's ``create(overwrite=false)`` checks existence before writing, so on those stores
the pointer swap and the lock are best effort; use HDFS or a local/NFS root for the
bookkeeping when strict guarantees matter (see docs/refresh.md, "Scheduled refresh").
"""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import UTC, datetime
from typing import Optional

from ctx_spark import io
from ctx_spark.fs import absolute_local_path, is_local
from ctx_spark.logs import get_logger

log = get_logger("refresh")

TMP_PREFIX = ".tmp-"


class LocalStore:
    """Bookkeeping files on the local filesystem (or a mounted network filesystem)."""

    def qualify(self, path: str) -> str:
        return absolute_local_path(path)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def read_text(self, path: str) -> str:
        with open(path, encoding="utf-8") as handle:
            return handle.read()

    def _write_temp(self, path: str, text: str) -> str:
        directory, name = os.path.split(path)
        os.makedirs(directory, exist_ok=True)
        tmp = os.path.join(directory, f"{TMP_PREFIX}{name}-{uuid.uuid4().hex[:8]}")
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        return tmp

    def write_text(self, path: str, text: str) -> None:
        """Replace ``path`` atomically: a reader sees the old content or the new, whole."""
        os.replace(self._write_temp(path, text), path)

    def create_new(self, path: str, text: str) -> bool:
        """Create ``path`` holding ``text`` unless it exists; False when it does.

        The content is written to a temporary file first and hard-linked into place
        (``link`` fails when the name exists, like ``open(O_CREAT|O_EXCL)``), so no reader
        ever sees the file empty; filesystems without hard links fall back to O_EXCL.
        """
        tmp = self._write_temp(path, text)
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        except OSError:  # no hard links here (some FUSE / SMB mounts)
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            return True
        finally:
            os.unlink(tmp)

    def rename(self, src: str, dst: str) -> bool:
        """Move ``src`` to a fresh name ``dst``; False when ``src`` is gone (someone else
        moved it first)."""
        try:
            os.rename(src, dst)
            return True
        except FileNotFoundError:
            return False

    def mtime(self, path: str) -> Optional[float]:
        try:
            return os.stat(path).st_mtime
        except FileNotFoundError:
            return None

    def delete(self, path: str) -> None:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def list_dir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except FileNotFoundError:
            return []

    def make_dirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)


class HadoopStore:
    """Bookkeeping files on any Hadoop filesystem, through the session's JVM."""

    def __init__(self, spark) -> None:
        self.spark = spark
        self._jvm = spark.sparkContext._jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()

    def _path(self, path: str):
        return self._jvm.org.apache.hadoop.fs.Path(path)

    def _fs(self, path: str):
        fs = self._path(path).getFileSystem(self._conf)
        fs.setWriteChecksum(False)  # no .crc sidecars for the small bookkeeping files
        return fs

    def qualify(self, path: str) -> str:
        return io.qualify(path)

    def exists(self, path: str) -> bool:
        return io.path_exists(self.spark, path)

    def read_text(self, path: str) -> str:
        return io.read_text(self.spark, path)

    def _write(self, path: str, text: str, overwrite: bool) -> None:
        stream = self._fs(path).create(self._path(path), overwrite)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()

    def write_text(self, path: str, text: str) -> None:
        """Write a temporary sibling, then rename it over ``path`` with FileContext's
        OVERWRITE option (one atomic operation on HDFS). Filesystems without a FileContext
        binding fall back to io.publish (``path`` briefly absent)."""
        parent, name = path.rstrip("/").rsplit("/", 1)
        tmp = f"{parent}/{TMP_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
        self._write(tmp, text, overwrite=True)
        jvm = self._jvm
        try:
            context = jvm.org.apache.hadoop.fs.FileContext.getFileContext(self._path(path).toUri(), self._conf)
            options = self.spark.sparkContext._gateway.new_array(jvm.org.apache.hadoop.fs.Options.Rename, 1)
            options[0] = jvm.org.apache.hadoop.fs.Options.Rename.OVERWRITE
            context.rename(self._path(tmp), self._path(path), options)
        except Exception as exc:  # Py4JJavaError: no AbstractFileSystem for this scheme
            log.warning(
                "atomic replace unavailable for %s (%s); replacing by rename aside",
                path,
                str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__,
            )
            io.publish(self.spark, tmp, path)

    def create_new(self, path: str, text: str) -> bool:
        """``FileSystem.create(path, overwrite=false)``: atomic on HDFS."""
        try:
            self._write(path, text, overwrite=False)
            return True
        except Exception as exc:
            if "FileAlreadyExistsException" in _java_class(exc):
                return False
            raise

    def rename(self, src: str, dst: str) -> bool:
        try:
            return bool(self._fs(src).rename(self._path(src), self._path(dst)))
        except Exception as exc:
            if "FileNotFoundException" in _java_class(exc):
                return False
            raise

    def mtime(self, path: str) -> Optional[float]:
        try:
            return self._fs(path).getFileStatus(self._path(path)).getModificationTime() / 1000.0
        except Exception as exc:
            if "FileNotFoundException" in _java_class(exc):
                return None
            raise

    def delete(self, path: str) -> None:
        io.delete_path(self.spark, path)

    def list_dir(self, path: str) -> list[str]:
        return io.list_dir(self.spark, path)

    def make_dirs(self, path: str) -> None:
        io.make_dirs(self.spark, path)


def _java_class(exc: Exception) -> str:
    java = getattr(exc, "java_exception", None)
    return java.getClass().getName() if java is not None else type(exc).__name__


def store_for(spark, root: str):
    """LocalStore for a bare path or ``file:`` URI, HadoopStore (needs ``spark``) otherwise."""
    if is_local(root):
        return LocalStore()
    if spark is None:
        raise ValueError(f"{root}: a SparkSession is needed to read a non-local root")
    return HadoopStore(spark)


def utc_now() -> str:
    """The current UTC time as ISO 8601 with microseconds (sorts as text)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
