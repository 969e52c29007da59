"""The trainer's reader on a snapshot that references the mel store: the same rows and
bytes as self-contained shards, every training row exactly once per epoch, shuffled by
store row group, resumable; and the store writers (the executor-side functions, run here
on Arrow batches without Spark) that lay the store and the refs out."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ctx_spark.errors import InputError
from ctx_spark.extract import store_tasks, tasks
from ctx_spark.shards import contract, store
from ctx_spark.shards.reader import ShardSplit, open_split, read_mel_params, table_arrays
from ctx_spark.shards.store_reader import StoreSplit
from ctx_spark.testing.shards import read_all, small_params, write_synthetic_shards
from tests.train_helpers import N_FRAMES, N_MELS

warnings.filterwarnings("ignore", category=FutureWarning)

C = 15
ROWS = {"train": 90, "validation": 40}
#: Validation tracks written among the train rows of the store (their split changed since).
MOVED = 7


def _store_rows(table: pa.Table, split: str) -> pa.Table:
    """Shard rows as the store write task receives them."""
    n = table.num_rows
    columns = {name: table.column(name) for name in table.column_names}
    columns[contract.AUDIO] = pa.array([f"/audio/{i}.ogg" for i in table.column("track_id").to_pylist()])
    columns[contract.AUDIO_SIZE] = pa.array(np.full(n, 1000, np.int64))
    columns[contract.AUDIO_MTIME] = pa.array(np.arange(n, dtype=np.int64))
    columns[contract.AUDIO_CHECKSUM] = pa.nulls(n, pa.string())
    columns["split"] = pa.array([split] * n)
    columns[tasks.DECODED] = pa.array(np.zeros(n))
    for name in (tasks.ERROR_REASON, tasks.ERROR_STAGE, tasks.ERROR_MESSAGE):
        columns[name] = pa.nulls(n, pa.string())
    columns[store_tasks.ORIGIN] = pa.array([store_tasks.COMPUTED] * n)
    return pa.table(columns)


def shards_to_store(shards: str, root: Path, group_rows: int) -> str:
    """Write a shard root's rows into a store (the train rows and MOVED validation rows in
    one batch's train files, the other validation rows in its validation files) and the
    refs of a ``mels/`` directory; returns that directory."""
    params = read_mel_params(shards)
    layout = store.StoreLayout.of(str(root / "melstore"), params, "string")
    out = root / "mels"
    train, validation = read_all(shards, "train"), read_all(shards, "validation")
    moved = validation.slice(0, MOVED)
    written = {
        "train": pa.concat_tables([_store_rows(train, "train"), _store_rows(moved, "train")]).sort_by("track_id"),
        "validation": _store_rows(validation.slice(MOVED), "validation"),
    }
    spec = store_tasks.StoreWriteSpec(f"{layout.data}/batch-1", str(out), "string", params, group_rows, 2, "snappy")
    for split in ("train", "validation"):
        stats = list(store_tasks.write_store_batches(iter(written[split].to_batches(max_chunksize=25)), spec))
        assert sum(stats[0].column("n").to_pylist()) == written[split].num_rows
    # the store's rows as Spark's _metadata gives them: file and row position
    positions = {}
    for split in ("train", "validation"):
        for name in sorted(os.listdir(f"{layout.data}/batch-1/{split}")):
            ids = pq.read_table(f"{layout.data}/batch-1/{split}/{name}", columns=["track_id"]).column(0).to_pylist()
            positions.update({t: (f"batch-1/{split}/{name}", i) for i, t in enumerate(ids)})
    refs = []
    for split, table in (("train", train), ("validation", validation)):
        rows = _store_rows(table, split)
        files, index = zip(*(positions[t] for t in rows.column("track_id").to_pylist()))
        rows = rows.append_column(store.STORE_FILE, pa.array(files)).append_column(
            store_tasks.STORE_INDEX, pa.array(index, pa.int64())
        )
        refs.append(rows)
    refs_table = pa.concat_tables(refs).sort_by(
        [("split", "ascending"), (store.STORE_FILE, "ascending"), (store_tasks.STORE_INDEX, "ascending")]
    )
    refs_spec = store_tasks.RefsWriteSpec(str(out), layout.data, "string", True, params, None, 1000, "snappy")
    list(store_tasks.write_refs_batches(iter(refs_table.to_batches(max_chunksize=11)), refs_spec))
    (out / contract.PARAMS_FILE).write_text(params.to_json())
    (out / contract.INFO_FILE).write_text(contract.info_json(None))
    (out / store.REFS_FILE).write_text(store.refs_json(layout))
    return str(out)


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("store-reader")
    shards = write_synthetic_shards(
        str(base / "shards"), small_params(N_MELS, N_FRAMES), C, ROWS, seed=5, row_group_size=16, id_type=pa.string()
    )
    return shards, shards_to_store(shards, base, group_rows=16)


def _rows(split) -> dict:
    """track_id -> (mel bytes, labels, neg_exact) over every unit of a split."""
    out = {}
    columns = ["track_id", "mel", "labels", "neg_exact"]
    for group in split.row_groups:
        table = split.read_row_group(group, columns)
        arrays = table_arrays(table, split.params, C, "test", mel_as_bytes=True)
        for i, track in enumerate(arrays["track_id"]):
            assert track not in out
            out[track] = (arrays["mel"][i], arrays["labels"][i].tolist(), arrays["neg_exact"][i].tolist())
    return out


def test_open_split_reads_the_same_rows_through_the_references(roots):
    shards, mels = roots
    for name in ROWS:
        plain, referenced = open_split(shards, name), open_split(mels, name)
        assert type(plain) is ShardSplit and isinstance(referenced, StoreSplit)
        assert referenced.rows == plain.rows == ROWS[name] and referenced.has_targets
        assert str(referenced.id_type) == "string" and referenced.params == plain.params
        assert _rows(referenced) == _rows(plain)
    validation = open_split(mels, "validation")
    stores = {g.store_path.rsplit("/", 2)[-2] for g in validation.row_groups}  # type: ignore[attr-defined]
    assert stores == {"train", "validation"}  # the moved tracks are read from the train files
    # one refs row group per store row group: a unit never spans two
    for group in validation.row_groups:
        table = validation.read_row_group(group, ["track_id", store.STORE_ROW])
        assert table.num_rows == group.rows


def test_units_come_from_the_footers_and_missing_store_files_are_named(roots, tmp_path):
    _, mels = roots
    split = open_split(mels, "train")
    metadata = pq.ParquetFile(split.row_groups[0].path).metadata
    assert sum(g.rows for g in split.row_groups) == 90 and metadata.num_row_groups >= 1
    gone = StoreSplit(mels, "train", split.info, store.RefsInfo(str(tmp_path / "nowhere"), split.refs.digest))
    with pytest.raises(InputError, match="store file .* is missing"):
        gone.read_row_group(gone.row_groups[0], ["mel"])


tf = pytest.importorskip("tensorflow")


def _epochs(dataset, steps: int) -> list[list[tuple]]:
    epochs, current = [], []
    for x, y in dataset:
        current.append((x.numpy(), y.numpy()))
        if len(current) == steps:
            epochs.append(current)
            current = []
    assert not current
    return epochs


def test_training_reads_every_row_once_per_epoch_shuffled_and_resumable(roots):
    from training import data
    from training.settings import DataSettings

    _, mels = roots
    split = open_split(mels, "train")
    truth = {}
    for mel, _labels, neg in _rows(split).values():
        truth[round(float(neg[0]), 6)] = contract.decode_mel(mel, split.params).T.astype(np.float32)
    # petastorm reads only self-contained shards: asked for it, the trainer uses the pyarrow reader
    settings = DataSettings(reader="petastorm", batch_size=16, shuffle_buffer=32, workers=3, prefetch=0)
    steps = data.steps_per_pass(split, settings.batch_size)
    full = _epochs(data.training_dataset(split, settings, C, seed=11, initial_epoch=0, epochs=3), steps)
    orders = []
    for batches in full:
        keys = []
        for x, y in batches:
            for xi, yi in zip(x, y):
                key = round(float(yi[C]), 6)
                np.testing.assert_array_equal(xi, truth[key])
                keys.append(key)
        assert sorted(keys) == sorted(truth)  # every row exactly once
        orders.append(keys)
    assert orders[0] != orders[1]
    resumed = _epochs(data.training_dataset(split, settings, C, seed=11, initial_epoch=2, epochs=3), steps)
    for (xa, ya), (xb, yb) in zip(full[2], resumed[0]):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    evaluation = data.evaluation_dataset(open_split(mels, "validation"), settings, C, batch_size=8)
    assert sum(int(y.shape[0]) for _, y in evaluation) == ROWS["validation"]
