"""Writing shard files from inside Spark tasks, with pyarrow, in the exact contract schema.

Spark's own Parquet writer cannot produce the contract (it has no unsigned 8-bit type for
``labels`` and no way to put the transform's parameters in the file footer) and cannot
size row groups by bytes for 125 KB rows; pyarrow can. Each write task receives the rows of
its shard files already sorted by (split, track_id) and writes them as
``<root>/<split>/part-<task>-<seq>.parquet``: first under a hidden temporary name (readers
skip names starting with ``.``), then renamed. The names depend only on the task's
partition and the rows' order, so a retried or speculative attempt rewrites the same files
with the same rows instead of adding duplicates.

A write that fails because the output filesystem is full, read-only or refuses the job
(:data:`PERMANENT_ERRNOS`) raises :class:`ShardWriteError`, one line naming the directory
and the cause: no retry can fix it, so the tasks hand it back to the driver instead of
failing (docs/extraction.md, "Refusals").
"""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Optional

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from ctx_spark.audio.params import MelParams
from ctx_spark.fs import arrow_filesystem
from ctx_spark.shards import contract

#: Bytes a row holds besides its spectrogram (ids, 4 x 15 targets, path, fingerprint).
ROW_OVERHEAD_BYTES = 512


#: errno values of a write that no retry fixes: no space, no quota, read-only, refused.
PERMANENT_ERRNOS = {
    errno.ENOSPC: "ENOSPC",
    errno.EDQUOT: "EDQUOT",
    errno.EROFS: "EROFS",
    errno.EACCES: "EACCES",
    errno.EPERM: "EPERM",
    errno.EFBIG: "EFBIG",
}
#: The same causes as some filesystems word them without an errno.
PERMANENT_PHRASES = ("No space left on device", "Disk quota exceeded", "Read-only file system", "Permission denied")


class ShardWriteError(Exception):
    """A shard or errors/ file cannot be written, for a reason no retry fixes; the message
    is one line, ``DIRECTORY: cause``."""


def permanent_cause(exc: BaseException) -> Optional[str]:
    """``No space left on device [ENOSPC]`` when ``exc`` is a write failure that no retry
    fixes (:data:`PERMANENT_ERRNOS`, or one of :data:`PERMANENT_PHRASES` in its text),
    else None."""
    code = getattr(exc, "errno", None)
    if code in PERMANENT_ERRNOS:
        return f"{os.strerror(code)} [{PERMANENT_ERRNOS[code]}]"
    text = str(exc)
    return next((phrase for phrase in PERMANENT_PHRASES if phrase in text), None)


def rows_per_group(params: MelParams, row_group_mb: float) -> int:
    """Rows in a row group of about ``row_group_mb`` MiB (at least 1)."""
    row_bytes = params.shape[0] * params.shape[1] * contract.MEL_DTYPE.itemsize + ROW_OVERHEAD_BYTES
    return max(1, int(row_group_mb * (1 << 20)) // row_bytes)


class ShardWriter:
    """Writes one task's rows into its shard files, split by split, in row groups.

    Call :meth:`write` with tables in the output schema, all rows of one split at a time
    and sorted by track_id; :meth:`close` flushes and publishes the last file.
    """

    def __init__(
        self,
        root: str,
        task: int,
        schema: pa.Schema,
        group_rows: int,
        groups_per_file: int,
        compression: str,
        *,
        prefix: str = "part",
    ):
        self.fs, self.root = arrow_filesystem(root)
        self.prefix = prefix
        self.task = task
        self.schema = schema
        self.group_rows = group_rows
        self.file_rows = group_rows * groups_per_file
        self.compression = None if compression == "none" else compression
        self._split: Optional[str] = None
        self._seq = 0
        self._writer: Optional[pq.ParquetWriter] = None
        self._tmp: Optional[str] = None
        self._final: Optional[str] = None
        self._rows_in_file = 0
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self.files: list[str] = []

    @contextmanager
    def _permanent_errors(self) -> Iterator[None]:
        """Turn a write failure that no retry fixes into :class:`ShardWriteError`."""
        try:
            yield
        except ShardWriteError:
            raise
        except OSError as exc:
            cause = permanent_cause(exc)
            if cause is None:
                raise
            directory = f"{self.root}/{self._split}" if self._split is not None else self.root
            raise ShardWriteError(f"{directory}: {cause}") from None

    def write(self, split: str, table: pa.Table) -> None:
        """Queue ``table`` (rows of ``split``, in the output schema).

        Raises:
            ShardWriteError: the filesystem is full, read-only or refuses the write.
        """
        with self._permanent_errors():
            self._write(split, table)

    def _write(self, split: str, table: pa.Table) -> None:
        if split != self._split:
            self._finish_file()
            self._split = split
            self._seq = 0
        offset = 0
        while offset < table.num_rows:
            if self._writer is None:
                self._open()
            room = self.file_rows - self._rows_in_file - self._pending_rows
            take = min(room, table.num_rows - offset)
            self._pending.append(table.slice(offset, take))
            self._pending_rows += take
            offset += take
            if self._pending_rows >= self.group_rows:
                self._flush_groups(final=False)
            if self._rows_in_file + self._pending_rows >= self.file_rows:
                self._finish_file()

    def _open(self) -> None:
        directory = f"{self.root}/{self._split}"
        self.fs.create_dir(directory, recursive=True)
        base = f"{self.prefix}-{self.task:05d}-{self._seq:03d}.parquet"
        self._final = f"{directory}/{base}"
        self._tmp = f"{directory}/.{base}.{uuid.uuid4().hex[:8]}.tmp"
        self._writer = pq.ParquetWriter(
            self._tmp,
            self.schema,
            filesystem=self.fs,
            compression=self.compression,
            use_dictionary=[contract.TRACK_ID],
            write_statistics=[contract.TRACK_ID],
        )
        self._rows_in_file = 0

    def _flush_groups(self, final: bool) -> None:
        if not self._pending:
            return
        table = pa.concat_tables(self._pending)
        whole = (table.num_rows // self.group_rows) * self.group_rows
        cut = table.num_rows if final else whole
        if cut:
            assert self._writer is not None  # rows are pending only while a file is open
            self._writer.write_table(table.slice(0, cut), row_group_size=self.group_rows)
            self._rows_in_file += cut
        rest = table.slice(cut)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def _finish_file(self) -> None:
        if self._writer is None:
            return
        assert self._final is not None  # set by _open together with the writer
        self._flush_groups(final=True)
        self._writer.close()
        self._writer = None
        info = self.fs.get_file_info(self._final)
        if info.type != pafs.FileType.NotFound:
            self.fs.delete_file(self._final)  # a previous attempt of this task
        self.fs.move(self._tmp, self._final)
        self.files.append(self._final)
        self._seq += 1

    def close(self) -> None:
        """Flush and publish the open file.

        Raises:
            ShardWriteError: the filesystem is full, read-only or refuses the write.
        """
        with self._permanent_errors():
            self._finish_file()

    def abort(self) -> None:
        """Drop the open temporary file (the task failed)."""
        if self._writer is not None:
            try:
                self._writer.close()
                self.fs.delete_file(self._tmp)
            except Exception:
                pass
            self._writer = None
