"""The streaming input: every row once per epoch, seeded order, decoding, errors."""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ctx_spark.errors import ConfigError, InputError
from ctx_spark.shards import contract
from tests.train_helpers import N_FRAMES, N_MELS

warnings.filterwarnings("ignore", category=FutureWarning)

tf = pytest.importorskip("tensorflow")

from ctx_spark.shards.reader import open_split, read_mel_params  # noqa: E402
from ctx_spark.testing.shards import read_all, small_params, write_synthetic_shards  # noqa: E402
from training import data  # noqa: E402
from training.settings import DataSettings  # noqa: E402

C = 15
ROWS = 90
HAS_PETASTORM = importlib.util.find_spec("petastorm") is not None
#: Both readers where the petastorm extra is installed (the lts environment), pyarrow elsewhere.
READERS = [
    "pyarrow",
    pytest.param(
        "petastorm",
        marks=pytest.mark.skipif(not HAS_PETASTORM, reason="petastorm is not installed (the petastorm extra)"),
    ),
]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("shards"))
    write_synthetic_shards(
        root,
        small_params(N_MELS, N_FRAMES),
        C,
        {"train": ROWS, "validation": 40},
        seed=5,
        row_group_size=16,
        files_per_split=2,
        id_type=pa.string(),
    )
    return root


def _settings(reader: str, **kw) -> DataSettings:
    values = dict(reader=reader, batch_size=16, shuffle_buffer=32, workers=3, prefetch=0)
    values.update(kw)
    return DataSettings(**values)


def _truth(root: str, split: str):
    """Row key (first neg_exact value) -> (track_id, mel (frames, mels) float32, target)."""
    table = read_all(root, split)
    params = read_mel_params(root)
    out = {}
    for row in table.to_pylist():
        target = np.concatenate([np.asarray(row[c], np.float32) for c in contract.TARGET_COLUMNS])
        mel = contract.decode_mel(row["mel"], params).T.astype(np.float32)
        out[round(float(row["neg_exact"][0]), 6)] = (row["track_id"], mel, target)
    assert len(out) == table.num_rows  # the key is unique
    return out


def _epochs(dataset, steps: int):
    """Split the (x, y) stream into epochs of ``steps`` batches."""
    epochs, current = [], []
    for x, y in dataset:
        current.append((x.numpy(), y.numpy()))
        if len(current) == steps:
            epochs.append(current)
            current = []
    assert not current, "the stream ended in the middle of an epoch"
    return epochs


@pytest.mark.parametrize("reader", READERS)
def test_each_epoch_reads_every_row_once_decoded(shards, reader):
    split = open_split(shards, "train")
    assert split.rows == ROWS and len(split.row_groups) == 6  # 2 files of 45 rows: groups of 16, 16, 13
    truth = _truth(shards, "train")
    settings = _settings(reader)
    steps = data.steps_per_pass(split, settings.batch_size)
    epochs = _epochs(data.training_dataset(split, settings, C, seed=11, initial_epoch=0, epochs=2), steps)
    assert len(epochs) == 2
    orders = []
    for batches in epochs:
        keys = []
        for x, y in batches:
            assert x.dtype == np.float32 and x.shape[1:] == (N_FRAMES, N_MELS)
            assert y.shape[1:] == (4 * C,)
            for xi, yi in zip(x, y):
                key = round(float(yi[C]), 6)
                _, mel, target = truth[key]
                np.testing.assert_array_equal(xi, mel)
                np.testing.assert_array_equal(yi, target)
                keys.append(key)
        assert sorted(keys) == sorted(truth)  # every row exactly once per epoch
        orders.append(keys)
    assert orders[0] != orders[1]  # reshuffled each epoch
    assert orders[0] != sorted(truth, key=lambda k: truth[k][0])  # not the file order


def test_epoch_order_is_reproducible_for_a_resumed_run(shards):
    split = open_split(shards, "train")
    settings = _settings("pyarrow")
    steps = data.steps_per_pass(split, settings.batch_size)
    full = _epochs(data.training_dataset(split, settings, C, seed=3, initial_epoch=0, epochs=3), steps)
    resumed = _epochs(data.training_dataset(split, settings, C, seed=3, initial_epoch=2, epochs=3), steps)
    assert len(resumed) == 1
    for (xa, ya), (xb, yb) in zip(full[2], resumed[0]):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)


@pytest.mark.parametrize("reader", READERS)
def test_evaluation_and_prediction_passes_keep_file_order(shards, reader):
    split = open_split(shards, "validation")
    truth = _truth(shards, "validation")
    settings = _settings(reader, workers=1)
    dataset = data.evaluation_dataset(split, settings, C, batch_size=16)
    assert int(dataset.cardinality()) == 3
    for _ in range(2):  # Keras re-iterates the validation set every epoch
        keys = [round(float(v), 6) for _, y in dataset for v in y.numpy()[:, C]]
        assert len(keys) == 40 and sorted(keys) == sorted(truth)
    ids, labels = [], []
    for batch in data.prediction_batches(split, settings, C, 16, with_targets=True):
        ids += [i.decode() for i in batch["track_id"]]
        labels.append(batch["labels"])
    table = read_all(shards, "validation")
    if reader == "pyarrow":  # one worker, no shuffle: file order
        assert ids == table.column("track_id").to_pylist()
    assert sorted(ids) == sorted(table.column("track_id").to_pylist())
    assert np.concatenate(labels).shape == (40, C)


def test_in_memory_ceiling_handles_float16(shards):
    table = read_all(shards, "train")
    params = read_mel_params(shards)
    mel = np.stack([contract.decode_mel(b, params) for b in table.column("mel").to_pylist()])
    assert mel.dtype == np.float16
    target = np.zeros((len(mel), 4 * C), np.float32)
    target[:, 0] = np.arange(len(mel))
    seen = {}
    for x, y in data.in_memory_dataset(mel, target, _settings("pyarrow"), seed=1):
        assert x.dtype == tf.float32
        for xi, yi in zip(x.numpy(), y.numpy()):
            seen[int(yi[0])] = xi
    assert sorted(seen) == list(range(len(mel)))
    np.testing.assert_array_equal(seen[7], mel[7].T.astype(np.float32))
    with pytest.raises(ValueError, match="float16"):
        data.in_memory_dataset(mel.astype(np.float32), target, _settings("pyarrow"), seed=1)


def _rewrite(root: str, split: str, transform) -> None:
    path = os.path.join(root, split)
    for name in sorted(os.listdir(path)):
        table = pq.read_table(os.path.join(path, name))
        pq.write_table(transform(table), os.path.join(path, name), row_group_size=16)


def test_bad_shards_fail_with_a_clear_message(tmp_path):
    params = small_params(N_MELS, N_FRAMES)
    root = write_synthetic_shards(str(tmp_path / "s"), params, C, {"train": 20}, files_per_split=1)
    with pytest.raises(InputError, match="validation does not exist"):
        _ = open_split(root, "validation").rows
    with pytest.raises(InputError, match="every row must hold 14 values"):
        data.check_split(open_split(root, "train"), 14, with_targets=True)
    with pytest.raises(InputError, match="every row must hold 14 values"), data.input_errors():
        list(data.training_dataset(open_split(root, "train"), _settings("pyarrow", workers=1), 14, 0, 0, 1))

    def truncate_mel(table):
        blobs = table.column("mel").to_pylist()
        blobs[3] = blobs[3][:-2]
        return table.set_column(table.schema.get_field_index("mel"), "mel", pa.array(blobs, pa.binary()))

    _rewrite(root, "train", truncate_mel)
    with pytest.raises(InputError, match=r"part-00000.parquet row group 0, column 'mel': 1 'mel' values"):
        data.check_split(open_split(root, "train"), C, with_targets=False)
    with (
        pytest.raises(InputError, match=r"part-00000.parquet row group 0, column 'mel': 1 'mel' values"),
        data.input_errors(),
    ):
        list(data.training_dataset(open_split(root, "train"), _settings("pyarrow", workers=1), C, 0, 0, 1))
    if HAS_PETASTORM:  # petastorm hands over the raw bytes: the graph checks their size
        with pytest.raises(tf.errors.InvalidArgumentError, match="mel blob size"):
            list(data.training_dataset(open_split(root, "train"), _settings("petastorm", workers=1), C, 0, 0, 1))
    os.remove(os.path.join(root, contract.PARAMS_FILE))
    with pytest.raises(InputError, match="mel_params.json is missing"):
        open_split(root, "train")


def test_the_petastorm_reader_without_petastorm_names_the_extra(shards, monkeypatch):
    """Where petastorm is not installed (made unimportable here where it is), choosing its
    reader fails before any pass starts, naming the extra and the default reader."""
    monkeypatch.setitem(sys.modules, "petastorm", None)
    split = open_split(shards, "train")
    with pytest.raises(ConfigError) as caught:
        data.training_dataset(split, _settings("petastorm"), C, seed=1, initial_epoch=0, epochs=1)
    message = str(caught.value)
    assert "pip install 'ctx-spark[petastorm]'" in message and "train.data.reader=pyarrow" in message
    assert len(message.splitlines()) == 1


def test_batches_span_row_groups_and_a_pass_is_exact(shards):
    """The pyarrow pass delivers ceil(rows / batch) full batches whatever the row-group
    sizes (groups of 16, 16, 13 here), the same batches for the same seed."""
    split = open_split(shards, "train")
    settings = _settings("pyarrow", batch_size=20)
    sizes = [int(x.shape[0]) for x, _ in data.training_dataset(split, settings, C, seed=4, initial_epoch=0, epochs=1)]
    assert sizes == [20, 20, 20, 20, 10]
    first = [y.numpy() for _, y in data.training_dataset(split, settings, C, seed=4, initial_epoch=0, epochs=1)]
    again = [y.numpy() for _, y in data.training_dataset(split, settings, C, seed=4, initial_epoch=0, epochs=1)]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
