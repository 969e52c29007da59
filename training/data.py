"""tf.data pipelines over the mel shards: streaming, shuffled, decoded in the graph.

Nothing loads a split into memory. One *pass* reads a split once, row groups in a seeded
random order, and delivers ``ceil(rows / batch_size)`` batches:

* pyarrow reader (the default): :func:`ctx_spark.shards.batches.shard_batches` reads
  ``workers`` row groups at a time in threads, views each spectrogram as float16 in the
  Arrow buffer, and draws every batch at random from a buffer of ``shuffle_buffer`` rows
  (file order when unshuffled); tf.data receives whole float16 batches;
* petastorm reader (the ``petastorm`` extra): ``workers`` generator streams, stream k a
  ``make_batch_reader`` over shard k of ``workers`` (``shuffle_row_groups``,
  ``shuffle_rows``), interleaved; the raw mel bytes are split into rows, shuffled through
  a ``shuffle_buffer``-row tf.data buffer, batched and decoded with
  ``tf.io.decode_raw(..., tf.float16)``;
* in the graph: reshape, transpose to (frames, mels), cast to float32; prefetch.

Training chains passes seeded by ``seed + epoch`` (``Dataset.range(initial_epoch,
epochs).flat_map(pass)``) and Keras runs ``steps_per_epoch = ceil(rows / batch)`` steps per
epoch, so epochs are exact passes and a resumed run reads exactly the order an
uninterrupted run would have read (pyarrow reader). Validation and evaluation are single,
unshuffled passes; each iteration of such a dataset opens fresh readers. petastorm's
``make_petastorm_dataset`` is not used: it binds one reader to the dataset, which cannot be
restarted in the middle of a pass and re-reads from where an earlier partial iteration
stopped, so per-epoch passes and repeated validation passes could not be exact.

Targets are one float32 vector per sample: ``[labels | neg_exact | neg_ignore_zeros |
pos_tfidf]`` (4 x n_contexts, the order of ``contract.TARGET_COLUMNS``); the loss picks the
weights its variant needs, so the validation loss uses the same weights as training.
"""

from __future__ import annotations

import importlib.util
import math
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Optional

import numpy as np
import tensorflow as tf

from ctx_spark.errors import ConfigError, InputError
from ctx_spark.fs import dataset_url
from ctx_spark.platform import check_versions
from ctx_spark.shards import contract
from ctx_spark.shards.batches import PassPlan, shard_batches
from ctx_spark.shards.reader import ShardSplit, table_arrays
from training.settings import DataSettings

_INPUT_ERROR = re.compile(r"InputError: (.*)")

AUTOTUNE = tf.data.AUTOTUNE


def columns_for(split: ShardSplit, with_targets: bool, with_ids: bool) -> list[str]:
    """The columns a pass reads."""
    columns = ([contract.TRACK_ID] if with_ids else []) + [contract.MEL]
    if with_targets:
        split.require_targets()
        columns += list(contract.TARGET_COLUMNS)
    return columns


def _signature(split: ShardSplit, columns: Sequence[str], n_contexts: int, mel_as_bytes: bool) -> dict:
    n_mels, n_frames = split.params.shape
    spec: dict[str, tf.TensorSpec] = {}
    for name in columns:
        if name == contract.TRACK_ID:
            is_string = str(split.id_type) in ("string", "large_string")
            spec[name] = tf.TensorSpec((None,), tf.string if is_string else tf.int64)
        elif name == contract.MEL and mel_as_bytes:
            # petastorm: raw float16 bytes, one string per row, cheaper to unbatch, shuffle
            # and batch in tf.data than (96, 646) float16 slices
            spec[name] = tf.TensorSpec((None,), tf.string)
        elif name == contract.MEL:  # pyarrow: float16, already (frames, mels)
            spec[name] = tf.TensorSpec((None, n_frames, n_mels), tf.float16)
        elif name == contract.LABELS:
            spec[name] = tf.TensorSpec((None, n_contexts), tf.uint8)
        else:
            spec[name] = tf.TensorSpec((None, n_contexts), tf.float32)
    return spec


# --- readers: one pass over a split, as a dataset of row-group-sized dicts ---------------


def _pyarrow_pass(split: ShardSplit, settings: DataSettings, columns: Sequence[str], n_contexts: int):
    """A generator function (seed, shuffle, batch_size) -> the pass's batches, for from_generator."""

    def generate(seed, shuffle, batch_size):
        plan = PassPlan(
            columns=tuple(columns),
            n_contexts=n_contexts,
            batch_size=int(batch_size),
            shuffle=bool(shuffle),
            seed=int(seed),
            shuffle_buffer=settings.shuffle_buffer,
            read_ahead=max(1, settings.workers),
            frames_first=True,
        )
        yield from shard_batches(split, plan)

    return generate


def require_petastorm() -> None:
    """Refuse the petastorm reader, before a pass starts, where petastorm cannot run.

    Raises:
        ConfigError: petastorm is not installed (names the extra), or a package it depends on
            is outside the range it works with (petastorm 0.13.1 needs pyarrow < 15).
    """
    if importlib.util.find_spec("petastorm") is None:
        raise ConfigError(
            "train.data.reader is 'petastorm' but petastorm is not installed: pip install 'ctx-spark[petastorm]' "
            "(it needs pyarrow < 15, hence numpy < 2), or use the default reader, --set train.data.reader=pyarrow"
        )
    check_versions("petastorm")


def _petastorm_generator(split: ShardSplit, columns: Sequence[str], n_contexts: int):
    from petastorm import make_batch_reader

    url = dataset_url(split.path)

    def generate(part, parts, seed, shuffle):
        part, parts, seed, shuffle = int(part), int(parts), int(seed), bool(shuffle)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # petastorm's pyarrow deprecation chatter
            # The "dummy" pool reads in the calling thread. petastorm 0.13.1's thread pool
            # ends passes early at random, silently losing row groups (docs/training.md, "Input
            # pipeline"); parallelism comes from interleaving `parts` sharded readers.
            reader = make_batch_reader(
                url,
                schema_fields=list(columns),
                num_epochs=1,
                reader_pool_type="dummy",
                shuffle_row_groups=shuffle,
                shuffle_rows=shuffle,
                seed=seed if shuffle else None,
                cur_shard=part if parts > 1 else None,
                shard_count=parts if parts > 1 else None,
            )
        try:
            for batch in reader:
                out = {}
                for name in columns:
                    value = getattr(batch, name)
                    if name in contract.TARGET_COLUMNS:
                        value = np.asarray(value)
                        if value.ndim != 2 or value.shape[1] != n_contexts:
                            raise InputError(
                                f"{split.path}, column '{name}': every row must hold {n_contexts} values "
                                f"(one per context in conf/contexts.yaml); got shape {value.shape}"
                            )
                    elif name == contract.TRACK_ID and value.dtype == object:
                        value = value.astype(bytes)
                    out[name] = value
                yield out
        finally:  # not `with reader`: its __exit__ prints "Cache cleanup complete." to stdout
            reader.stop()
            reader.join()

    return generate


def _interleaved(generate, signature: dict, parts: int, seed: tf.Tensor, shuffle: bool) -> tf.data.Dataset:
    """``parts`` generator streams (each reading every parts-th row group) read in parallel."""

    @tf.autograph.experimental.do_not_convert
    def stream(part):
        return tf.data.Dataset.from_generator(generate, output_signature=signature, args=(part, parts, seed, shuffle))

    if parts == 1:
        return stream(tf.constant(0, tf.int64))
    return tf.data.Dataset.range(parts).interleave(
        stream, cycle_length=parts, block_length=1, num_parallel_calls=parts, deterministic=True
    )


def batched_pass(
    split: ShardSplit,
    settings: DataSettings,
    columns: Sequence[str],
    n_contexts: int,
    seed,
    shuffle: bool,
    batch_size: int,
) -> tf.data.Dataset:
    """One pass over ``split`` as ``ceil(rows / batch_size)`` batches (dicts of tensors,
    mel not yet decoded: float16 from the pyarrow reader, raw bytes from petastorm).

    ``seed`` may be a Python int or a scalar int64 tensor.

    Raises:
        ConfigError: the petastorm reader is chosen where it cannot run.
    """
    seed = tf.cast(seed, tf.int64)
    if reads_with_pyarrow(split, settings):
        signature = _signature(split, columns, n_contexts, mel_as_bytes=False)
        generate = _pyarrow_pass(split, settings, columns, n_contexts)
        return tf.data.Dataset.from_generator(
            generate, output_signature=signature, args=(seed, shuffle, tf.constant(batch_size, tf.int64))
        )
    require_petastorm()
    parts = max(1, min(settings.workers, len(split.row_groups)))
    signature = _signature(split, columns, n_contexts, mel_as_bytes=True)
    rows = _interleaved(_petastorm_generator(split, columns, n_contexts), signature, parts, seed, shuffle).unbatch()
    if shuffle:
        rows = rows.shuffle(settings.shuffle_buffer, seed=seed, reshuffle_each_iteration=False)
    return rows.batch(batch_size)


def check_split(split: ShardSplit, n_contexts: int, with_targets: bool) -> None:
    """Read the first row group and check its columns against the contract, so that a
    wrong context count or mel shape fails before training starts, with a clear message.

    Raises:
        InputError: naming the file, row group and column.
    """
    columns = columns_for(split, with_targets, with_ids=True)
    group = split.row_groups[0]
    table = split.read_row_group(group, columns)
    table_arrays(table, split.params, n_contexts, f"{group.path} row group {group.index}")


@contextmanager
def input_errors() -> Iterator[None]:
    """Re-raise an InputError raised inside a tf.data generator (which TensorFlow wraps
    in an InvalidArgumentError) as the InputError it was, for a one-line CLI message."""
    try:
        yield
    except tf.errors.InvalidArgumentError as exc:
        match = _INPUT_ERROR.search(str(exc))
        if match:
            raise InputError(match.group(1).strip()) from None
        raise


# --- decoding and targets ----------------------------------------------------------------


def decode_mel_batch(mel: tf.Tensor, shape: tuple[int, int], frames_first: bool = False) -> tf.Tensor:
    """Float16 (B, n_mels, n_frames) or raw bytes (B,) -> float32 (B, n_frames, n_mels);
    with ``frames_first`` (the pyarrow reader's batches), float16 (B, n_frames, n_mels) is
    only cast."""
    n_mels, n_frames = shape
    if frames_first:
        return tf.cast(tf.ensure_shape(mel, [None, n_frames, n_mels]), tf.float32)
    if mel.dtype == tf.string:
        nbytes = n_mels * n_frames * 2
        check = tf.debugging.assert_equal(
            tf.strings.length(mel),
            nbytes,
            message=f"mel blob size does not match the {n_mels}x{n_frames} float16 shape in mel_params.json",
        )
        with tf.control_dependencies([check]):
            mel = tf.io.decode_raw(mel, tf.float16, little_endian=True)
    mel = tf.reshape(mel, [-1, n_mels, n_frames])
    return tf.cast(tf.transpose(mel, [0, 2, 1]), tf.float32)


def reads_with_pyarrow(split: ShardSplit, settings: DataSettings) -> bool:
    """Whether ``split`` is read by the pyarrow pass: the configured reader, or a split of
    references into the mel store, which petastorm cannot follow (it reads whole shards)."""
    return settings.reader == "pyarrow" or not split.self_contained


def _decode(batch: dict, shape: tuple[int, int], split: ShardSplit, settings: DataSettings) -> tf.Tensor:
    frames_first = reads_with_pyarrow(split, settings)  # the pyarrow pass hands over (B, frames, mels)
    return decode_mel_batch(batch[contract.MEL], shape, frames_first=frames_first)


def targets(batch: dict) -> tf.Tensor:
    """(B, 4 * n_contexts) float32: labels then the weight columns, contract order."""
    return tf.concat([tf.cast(batch[name], tf.float32) for name in contract.TARGET_COLUMNS], axis=-1)


def _prefetch(dataset: tf.data.Dataset, settings: DataSettings) -> tf.data.Dataset:
    return dataset.prefetch(settings.prefetch or AUTOTUNE)


def steps_per_pass(split: ShardSplit, batch_size: int) -> int:
    """Batches in one pass over the split (the last one may be partial)."""
    return math.ceil(split.rows / batch_size)


def training_dataset(
    split: ShardSplit, settings: DataSettings, n_contexts: int, seed: int, initial_epoch: int, epochs: int
) -> tf.data.Dataset:
    """(x, y) batches for epochs ``initial_epoch .. epochs-1``, each a full shuffled pass
    seeded by ``seed + epoch``. x: (B, n_frames, n_mels) float32; y: (B, 4C) float32."""
    columns = columns_for(split, with_targets=True, with_ids=False)
    shape = split.params.shape

    @tf.autograph.experimental.do_not_convert
    def one_pass(epoch):
        pass_seed = tf.cast(seed, tf.int64) + epoch
        return batched_pass(split, settings, columns, n_contexts, pass_seed, True, settings.batch_size)

    dataset = tf.data.Dataset.range(initial_epoch, epochs).flat_map(one_pass)
    dataset = dataset.map(lambda b: (_decode(b, shape, split, settings), targets(b)), num_parallel_calls=AUTOTUNE)
    return _prefetch(dataset, settings)


def evaluation_dataset(
    split: ShardSplit, settings: DataSettings, n_contexts: int, batch_size: Optional[int] = None
) -> tf.data.Dataset:
    """(x, y) batches of one unshuffled pass; every iteration re-reads the split."""
    columns = columns_for(split, with_targets=True, with_ids=False)
    shape = split.params.shape
    dataset = batched_pass(split, settings, columns, n_contexts, 0, False, batch_size or settings.batch_size)
    dataset = dataset.map(lambda b: (_decode(b, shape, split, settings), targets(b)), num_parallel_calls=AUTOTUNE)
    dataset = dataset.apply(
        tf.data.experimental.assert_cardinality(steps_per_pass(split, batch_size or settings.batch_size))
    )
    return _prefetch(dataset, settings)


def prediction_batches(
    split: ShardSplit, settings: DataSettings, n_contexts: int, batch_size: int, with_targets: bool
) -> Iterator[dict]:
    """One unshuffled pass as numpy/tensor batches: ``track_id`` (B,), ``x`` (B, n_frames,
    n_mels) float32 tensor and, when ``with_targets``, ``labels`` (B, C) uint8."""
    columns = columns_for(split, with_targets=with_targets, with_ids=True)
    if with_targets:
        columns = [c for c in columns if c not in contract.WEIGHT_COLUMNS]
    shape = split.params.shape
    dataset = batched_pass(split, settings, columns, n_contexts, 0, False, batch_size).map(
        lambda b: {**{k: v for k, v in b.items() if k != contract.MEL}, "x": _decode(b, shape, split, settings)},
        num_parallel_calls=AUTOTUNE,
    )
    for batch in _prefetch(dataset, settings):
        out = {"track_id": batch[contract.TRACK_ID].numpy(), "x": batch["x"]}
        if with_targets:
            out["labels"] = batch[contract.LABELS].numpy()
        yield out


def in_memory_dataset(mel: np.ndarray, target: np.ndarray, settings: DataSettings, seed: int) -> tf.data.Dataset:
    """The same batches from arrays already in memory: the input pipeline's ceiling in
    bench/read_shards.py (never used for training: it needs the split in RAM).

    Args:
        mel: (N, n_mels, n_frames) float16, as stored. numpy float16 is handed to TensorFlow
            as tf.float16 explicitly (petastorm has no such dtype mapping).
        target: (N, 4C) float32 targets.
    """
    if mel.dtype != np.float16:
        raise ValueError(f"expected float16 spectrograms, got {mel.dtype}")
    shape = mel.shape[1:]
    dataset = tf.data.Dataset.from_tensor_slices((tf.constant(mel, dtype=tf.float16), tf.constant(target, tf.float32)))
    dataset = dataset.shuffle(settings.shuffle_buffer, seed=seed).batch(settings.batch_size)
    dataset = dataset.map(lambda m, y: (decode_mel_batch(m, shape), y), num_parallel_calls=AUTOTUNE)
    return _prefetch(dataset, settings)
