"""The shard format: what a root records, the frozen format-1 fixture, context checks."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil

import numpy as np
import pytest

from ctx_spark.errors import InputError
from ctx_spark.shards import contract
from ctx_spark.shards.reader import open_split, read_shard_info, table_arrays
from ctx_spark.testing.shards import small_params, write_synthetic_shards
from tests.conftest import FIXTURES

FROZEN = FIXTURES / "shards_format1"
#: SHA-256 of each frozen spectrogram's bytes, as the format-1 writer stored them.
FROZEN_MEL_SHA256 = {
    1000: "f650a09a397d2fe5d9f07a3e3093701e56db25ee51d0e5973da65b68b9a5545b",
    1001: "900043aa002a26954830ba8671080646b0db354cf067eaa287cd78cd06289950",
}


def test_frozen_format1_shards_read_back_unchanged_with_a_warning(caplog, config) -> None:
    with caplog.at_level(logging.WARNING, logger="ctx_spark"):
        info = read_shard_info(str(FROZEN))
    assert (info.format_version, info.contexts) == (1, None)
    assert info.params.shape == (8, 81)
    assert "older ctx-spark (format 1" in caplog.text and "cannot be checked" in caplog.text
    for split, track in (("train", 1000), ("validation", 1001)):
        shards = open_split(str(FROZEN), split)
        assert shards.rows == 1 and shards.has_targets
        group = shards.row_groups[0]
        table = shards.read_row_group(group, [contract.TRACK_ID, contract.MEL, *contract.TARGET_COLUMNS])
        assert hashlib.sha256(table.column(contract.MEL)[0].as_py()).hexdigest() == FROZEN_MEL_SHA256[track]
        arrays = table_arrays(table, shards.params, len(config.contexts), "frozen")
        assert arrays[contract.TRACK_ID].tolist() == [track]
        assert arrays[contract.MEL].shape == (1, 8, 81) and np.isfinite(arrays[contract.MEL]).all()
        assert arrays[contract.LABELS].shape == (1, 15)
    # Nothing to check the context order against: any configuration passes.
    contract.check_contexts(info.contexts, ("a", "b"), "frozen shards")


def test_new_roots_record_format_and_contexts(tmp_path, config) -> None:
    root = tmp_path / "s"
    write_synthetic_shards(str(root), small_params(8, 16), 15, {"train": 4}, contexts=config.contexts.names)
    info = read_shard_info(str(root))
    assert info.format_version == contract.FORMAT_VERSION == 2
    assert info.contexts == config.contexts.names


def test_a_reordered_context_list_is_refused_naming_both_lists(tmp_path, config) -> None:
    names = config.contexts.names
    swapped = (names[1], names[0], *names[2:])
    with pytest.raises(InputError) as caught:
        contract.check_contexts(names, swapped, "mel shards S")
    message = str(caught.value)
    assert f"[{', '.join(names)}]" in message and f"[{', '.join(swapped)}]" in message


def test_a_newer_format_or_a_bad_info_file_is_refused(tmp_path) -> None:
    root = tmp_path / "s"
    shutil.copytree(FROZEN, root)
    (root / contract.INFO_FILE).write_text(json.dumps({"format_version": 99, "contexts": None}))
    with pytest.raises(InputError, match="format version 99 is newer"):
        read_shard_info(str(root))
    (root / contract.INFO_FILE).write_text("{not json")
    with pytest.raises(InputError, match=f"{contract.INFO_FILE} is not valid"):
        read_shard_info(str(root))
