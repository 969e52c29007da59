"""The pyarrow reader's pass (no TensorFlow): exact batches, every row once, seeded order,
file order unshuffled, mixing across row groups, the (frames, mels) layout."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from ctx_spark.errors import InputError
from ctx_spark.shards import contract
from ctx_spark.shards.batches import PassPlan, row_group_order, shard_batches
from ctx_spark.shards.reader import open_split
from ctx_spark.testing.shards import read_all, small_params, write_synthetic_shards

C = 4
ROWS = 90
COLUMNS = (contract.TRACK_ID, contract.MEL) + tuple(contract.TARGET_COLUMNS)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> str:
    # string ids of different widths ("0".."89") in row groups of 16, 16, 13 (2 files)
    return write_synthetic_shards(
        str(tmp_path_factory.mktemp("shards")),
        small_params(6, 10),
        C,
        {"train": ROWS},
        seed=2,
        row_group_size=16,
        files_per_split=2,
        id_type=pa.string(),
    )


def _plan(**kw) -> PassPlan:
    values = dict(columns=COLUMNS, n_contexts=C, batch_size=16, shuffle=True, seed=7, shuffle_buffer=32, read_ahead=3)
    values.update(kw)
    return PassPlan(**values)


def _ids(batches) -> list[str]:
    return [i.decode() for batch in batches for i in batch[contract.TRACK_ID].tolist()]


def test_a_shuffled_pass_is_exact_seeded_and_mixes_row_groups(root):
    split = open_split(root, "train")
    batches = list(shard_batches(split, _plan()))
    assert [len(b[contract.MEL]) for b in batches] == [16] * 5 + [10]  # ceil(90 / 16), whatever the groups
    ids = _ids(batches)
    assert sorted(ids) == sorted(str(i) for i in range(ROWS))  # every row once, long ids intact
    assert ids == _ids(shard_batches(split, _plan()))  # same seed, same pass
    assert ids != _ids(shard_batches(split, _plan(seed=8)))
    group_of = {}
    for k, group in enumerate(split.row_groups):
        table = split.read_row_group(group, [contract.TRACK_ID])
        group_of.update({i: k for i in table.column(contract.TRACK_ID).to_pylist()})
    assert max(len({group_of[i.decode()] for i in b[contract.TRACK_ID].tolist()}) for b in batches) > 1
    # order of row groups is seeded too, and read-ahead does not change the pass
    assert row_group_order(split, _plan()) != row_group_order(split, _plan(seed=8))
    assert ids == _ids(shard_batches(split, _plan(read_ahead=1)))


def test_an_unshuffled_pass_is_file_order_with_the_stored_values(root):
    split = open_split(root, "train")
    table = read_all(root, "train")
    batches = list(shard_batches(split, _plan(shuffle=False, batch_size=20)))
    assert [len(b[contract.MEL]) for b in batches] == [20, 20, 20, 20, 10]
    assert _ids(batches) == table.column(contract.TRACK_ID).to_pylist()
    mel = np.concatenate([b[contract.MEL] for b in batches])
    labels = np.concatenate([b[contract.LABELS] for b in batches])
    params = small_params(6, 10)
    for k, row in enumerate(table.to_pylist()):
        np.testing.assert_array_equal(mel[k], contract.decode_mel(row[contract.MEL], params))
        assert labels[k].tolist() == row[contract.LABELS]
    assert mel.dtype == np.float16 and labels.dtype == np.uint8
    frames_first = np.concatenate(
        [b[contract.MEL] for b in shard_batches(split, _plan(shuffle=False, batch_size=20, frames_first=True))]
    )
    np.testing.assert_array_equal(frames_first, mel.transpose(0, 2, 1))


def test_a_bad_row_group_is_an_input_error_naming_it(root):
    split = open_split(root, "train")
    where = r"part-0000[01].parquet row group [0-2], column 'labels'"
    with pytest.raises(InputError, match=where + ": every row must hold 5 values"):
        list(shard_batches(split, _plan(n_contexts=C + 1)))
    with pytest.raises(ValueError, match="invalid pass plan"):
        _plan(batch_size=0)
