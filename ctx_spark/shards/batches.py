"""One pass over a split as ready batches of numpy arrays: the pyarrow reader's pass.

No TensorFlow here; training/data.py hands these batches to tf.data as they are. A pass
reads the split's row groups in a seeded random order (file order when not shuffled),
``read_ahead`` of them at a time in threads (pyarrow decodes outside the GIL), and
delivers batches of ``batch_size`` rows (the last one may be shorter), so a pass is exactly
``ceil(rows / batch_size)`` batches whatever the row-group sizes. Shuffled, each batch is
drawn at random from a buffer of at least ``shuffle_buffer`` rows spanning several row
groups (as tf.data's shuffle buffer would, but per batch rather than per row);
unshuffled, batches follow file order.

Why here and not in tf.data: each spectrogram is viewed as float16 straight from the
Arrow buffer (:func:`ctx_spark.shards.reader.table_arrays`) and copied once, into its
batch; the tf.data route (one string per row, unbatch, shuffle, batch, decode) copies it
four more times and handles every row as its own element (bench/RESULTS.md, "Input
pipeline"). The pass is a pure function of (split, plan): the same seed gives the same
batches, which is what makes epochs exact and a resumed run read what an uninterrupted
one would have.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ctx_spark.shards import contract
from ctx_spark.shards.reader import RowGroup, ShardSplit, table_arrays


@dataclass(frozen=True)
class PassPlan:
    """What one pass reads and how.

    Attributes:
        columns: the columns of every batch (contract names).
        n_contexts: width of the label and weight columns.
        batch_size: rows per batch (the last batch may be shorter).
        shuffle: seeded random row-group order and random batches; False: file order.
        seed: seeds the row-group order and the draws.
        shuffle_buffer: rows held to draw each batch from (shuffled passes).
        read_ahead: row groups read in parallel ahead of the batches.
        frames_first: spectrograms as (frames, mels), the model's input layout (transposed
            while they are copied into their batch, cheaper in numpy than in TensorFlow);
            False: (mels, frames) as stored.
    """

    columns: tuple[str, ...]
    n_contexts: int
    batch_size: int
    shuffle: bool
    seed: int
    shuffle_buffer: int
    read_ahead: int
    frames_first: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.read_ahead < 1 or self.shuffle_buffer < 0:
            raise ValueError(f"invalid pass plan {self}")


def row_group_order(split: ShardSplit, plan: PassPlan) -> list[RowGroup]:
    """The row groups in the order the pass reads them."""
    groups = split.row_groups
    if not plan.shuffle:
        return list(groups)
    return [groups[int(k)] for k in np.random.default_rng(plan.seed).permutation(len(groups))]


def _read_groups(split: ShardSplit, groups: Sequence[RowGroup], plan: PassPlan) -> Iterator[dict[str, np.ndarray]]:
    """The row groups' arrays in ``groups`` order, ``read_ahead`` groups read in parallel."""
    local = threading.local()
    opened: list[OrderedDict] = []

    def read(group: RowGroup) -> dict[str, np.ndarray]:
        files = getattr(local, "files", None)
        if files is None:  # one set of open files per thread: ParquetFile is not shared
            files = local.files = OrderedDict()
            opened.append(files)
        table = split.read_row_group(group, plan.columns, files)
        arrays = table_arrays(table, split.params, plan.n_contexts, f"{group.path} row group {group.index}")
        if contract.TRACK_ID in arrays and arrays[contract.TRACK_ID].dtype == object:
            arrays[contract.TRACK_ID] = arrays[contract.TRACK_ID].astype(bytes)
        return arrays

    try:
        if plan.read_ahead == 1:
            yield from map(read, groups)
            return
        with ThreadPoolExecutor(plan.read_ahead, thread_name_prefix="shard-read") as pool:
            pending: deque = deque()
            upcoming = iter(groups)
            try:
                for group in upcoming:
                    pending.append(pool.submit(read, group))
                    if len(pending) >= plan.read_ahead:
                        break
                while pending:
                    arrays = pending.popleft().result()
                    following = next(upcoming, None)
                    if following is not None:
                        pending.append(pool.submit(read, following))
                    yield arrays
            finally:
                for future in pending:
                    future.cancel()
    finally:
        for files in opened:
            while files:
                files.popitem()[1].close()


class _Buffer:
    """Rows of several row groups, referenced (not copied) until they go into a batch."""

    def __init__(self, columns: Sequence[str], frames_first: bool):
        self.columns = tuple(columns)
        self.frames_first = frames_first
        self.groups: dict[int, dict[str, np.ndarray]] = {}
        self.left: dict[int, int] = {}
        self.group_of = np.zeros(0, np.int64)
        self.row_of = np.zeros(0, np.int64)
        self.added = 0

    def __len__(self) -> int:
        return len(self.group_of)

    def add(self, arrays: dict[str, np.ndarray]) -> None:
        rows = len(arrays[self.columns[0]])
        if not rows:
            return
        key = self.added
        self.added += 1
        self.groups[key], self.left[key] = arrays, rows
        self.group_of = np.concatenate([self.group_of, np.full(rows, key, np.int64)])
        self.row_of = np.concatenate([self.row_of, np.arange(rows, dtype=np.int64)])

    def take(self, positions: np.ndarray) -> dict[str, np.ndarray]:
        """The rows at ``positions`` of the buffer as one batch (one copy per value),
        grouped by row group; they leave the buffer."""
        positions = np.sort(positions)
        groups, rows = self.group_of[positions], self.row_of[positions]
        order = np.lexsort((rows, groups))  # by row group, then row: contiguous slices per group
        groups, rows = groups[order], rows[order]
        keys, starts = np.unique(groups, return_index=True)
        ends = np.append(starts[1:], len(groups))
        sources = [self.groups[key] for key in keys.tolist()]
        batch = {}
        for name in self.columns:
            # fixed-width bytes (string track ids) as wide as the widest of the row groups
            dtype = max((source[name].dtype for source in sources), key=lambda d: d.itemsize)
            shape = sources[0][name].shape[1:]
            if name == contract.MEL and self.frames_first:
                shape = shape[::-1]
            batch[name] = np.empty((len(rows),) + shape, dtype)
        for key, source, start, end in zip(keys.tolist(), sources, starts.tolist(), ends.tolist()):
            for name in self.columns:
                if name == contract.MEL and self.frames_first:
                    target = batch[name]
                    for at, row in enumerate(rows[start:end].tolist(), start):
                        target[at] = source[name][row].T
                elif source[name].dtype == batch[name].dtype:
                    # mode="clip": with the default mode="raise" np.take buffers its output
                    np.take(source[name], rows[start:end], axis=0, out=batch[name][start:end], mode="clip")
                else:  # narrower fixed-width bytes
                    batch[name][start:end] = source[name][rows[start:end]]
            self.left[key] -= end - start
            if not self.left[key]:  # the last reference: the row group's buffers can go
                del self.groups[key], self.left[key]
        keep = np.ones(len(self.group_of), bool)
        keep[positions] = False
        self.group_of, self.row_of = self.group_of[keep], self.row_of[keep]
        return batch


def shard_batches(split: ShardSplit, plan: PassPlan) -> Iterator[dict[str, np.ndarray]]:
    """One pass over ``split``: dicts of ``plan.columns`` -> arrays of up to ``batch_size``
    rows: ``mel`` (B, n_mels, n_frames) float16 (``frames_first``: (B, n_frames, n_mels)),
    ``track_id`` (B,) int64 or bytes, labels (B, n_contexts) uint8, weights (B, n_contexts)
    float32.

    Raises:
        InputError: a row group breaks the shard contract (names its file and row group).
    """
    rng = np.random.default_rng([plan.seed, 1])
    buffer = _Buffer(plan.columns, plan.frames_first)
    # Shuffled: draw a batch once the buffer holds shuffle_buffer rows beyond the batch.
    hold = plan.shuffle_buffer if plan.shuffle else 0
    for arrays in _read_groups(split, row_group_order(split, plan), plan):
        buffer.add(arrays)
        while len(buffer) >= hold + plan.batch_size:
            yield buffer.take(_draw(rng, len(buffer), plan))
    while len(buffer):
        yield buffer.take(_draw(rng, len(buffer), plan))


def _draw(rng: np.random.Generator, available: int, plan: PassPlan) -> np.ndarray:
    size = min(plan.batch_size, available)
    if plan.shuffle:
        return rng.choice(available, size=size, replace=False)
    return np.arange(size)
