"""A hostile --audio-dir, listed for real (local[2] session, real files, real links): every
entry under the directory ends up as a spectrogram or as an errors/ row with its reason;
duplicates follow the documented rule; links to directories are not followed, so a link
loop lists nothing twice; errors/ messages quote no file content."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ctx_spark.audio import errors
from ctx_spark.errors import InputError
from ctx_spark.extract import listing, walk
from ctx_spark.extract.run import ExtractInputs, run_extract_stage
from ctx_spark.shards import contract
from ctx_spark.testing.audio import VIBE_ACE, make_mp3
from tests.extract.helpers import make_config

#: Written into the bad files: no errors/ message may quote it.
MARKER = "SECRET-CONTENT-7f3a"
WRITTEN = "written"

#: Entry (relative to the directory) -> what becomes of it: WRITTEN, or its errors/ reason.
EXPECTED = {
    "1.ogg": WRITTEN,
    "sub/deeper/2.ogg": WRITTEN,
    "20.ogg": WRITTEN,  # a link to a file: followed
    # duplicates: one file per track, by the rule in docs/extraction.md, "Duplicates"
    "192.ogg": WRITTEN,
    "0192.ogg": listing.DUPLICATE,  # the name that spells the id exactly wins
    "a/960.ogg": WRITTEN,
    "b/960.ogg": listing.DUPLICATE,  # then the smallest path
    "9.mp3": WRITTEN,
    "9.ogg": listing.DUPLICATE,  # the first extension of extract.extensions wins
    "11.ogg": WRITTEN,
    "11.mp3": listing.DUPLICATE,  # an empty file never wins
    # listed, then rejected by the decoder: not lost any more
    "12.ogg": errors.EMPTY,  # a 0-byte file
    "15.mp3": "bad audio",  # text, a header followed by text...: any audio reason
    "17.wav": "bad audio",
    "18.mp3": "bad audio",
    # rejected by the listing
    "13.ogg": listing.BROKEN_LINK,  # a dangling link
    "loop.ogg": listing.BROKEN_LINK,  # a link to itself
    "sub/loop": listing.LINKED_DIR,  # a link to .. (a loop): not followed
    "linked": listing.LINKED_DIR,  # a link to b/: not followed
    "notes.txt": listing.UNLISTED_EXTENSION,
    "cover.JPG": listing.UNLISTED_EXTENSION,
    "README": listing.UNLISTED_EXTENSION,
    ".DS_Store": listing.HIDDEN,
    "._1.ogg": listing.HIDDEN,  # a macOS resource fork
    ".cache": listing.HIDDEN,  # a hidden directory: one row, not descended
    "_tmp": listing.HIDDEN,
    "abc.ogg": listing.BAD_NAME,
    "a b.ogg": listing.BAD_NAME,
    "14.mp3": listing.NOT_A_FILE,  # a fifo
    "\ufffd.ogg": listing.BAD_NAME,  # the name b"\xff.ogg" is not UTF-8
}


def _hostile_dir(d: Path) -> Path:
    for name in ("1.ogg", "sub/deeper/2.ogg", "192.ogg", "0192.ogg", "a/960.ogg", "b/960.ogg", "9.ogg", "11.ogg"):
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(VIBE_ACE, d / name)
    make_mp3(d / "9.mp3", seconds=31.0)
    os.symlink("1.ogg", d / "20.ogg")
    (d / "11.mp3").write_bytes(b"")
    (d / "12.ogg").write_bytes(b"")
    (d / "15.mp3").write_text(f"<html>{MARKER}</html>\n" * 40)
    (d / "17.wav").write_bytes(b"RIFF\x24\x08\x00\x00WAVEfmt " + MARKER.encode() * 200)
    (d / "18.mp3").write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x10" + MARKER.encode() * 200)
    os.symlink("/nonexistent/13.ogg", d / "13.ogg")
    os.symlink("loop.ogg", d / "loop.ogg")
    os.symlink("..", d / "sub" / "loop")
    os.symlink("b", d / "linked")
    (d / "notes.txt").write_text(MARKER)
    (d / "cover.JPG").write_bytes(b"\xff\xd8\xff" + MARKER.encode())
    (d / "README").write_text(MARKER)
    (d / ".DS_Store").write_bytes(MARKER.encode())
    (d / "._1.ogg").write_bytes(MARKER.encode())
    for hidden in (".cache", "_tmp"):
        (d / hidden).mkdir()
        shutil.copy(VIBE_ACE, d / hidden / "5.ogg")
    shutil.copy(VIBE_ACE, d / "abc.ogg")
    shutil.copy(VIBE_ACE, d / "a b.ogg")
    os.mkfifo(d / "14.mp3")
    with open(os.path.join(os.fsencode(d), b"\xff.ogg"), "wb") as handle:
        handle.write(MARKER.encode())
    return d


@pytest.fixture(scope="module")
def hostile(spark, tmp_path_factory):
    d = _hostile_dir(tmp_path_factory.mktemp("hostile") / "audio")
    out = tmp_path_factory.mktemp("hostile-out") / "mels"
    report = run_extract_stage(spark, make_config("extract.id_type=int64"), ExtractInputs(audio_dir=str(d)), str(out))
    shards = pq.read_table(str(out / contract.ALL_SPLIT)).to_pylist()
    unused = pq.read_table(str(out / contract.ERRORS_DIR)).to_pylist()
    return {"dir": d, "out": out, "report": report, "shards": shards, "errors": unused}


def _relative(audio: str, d: Path) -> str:
    prefix = f"file:{d}/"
    assert audio.startswith(prefix), audio
    return audio[len(prefix) :]


def test_every_entry_is_a_spectrogram_or_an_error_row(hostile) -> None:
    d = hostile["dir"]
    found: dict[str, str] = {}
    for row in hostile["shards"]:
        found[_relative(row["audio"], d)] = WRITTEN
    for row in hostile["errors"]:
        name = _relative(row["audio"], d)
        assert name not in found, f"{name} is reported twice"
        found[name] = "bad audio" if EXPECTED.get(name) == "bad audio" and row["stage"] != "list" else row["reason"]
    assert found == EXPECTED
    # The loop through sub/loop lists nothing twice: one row per entry.
    assert len(hostile["shards"]) + len(hostile["errors"]) == len(EXPECTED)


def test_the_report_counts_the_listing(hostile) -> None:
    report = hostile["report"]
    rejected = [r for r in EXPECTED.values() if r in listing.LISTING_REASONS]
    assert report["catalogue_entries"] == len(EXPECTED)
    assert report["catalogue_rejected"] == {r: rejected.count(r) for r in set(rejected)}
    assert report["catalogue_rejected_total"] == len(rejected)
    assert report["catalogue_tracks"] == report["tracks_in"] == 11  # 1 2 9 11 12 15 17 18 20 192 960
    assert report["written_total"] == 7 and report["failed_total"] == 4
    assert report["failed"][errors.EMPTY] == 1


def test_rejected_entries_say_why_and_which_file_was_used(hostile) -> None:
    rows = {_relative(r["audio"], hostile["dir"]): r for r in hostile["errors"]}
    for name, reason in EXPECTED.items():
        if reason in listing.LISTING_REASONS:
            assert rows[name]["stage"] == listing.LIST_STAGE and rows[name]["message"], name
    d = hostile["dir"]
    assert rows["0192.ogg"]["track_id"] == 192
    assert rows["0192.ogg"]["message"].startswith(f"another file of this track is used: file:{d}/192.ogg")
    assert f"file:{d}/a/960.ogg" in rows["b/960.ogg"]["message"]
    assert rows["sub/loop"]["message"] == "symbolic link to the directory ..: not followed"
    assert "a loop of links" in rows["loop.ogg"]["message"]
    assert "/nonexistent/13.ogg" in rows["13.ogg"]["message"]
    assert rows["notes.txt"]["message"].startswith("extension .txt is not in extract.extensions (mp3, ogg")
    assert rows["README"]["message"].startswith("no extension")
    assert rows["abc.ogg"]["message"] == "'abc' is not an integer track id (extract.id_type is int64)"
    assert rows["abc.ogg"]["track_id"] is None and rows["12.ogg"]["track_id"] == 12
    assert rows["12.ogg"]["stage"] == errors.STAGE_OF_REASON[errors.EMPTY]


def test_no_errors_message_quotes_file_content(hostile) -> None:
    for row in hostile["errors"]:
        assert MARKER not in row["message"], row
        assert row["message"].isprintable(), row


def test_hidden_files_do_not_make_the_ids_strings(spark, tmp_path) -> None:
    """id_type auto: a macOS resource fork (._1.ogg) or .DS_Store is not a track name."""
    d = tmp_path / "audio"
    d.mkdir()
    shutil.copy(VIBE_ACE, d / "1.ogg")
    (d / "._1.ogg").write_bytes(b"\x00\x05\x16\x07")
    (d / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    out = tmp_path / "mels"
    report = run_extract_stage(spark, make_config(), ExtractInputs(audio_dir=str(d)), str(out))
    assert report["written_total"] == 1 and report["catalogue_rejected"] == {listing.HIDDEN: 2}
    assert pq.read_table(str(out / contract.ALL_SPLIT)).column("track_id").to_pylist() == [1]


def test_an_audio_dir_that_is_no_directory_is_an_input_error(spark, tmp_path) -> None:
    shutil.copy(VIBE_ACE, tmp_path / "1.ogg")
    with pytest.raises(InputError, match=r"--audio-dir file:.*/1\.ogg: is not a directory"):
        run_extract_stage(spark, make_config(), ExtractInputs(audio_dir=str(tmp_path / "1.ogg")), str(tmp_path / "o"))
    with pytest.raises(InputError, match="does not exist"):
        run_extract_stage(spark, make_config(), ExtractInputs(audio_dir=str(tmp_path / "no")), str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_a_tree_deeper_than_the_limit_is_refused(spark, tmp_path, monkeypatch) -> None:
    """Links are not followed, so only a mount inside its own tree can recurse; the walk
    stops at walk.MAX_DEPTH levels (lowered here to keep the test short)."""
    monkeypatch.setattr(walk, "MAX_DEPTH", 2)
    deep = tmp_path / "audio" / "a" / "b" / "c"
    deep.mkdir(parents=True)
    shutil.copy(VIBE_ACE, deep / "1.ogg")
    with pytest.raises(InputError, match="more than 2 levels of directories"):
        run_extract_stage(spark, make_config(), ExtractInputs(audio_dir=str(tmp_path / "audio")), str(tmp_path / "o"))
