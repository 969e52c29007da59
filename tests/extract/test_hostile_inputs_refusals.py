"""Near-empty publication refused (real local[2] session, real audio): an empty input, or
a run in which most tracks fail, publishes nothing and leaves the previous output (the
incremental cache) byte for byte where it was, with one clear error naming the setting."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ctx_spark.errors import InputError
from ctx_spark.extract.run import ExtractInputs, run_extract_stage
from ctx_spark.shards import contract
from ctx_spark.testing.audio import VIBE_ACE
from tests.conftest import TEST_SPARK_OVERRIDES
from tests.extract.helpers import make_config, targets_for, write_dataset


def _digest(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``root``."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def _audio(d: Path, good: int = 0, text: int = 0, start: int = 1) -> Path:
    """``good`` real clips and ``text`` text files saved as .mp3, named from ``start``."""
    d.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + good):
        shutil.copy(VIBE_ACE, d / f"{i}.ogg")
    for i in range(start + good, start + good + text):
        (d / f"{i}.mp3").write_text("<html>404</html>\n" * 30)
    return d


@pytest.fixture(scope="module")
def previous(spark, tmp_path_factory) -> Path:
    """A good earlier output: tracks 1 and 2."""
    out = tmp_path_factory.mktemp("previous") / "mels"
    audio = _audio(tmp_path_factory.mktemp("previous-audio") / "audio", good=2)
    report = run_extract_stage(spark, make_config(), ExtractInputs(audio_dir=str(audio)), str(out))
    assert report["written_total"] == 2
    return out


def _refused(spark, previous: Path, tmp_path: Path, inputs: ExtractInputs, *overrides: str) -> str:
    """Run over a copy of ``previous``; check nothing changed; return the error."""
    out = tmp_path / "out" / "mels"
    shutil.copytree(previous, out)
    before = _digest(out)
    with pytest.raises(InputError) as caught:
        run_extract_stage(spark, make_config(*overrides), inputs, str(out))
    assert _digest(out) == before, "the previous output changed"
    assert sorted(p.name for p in out.parent.iterdir()) == ["mels"], "a staging directory was left"
    return str(caught.value)


def test_an_empty_audio_dir_over_an_existing_output_is_refused(spark, previous, tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    message = _refused(spark, previous, tmp_path, ExtractInputs(audio_dir=str(tmp_path / "empty")))
    assert message == (
        f"extract: --audio-dir {tmp_path / 'empty'} gives no track with audio (no entries at all); nothing was "
        f"published (an earlier output at {tmp_path / 'out' / 'mels'} stays as it was); set "
        "extract.allow_empty=true to publish an empty output"
    )


def test_a_directory_of_unlisted_extensions_names_them(spark, previous, tmp_path) -> None:
    d = tmp_path / "m4a"
    d.mkdir()
    for i in range(3):
        (d / f"{i}.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A ")
    (d / "cover.jpg").write_bytes(b"\xff\xd8\xff")
    message = _refused(spark, previous, tmp_path, ExtractInputs(audio_dir=str(d)))
    assert "4 entries, none usable: unlisted_extension 4" in message
    assert "commonest unlisted extensions: .m4a 3, .jpg 1 (extract.extensions)" in message


def test_a_dataset_whose_tracks_mostly_lack_audio_is_refused_before_decoding(spark, previous, tmp_path) -> None:
    split_of = {t: "train" for t in range(1, 11)}
    dataset = write_dataset(tmp_path / "ds", split_of, targets_for(split_of))
    audio = _audio(tmp_path / "audio", good=2)
    message = _refused(spark, previous, tmp_path, ExtractInputs(audio_dir=str(audio), dataset=dataset))
    assert message.startswith("extract: 8 of 10 tracks (80.0%) of the dataset have no audio in --audio-dir")
    assert "extract.max_failure_rate (0.5)" in message and "extract.max_failure_rate=1" in message


def test_a_run_in_which_most_tracks_fail_is_refused_unless_allowed(spark, previous, tmp_path) -> None:
    audio = _audio(tmp_path / "audio", good=1, text=3)
    message = _refused(spark, previous, tmp_path, ExtractInputs(audio_dir=str(audio)))
    assert message.startswith("extract: 3 of 4 tracks (75.0%) failed (not_audio 3; errors/ lists them)")
    # The limit is a setting: at 1 the same run publishes, its failures in errors/.
    out = tmp_path / "out" / "mels"
    report = run_extract_stage(
        spark, make_config("extract.max_failure_rate=1"), ExtractInputs(audio_dir=str(audio)), str(out)
    )
    assert report["written_total"] == 1 and report["failed"] == {"not_audio": 3}
    assert pq.read_table(str(out / contract.ERRORS_DIR)).num_rows == 3


def test_exactly_the_limit_is_published(spark, tmp_path) -> None:
    """2 of 4 failing is 0.5, not more than the default 0.5: published."""
    audio = _audio(tmp_path / "audio", good=2, text=2)
    report = run_extract_stage(spark, make_config(), ExtractInputs(audio_dir=str(audio)), str(tmp_path / "mels"))
    assert report["written_total"] == 2 and report["failed_total"] == 2


def test_an_empty_input_is_published_when_allowed(spark, previous, tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    out = tmp_path / "mels"
    shutil.copytree(previous, out)
    cfg = make_config("extract.allow_empty=true")
    report = run_extract_stage(spark, cfg, ExtractInputs(audio_dir=str(tmp_path / "empty")), str(out))
    assert report["written_total"] == 0 and report["tracks_in"] == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [contract.ERRORS_DIR, contract.PARAMS_FILE, contract.INFO_FILE, contract.REPORT_FILE]
    )
    assert pq.read_table(str(out / contract.ERRORS_DIR)).num_rows == 0


def test_the_refusal_is_one_error_line(spark, previous, tmp_path, capsys) -> None:
    from jobs.extract_mels import main

    (tmp_path / "empty").mkdir()
    out = tmp_path / "mels"
    shutil.copytree(previous, out)
    sets = [a for o in TEST_SPARK_OVERRIDES for a in ("--set", o)]
    assert main(["--audio-dir", str(tmp_path / "empty"), "--out", str(out), *sets]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: extract: --audio-dir {tmp_path / 'empty'} gives no track")
