"""Synthetic mel shards whose labels depend on the signal, for tests and benchmarks.

Each context owns a band of mel bins; a track tagged with a context gets extra energy in
that band. A model that can read band energy separates the contexts (macro ROC-AUC near 1),
while the same spectrograms with their label rows permuted across tracks carry no
information (ROC-AUC near 0.5). Files follow the shard contract exactly
(``ctx_spark.shards.contract``), written with pyarrow.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ctx_spark.audio.params import MelParams
from ctx_spark.shards import contract


def small_params(n_mels: int, n_frames: int) -> MelParams:
    """MelParams whose implied shape is (n_mels, n_frames), for fast tests."""
    sample_rate, hop = 8000, 100
    seconds = (n_frames - 1) * hop / sample_rate
    params = MelParams(
        sample_rate=sample_rate,
        offset_seconds=0.0,
        excerpt_seconds=seconds,
        min_seconds=seconds / 2,
        n_fft=256,
        hop_length=hop,
        n_mels=n_mels,
        log_scale=100.0,
    )
    assert params.shape == (n_mels, n_frames), params.shape
    return params


def context_bands(n_mels: int, n_contexts: int) -> list[np.ndarray]:
    """The mel bins owned by each context (contiguous, as equal as possible)."""
    return np.array_split(np.arange(n_mels), n_contexts)


def synthetic_split(
    rows: int,
    params: MelParams,
    n_contexts: int,
    rng: np.random.Generator,
    *,
    signal: float = 1.0,
    positive_rate: float = 0.4,
    shuffle_labels: bool = False,
    id_start: int = 0,
) -> dict[str, np.ndarray]:
    """Arrays of one synthetic split.

    Returns: ``track_id`` (rows,) int64; ``mel`` (rows, n_mels, n_frames) float16 in the
    stored log-mel range (about 0..3); ``labels`` (rows, n_contexts) uint8; the three
    weight columns (rows, n_contexts) float32 in [0.5, 1.5).
    """
    n_mels, n_frames = params.shape
    labels = (rng.random((rows, n_contexts)) < positive_rate).astype(np.uint8)
    mel = rng.random((rows, n_mels, n_frames), dtype=np.float32)
    for c, band in enumerate(context_bands(n_mels, n_contexts)):
        mel[:, band, :] += signal * labels[:, c, None, None]
    out: dict[str, np.ndarray] = {
        "track_id": np.arange(id_start, id_start + rows, dtype=np.int64),
        "mel": mel.astype(contract.MEL_DTYPE),
        "labels": labels,
    }
    for name in contract.WEIGHT_COLUMNS:
        out[name] = (0.5 + rng.random((rows, n_contexts))).astype(np.float32)
    if shuffle_labels:
        perm = rng.permutation(rows)
        for name in contract.TARGET_COLUMNS:
            out[name] = out[name][perm]
    return out


def arrays_to_table(arrays: Mapping[str, np.ndarray], params: MelParams, id_type: pa.DataType = pa.int64()) -> pa.Table:
    """A table with the contract's schema from :func:`synthetic_split`-like arrays."""
    with_targets = contract.LABELS in arrays
    schema = contract.shard_schema(id_type, with_targets, params)
    ids = arrays["track_id"]
    columns = {
        "track_id": pa.array([str(i) for i in ids] if pa.types.is_string(id_type) else ids, type=id_type),
        "mel": pa.array([contract.encode_mel(m) for m in arrays["mel"]], type=pa.binary()),
    }
    if with_targets:
        for name in contract.TARGET_COLUMNS:
            values = arrays[name]
            item = pa.uint8() if name == contract.LABELS else pa.float32()
            columns[name] = pa.ListArray.from_arrays(
                pa.array(np.arange(0, values.size + 1, values.shape[1], dtype=np.int32)),
                pa.array(values.reshape(-1), type=item),
            )
    return pa.table(columns, schema=schema)


def write_synthetic_shards(
    root: str,
    params: MelParams,
    n_contexts: int,
    sizes: Mapping[str, int],
    *,
    seed: int = 0,
    row_group_size: int = 64,
    files_per_split: int = 2,
    signal: float = 1.0,
    shuffle_labels: bool = False,
    id_type: pa.DataType = pa.int64(),
    with_targets: bool = True,
    positive_rate: float = 0.4,
    contexts: Optional[Sequence[str]] = None,
) -> str:
    """Write a shard root (``mel_params.json``, ``shards.json`` and one Parquet dataset per
    split), in the current format.

    Args:
        sizes: rows per split name (``train``, ``validation``, ``test`` or ``all``).
        shuffle_labels: permute the label/weight rows across tracks within each split.
        with_targets: False writes only ``track_id`` and ``mel`` (an unlabelled catalogue).
        contexts: the context names recorded for the target vectors (None: not recorded).
    """
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, contract.PARAMS_FILE), "w", encoding="utf-8") as handle:
        handle.write(params.to_json())
    with open(os.path.join(root, contract.INFO_FILE), "w", encoding="utf-8") as handle:
        handle.write(contract.info_json(contexts if with_targets else None))
    id_start = 0
    for split, rows in sizes.items():
        arrays = synthetic_split(
            rows,
            params,
            n_contexts,
            rng,
            signal=signal,
            shuffle_labels=shuffle_labels,
            id_start=id_start,
            positive_rate=positive_rate,
        )
        id_start += rows
        if not with_targets:
            arrays = {"track_id": arrays["track_id"], "mel": arrays["mel"]}
        table = arrays_to_table(arrays, params, id_type)
        directory = os.path.join(root, split)
        os.makedirs(directory, exist_ok=True)
        bounds = np.linspace(0, rows, files_per_split + 1).astype(int)
        for part, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
            if stop > start:
                pq.write_table(
                    table.slice(start, stop - start),
                    os.path.join(directory, f"part-{part:05d}.parquet"),
                    row_group_size=row_group_size,
                )
    return root


def read_all(root: str, split: str) -> pa.Table:
    """The whole split as one table (tests and benchmarks on small data only)."""
    return pq.read_table(os.path.join(root, split))
