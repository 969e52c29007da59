"""Reading one split of a snapshot that references the mel store, with the interface of
:class:`ctx_spark.shards.reader.ShardSplit` (what training/data.py, the benchmarks and
evaluation use), so ``open_split(S/mels, "train")`` works on either layout.

A unit of reading (a :class:`StoreRowGroup`) is one row group of the split's refs files,
which the extraction writes one per store row group it uses (ctx_spark/shards/store.py):
reading it reads that refs row group (targets, a few kilobytes) and the ``mel`` column of
that one store row group, then keeps the rows the refs name. The list of units comes from
the refs files' footers alone (their ``store_file``/``store_group`` statistics), so opening
a split reads no data, and shuffling units is shuffling store row groups, as with shards.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ctx_spark import fs
from ctx_spark.errors import InputError
from ctx_spark.shards import contract
from ctx_spark.shards.contract import ShardInfo
from ctx_spark.shards.reader import OPEN_FILES, RowGroup, ShardSplit
from ctx_spark.shards.store import STORE_COLUMNS, STORE_FILE, STORE_GROUP, STORE_ROW, RefsInfo


@dataclass(frozen=True)
class StoreRowGroup(RowGroup):
    """A refs row group and the store row group its spectrograms are in."""

    store_path: str = ""
    store_group: int = 0


def _open(files: OrderedDict, key: str, opener) -> pq.ParquetFile:
    """An LRU of open ParquetFile handles shared by refs and store files."""
    handle = files.get(key)
    if handle is None:
        handle = pq.ParquetFile(opener())
        files[key] = handle
        while len(files) > OPEN_FILES:
            files.popitem(last=False)[1].close()
    else:
        files.move_to_end(key)
    return handle


class StoreSplit(ShardSplit):
    """One split of a ``mels/`` directory of references (see the module docstring).

    Attributes (besides ShardSplit's): refs, the store the references point into.
    """

    self_contained = False

    def __init__(self, root: str, name: str, info: ShardInfo, refs: RefsInfo):
        super().__init__(root, name, info)
        self.refs = refs
        self.store = refs.layout
        self.store_filesystem, self._store_data = fs.arrow_filesystem(self.store.data)

    def __repr__(self) -> str:
        return f"StoreSplit({self.path!r}, store={self.store.path!r}, rows={self.rows})"

    @cached_property
    def refs_schema(self) -> pa.Schema:
        schema = self._dataset.schema
        for name in (contract.TRACK_ID, *STORE_COLUMNS):
            if name not in schema.names:
                raise InputError(f"mel references {self.path}: column '{name}' is missing")
        return schema

    @cached_property
    def schema(self) -> pa.Schema:
        """The split as a shard split looks: the refs' columns less the store position,
        plus ``mel``."""
        refs = self.refs_schema
        fields = [f for f in refs if f.name not in STORE_COLUMNS]
        fields.insert(1, pa.field(contract.MEL, pa.binary(), nullable=False))
        return pa.schema(fields, metadata=refs.metadata)

    @cached_property
    def row_groups(self) -> list[RowGroup]:
        """Every refs row group with its store row group, from the refs footers only."""
        groups: list[RowGroup] = []
        names = self.refs_schema.names
        file_column, group_column = names.index(STORE_FILE), names.index(STORE_GROUP)
        for fragment in self._dataset.get_fragments():
            metadata = fragment.metadata
            for index in range(metadata.num_row_groups):
                meta = metadata.row_group(index)
                if not meta.num_rows:
                    continue
                store_file, store_group = (
                    _single_value(meta.column(file_column)),
                    _single_value(meta.column(group_column)),
                )
                if store_file is None or store_group is None:
                    raise InputError(
                        f"mel references {fragment.path} row group {index}: it must use exactly one store row "
                        "group (its store_file and store_group statistics say otherwise)"
                    )
                store_path = f"{self._store_data}/{store_file}"
                groups.append(StoreRowGroup(fragment.path, index, meta.num_rows, store_path, int(str(store_group))))
        if not groups:
            raise InputError(f"mel references {self.path}: no rows")
        return groups

    def read_row_group(self, group: RowGroup, columns: Sequence[str], files: Optional[OrderedDict] = None) -> pa.Table:
        """``columns`` of one unit: the refs row group's columns, and ``mel`` taken from its
        store row group (only that row group's ``mel`` column is read)."""
        if not isinstance(group, StoreRowGroup):
            raise TypeError(f"{group!r} is not a row group of {self!r}")
        if files is None:
            files = OrderedDict()
        want_mel = contract.MEL in columns
        refs_columns = [c for c in columns if c != contract.MEL] + ([STORE_ROW] if want_mel else [])
        refs = _open(files, group.path, lambda: self.filesystem.open_input_file(group.path))
        table = refs.read_row_group(group.index, columns=refs_columns)
        if not want_mel:
            return table.select(list(columns))
        try:
            store = _open(files, group.store_path, lambda: self.store_filesystem.open_input_file(group.store_path))
        except FileNotFoundError:
            raise InputError(
                f"mel references {group.path}: store file {group.store_path} is missing (deleted while a "
                "snapshot still named it?)"
            ) from None
        mel = store.read_row_group(group.store_group, columns=[contract.MEL]).column(contract.MEL)
        rows = table.column(STORE_ROW).to_numpy()
        if len(rows) and (rows.max() >= len(mel) or rows.min() < 0):
            raise InputError(
                f"mel references {group.path} row group {group.index}: rows beyond store row group "
                f"{group.store_group} of {group.store_path} ({len(mel)} rows)"
            )
        if not (len(rows) == len(mel) and np.array_equal(rows, np.arange(len(mel)))):
            mel = mel.take(pa.array(rows))  # a few rows of the group: copy them out
        table = table.append_column(contract.MEL, mel)
        return table.select(list(columns))


def _single_value(column_meta) -> Optional[object]:
    """The value of a column chunk whose statistics say it holds one value, else None."""
    stats = column_meta.statistics
    if stats is None or not stats.has_min_max or stats.min != stats.max:
        return None
    return stats.min
