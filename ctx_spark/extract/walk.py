"""The executor side of the audio listing: list directories, write what the listing rejects.

``--audio-dir`` is not listed with Spark's ``binaryFile`` source: that listing drops 0-byte
files and names starting with ``.`` or ``_`` without a trace, skips dangling symbolic links,
follows links to directories (a link loop lists the same files thousands of times), and
brings every file's status to the driver. Instead the tree is walked level by level
(:func:`walk_tree`): the directories of one level are spread over
Spark tasks, and each task lists its directories with :func:`scan_batches`, which reports
every entry it meets as one row, a usable file or a problem: nothing under the directory
goes unreported. Local directories are read with ``os.scandir`` (one ``stat`` per entry,
links told apart); other URIs with pyarrow's filesystems, which have no symbolic links.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import pyarrow as pa
import pyarrow.fs as pafs
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ctx_spark.errors import InputError

#: A regular file, or a symbolic link to one (size and mtime are the target's).
FILE = "file"
#: A directory: listed at the next level.
DIR = "dir"
#: A directory whose name starts with ``.`` or ``_`` (Hadoop's hidden names): not descended.
HIDDEN_DIR = "hidden_dir"
#: A symbolic link to a directory: not followed (a link loop cannot repeat the tree).
LINKED_DIR = "linked_dir"
#: A symbolic link whose target does not exist, or a loop of links.
BROKEN_LINK = "broken_link"
#: A fifo, socket or device.
SPECIAL = "special"
#: A name that is not valid UTF-8: no path string can name the file.
UNDECODABLE = "undecodable_name"
#: A directory that cannot be listed, or an entry that cannot be examined.
UNLISTABLE = "unlistable"

#: One row per entry met.
ENTRY_DDL = "path string, kind string, size bigint, mtime_ms bigint, message string"
ENTRY_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("kind", pa.string()),
        ("size", pa.int64()),
        ("mtime_ms", pa.int64()),
        ("message", pa.string()),
    ]
)
#: Column of the directories to list.
DIR_COLUMN = "dir"
#: Rows per Arrow batch handed back (a directory of millions of entries streams).
BATCH_ROWS = 8192
#: Levels of directories below the root walked at most (links are not followed, so only
#: a mount inside its own tree could go deeper).
MAX_DEPTH = 64

HIDDEN_PREFIXES = (".", "_")

_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a fifo"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)

Entry = tuple[str, str, Optional[int], Optional[int], Optional[str]]


@dataclass(frozen=True)
class Root:
    """The directory walked, as rows name it (``uri``) and as its filesystem does.

    Attributes:
        uri: ``file:/abs/dir`` for a local directory, else the URI as given (no ``/`` at
            the end); every listed path is ``uri`` + ``/relative/path``.
        inner: the path inside the filesystem (the local path, or pyarrow's path).
        filesystem: pyarrow's filesystem for a remote directory, None for a local one.
    """

    uri: str
    inner: str
    filesystem: Optional[Any] = None

    def inner_path(self, uri: str) -> str:
        """The filesystem's path of ``uri``, a path under :attr:`uri`."""
        return self.inner + uri[len(self.uri) :]


def _stat_row(path: str, st: os.stat_result) -> Entry:
    return (path, FILE, int(st.st_size), st.st_mtime_ns // 1_000_000, None)


def _local_entry(directory: str, entry: os.DirEntry) -> Entry:
    """The row of one entry of a local directory."""
    try:
        name = entry.name.encode("utf-8").decode("utf-8")
    except UnicodeEncodeError:  # surrogate escapes: the bytes are not UTF-8
        shown = entry.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        return (f"{directory}/{shown}", UNDECODABLE, None, None, "the file name is not valid UTF-8")
    path = f"{directory}/{name}"
    try:
        link = entry.is_symlink()
        if link:
            try:
                st = os.stat(entry.path)  # the target
            except OSError as exc:
                target = os.readlink(entry.path)
                cause = "a loop of links" if exc.errno == errno.ELOOP else f"{exc.strerror or exc}"
                return (path, BROKEN_LINK, None, None, f"symbolic link to {target}: {cause}")
        else:
            st = entry.stat(follow_symlinks=False)
    except OSError as exc:
        return (path, UNLISTABLE, None, None, f"cannot examine this entry: {exc.strerror or exc}")
    if stat.S_ISDIR(st.st_mode):
        if link:
            return (
                path,
                LINKED_DIR,
                None,
                None,
                f"symbolic link to the directory {os.readlink(entry.path)}: not followed",
            )
        return (path, HIDDEN_DIR if name.startswith(HIDDEN_PREFIXES) else DIR, None, None, None)
    if stat.S_ISREG(st.st_mode):
        return _stat_row(path, st)
    what = next((label for test, label in _SPECIAL_KINDS if test(st.st_mode)), "not a regular file")
    return (path, SPECIAL, None, None, f"{what}, not a regular file")


def _scan_local(directory: str, local: str) -> Iterator[Entry]:
    try:
        entries = os.scandir(local)
    except OSError as exc:
        yield (directory, UNLISTABLE, None, None, f"cannot list this directory: {exc.strerror or exc}")
        return
    with entries:
        while True:
            try:
                entry = next(entries)
            except StopIteration:
                return
            except OSError as exc:  # an I/O error in the middle of the directory
                yield (directory, UNLISTABLE, None, None, f"listing stopped: {exc.strerror or exc}")
                return
            yield _local_entry(directory, entry)


def _scan_remote(directory: str, fs: Any, inner: str) -> Iterator[Entry]:
    try:
        infos = fs.get_file_info(pafs.FileSelector(inner, allow_not_found=False, recursive=False))
    except (OSError, pa.ArrowException) as exc:
        yield (directory, UNLISTABLE, None, None, f"cannot list this directory: {exc}")
        return
    for info in infos:
        path = f"{directory}/{info.base_name}"
        if info.type == pafs.FileType.Directory:
            kind = HIDDEN_DIR if info.base_name.startswith(HIDDEN_PREFIXES) else DIR
            yield (path, kind, None, None, None)
        elif info.type == pafs.FileType.File:
            mtime = info.mtime_ns // 1_000_000 if info.mtime_ns is not None else None
            yield (path, FILE, int(info.size), mtime, None)
        else:
            yield (path, SPECIAL, None, None, "not a regular file")


def scan(directory: str, root: Root) -> Iterator[Entry]:
    """Every entry of one directory of the tree (not recursive), as rows of :data:`ENTRY_DDL`.

    A directory that cannot be listed is one row of kind :data:`UNLISTABLE` whose path is
    the directory itself (the root too: the caller turns that into an input error).
    """
    inner = root.inner_path(directory)
    if root.filesystem is None:
        if not os.path.isdir(inner):
            what = "does not exist" if not os.path.lexists(inner) else "is not a directory"
            yield (directory, UNLISTABLE, None, None, f"{what}")
            return
        yield from _scan_local(directory, inner)
    else:
        yield from _scan_remote(directory, root.filesystem, inner)


def _batch(rows: list[Entry]) -> pa.RecordBatch:
    columns: list[Sequence[Any]] = list(zip(*rows)) if rows else [[] for _ in ENTRY_SCHEMA]
    return pa.RecordBatch.from_arrays(
        [pa.array(list(c), f.type) for c, f in zip(columns, ENTRY_SCHEMA)], schema=ENTRY_SCHEMA
    )


def scan_batches(batches: Iterator[pa.RecordBatch], root: Root) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` function: list each directory of column :data:`DIR_COLUMN`."""
    rows: list[Entry] = []
    for batch in batches:
        for directory in batch.column(DIR_COLUMN).to_pylist():
            for row in scan(directory, root):
                rows.append(row)
                if len(rows) >= BATCH_ROWS:
                    yield _batch(rows)
                    rows = []
    if rows:
        yield _batch(rows)


# --- the walk (driver) ------------------------------------------------------------------


def walk_tree(spark: SparkSession, root: Root) -> tuple[DataFrame, list[DataFrame]]:
    """Every entry under ``root`` but the directories themselves (``ENTRY_DDL``), and
    the cached levels. One Spark job per level of directories: the level's directories
    are spread over up to 4 tasks per core and listed by :func:`scan_batches`.

    Raises:
        InputError: the root cannot be listed, or the tree is deeper than ``MAX_DEPTH``.
    """
    scan = functools.partial(scan_batches, root=root)
    frontier = spark.createDataFrame([(root.uri,)], f"{DIR_COLUMN} string")
    parallelism = max(1, spark.sparkContext.defaultParallelism)
    levels: list[DataFrame] = []
    n_dirs = 1
    for depth in range(MAX_DEPTH + 1):
        listed = frontier.repartition(min(n_dirs, 4 * parallelism)).mapInArrow(scan, ENTRY_DDL)
        listed = listed.persist(StorageLevel.MEMORY_AND_DISK)
        levels.append(listed)
        root_problem = F.when((F.col("path") == root.uri) & (F.col("kind") == UNLISTABLE), F.col("message"))
        row = listed.agg(
            F.sum((F.col("kind") == DIR).cast("long")).alias("dirs"), F.max(root_problem).alias("root")
        ).first()
        assert row is not None  # a global aggregation always returns one row
        if depth == 0 and row["root"] is not None:
            for level in levels:
                level.unpersist()
            raise InputError(f"--audio-dir {root.uri}: {row['root']}")
        n_dirs = int(row["dirs"] or 0)
        if not n_dirs:
            break
        frontier = listed.where(F.col("kind") == DIR).select(F.col("path").alias(DIR_COLUMN))
    else:
        for level in levels:
            level.unpersist()
        raise InputError(
            f"--audio-dir {root.uri}: more than {MAX_DEPTH} levels of directories (a mount inside its own tree?)"
        )
    entries = functools.reduce(DataFrame.unionByName, [level.where(F.col("kind") != DIR) for level in levels])
    return entries, levels
