"""compute_mel: the transform, the excerpt rules and every kind of bad file (no Spark)."""

from __future__ import annotations

import ctypes
import io
import pickle

import librosa
import numpy as np
import pytest

from ctx_spark.audio import errors
from ctx_spark.audio.decode import excerpt_start, read_excerpt
from ctx_spark.audio.errors import AudioError
from ctx_spark.audio.mel import compute_mel, compute_mel_info, log_mel
from ctx_spark.audio.params import MelParams
from ctx_spark.audio.sources import checksum_audio, stat_audio
from ctx_spark.extract.tasks import run_isolated
from ctx_spark.testing.audio import (
    HUNGARIAN,
    SPLEETER,
    TRUMPET,
    VIBE_ACE,
    corrupt_copy,
    make_mp3,
    noise,
    truncated_copy,
    write_audio,
)


@pytest.fixture(scope="module")
def params(config) -> MelParams:
    return config.section("audio", MelParams)


def librosa_reference(path, params: MelParams) -> np.ndarray:
    """The transform written directly with librosa, as the paper's code does it."""
    start = excerpt_start(librosa.get_duration(path=str(path)), params)
    y, _ = librosa.load(str(path), sr=params.sample_rate, offset=start, duration=params.excerpt_seconds)
    y = librosa.util.fix_length(y, size=params.excerpt_samples)
    mel = librosa.feature.melspectrogram(
        y=y,
        sr=params.sample_rate,
        n_fft=params.n_fft,
        hop_length=params.hop_length,
        n_mels=params.n_mels,
        power=2.0,
        center=True,
    )
    return np.log1p(params.log_scale * mel).astype(np.float16)


def assert_same_mel(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual.astype(np.float32), expected.astype(np.float32), rtol=2e-3, atol=2e-3)


def test_default_shape_is_the_papers(params):
    assert params.shape == (96, 646)
    assert params.excerpt_samples == 661500


@pytest.mark.parametrize("path", [VIBE_ACE, HUNGARIAN], ids=["22kHz-mono-ogg", "44kHz-stereo-ogg"])
def test_mel_matches_librosa_on_real_clips(path, params):
    mel = compute_mel(path, params)
    assert mel.dtype == np.float16
    assert mel.shape == (96, 646)
    assert np.isfinite(mel.astype(np.float32)).all()
    assert float(mel.max()) > 1.0  # real music, not padding
    assert_same_mel(mel, librosa_reference(path, params))


def test_mel_of_an_mp3_matches_librosa(tmp_path, params):
    path = make_mp3(tmp_path / "cut.mp3", HUNGARIAN, seconds=35.0, offset=3.0)
    info = compute_mel_info(path, params)
    assert info.excerpt.native_rate == 44100 and info.excerpt.channels == 2
    assert info.excerpt.start_seconds == pytest.approx(5.0, abs=0.05)  # 35 s -> starts at 5 s
    assert info.excerpt.decoded_seconds == pytest.approx(30.0, abs=0.01)
    assert_same_mel(info.mel, librosa_reference(path, params))


@pytest.mark.parametrize(
    "seconds, start",
    [(70.0, 30.0), (45.0, 15.0), (60.0, 30.0), (30.0, 0.0)],
)
def test_excerpt_is_cut_where_the_rule_says(tmp_path, params, seconds, start):
    """start = min(30, max(0, duration - 30)), checked against the known generated signal."""
    signal = noise(seconds, params.sample_rate, seed=int(seconds))
    path = write_audio(tmp_path / f"noise{int(seconds)}.wav", signal, params.sample_rate)
    assert excerpt_start(seconds, params) == pytest.approx(start)
    excerpt = read_excerpt(path, params)
    first = int(start * params.sample_rate)
    np.testing.assert_array_equal(excerpt.samples, signal[first : first + params.excerpt_samples])
    np.testing.assert_array_equal(compute_mel(path, params), log_mel(excerpt.samples, params))


def test_audio_between_20_and_30_s_is_zero_padded(tmp_path, params):
    signal = noise(25.0, params.sample_rate, seed=3)
    path = write_audio(tmp_path / "short.wav", signal, params.sample_rate)
    excerpt = read_excerpt(path, params)
    assert excerpt.start_seconds == 0.0
    assert excerpt.samples.shape == (params.excerpt_samples,)
    np.testing.assert_array_equal(excerpt.samples[: signal.size], signal)
    assert not excerpt.samples[signal.size :].any()
    mel = compute_mel(path, params)
    last_signal_frame = (signal.size + params.n_fft // 2) // params.hop_length
    assert (mel[:, last_signal_frame + 1 :] == 0).all()  # log(1 + 0) over the padding
    assert (mel[:, : last_signal_frame - 1].astype(np.float32).max(axis=0) > 0).all()


def test_real_audio_between_20_and_30_s_is_padded_like_librosa(tmp_path, params):
    path = make_mp3(tmp_path / "22s.mp3", VIBE_ACE, seconds=22.0, offset=10.0)
    mel = compute_mel(path, params)
    assert_same_mel(mel, librosa_reference(path, params))
    assert (mel[:, -50:] == 0).all()


def test_exactly_min_seconds_is_accepted_and_less_rejected(tmp_path, params):
    ok = write_audio(tmp_path / "20s.wav", noise(params.min_seconds, params.sample_rate), params.sample_rate)
    assert compute_mel(ok, params).shape == params.shape
    short = write_audio(tmp_path / "19s.wav", noise(params.min_seconds - 1, params.sample_rate), params.sample_rate)
    with pytest.raises(AudioError) as info:
        compute_mel(short, params)
    assert info.value.reason == errors.TOO_SHORT and "19.00 s" in info.value.message


def test_short_real_clips_are_rejected(params):
    for path in (TRUMPET, SPLEETER):
        with pytest.raises(AudioError) as info:
            compute_mel(path, params)
        assert info.value.reason == errors.TOO_SHORT
        assert info.value.stage == "check"


def test_sources_path_uri_and_file_object_agree(tmp_path, params):
    spaced = tmp_path / "a dir" / "vibe ace.ogg"
    spaced.parent.mkdir()
    spaced.write_bytes(VIBE_ACE.read_bytes())
    expected = compute_mel(VIBE_ACE, params)
    for source in (str(spaced), spaced, spaced.as_uri(), f"file:{spaced}", io.BytesIO(spaced.read_bytes())):
        np.testing.assert_array_equal(compute_mel(source, params), expected)


def test_stat_and_checksum(tmp_path):
    path = tmp_path / "x.ogg"
    path.write_bytes(VIBE_ACE.read_bytes())
    stat = stat_audio(path.as_uri())
    assert stat.size == VIBE_ACE.stat().st_size and stat.mtime_ms == path.stat().st_mtime_ns // 1_000_000
    assert checksum_audio(str(path)) == checksum_audio(str(VIBE_ACE))
    with pytest.raises(AudioError) as info:
        stat_audio(str(tmp_path / "nope.mp3"))
    assert info.value.reason == errors.MISSING


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    """One file per failure reason, derived from the real clips."""
    d = tmp_path_factory.mktemp("bad")
    good_mp3 = make_mp3(d / "good.mp3", HUNGARIAN, seconds=45.0)
    good_flac = make_mp3(d / "good.flac", HUNGARIAN, seconds=45.0)
    (d / "empty.mp3").write_bytes(b"")
    (d / "page.mp3").write_text("<html><body>404 Not Found</body></html>\n" * 20)
    silent = write_audio(d / "silent.wav", np.zeros(40 * 22050, np.float32), 22050)
    quiet = write_audio(d / "quiet.ogg", noise(40.0, 22050, level=10 ** (-75 / 20) / 4), 22050)
    return {
        errors.MISSING: d / "missing.mp3",
        errors.EMPTY: d / "empty.mp3",
        errors.NOT_AUDIO: d / "page.mp3",
        errors.CORRUPT: corrupt_copy(good_mp3, d / "corrupt.mp3", fraction=0.6),
        errors.TRUNCATED: truncated_copy(good_mp3, d / "truncated.mp3", keep=0.5),
        "truncated_flac": truncated_copy(good_flac, d / "truncated.flac", keep=0.5),
        errors.SILENT: silent,
        "quiet": quiet,
        errors.TOO_SHORT: TRUMPET,
    }


@pytest.mark.parametrize(
    "kind, reason",
    [
        (errors.MISSING, errors.MISSING),
        (errors.EMPTY, errors.EMPTY),
        (errors.NOT_AUDIO, errors.NOT_AUDIO),
        (errors.CORRUPT, errors.CORRUPT),
        (errors.TRUNCATED, errors.TRUNCATED),
        ("truncated_flac", errors.TRUNCATED),
        (errors.SILENT, errors.SILENT),
        (errors.TOO_SHORT, errors.TOO_SHORT),
    ],
)
def test_each_bad_file_has_its_reason(bad_files, params, kind, reason):
    with pytest.raises(AudioError) as info:
        compute_mel(bad_files[kind], params, silence_peak_dbfs=-60.0)
    assert info.value.reason == reason
    assert str(bad_files[kind].name) in info.value.message
    assert info.value.stage == errors.STAGE_OF_REASON[reason]


def test_silence_threshold(bad_files, params):
    # About -75 dBFS of noise: silent for the job's -60 dBFS threshold, usable without one.
    with pytest.raises(AudioError) as info:
        compute_mel(bad_files["quiet"], params, silence_peak_dbfs=-60.0)
    assert info.value.reason == errors.SILENT and "dBFS" in info.value.message
    assert compute_mel(bad_files["quiet"], params).shape == params.shape
    with pytest.raises(AudioError):
        compute_mel(bad_files[errors.SILENT], params)  # digital silence, whatever the threshold


def test_not_audio_message_names_the_kind_without_quoting_the_content(bad_files, params):
    with pytest.raises(AudioError) as info:
        compute_mel(bad_files[errors.NOT_AUDIO], params)
    assert "looks like an HTML page" in info.value.message and "<html>" not in info.value.message


def test_audio_error_survives_pickling():
    error = pickle.loads(pickle.dumps(AudioError(errors.CORRUPT, "x.mp3: bad frame")))
    assert (error.reason, error.message, error.stage) == (errors.CORRUPT, "x.mp3: bad frame", "decode")
    with pytest.raises(ValueError):
        AudioError("no such reason", "x")


def _segfault():
    ctypes.string_at(0)


def test_isolated_decoding_turns_a_crash_into_an_error(params):
    with pytest.raises(AudioError) as info:
        run_isolated(_segfault)
    assert info.value.reason == errors.CRASHED
    with pytest.raises(AudioError) as info:
        run_isolated(compute_mel, TRUMPET, params)
    assert info.value.reason == errors.TOO_SHORT
    np.testing.assert_array_equal(run_isolated(compute_mel, VIBE_ACE, params), compute_mel(VIBE_ACE, params))
