"""The plain pyarrow reader of the mel shards: one split's row groups as numpy arrays.

No TensorFlow here: this module is shared by the tf.data adapter (training/data.py), the
benchmarks and the Spark scoring stage; petastorm is an optional alternative reader. Only
Parquet footers are read up front (row counts and row-group boundaries, for steps per epoch
and for shuffling row groups), never a split's data.

A spectrogram blob is viewed as float16 straight from the Arrow buffer, without one Python
object per row: all blobs of a row group have the same size, so the binary column's data
buffer *is* a C-ordered (rows, n_mels, n_frames) float16 array.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Optional

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from ctx_spark import fs
from ctx_spark.audio.params import MelParams
from ctx_spark.errors import InputError
from ctx_spark.logs import get_logger
from ctx_spark.shards import contract
from ctx_spark.shards.contract import ShardInfo
from ctx_spark.shards.store import read_refs_info, resolve_reference

log = get_logger("shards")

#: ParquetFile handles one reader stream keeps open (least recently used closed first).
OPEN_FILES = 8

#: Columns the trainer reads, in the order of the target vector (labels, then weights).
TARGET_COLUMNS: tuple[str, ...] = contract.TARGET_COLUMNS


@dataclass(frozen=True)
class RowGroup:
    """One row group of one Parquet file of a split."""

    path: str
    index: int
    rows: int


class ShardSplit:
    """One split (``train``, ``validation``, ``test`` or ``all``) of a shard root.

    Attributes:
        root: the shard root as given (path or URI).
        name: the split's name.
        path: the split's directory (same form as ``root``).
        info: what the root records: mel parameters, format version, contexts.
        params: ``info.params``.
        self_contained: the split's files hold the spectrograms (False for a snapshot's
            references into the mel store, which only this module's readers follow).
    """

    self_contained = True

    def __init__(self, root: str, name: str, info: ShardInfo | MelParams):
        self.root = root.rstrip("/")
        self.name = name
        self.path = f"{self.root}/{name}"
        self.info = info if isinstance(info, ShardInfo) else ShardInfo(info, contract.FORMAT_VERSION, None)
        self.params = self.info.params
        self.filesystem, self._fs_path = fs.arrow_filesystem(self.path)

    def __repr__(self) -> str:
        return f"ShardSplit({self.path!r}, rows={self.rows})"

    @cached_property
    def _dataset(self) -> pads.Dataset:
        info = self.filesystem.get_file_info(self._fs_path)
        if info.type != pafs.FileType.Directory:
            raise InputError(f"mel shards: split directory {self.path} does not exist")
        try:
            dataset = pads.dataset(self._fs_path, format="parquet", filesystem=self.filesystem)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"mel shards: cannot read Parquet under {self.path}: {exc}") from None
        if not dataset.files:
            raise InputError(
                f"mel shards: split directory {self.path} holds no Parquet file (an interrupted extraction?)"
            )
        return dataset

    @cached_property
    def schema(self) -> pa.Schema:
        """The split's Arrow schema; checked for the contract's columns."""
        schema = self._dataset.schema
        for name in (contract.TRACK_ID, contract.MEL):
            if name not in schema.names:
                raise InputError(f"mel shards {self.path}: column '{name}' is missing")
        if not pa.types.is_binary(schema.field(contract.MEL).type) and not pa.types.is_large_binary(
            schema.field(contract.MEL).type
        ):
            raise InputError(
                f"mel shards {self.path}: column 'mel' must be binary, got {schema.field(contract.MEL).type}"
            )
        return schema

    @property
    def has_targets(self) -> bool:
        """Whether the split carries labels and the three weight columns."""
        return all(name in self.schema.names for name in TARGET_COLUMNS)

    def require_targets(self) -> None:
        missing = [name for name in TARGET_COLUMNS if name not in self.schema.names]
        if missing:
            raise InputError(f"mel shards {self.path}: columns {missing} are missing (needed to train or evaluate)")

    @property
    def id_type(self) -> pa.DataType:
        return self.schema.field(contract.TRACK_ID).type

    @cached_property
    def row_groups(self) -> list[RowGroup]:
        """Every row group of every file, from the Parquet footers only."""
        groups: list[RowGroup] = []
        for fragment in self._dataset.get_fragments():
            metadata = fragment.metadata
            for index in range(metadata.num_row_groups):
                rows = metadata.row_group(index).num_rows
                if rows:
                    groups.append(RowGroup(fragment.path, index, rows))
        if not groups:
            raise InputError(f"mel shards {self.path}: no rows")
        return groups

    @property
    def rows(self) -> int:
        """Rows in the split (sum of the row-group counts in the footers)."""
        return sum(group.rows for group in self.row_groups)

    def read_row_group(self, group: RowGroup, columns: Sequence[str], files: Optional[OrderedDict] = None) -> pa.Table:
        """Read ``columns`` of one row group.

        ``files`` (an OrderedDict owned by one reader stream) keeps the last
        :data:`OPEN_FILES` ParquetFile handles open, so consecutive row groups of a file do
        not re-read its footer while a split of many thousand files never holds thousands
        of open handles.
        """
        if files is None:
            files = OrderedDict()
        handle = files.get(group.path)
        if handle is None:
            handle = pq.ParquetFile(self.filesystem.open_input_file(group.path))
            files[group.path] = handle
            while len(files) > OPEN_FILES:
                files.popitem(last=False)[1].close()
        else:
            files.move_to_end(group.path)
        return handle.read_row_group(group.index, columns=list(columns))


def open_split(root: str, name: str) -> ShardSplit:
    """The split ``name`` of the shard root ``root`` (path or URI), with what the root records.

    A refresh snapshot's ``mels/`` that references the shared mel store (it holds
    ``mel_store.json``) gives a :class:`ctx_spark.shards.store_reader.StoreSplit`, which reads
    the same rows through the references; a self-contained shard root gives a ShardSplit.
    A ``mels/`` the refresh reused from an earlier snapshot is followed to that one.
    """
    root = resolve_reference(root)
    info = read_shard_info(root)
    refs = read_refs_info(root)
    if refs is not None:
        from ctx_spark.shards.store_reader import StoreSplit

        return StoreSplit(root, name, info, refs)
    return ShardSplit(root, name, info)


def read_mel_params(root: str) -> MelParams:
    """The MelParams in ``root/mel_params.json``."""
    path = fs.join(root, contract.PARAMS_FILE)
    try:
        text = fs.read_text(path)
    except (FileNotFoundError, OSError):
        raise InputError(f"mel shards: {path} is missing or unreadable") from None
    try:
        return contract.params_from_json(text)
    except (ValueError, TypeError) as exc:
        raise InputError(f"mel shards: {path} is not valid mel parameters: {exc}") from None


def read_shard_info(root: str) -> ShardInfo:
    """Mel parameters, format version and contexts of a shard root (path or URI).

    A root written before the format recorded its contexts (format 1) is read with a
    warning: nothing can then check that its label vectors follow the configured order.
    """
    params = read_mel_params(root)
    try:
        text = fs.read_text(fs.join(root, contract.INFO_FILE))
    except FileNotFoundError:
        text = None
    info = contract.parse_info(params, text, root)
    if info.format_version < 2:
        log.warning(
            "mel shards %s were written by an older ctx-spark (format %d, no %s): their context order "
            "cannot be checked against the configuration",
            root,
            info.format_version,
            contract.INFO_FILE,
        )
    return info


# --- Arrow -> numpy ----------------------------------------------------------------------


def mel_blobs(column: pa.Array | pa.ChunkedArray, params: MelParams, where: str) -> np.ndarray:
    """The spectrograms of a binary column as float16, shape (rows, n_mels, n_frames).

    Zero-copy when the column is one chunk (the usual case for one row group).

    Raises:
        InputError: a blob does not hold n_mels * n_frames float16 values (names ``where``).
    """
    _check_mel_sizes(column, params, where)
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n_mels, n_frames = params.shape
    if len(array) == 0:
        return np.zeros((0, n_mels, n_frames), dtype=contract.MEL_DTYPE)
    offsets = _offsets(array)
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)
    values = data[offsets[0] : offsets[-1]].view(contract.MEL_DTYPE)
    return values.reshape(len(array), n_mels, n_frames)


def _check_mel_sizes(column: pa.Array | pa.ChunkedArray, params: MelParams, where: str) -> None:
    mask = valid_mel_mask(column, params)
    if not mask.all():
        bad = int((~mask).sum())
        raise InputError(
            f"{where}: {bad} 'mel' values do not hold {params.shape[0]}x{params.shape[1]} float16 values "
            "(shape from mel_params.json)"
        )


def valid_mel_mask(column: pa.Array | pa.ChunkedArray, params: MelParams) -> np.ndarray:
    """Boolean mask (rows,): blobs that are non-null and of the size the params imply."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    nbytes = params.shape[0] * params.shape[1] * contract.MEL_DTYPE.itemsize
    if len(array) == 0:
        return np.zeros(0, dtype=bool)
    sizes = np.diff(_offsets(array))
    valid = sizes == nbytes
    if array.null_count:
        valid &= ~np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    return valid


def _offsets(array: pa.Array) -> np.ndarray:
    offset_type = np.int64 if pa.types.is_large_binary(array.type) else np.int32
    offsets = np.frombuffer(array.buffers()[1], dtype=offset_type)
    return offsets[array.offset : array.offset + len(array) + 1].astype(np.int64)


def fixed_lists(column: pa.Array | pa.ChunkedArray, width: int, dtype: npt.DTypeLike, where: str) -> np.ndarray:
    """A list column whose rows all hold ``width`` values, as a (rows, width) array.

    Raises:
        InputError: some row does not hold exactly ``width`` values, or holds nulls.
    """
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(array) == 0:
        return np.zeros((0, width), dtype=dtype)
    lengths = array.value_lengths().fill_null(-1).to_numpy(zero_copy_only=False)
    if not np.all(lengths == width):
        found = sorted(int(v) for v in np.unique(lengths) if v >= 0)
        raise InputError(
            f"{where}: every row must hold {width} values (one per context in conf/contexts.yaml); "
            f"found lengths {found[:5]}{' and nulls' if array.null_count else ''}"
        )
    values = array.flatten()
    if values.null_count:
        raise InputError(f"{where}: null values inside the lists")
    return values.to_numpy(zero_copy_only=False).astype(dtype, copy=False).reshape(len(array), width)


def table_arrays(
    table: pa.Table, params: MelParams, n_contexts: int, where: str, mel_as_bytes: bool = False
) -> dict[str, np.ndarray]:
    """The columns of one row group as numpy arrays ready for tf.data.

    Returns: ``track_id`` (rows,) int64 or object (strings); ``mel`` (rows, n_mels,
    n_frames) float16, or with ``mel_as_bytes`` (rows,) object array of the raw blobs (sizes
    checked); each target column present as (rows, n_contexts) (labels uint8, weights
    float32).
    """
    out: dict[str, np.ndarray] = {}
    for name in table.column_names:
        column = table.column(name)
        if name == contract.MEL and mel_as_bytes:
            _check_mel_sizes(column, params, f"{where}, column 'mel'")
            out[name] = column.to_numpy(zero_copy_only=False)
        elif name == contract.MEL:
            out[name] = mel_blobs(column, params, f"{where}, column 'mel'")
        elif name == contract.TRACK_ID:
            out[name] = column.to_numpy(zero_copy_only=False)
        elif name == contract.LABELS:
            out[name] = fixed_lists(column, n_contexts, np.uint8, f"{where}, column '{name}'")
        elif name in contract.WEIGHT_COLUMNS:
            out[name] = fixed_lists(column, n_contexts, np.float32, f"{where}, column '{name}'")
        else:
            raise ValueError(f"unexpected column {name}")
    return out


def describe(split: ShardSplit) -> dict:
    """A small JSON-able summary of a split, for logs and reports."""
    return {
        "path": split.path,
        "rows": split.rows,
        "row_groups": len(split.row_groups),
        "files": len({g.path for g in split.row_groups}),
        "mel_shape": list(split.params.shape),
    }
