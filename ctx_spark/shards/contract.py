"""The mel-shard format: the one definition extraction writes and every reader checks.

Shards are plain Parquet datasets, readable by pyarrow (the trainer's default reader,
:mod:`ctx_spark.shards.reader`) and by petastorm's ``make_batch_reader`` (columnar,
vectorised) rather than Unischema rows read with ``make_reader`` (one Python decode per
row): on the same 1,500 spectrograms the batch reader delivered 2.2x the samples/s and the
write was 9x faster (docs/extraction.md, "Mel shards"). The spectrogram is stored as the
raw little-endian float16 bytes of a C-ordered (n_mels, n_frames) array, decoded in the
tf.data graph with ``tf.io.decode_raw`` (no Python in the loop, and no float16 dtype
mapping needed from petastorm).

Layout of a shard root: ``train/``, ``validation/``, ``test/`` (or ``all/`` when no dataset
was joined), each a Parquet dataset; ``mel_params.json`` (the transform's parameters);
``shards.json`` (:data:`FORMAT_VERSION` and the ordered context names the ``labels`` and
weight vectors follow); ``errors/``; ``report.json``. The parameters, the format version and
the contexts are also in every file's Parquet schema metadata.

Format versions: 1, written before ``shards.json`` existed, records no contexts (still
read, with a warning that its label order cannot be checked); 2 records them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pyarrow as pa

from ctx_spark.audio.params import MelParams
from ctx_spark.errors import InputError
from ctx_spark.schema import ALL_SPLIT, LABELS, REPORT_FILE, SPLITS, TARGET_COLUMNS, TRACK_ID, WEIGHT_COLUMNS

__all__ = [
    "ALL_SPLIT",
    "LABELS",
    "REPORT_FILE",
    "SPLITS",
    "TARGET_COLUMNS",
    "TRACK_ID",
    "WEIGHT_COLUMNS",
    "MEL",
    "PARAMS_FILE",
    "INFO_FILE",
    "ERRORS_DIR",
    "FORMAT_VERSION",
    "ShardInfo",
]

MEL = "mel"
PARAMS_FILE = "mel_params.json"
INFO_FILE = "shards.json"
ERRORS_DIR = "errors"

#: The format this code writes (see the module docstring).
FORMAT_VERSION = 2

#: Parquet schema metadata keys.
METADATA_KEY = b"ctx_spark.mel_params"
VERSION_KEY = b"ctx_spark.format_version"
CONTEXTS_KEY = b"ctx_spark.contexts"

#: Provenance columns written after the contract's: where the audio came from and the
#: fingerprint an incremental run compares (size in bytes, mtime in ms, SHA-256 or null).
AUDIO = "audio"
AUDIO_SIZE = "audio_size"
AUDIO_MTIME = "audio_mtime_ms"
AUDIO_CHECKSUM = "audio_checksum"
FINGERPRINT_COLUMNS = (AUDIO_SIZE, AUDIO_MTIME, AUDIO_CHECKSUM)
PROVENANCE_FIELDS = (
    pa.field(AUDIO, pa.string(), nullable=False),
    pa.field(AUDIO_SIZE, pa.int64()),
    pa.field(AUDIO_MTIME, pa.int64()),
    pa.field(AUDIO_CHECKSUM, pa.string()),
)

MEL_DTYPE = np.dtype("<f2")


def encode_mel(mel: np.ndarray) -> bytes:
    """Bytes of a (n_mels, n_frames) spectrogram as stored in the ``mel`` column."""
    return np.ascontiguousarray(mel, dtype=MEL_DTYPE).tobytes()


def decode_mel(data: bytes, params: MelParams) -> np.ndarray:
    """Inverse of :func:`encode_mel`: a float16 array of shape ``params.shape``."""
    array = np.frombuffer(data, dtype=MEL_DTYPE)
    expected = params.shape[0] * params.shape[1]
    if array.size != expected:
        raise ValueError(f"mel blob holds {array.size} values, expected {expected} for shape {params.shape}")
    return array.reshape(params.shape)


def shard_schema(
    id_type: pa.DataType,
    with_targets: bool,
    params: Optional[MelParams] = None,
    contexts: Optional[Sequence[str]] = None,
) -> pa.Schema:
    """Arrow schema of one shard dataset.

    Args:
        id_type: ``pa.int64()`` or ``pa.string()``, the catalogue's track id type.
        with_targets: include ``labels`` (list<uint8>, one per context, conf order) and the
            three weight columns (list<float32>); absent for an ``all/`` dataset.
        params: recorded in the schema metadata when given, with :data:`FORMAT_VERSION`.
        contexts: the context names the target vectors follow, recorded when given.
    """
    fields = [pa.field(TRACK_ID, id_type, nullable=False), pa.field(MEL, pa.binary(), nullable=False)]
    if with_targets:
        fields.append(pa.field(LABELS, pa.list_(pa.uint8()), nullable=False))
        fields += [pa.field(name, pa.list_(pa.float32()), nullable=False) for name in WEIGHT_COLUMNS]
    metadata = None
    if params is not None:
        metadata = {METADATA_KEY: params.to_json().encode(), VERSION_KEY: str(FORMAT_VERSION).encode()}
        if contexts is not None:
            metadata[CONTEXTS_KEY] = json.dumps(list(contexts)).encode()
    return pa.schema(fields, metadata=metadata)


def output_schema(
    id_type: pa.DataType, with_targets: bool, params: MelParams, contexts: Optional[Sequence[str]] = None
) -> pa.Schema:
    """The contract's shard schema (with its metadata) plus the provenance columns."""
    base = shard_schema(id_type, with_targets, params, contexts)
    return pa.schema(list(base) + list(PROVENANCE_FIELDS), metadata=base.metadata)


def params_from_json(text: str) -> MelParams:
    """Read ``mel_params.json`` content back into :class:`MelParams`."""
    data: Mapping = json.loads(text)
    return MelParams.from_dict(data)


@dataclass(frozen=True)
class ShardInfo:
    """What a shard root says about itself.

    Attributes:
        params: the transform's parameters (``mel_params.json``).
        format_version: :data:`FORMAT_VERSION` of the writer; 1 for roots written before
            ``shards.json`` existed.
        contexts: the ordered context names of the target vectors; None when the root
            does not record them (format 1, or a catalogue extracted without a dataset).
    """

    params: MelParams
    format_version: int
    contexts: Optional[tuple[str, ...]]


def info_json(contexts: Optional[Sequence[str]]) -> str:
    """Content of ``shards.json`` for a root written now."""
    data = {"format_version": FORMAT_VERSION, "contexts": list(contexts) if contexts is not None else None}
    return json.dumps(data, indent=2) + "\n"


def parse_info(params: MelParams, text: Optional[str], where: str) -> ShardInfo:
    """Build :class:`ShardInfo` from ``shards.json`` content (None: the file is absent).

    Raises:
        InputError: the file is not the JSON this module writes, or names a format newer
            than this code reads.
    """
    if text is None:
        return ShardInfo(params, 1, None)
    try:
        data = json.loads(text)
        version = int(data["format_version"])
        contexts = data.get("contexts")
        if contexts is not None and not (isinstance(contexts, list) and all(isinstance(c, str) for c in contexts)):
            raise ValueError("contexts must be a list of names or null")
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"mel shards {where}: {INFO_FILE} is not valid ({exc})") from None
    if version > FORMAT_VERSION:
        raise InputError(
            f"mel shards {where}: format version {version} is newer than this ctx-spark reads "
            f"({FORMAT_VERSION}); upgrade ctx-spark"
        )
    return ShardInfo(params, version, tuple(contexts) if contexts is not None else None)


def check_contexts(found: Optional[Sequence[str]], configured: Sequence[str], what: str) -> None:
    """Refuse target vectors whose context order differs from the configuration's.

    Args:
        found: the contexts ``what`` records (None: not recorded, nothing to check).
        configured: ``cfg.contexts.names``.
        what: the shards or model, for the message.

    Raises:
        InputError: the lists differ; the message names both.
    """
    if found is not None and tuple(found) != tuple(configured):
        raise InputError(
            f"{what} was made for contexts [{', '.join(found)}] but the configuration lists "
            f"[{', '.join(configured)}] (conf/contexts.yaml); use the configuration it was made with"
        )
