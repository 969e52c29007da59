"""Formats libsndfile cannot read (AAC/ALAC in M4A, Opus in WebM, raw ADTS) decoded with
PyAV, and the reasons for files nobody decodes, messages that quote nothing, and samples
out of range. Real files made with PyAV's own encoders from a bundled clip (no mocks, no
ffmpeg program). librosa loads M4A only through audioread and the ffmpeg program, which CI
does not have, so the reference is FFmpeg's full decode cut afterwards; where ffmpeg is
installed, librosa.load itself is compared too.
"""

from __future__ import annotations

import io
import shutil
import warnings

import av
import librosa
import numpy as np
import pytest
import soundfile as sf

from ctx_spark.audio import errors
from ctx_spark.audio.av_decode import content_kind
from ctx_spark.audio.decode import excerpt_start
from ctx_spark.audio.errors import AudioError
from ctx_spark.audio.mel import compute_mel, compute_mel_info
from ctx_spark.audio.params import MelParams
from ctx_spark.platform import librosa_loads_through_ffmpeg
from ctx_spark.testing.audio import (
    HUNGARIAN,
    VIBE_ACE,
    clip,
    corrupt_copy,
    noise,
    remux,
    to_pcm16,
    truncated_copy,
    write_audio,
    write_av,
    write_video_without_audio,
    write_wav_with_codec_tag,
)

SECONDS = 32.0  # > 30 s, so the excerpt starts at 2 s and the decoders must skip to it


@pytest.fixture(scope="module")
def params(config) -> MelParams:
    return config.section("audio", MelParams)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """32 s of the 44.1 kHz stereo clip as 16-bit PCM (the lossless source) and in the
    formats under test, all from the same integer samples."""
    d = tmp_path_factory.mktemp("formats")
    data, rate = clip(HUNGARIAN, SECONDS, offset=3.0)
    pcm = to_pcm16(data)
    sf.write(str(d / "source.wav"), pcm, rate, subtype="PCM_16")
    floats = pcm.astype(np.float32) / np.float32(32768)
    # PNS off: FFmpeg's decoder fills noise-substituted bands with noise from a generator
    # whose state depends on where decoding started, so only without it does decoding
    # after a seek equal decoding from the start bit for bit (with PNS, measured: 0.08
    # at most, 8e-5 on average, in log-mel units).
    write_av(d / "index_last.m4a", floats, rate, "aac", codec_options={"aac_pns": "0"})  # FFmpeg's default layout
    files = {
        "source": d / "source.wav",
        "aac": remux(d / "index_last.m4a", d / "aac.m4a", container_options={"movflags": "faststart"}),
        "aac_index_last": d / "index_last.m4a",
        "adts": remux(d / "index_last.m4a", d / "raw.aac", container_format="adts"),
        "alac": write_av(d / "alac.m4a", pcm, rate, "alac"),
        "opus": write_av(d / "opus.webm", floats, rate, "libopus", stream_rate=48000),
    }
    return files


def reference_mel(path, params: MelParams, *, decoded_length: bool = False) -> np.ndarray:
    """The transform as librosa.load + melspectrogram would compute it on FFmpeg's output:
    decode the whole file with PyAV, cut the excerpt by librosa's frame arithmetic
    (duration from the metadata, or from the decoded length for raw streams), mix with
    librosa.to_mono, resample with librosa.resample(res_type="soxr_hq")."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate, channels = stream.codec_context.sample_rate, stream.codec_context.channels
        resampler = av.AudioResampler(format="flt", layout=stream.codec_context.layout, rate=rate)
        full = np.concatenate(
            [
                converted.to_ndarray().reshape(-1, channels)
                for frame in container.decode(stream)
                for converted in resampler.resample(frame)
            ]
        )
        if decoded_length:
            duration = len(full) / rate
        elif stream.duration is not None:
            duration = float(stream.duration * stream.time_base)
        else:
            duration = container.duration / 1_000_000
    start = int(excerpt_start(duration, params) * rate)
    y = librosa.to_mono(full[start : start + int(params.excerpt_seconds * rate)].T)
    return librosa_mel(librosa.resample(y, orig_sr=rate, target_sr=params.sample_rate, res_type="soxr_hq"), params)


def librosa_load_mel(path, params: MelParams) -> np.ndarray:
    """The paper's code: librosa.load of the excerpt (M4A: through audioread and ffmpeg)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa's audioread deprecation notice
        start = excerpt_start(librosa.get_duration(path=str(path)), params)
        y, _ = librosa.load(str(path), sr=params.sample_rate, offset=start, duration=params.excerpt_seconds)
    return librosa_mel(y, params)


def librosa_mel(y: np.ndarray, params: MelParams) -> np.ndarray:
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


@pytest.mark.parametrize("kind", ["aac", "aac_index_last", "adts", "alac", "opus"])
def test_libsndfile_cannot_read_these(made, kind):
    """The precondition of everything below: these files go through PyAV."""
    with pytest.raises(sf.LibsndfileError):
        sf.SoundFile(str(made[kind]))


@pytest.mark.parametrize(
    "kind, rate, duration, start",
    [
        ("aac", 44100, SECONDS, 2.0),  # MP4: sample-exact length and seek
        ("aac_index_last", 44100, SECONDS, 2.0),
        ("alac", 44100, SECONDS, 2.0),
        ("opus", 48000, SECONDS + 0.008, 2.008),  # WebM: container length in ms (rounded up here)
        ("adts", 44100, 1413120 / 44100, 1413120 / 44100 - 30),  # counted packets: 1024 priming + padding
    ],
)
def test_pyav_decodes_the_excerpt_like_ffmpeg_and_librosa(made, params, kind, rate, duration, start):
    info = compute_mel_info(made[kind], params)
    assert (info.excerpt.native_rate, info.excerpt.channels) == (rate, 2)
    assert info.excerpt.duration_seconds == pytest.approx(duration, abs=1e-6)
    assert info.excerpt.start_seconds == pytest.approx(start, abs=1e-6)
    assert info.mel.shape == params.shape and float(info.mel.max()) > 1.0
    # Same samples as the full decode cut afterwards: skipping to the start is exact.
    np.testing.assert_array_equal(info.mel, reference_mel(made[kind], params, decoded_length=kind == "adts"))


@pytest.mark.skipif(
    shutil.which("ffmpeg") is None or not librosa_loads_through_ffmpeg(),
    reason="librosa reads M4A through audioread's ffmpeg program (librosa < 1.0; 1.0 removed audioread)",
)
@pytest.mark.parametrize("kind", ["aac", "alac"])
def test_matches_librosa_load_where_ffmpeg_is_installed(made, params, kind):
    """librosa.load itself (audioread piping the ffmpeg program's 16-bit output): measured
    max 0.0039 for AAC (that 16-bit rounding), 0 for ALAC. Not for short WebM/ADTS files:
    audioread truncates durations to 0.1 s, so its excerpt of a 32 s file starts elsewhere."""
    expected = librosa_load_mel(made[kind], params)
    diff = np.abs(compute_mel(made[kind], params).astype(np.float32) - expected.astype(np.float32))
    assert diff.max() < 0.02


def test_alac_equals_the_lossless_source_bit_for_bit(made, params):
    alac, source = compute_mel_info(made["alac"], params), compute_mel_info(made["source"], params)
    np.testing.assert_array_equal(alac.excerpt.samples, source.excerpt.samples)
    np.testing.assert_array_equal(alac.mel, source.mel)


def test_aac_spectrogram_is_close_to_the_lossless_source(made, params):
    """Tolerances: 128 kb/s AAC of this clip measured mean 0.036, 99th percentile 0.23,
    max 0.77 (log-mel units; values reach 9.1) against the source; an excerpt misplaced by
    the 1024 priming samples measured mean 0.33, p99 2.15, max 5.3, and by 256 samples
    mean 0.12 — the bounds pass the first and fail both of those."""
    aac = compute_mel(made["aac"], params).astype(np.float32)
    source = compute_mel(made["source"], params).astype(np.float32)
    diff = np.abs(aac - source)
    assert diff.mean() < 0.08
    assert np.percentile(diff, 99) < 0.5
    assert diff.max() < 1.5


class CountingBytes(io.BytesIO):
    """A file object that records how many bytes were read and how far."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.read_bytes, self.furthest = 0, 0

    def read(self, n: int = -1) -> bytes:
        data = super().read(n)
        self.read_bytes += len(data)
        self.furthest = max(self.furthest, self.tell())
        return data


def test_only_the_excerpt_is_decoded(tmp_path, params):
    """90 s of ALAC (index first): the excerpt is 30-60 s, so about a third of the bytes
    (plus 1 s of pre-roll and the index) is read and nothing after 60 s."""
    data, rate = clip(VIBE_ACE, 90.0)
    path = write_av(tmp_path / "long.m4a", to_pcm16(data), rate, "alac", container_options={"movflags": "faststart"})
    source = CountingBytes(path.read_bytes())
    info = compute_mel_info(source, params)
    assert (info.excerpt.start_seconds, info.excerpt.decoded_seconds) == (30.0, 30.0)
    size = path.stat().st_size
    assert source.read_bytes < 0.40 * size and source.furthest < 0.75 * size
    np.testing.assert_array_equal(info.mel, reference_mel(path, params))


def test_file_objects_and_uris_decode_the_same(made, params):
    expected = compute_mel(made["aac"], params)
    for source in (io.BytesIO(made["aac"].read_bytes()), made["aac"].as_uri(), f"file:{made['aac']}"):
        np.testing.assert_array_equal(compute_mel(source, params), expected)


def test_a_codec_without_decoder_is_unsupported_format(tmp_path, params):
    path = write_wav_with_codec_tag(tmp_path / "sonic.wav", 0x2048)  # FFmpeg knows Sonic, decodes nothing
    with pytest.raises(AudioError) as info:
        compute_mel(path, params)
    assert info.value.reason == errors.UNSUPPORTED_FORMAT and info.value.stage == "open"
    assert "wav container, codec sonic has no decoder" in info.value.message


def test_a_video_without_sound_is_not_audio(tmp_path, params):
    with pytest.raises(AudioError) as info:
        compute_mel(write_video_without_audio(tmp_path / "clip.mp4"), params)
    assert info.value.reason == errors.NOT_AUDIO
    assert "mp4 container without an audio stream (video streams; " in info.value.message
    assert "bytes, looks like an MP4/M4A file)" in info.value.message


@pytest.mark.parametrize("kind, keep", [("aac", 0.5), ("aac_index_last", 0.5)])
def test_a_cut_m4a_is_truncated(made, tmp_path, params, kind, keep):
    """Index first: the data runs out while decoding. Index last (FFmpeg's default): FFmpeg
    cannot open it, and the boxes show the data running past the end of the file."""
    cut = truncated_copy(made[kind], tmp_path / f"cut_{kind}.m4a", keep=keep)
    with pytest.raises(AudioError) as info:
        compute_mel(cut, params)
    assert info.value.reason == errors.TRUNCATED


def test_a_damaged_m4a_is_corrupt(made, tmp_path, params):
    damaged = corrupt_copy(made["aac"], tmp_path / "damaged.m4a", fraction=0.5)
    with pytest.raises(AudioError) as info:
        compute_mel(damaged, params)
    assert info.value.reason == errors.CORRUPT and "(mp4, aac)" in info.value.message


def test_a_damaged_mp4_header_is_corrupt_not_not_audio(made, tmp_path, params):
    data = bytearray(made["aac"].read_bytes())
    data[32:4096] = bytes(4096 - 32)  # ftyp survives, the index behind it does not
    (tmp_path / "header.m4a").write_bytes(bytes(data))
    with pytest.raises(AudioError) as info:
        compute_mel(tmp_path / "header.m4a", params)
    assert info.value.reason == errors.CORRUPT and "looks like an MP4/M4A file" in info.value.message


SECRET = "hunter2-Zq8vX41kPw"


@pytest.mark.parametrize(
    "content, kind",
    [
        (f"user=admin\npassword={SECRET}\n" * 5, "looks like text"),
        (f"<!DOCTYPE html><html><body>{SECRET}</body></html>\n" * 5, "looks like an HTML page"),
        (b"\x89PNG\r\n\x1a\n" + SECRET.encode() * 20, "looks like a PNG image"),
    ],
)
def test_not_audio_messages_quote_nothing_from_the_file(tmp_path, params, content, kind):
    path = tmp_path / "track.mp3"
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    with pytest.raises(AudioError) as info:
        compute_mel(path, params)
    message = info.value.message
    assert info.value.reason == errors.NOT_AUDIO and kind in message
    assert f"{path.stat().st_size:,} bytes" in message
    assert not [SECRET[i : i + 4] for i in range(len(SECRET) - 3) if SECRET[i : i + 4] in message]
    for word in ("password", "admin", "<html", "<!DOCTYPE", "PNG\r"):
        assert word not in message


def test_content_kind_names_signatures():
    assert content_kind(b"\xff\xd8\xff\xe0\x00\x10JFIF") == ("a JPEG image", False)
    assert content_kind(b"\x00\x00\x00\x20ftypM4A ") == ("an MP4/M4A file", True)
    assert content_kind(b'{"error": "not found"}') == ("JSON text", False)
    assert content_kind(bytes(range(256))) == (None, False)


def test_float_wav_far_beyond_full_scale_is_out_of_range(tmp_path, params):
    """A float WAV at 30x full scale would give a spectrogram 30 dB off: rejected, peak named."""
    loud = write_audio(tmp_path / "loud.wav", 30.0 * noise(40.0, params.sample_rate, level=0.3), params.sample_rate)
    with pytest.raises(AudioError) as info:
        compute_mel(loud, params)
    assert info.value.reason == errors.OUT_OF_RANGE and info.value.stage == "check"
    peak = float(np.abs(sf.read(str(loud), dtype="float32")[0][int(10 * params.sample_rate) :]).max())
    assert f"peak at {peak:.4g}" in info.value.message


def test_float_wav_slightly_beyond_full_scale_is_used(tmp_path, params):
    """Peaks up to 2.2 are what lossy decoders give for heavily clipped masters (errors.py)."""
    signal = noise(40.0, params.sample_rate, level=0.3)
    signal *= np.float32(2.0 / np.abs(signal).max())
    path = write_audio(tmp_path / "hot.wav", signal, params.sample_rate)
    assert compute_mel(path, params).shape == params.shape


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_samples_are_corrupt(tmp_path, params, bad):
    signal = noise(40.0, params.sample_rate)
    signal[int(35 * params.sample_rate)] = bad  # inside the excerpt (10 s - 40 s)
    path = write_audio(tmp_path / "nonfinite.wav", signal, params.sample_rate)
    with pytest.raises(AudioError) as info:
        compute_mel(path, params)
    assert info.value.reason == errors.CORRUPT and "not finite" in info.value.message
