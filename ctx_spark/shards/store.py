"""The shared mel store and a snapshot's references into it: the one definition the
chained extraction writes and every reader checks (docs/refresh.md, "Mel store").

A store ``M`` (``refresh.store.path``, default ``R/melstore``) keeps every spectrogram once,
for every snapshot of a refresh root::

    M/<digest>/                       one transform: the mel parameters and the track id type
        mel_params.json
        data/<batch>/<split>/part-<task>-<seq>.parquet   [track_id, mel, audio, fingerprint]
        gc/tombstones-<time>-<rand>/  files the garbage collector has withdrawn

A spectrogram's key is (track id, audio fingerprint, ``<digest>``): a change of any audio
setting or of the id type starts another ``<digest>`` directory, so old spectrograms are never
reused for a new transform. Data files are append-only: each is written under a hidden name
and renamed into place, never rewritten; a batch is one extraction's new spectrograms
(``<batch>`` starts with its UTC time, so names sort by age), laid out by the split the
tracks had when they were written and sorted by track id. The files themselves are the
index: their key columns, file paths and row positions are read with Spark.

A snapshot's ``mels/`` references the store instead of copying it::

    S/mels/<split>/part-*.parquet     refs: track_id, targets, provenance, and the store row
                                      (store_file under data/, store_group, store_row)
    S/mels/mel_store.json             where the store is and its digest
    S/mels/mel_params.json, shards.json, errors/, report.json    as in a shard root

Refs files hold one row group per store row group they use, sorted by store position, so a
reader streams a split by reading, per refs row group, that one store row group (its
``mel`` column) and the few kilobytes of refs: never a scan of the whole store.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import pyarrow as pa

from ctx_spark import fs
from ctx_spark.audio.params import MelParams
from ctx_spark.errors import InputError
from ctx_spark.shards import contract

#: The snapshot-side marker: a ``mels/`` directory holding it references a store.
REFS_FILE = "mel_store.json"
#: The report.json key of a stage output reused by reference.
REFERENCE = "reference"
#: Columns of a refs row that locate its spectrogram in the store.
STORE_FILE = "store_file"
STORE_GROUP = "store_group"
STORE_ROW = "store_row"
STORE_COLUMNS = (STORE_FILE, STORE_GROUP, STORE_ROW)
#: Sub-directories of a ``<digest>`` directory.
DATA_DIR = "data"
GC_DIR = "gc"
#: The version of the layout above; readers refuse a newer one.
STORE_FORMAT = 1
LAYOUT_KEY = b"ctx_spark.layout"


def transform_digest(params: MelParams, id_type: str) -> str:
    """The ``<digest>`` of a transform: 16 hex digits over the mel parameters and id type."""
    text = json.dumps({"params": params.to_dict(), "id_type": id_type}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class StoreLayout:
    """The paths of one transform's part of a store (``M/<digest>``)."""

    root: str
    digest: str

    @classmethod
    def of(cls, store_root: str, params: MelParams, id_type: str) -> StoreLayout:
        return cls(store_root.rstrip("/"), transform_digest(params, id_type))

    @property
    def path(self) -> str:
        return f"{self.root}/{self.digest}"

    @property
    def data(self) -> str:
        return f"{self.path}/{DATA_DIR}"

    @property
    def gc(self) -> str:
        return f"{self.path}/{GC_DIR}"

    def file(self, store_file: str) -> str:
        """The data file a refs row names (``store_file`` is relative to ``data/``)."""
        return f"{self.data}/{store_file}"


@dataclass(frozen=True)
class StoreSettings:
    """The ``refresh.store`` settings (conf/refresh.yaml).

    Attributes:
        enabled: chained extraction writes to the store (false: a self-contained copy of
            every spectrogram in each snapshot, the layout before the store).
        path: the store directory; relative to the refresh root, or absolute / a URI;
            None: ``R/melstore``.
        file_mb: target size of a data file (MiB).
        compact_below: a data file whose rows of one split the new snapshot uses make up
            less than this share of it has those rows copied into the new batch (0: never).
        gc: run the garbage collector after each publication.
        gc_grace_seconds: files younger than this are never withdrawn or deleted.
    """

    enabled: bool = True
    path: Optional[str] = None
    file_mb: float = 256.0
    compact_below: float = 0.5
    gc: bool = True
    gc_grace_seconds: float = 3600.0

    def __post_init__(self) -> None:
        if self.file_mb <= 0:
            raise ValueError(f"store.file_mb must be > 0, got {self.file_mb}")
        if not 0 <= self.compact_below < 1:
            raise ValueError(f"store.compact_below must be in [0, 1), got {self.compact_below}")
        if self.gc_grace_seconds < 0:
            raise ValueError(f"store.gc_grace_seconds must be >= 0, got {self.gc_grace_seconds}")


def data_schema(id_type: pa.DataType, params: MelParams) -> pa.Schema:
    """Schema of a store data file: track_id, mel and the provenance columns."""
    return contract.output_schema(id_type, False, params, None)


def refs_schema(
    id_type: pa.DataType, params: MelParams, with_targets: bool, contexts: Optional[Sequence[str]]
) -> pa.Schema:
    """Schema of a refs file: the shard schema without ``mel`` (targets when
    ``with_targets``, following ``contexts``), the provenance columns and the store
    position."""
    base = contract.output_schema(id_type, with_targets, params, contexts)
    fields = [f for f in base if f.name != contract.MEL]
    fields += [
        pa.field(STORE_FILE, pa.string(), nullable=False),
        pa.field(STORE_GROUP, pa.int32(), nullable=False),
        pa.field(STORE_ROW, pa.int32(), nullable=False),
    ]
    metadata = dict(base.metadata or {})
    metadata[LAYOUT_KEY] = b"store-refs"
    return pa.schema(fields, metadata=metadata)


@dataclass(frozen=True)
class RefsInfo:
    """What a snapshot's ``mel_store.json`` says: the store and the transform's digest."""

    store: str
    digest: str

    @property
    def layout(self) -> StoreLayout:
        return StoreLayout(self.store, self.digest)


def refs_json(layout: StoreLayout) -> str:
    """Content of ``mel_store.json`` for refs into ``layout``."""
    data = {"format": STORE_FORMAT, "store": layout.root, "digest": layout.digest}
    return json.dumps(data, indent=2) + "\n"


def parse_refs(text: str, where: str) -> RefsInfo:
    """Read ``mel_store.json`` content.

    Raises:
        InputError: not the JSON this module writes, or a newer format.
    """
    try:
        data = json.loads(text)
        version, store, digest = int(data["format"]), str(data["store"]), str(data["digest"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"mel references {where}: {REFS_FILE} is not valid ({exc})") from None
    if version > STORE_FORMAT:
        raise InputError(
            f"mel references {where}: store format {version} is newer than this ctx-spark reads "
            f"({STORE_FORMAT}); upgrade ctx-spark"
        )
    return RefsInfo(store, digest)


def resolve_reference(directory: str) -> str:
    """The directory holding a stage output's data: ``directory`` itself, or, for an output
    a refresh reused by reference (ctx_spark/refresh/references.py), the directory its
    ``report.json`` names under ``reference.path``."""
    try:
        report = json.loads(fs.read_text(fs.join(directory, contract.REPORT_FILE)))
    except (FileNotFoundError, OSError, ValueError):
        return directory
    reference = report.get(REFERENCE) if isinstance(report, dict) else None
    if isinstance(reference, dict) and isinstance(reference.get("path"), str):
        return str(reference["path"])
    return directory


def read_refs_info(root: str) -> Optional[RefsInfo]:
    """The store a ``mels/`` directory references, or None for a self-contained shard root."""
    try:
        text = fs.read_text(fs.join(root, REFS_FILE))
    except FileNotFoundError:
        return None
    return parse_refs(text, root)
