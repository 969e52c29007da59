"""jobs/extract_mels.py on a real local[2] session: shards, errors, incremental runs,
atomic publication, and reading the shards back through petastorm into tf.data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ctx_spark.audio import errors
from ctx_spark.audio.mel import compute_mel
from ctx_spark.audio.params import MelParams
from ctx_spark.errors import InputError
from ctx_spark.extract import run as extract_run
from ctx_spark.extract.run import ExtractInputs, run_extract_stage
from ctx_spark.shards import contract
from ctx_spark.shards.contract import output_schema
from ctx_spark.shards.writer import rows_per_group
from ctx_spark.testing.audio import (
    HUNGARIAN,
    TRUMPET,
    VIBE_ACE,
    corrupt_copy,
    make_mp3,
    truncated_copy,
    write_audio,
)
from tests.conftest import TEST_SPARK_OVERRIDES
from tests.extract.helpers import N_CONTEXTS, make_config, targets_for, write_dataset, write_tracks

SPLIT_OF = {
    1: "train",
    3: "train",
    5: "train",
    7: "train",
    9: "train",
    11: "train",
    2: "validation",
    6: "validation",
    10: "validation",
    4: "test",
    8: "test",
    12: "test",
}
EXPECTED_FAILURES = {
    5: errors.CORRUPT,
    6: errors.EMPTY,
    7: errors.SILENT,
    8: errors.TRUNCATED,
    9: errors.NOT_AUDIO,
    10: errors.MISSING,
    11: errors.TOO_SHORT,
    12: errors.NO_AUDIO,
}


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory) -> dict[int, Path]:
    """Track id -> audio file: 4 good ones and one of each kind of bad file."""
    d = tmp_path_factory.mktemp("audio")
    files = {
        1: d / "1.ogg",
        2: d / "2.ogg",
        3: make_mp3(d / "3.mp3", HUNGARIAN, seconds=35.0, offset=5.0),
        4: make_mp3(d / "4.mp3", VIBE_ACE, seconds=24.0, offset=20.0),  # padded to 30 s
        6: d / "6.mp3",
        7: write_audio(d / "7.wav", np.zeros(35 * 22050, np.float32), 22050),
        9: d / "9.mp3",
        10: d / "10.mp3",  # never created
        11: d / "11.ogg",
        13: d / "13.ogg",  # in the catalogue, not in the dataset
    }
    files[1].write_bytes(VIBE_ACE.read_bytes())
    files[2].write_bytes(HUNGARIAN.read_bytes())
    files[5] = corrupt_copy(files[3], d / "5.mp3", fraction=0.6)
    files[6].write_bytes(b"")
    files[8] = truncated_copy(files[3], d / "8.mp3", keep=0.5)
    files[9].write_text("<html>not found</html>\n" * 30)
    files[11].write_bytes(TRUMPET.read_bytes())
    files[13].write_bytes(VIBE_ACE.read_bytes())
    return files


@pytest.fixture(scope="module")
def first_run(spark, audio_files, tmp_path_factory):
    """Table input + dataset, all audio work in ONE task (the bad files share it)."""
    root = tmp_path_factory.mktemp("run1")
    audio_of = {t: (p.as_uri() if t % 2 else str(p)) for t, p in audio_files.items()}  # URIs and paths
    tracks = write_tracks(root / "tracks.parquet", audio_of)
    targets = targets_for(SPLIT_OF)
    dataset = write_dataset(root / "ds", SPLIT_OF, targets)
    out = root / "mels"
    # 8 of 12 tracks fail on purpose: above the default extract.max_failure_rate.
    cfg = make_config("extract.partitions=1", "extract.max_failure_rate=1")
    report = run_extract_stage(spark, cfg, ExtractInputs(tracks=tracks, dataset=dataset), str(out))
    return {"report": report, "out": out, "tracks": tracks, "dataset": dataset, "targets": targets, "cfg": cfg}


def read_split(out: Path, split: str) -> pa.Table:
    return pq.read_table(str(out / split))


def test_report_counts_every_track(first_run):
    report = first_run["report"]
    assert report["tracks_in"] == 12 and report["tracks_without_audio"] == 1
    assert report["written"] == {"test": 1, "train": 2, "validation": 1}
    assert report["failed"] == {
        errors.CORRUPT: 1,
        errors.EMPTY: 1,
        errors.MISSING: 1,
        errors.NO_AUDIO: 1,
        errors.NOT_AUDIO: 1,
        errors.SILENT: 1,
        errors.TOO_SHORT: 1,
        errors.TRUNCATED: 1,
    }
    assert report["computed"] == 11 and report["reused"] == 0
    assert report["audio_seconds_decoded"] >= 4 * 24.0
    saved = json.loads((first_run["out"] / contract.REPORT_FILE).read_text())
    assert saved["written"] == report["written"]


def test_each_bad_file_is_in_errors_with_its_reason(first_run):
    table = pq.read_table(str(first_run["out"] / contract.ERRORS_DIR)).to_pylist()
    assert {r["track_id"]: r["reason"] for r in table} == EXPECTED_FAILURES
    for row in table:
        assert row["stage"] == errors.STAGE_OF_REASON[row["reason"]]
        assert row["message"]
        if row["reason"] != errors.NO_AUDIO:
            assert row["audio"].endswith(f"/{row['track_id']}.{row['audio'].rsplit('.', 1)[1]}")


def test_shards_follow_the_contract(first_run, config):
    params = config.section("audio", MelParams)
    out = first_run["out"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "train",
            "validation",
            "test",
            contract.ERRORS_DIR,
            contract.PARAMS_FILE,
            contract.INFO_FILE,
            contract.REPORT_FILE,
        ]
    )
    assert contract.params_from_json((out / contract.PARAMS_FILE).read_text()) == params
    info = json.loads((out / contract.INFO_FILE).read_text())
    assert info == {"format_version": contract.FORMAT_VERSION, "contexts": list(config.contexts.names)}
    expected = output_schema(pa.int64(), True, params)
    rows = {}
    for split in contract.SPLITS:
        table = read_split(out, split)
        assert table.schema.equals(expected, check_metadata=False)
        assert MelParams.from_dict(json.loads(table.schema.metadata[contract.METADATA_KEY])) == params
        assert json.loads(table.schema.metadata[contract.CONTEXTS_KEY]) == list(config.contexts.names)
        assert table.schema.metadata[contract.VERSION_KEY] == str(contract.FORMAT_VERSION).encode()
        for row in table.to_pylist():
            rows[row["track_id"]] = (split, row)
    assert sorted(rows) == [1, 2, 3, 4]
    targets = first_run["targets"]
    for track_id, (split, row) in rows.items():
        assert split == SPLIT_OF[track_id]
        assert row["labels"] == targets[track_id]["labels"]
        for w in contract.WEIGHT_COLUMNS:
            np.testing.assert_allclose(row[w], targets[track_id][w], rtol=1e-6)
        mel = contract.decode_mel(row["mel"], params)
        np.testing.assert_array_equal(mel, compute_mel(row["audio"], params))
        assert row["audio_size"] > 0 and row["audio_mtime_ms"] > 0


def test_shards_read_back_through_petastorm_into_tf_data(first_run, config):
    """The shards stay plain Parquet that petastorm's make_batch_reader reads (run wherever
    the petastorm extra installs: the lts environment)."""
    tf = pytest.importorskip("tensorflow")
    pytest.importorskip("petastorm", reason="petastorm is not installed (the petastorm extra)")
    from petastorm import make_batch_reader
    from petastorm.tf_utils import make_petastorm_dataset

    params = config.section("audio", MelParams)
    fields = [contract.TRACK_ID, contract.MEL, *contract.TARGET_COLUMNS]
    url = (first_run["out"] / "train").as_uri()
    with make_batch_reader(url, schema_fields=fields, num_epochs=1, workers_count=1) as reader:
        dataset = make_petastorm_dataset(reader).unbatch()

        def decode(row):
            mel = tf.reshape(tf.io.decode_raw(row.mel, tf.float16), params.shape)
            return row.track_id, mel, row.labels, row.neg_exact

        items = list(dataset.map(decode).as_numpy_iterator())
    assert sorted(int(i[0]) for i in items) == [1, 3]
    for track_id, mel, labels, weights in items:
        assert mel.shape == (96, 646) and mel.dtype == np.float16
        assert labels.shape == (N_CONTEXTS,) and labels.dtype == np.uint8
        assert weights.shape == (N_CONTEXTS,) and weights.dtype == np.float32
        assert labels.tolist() == first_run["targets"][int(track_id)]["labels"]
        path = [p for p in (first_run["out"] / "train").glob("*.parquet")][0]
        assert path.stat().st_size > 0
    np.testing.assert_array_equal(next(m for t, m, _, _ in items if int(t) == 1), compute_mel(VIBE_ACE, params))


def test_incremental_run_computes_only_new_and_changed_tracks(spark, first_run, audio_files, tmp_path):
    out = tmp_path / "mels"
    shutil.copytree(first_run["out"], out)
    before = {r["track_id"]: r["mel"] for s in contract.SPLITS for r in read_split(out, s).to_pylist()}
    d = tmp_path / "audio_v2"
    d.mkdir()
    changed = make_mp3(d / "2.mp3", VIBE_ACE, seconds=40.0, offset=7.0)  # track 2: new audio
    new = make_mp3(d / "14.mp3", HUNGARIAN, seconds=31.0)  # track 14: new track
    fixed = shutil.copy(VIBE_ACE, d / "6.ogg")  # track 6: was empty, now fine
    audio_of = {t: str(p) for t, p in audio_files.items()}
    audio_of.update({2: str(changed), 14: str(new), 6: str(fixed)})
    tracks = write_tracks(tmp_path / "tracks.parquet", audio_of)
    split_of = {**SPLIT_OF, 14: "train", 1: "test"}  # track 1 moves to test...
    targets = targets_for(split_of, seed=1)  # ...and every track gets new targets
    dataset = write_dataset(tmp_path / "ds", split_of, targets)

    report = run_extract_stage(spark, first_run["cfg"], ExtractInputs(tracks=tracks, dataset=dataset), str(out))

    # 2 (changed), 14 (new), 6 (fixed) and the other failed tracks with audio are decoded;
    # 1, 3 and 4 are reused.
    assert report["reused"] == 3
    assert report["computed"] == 3 + 6
    assert report["written"] == {"test": 2, "train": 2, "validation": 2}
    assert report["failed_total"] == 7
    rows = {}
    for split in contract.SPLITS:
        for row in read_split(out, split).to_pylist():
            assert row["track_id"] not in rows, "a track is written once"
            rows[row["track_id"]] = (split, row)
    assert sorted(rows) == [1, 2, 3, 4, 6, 14]
    assert rows[1][0] == "test" and rows[1][1]["labels"] == targets[1]["labels"]
    assert rows[1][1]["mel"] == before[1] and rows[3][1]["mel"] == before[3]
    assert rows[2][1]["mel"] != before[2] and rows[2][1]["audio"] == str(changed)


def test_a_failed_run_leaves_the_previous_output(spark, first_run, tmp_path, monkeypatch):
    out = tmp_path / "mels"
    shutil.copytree(first_run["out"], out)
    listing = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    report_text = (out / contract.REPORT_FILE).read_text()

    def fail(*args, **kwargs):
        raise RuntimeError("simulated crash after the shards were written")

    monkeypatch.setattr(extract_run, "extract_report", fail)
    cfg = make_config("extract.incremental=false", "extract.max_failure_rate=1")
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_extract_stage(spark, cfg, ExtractInputs(tracks=first_run["tracks"], dataset=first_run["dataset"]), str(out))
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == listing
    assert (out / contract.REPORT_FILE).read_text() == report_text
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # staging removed
    assert read_split(out, "train").num_rows == 2


def test_audio_dir_without_dataset_writes_all(spark, tmp_path, config):
    params = config.section("audio", MelParams)
    d = tmp_path / "audio"
    (d / "sub").mkdir(parents=True)
    shutil.copy(VIBE_ACE, d / "21.ogg")
    make_mp3(d / "21.mp3", HUNGARIAN, seconds=32.0)  # same track: mp3 is listed first, wins
    make_mp3(d / "sub" / "22.FLAC", HUNGARIAN, seconds=33.0)
    shutil.copy(VIBE_ACE, d / "23.ogg")
    shutil.copy(VIBE_ACE, d / "not-an-id.ogg")
    (d / "notes.txt").write_text("ignored: not an audio extension")
    cfg = make_config("extract.id_type=int64", "extract.row_group_mb=0.25", "extract.row_groups_per_file=1")
    assert rows_per_group(params, 0.25) == 2
    out = tmp_path / "mels"
    report = run_extract_stage(spark, cfg, ExtractInputs(audio_dir=str(d)), str(out))
    assert report["written"] == {"all": 3} and report["failed_total"] == 0
    assert report["catalogue_entries"] == 6 and report["catalogue_bad_names"] == 1 and report["catalogue_tracks"] == 3
    assert report["catalogue_rejected"] == {"bad_name": 1, "duplicate": 1, "unlisted_extension": 1}
    unused = {r["audio"].rsplit("/", 1)[1]: r for r in pq.read_table(str(out / "errors")).to_pylist()}
    assert {name: r["reason"] for name, r in unused.items()} == {
        "21.ogg": "duplicate",
        "not-an-id.ogg": "bad_name",
        "notes.txt": "unlisted_extension",
    }
    assert unused["21.ogg"]["track_id"] == 21 and unused["21.ogg"]["message"].startswith(
        f"another file of this track is used: file:{d}/21.mp3"
    )
    table = pq.read_table(str(out / "all"))
    assert table.schema.equals(output_schema(pa.int64(), False, params), check_metadata=False)
    by_id = {r["track_id"]: r for r in table.to_pylist()}
    assert sorted(by_id) == [21, 22, 23]
    assert by_id[21]["audio"].endswith("/21.mp3")
    assert by_id[22]["audio"].endswith("/sub/22.FLAC")
    files = sorted((out / "all").glob("*.parquet"))
    assert len(files) == 2  # 3 rows, 2 rows per file
    assert [pq.ParquetFile(str(f)).metadata.num_rows for f in files] in ([2, 1], [1, 2])

    # Same audio again: everything is reused, nothing is decoded.
    again = run_extract_stage(spark, cfg, ExtractInputs(audio_dir=str(d)), str(out))
    assert again["reused"] == 3 and again["computed"] == 0 and again["audio_seconds_decoded"] == 0


def test_bad_dataset_is_a_clear_input_error(spark, tmp_path, capsys):
    from ctx_spark.cli import run_main
    from jobs.extract_mels import main

    d = tmp_path / "audio"
    d.mkdir()
    shutil.copy(VIBE_ACE, d / "1.ogg")
    targets = targets_for([1])
    targets[1]["labels"] = targets[1]["labels"][:14]
    dataset = write_dataset(tmp_path / "ds", {1: "train"}, targets)
    sets = [a for o in TEST_SPARK_OVERRIDES for a in ("--set", o)]
    argv = ["--audio-dir", str(d), "--dataset", dataset, "--out", str(tmp_path / "out"), *sets]
    assert main(argv) == 2
    assert "length is not 15" in capsys.readouterr().err
    assert run_main(main, argv) == 2
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="exactly one"):
        ExtractInputs(tracks="t", audio_dir="d")


def test_leftovers_of_dead_write_attempts_are_not_published(spark, tmp_path):
    """A write attempt killed with its executor leaves a hidden .tmp file beside the
    retried attempt's real file; it is removed before the output is published."""
    from ctx_spark.extract.run import _remove_attempt_leftovers

    split = tmp_path / "staging" / "train"
    split.mkdir(parents=True)
    (split / "part-00000-000.parquet").write_bytes(b"real")
    (split / ".part-00000-000.parquet.0a1b2c3d.tmp").write_bytes(b"half")
    (tmp_path / "staging" / "mel_params.json").write_text("{}")
    _remove_attempt_leftovers(spark, str(tmp_path / "staging"))
    assert sorted(p.name for p in split.iterdir()) == ["part-00000-000.parquet"]
    assert (tmp_path / "staging" / "mel_params.json").exists()
