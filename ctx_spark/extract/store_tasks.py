"""What runs in Spark's Python workers for the mel store: ``mapInArrow`` functions that
write store data files, write a snapshot's refs, and fetch spectrograms back by position.

Layout and names: ctx_spark/shards/store.py. Every function here opens files through
:func:`ctx_spark.fs.arrow_filesystem`, so a store on HDFS or an object store works as a
local one does; nothing is collected to the driver but per-task counts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from ctx_spark import schema
from ctx_spark.audio.params import MelParams
from ctx_spark.extract import tasks
from ctx_spark.fs import arrow_filesystem
from ctx_spark.shards import contract, store
from ctx_spark.shards.writer import ShardWriter

#: The origin of a row written to the store: decoded now, copied from a sparse store file,
#: or imported from a snapshot of the layout before the store.
COMPUTED, COPIED, IMPORTED = "computed", "copied", "imported"
ORIGIN = "origin"
#: The file-level row position of a store row (Spark's ``_metadata.row_index``).
STORE_INDEX = "store_index"
#: What a store write task hands back: its counts per (split, status, reason, origin).
STORE_STATS_DDL = (
    f"{schema.SPLIT} string, {tasks.STATUS} string, reason string, {ORIGIN} string, n bigint, seconds double"
)
#: What a refs write task hands back.
REFS_STATS_DDL = f"{schema.SPLIT} string, n bigint, groups bigint"


def _partition_id() -> int:
    from pyspark import TaskContext

    context = TaskContext.get()
    return context.partitionId() if context is not None else 0


def _id_type(name: str) -> pa.DataType:
    return pa.int64() if name == "int64" else pa.string()


# --- store data files ------------------------------------------------------------------


@dataclass(frozen=True)
class StoreWriteSpec:
    """What a store write task needs (pickled to the executors).

    Attributes:
        batch_root: ``M/<digest>/data/<batch>``: data files go to ``<split>/`` under it.
        errors_root: the stage's staging directory: failed rows go to ``errors/`` there.
        id_type: ``int64`` or ``string``; params: recorded in every file's metadata.
        group_rows: rows per row group; groups_per_file: row groups per data file.
        compression: Parquet codec or ``none``.
    """

    batch_root: str
    errors_root: str
    id_type: str
    params: MelParams
    group_rows: int
    groups_per_file: int
    compression: str


def write_store_batches(batches: Iterator[pa.RecordBatch], spec: StoreWriteSpec) -> Iterator[pa.RecordBatch]:
    """Write the rows that have a spectrogram to new store data files and the others to
    ``errors/``; yield this task's counts (:data:`STORE_STATS_DDL`).

    Input rows must be sorted by (split, track_id) within the task. File names depend only
    on the task's partition and the rows' order, so a retried attempt writes the same files.
    """
    id_arrow = _id_type(spec.id_type)
    data = store.data_schema(id_arrow, spec.params)
    failures = tasks.errors_schema(id_arrow)
    task = _partition_id()
    shards = ShardWriter(spec.batch_root, task, data, spec.group_rows, spec.groups_per_file, spec.compression)
    errors = ShardWriter(spec.errors_root, task, failures, 1 << 16, 1 << 10, spec.compression)
    stats: dict[tuple, list] = {}
    try:
        for batch in batches:
            if not batch.num_rows:
                continue
            ok = pc.is_valid(batch.column(tasks.MEL))
            _count(stats, batch, ok)
            good = pa.Table.from_batches([batch.filter(ok)])
            splits = good.column(schema.SPLIT).to_pylist()
            start = 0
            for i in range(1, len(splits) + 1):
                if i == len(splits) or splits[i] != splits[start]:
                    shards.write(splits[start], good.slice(start, i - start).select(data.names).cast(data))
                    start = i
            bad = pa.Table.from_batches([batch.filter(pc.invert(ok))])
            if bad.num_rows:
                bad = bad.select(
                    [contract.TRACK_ID, contract.AUDIO, tasks.ERROR_STAGE, tasks.ERROR_REASON, tasks.ERROR_MESSAGE]
                )
                errors.write(tasks.ERRORS_SPLIT, bad.rename_columns(failures.names).cast(failures))
        shards.close()
        errors.close()
    except BaseException:
        shards.abort()
        errors.abort()
        raise
    keys = sorted(stats, key=lambda k: tuple("" if v is None else str(v) for v in k))
    yield pa.RecordBatch.from_arrays(
        [
            pa.array([k[0] for k in keys], pa.string()),
            pa.array([k[1] for k in keys], pa.string()),
            pa.array([k[2] for k in keys], pa.string()),
            pa.array([k[3] for k in keys], pa.string()),
            pa.array([stats[k][0] for k in keys], pa.int64()),
            pa.array([stats[k][1] for k in keys], pa.float64()),
        ],
        names=[schema.SPLIT, tasks.STATUS, "reason", ORIGIN, "n", "seconds"],
    )


def _count(stats: dict, batch: pa.RecordBatch, ok: pa.Array) -> None:
    keys = zip(
        batch.column(schema.SPLIT).to_pylist(),
        ok.to_pylist(),
        batch.column(tasks.ERROR_REASON).to_pylist(),
        batch.column(ORIGIN).to_pylist(),
        batch.column(tasks.DECODED).to_pylist(),
    )
    for split, good, reason, origin, seconds in keys:
        entry = stats.setdefault((split, tasks.WRITTEN if good else tasks.FAILED, reason, origin), [0, 0.0])
        entry[0] += 1
        entry[1] += seconds or 0.0


# --- positions in a store file ---------------------------------------------------------


class Footers:
    """Row-group boundaries of store data files, read from their footers once per task."""

    def __init__(self, data_dir: str) -> None:
        self.fs, self.root = arrow_filesystem(data_dir)
        self._starts: dict[str, np.ndarray] = {}

    def path(self, store_file: str) -> str:
        return f"{self.root}/{store_file}"

    def starts(self, store_file: str) -> np.ndarray:
        """First file-level row of each row group, and the file's row count last."""
        found = self._starts.get(store_file)
        if found is None:
            with self.fs.open_input_file(self.path(store_file)) as handle:
                metadata = pq.ParquetFile(handle).metadata
            counts = [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)]
            found = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
            self._starts = {store_file: found}  # rows arrive sorted by file: keep one
        return found

    def locate(self, store_file: str, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row group, row within it) of file-level row positions."""
        starts = self.starts(store_file)
        if len(index) and (index.min() < 0 or index.max() >= starts[-1]):
            raise ValueError(f"{self.path(store_file)}: row positions beyond its {starts[-1]} rows")
        groups = np.searchsorted(starts, index, side="right") - 1
        return groups.astype(np.int32), (index - starts[groups]).astype(np.int32)


def _runs(values: list) -> Iterator[tuple[Any, int, int]]:
    start = 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[start]:
            yield values[start], start, i
            start = i


# --- refs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefsWriteSpec:
    """What a refs write task needs.

    Attributes:
        root: the stage's staging directory (refs go to ``<split>/`` under it).
        data_dir: ``M/<digest>/data``.
        id_type, with_targets, params, contexts: as the shard schema.
        rows_per_file: refs rows per file at most.
        compression: Parquet codec or ``none``.
    """

    root: str
    data_dir: str
    id_type: str
    with_targets: bool
    params: MelParams
    contexts: Optional[tuple[str, ...]]
    rows_per_file: int
    compression: str


class _RefsWriter:
    """One task's refs files of one split: one row group per ``write`` call."""

    def __init__(self, spec: RefsWriteSpec, schema_: pa.Schema, task: int, split: str) -> None:
        self.fs, root = arrow_filesystem(spec.root)
        self.directory = f"{root}/{split}"
        self.schema, self.task, self.spec = schema_, task, spec
        self.seq, self.rows = 0, 0
        self.writer: Optional[pq.ParquetWriter] = None
        self.tmp = self.final = ""

    def write(self, table: pa.Table) -> None:
        if self.writer is not None and self.rows + table.num_rows > self.spec.rows_per_file:
            self.close()
        if self.writer is None:
            self.fs.create_dir(self.directory, recursive=True)
            base = f"part-{self.task:05d}-{self.seq:03d}.parquet"
            self.final = f"{self.directory}/{base}"
            self.tmp = f"{self.directory}/.{base}.{uuid.uuid4().hex[:8]}.tmp"
            compression = None if self.spec.compression == "none" else self.spec.compression
            self.writer = pq.ParquetWriter(self.tmp, self.schema, filesystem=self.fs, compression=compression)
            self.rows = 0
        self.writer.write_table(table, row_group_size=max(1, table.num_rows))
        self.rows += table.num_rows

    def close(self) -> None:
        if self.writer is None:
            return
        self.writer.close()
        self.writer = None
        if self.fs.get_file_info(self.final).type != pafs.FileType.NotFound:
            self.fs.delete_file(self.final)  # a previous attempt of this task
        self.fs.move(self.tmp, self.final)
        self.seq += 1

    def abort(self) -> None:
        if self.writer is not None:
            try:
                self.writer.close()
                self.fs.delete_file(self.tmp)
            except Exception:
                pass
            self.writer = None


def write_refs_batches(batches: Iterator[pa.RecordBatch], spec: RefsWriteSpec) -> Iterator[pa.RecordBatch]:
    """Write a snapshot's refs: one refs row group per store row group used, and yield this
    task's counts (:data:`REFS_STATS_DDL`).

    Input rows (the snapshot's tracks with ``store_file`` and ``store_index``) must be
    sorted by (split, store_file, store_index) within the task; only the rows of one store
    file are held at a time.
    """
    schema_ = store.refs_schema(_id_type(spec.id_type), spec.params, spec.with_targets, spec.contexts)
    footers = Footers(spec.data_dir)
    writers: dict[str, _RefsWriter] = {}
    counts: dict[str, list[int]] = {}
    task = _partition_id()

    def flush(rows: pa.Table) -> None:
        """Write rows of one (split, store file)."""
        split, store_file = rows.column(schema.SPLIT)[0].as_py(), rows.column(store.STORE_FILE)[0].as_py()
        writer = writers.setdefault(split, _RefsWriter(spec, schema_, task, split))
        groups, within = footers.locate(store_file, rows.column(STORE_INDEX).to_numpy())
        rows = rows.append_column(store.STORE_GROUP, pa.array(groups)).append_column(store.STORE_ROW, pa.array(within))
        for _, a, b in _runs(groups.tolist()):
            writer.write(rows.slice(a, b - a).select(schema_.names).cast(schema_))
            entry = counts.setdefault(split, [0, 0])
            entry[0] += b - a
            entry[1] += 1

    pending: Optional[pa.Table] = None
    try:
        for batch in batches:
            if not batch.num_rows:
                continue
            part = pa.Table.from_batches([batch])
            pending = part if pending is None else pa.concat_tables([pending, part])
            keys = list(zip(pending.column(schema.SPLIT).to_pylist(), pending.column(store.STORE_FILE).to_pylist()))
            runs = list(_runs(keys))
            for _, a, b in runs[:-1]:  # the last run may go on in the next batch
                flush(pending.slice(a, b - a))
            pending = pending.slice(runs[-1][1])
        if pending is not None and pending.num_rows:
            flush(pending)
        for writer in writers.values():
            writer.close()
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    names = sorted(counts)
    yield pa.RecordBatch.from_arrays(
        [
            pa.array(names, pa.string()),
            pa.array([counts[n][0] for n in names], pa.int64()),
            pa.array([counts[n][1] for n in names], pa.int64()),
        ],
        names=[schema.SPLIT, "n", "groups"],
    )


# --- fetching spectrograms back ------------------------------------------------------------


@dataclass(frozen=True)
class FetchSpec:
    """Where the store's data files are, and rows per output batch."""

    data_dir: str
    batch_rows: int


def fetch_mel_batches(batches: Iterator[pa.RecordBatch], spec: FetchSpec) -> Iterator[pa.RecordBatch]:
    """Add ``mel`` to rows naming a store position: ``store_file`` with either
    ``store_group`` and ``store_row`` (refs) or ``store_index`` (the store's own rows).

    Rows should arrive sorted by store position within the task: each store row group is
    then read once (its ``mel`` column only).
    """
    footers = Footers(spec.data_dir)
    last: tuple[Optional[str], int, Optional[pa.Array]] = (None, -1, None)
    for batch in batches:
        for start in range(0, batch.num_rows, spec.batch_rows):
            part = batch.slice(start, spec.batch_rows)
            files = part.column(store.STORE_FILE).to_pylist()
            names = part.schema.names
            if store.STORE_GROUP in names:
                groups = part.column(store.STORE_GROUP).to_numpy().astype(np.int32)
                rows = part.column(store.STORE_ROW).to_numpy().astype(np.int32)
            else:
                groups = np.zeros(part.num_rows, np.int32)
                rows = np.zeros(part.num_rows, np.int32)
                index = part.column(STORE_INDEX).to_numpy()
                for name, a, b in _runs(files):
                    groups[a:b], rows[a:b] = footers.locate(name, index[a:b])
            pieces = []
            for (store_file, group), a, b in _runs(list(zip(files, groups.tolist()))):
                if last[0] != store_file or last[1] != group:
                    with footers.fs.open_input_file(footers.path(store_file)) as source:
                        column = pq.ParquetFile(source).read_row_group(group, columns=[contract.MEL])
                    last = (store_file, group, column.column(contract.MEL).combine_chunks())
                assert last[2] is not None
                pieces.append(last[2].take(pa.array(rows[a:b])))
            mel = pa.concat_arrays(pieces) if pieces else pa.array([], pa.binary())
            yield pa.RecordBatch.from_arrays(list(part.columns) + [mel], names=names + [contract.MEL])
