"""Configuration values that would make an output meaningless are refused, by every command
that reads their section, before a SparkSession or TensorFlow starts."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import pytest

from ctx_spark import cli
from ctx_spark.audio.params import MelParams, empty_mel_bands
from ctx_spark.config import load_config
from ctx_spark.errors import ConfigError
from tests.conftest import ROOT

#: (override, words the error must hold): one value per section that would make its output meaningless.
MEANINGLESS = [
    ("audio.log_scale=0", "log_scale must be > 0"),
    ("audio.log_scale=-100", "log_scale must be > 0"),
    ("audio.n_mels=400", "mel bands cover no FFT bin"),
    ("spark.log_level=LOUD", "log_level must be one of"),
    ("spark.master=''", "master must not be empty"),
    ("spark.conf.spark.sql.shuffle.partitions=[1, 2]", "must be one value"),
    ("dataset.split={train: 0.75, validation: 0, test: 0.25}", "allow_empty_splits"),
    ("dataset.checkpoint_dir=''", "checkpoint_dir"),
    ("refresh.model=''", "model must be null"),
    ("train.evaluation.tune_split=test", "optimistic"),
    ("train.evaluation.test_split=everything", "test_split must be one of"),
]


def _section_of(override: str) -> str:
    return override.split(".", 1)[0]


@pytest.mark.parametrize("override,words", MEANINGLESS)
def test_meaningless_values_are_refused_by_their_section(override, words):
    cfg = load_config(overrides=[override])
    with pytest.raises(ConfigError, match=words):
        cli.check_sections(cfg, [_section_of(override)])


def test_an_empty_split_is_allowed_when_asked_for():
    cfg = load_config(
        overrides=["dataset.split.validation=0", "dataset.split.train=0.75", "dataset.allow_empty_splits=true"]
    )
    cli.check_sections(cfg, ["dataset"])


def test_the_default_configuration_passes_every_section(config):
    cli.check_sections(config, list(cli.SECTIONS))


def test_every_configured_section_has_a_settings_class_and_every_command_declares_known_sections():
    cfg = load_config()
    free_form = {"contexts", "vocabulary"}
    assert set(cfg.data) - free_form == set(cli.SECTIONS)
    for name, (target, _summary, _extra) in cli.COMMANDS.items():
        module, attribute = target.split(":")
        command = getattr(importlib.import_module(module), attribute)
        assert set(command.sections) <= set(cli.SECTIONS), name


@pytest.mark.filterwarnings("ignore:Empty filters")
def test_empty_mel_bands_match_librosa():
    librosa = pytest.importorskip("librosa")
    for sample_rate in (8000, 11025, 16000, 22050):
        for n_fft in (64, 128, 256, 1024):
            for n_mels in (32, 96, 200, 256, 512):
                bank = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)
                # Empty: a largest weight that is rounding noise (librosa leaves ~1e-16 on the Nyquist bin).
                empty = int((bank.max(axis=1) <= 1e-9 * bank.max()).sum())
                assert empty_mel_bands(sample_rate, n_fft, n_mels) == empty, (sample_rate, n_fft, n_mels)
    assert empty_mel_bands(22050, 1024, 96) == 0


@pytest.mark.parametrize("log_scale", [0.0, -1.0, float("nan")])
def test_mel_params_from_a_shard_root_are_checked_too(log_scale):
    good = MelParams(22050, 30.0, 30.0, 20.0, 1024, 1024, 96, 100.0).to_dict()
    assert MelParams.from_dict(good).shape == (96, 646)
    with pytest.raises(ValueError, match="log_scale"):
        MelParams.from_dict({**good, "log_scale": log_scale})


#: command line -> the words of the config error it must end with; the input paths do not
#: exist, so a command that looked at them (or started Spark) first would say something else.
COMMAND_LINES = [
    (["label", "--playlists", "X", "--playlist-tracks", "X", "--tracks", "X", "--out", "O"], "label.min_playlists=0"),
    (["dataset", "--labels", "X", "--out", "O"], "dataset.split={train: 0.9, validation: 0.1, test: 0}"),
    (["extract", "--audio-dir", "X", "--out", "O"], "audio.log_scale=0"),
    (["refresh", "--catalogue", "X", "--root", "R"], "refresh.keep_snapshots=0"),
    (["train", "--shards", "X", "--out", "O"], "train.evaluation.tune_split=test"),
    (["score", "--model", "X", "--shards", "X", "--out", "O"], "score.batch_size=0"),
    (["top", "--scores", "X", "--context", "sleep"], "spark.log_level=LOUD"),
]


def test_commands_check_their_sections_before_spark_or_tensorflow_start(tmp_path):
    """In a fresh interpreter: each command exits 2 with the setting's name, and afterwards
    no SparkContext exists and TensorFlow was never imported."""
    code = (
        "import json, sys\n"
        "from ctx_spark.cli import main\n"
        f"runs = {json.dumps(COMMAND_LINES)}\n"
        "codes = [main(args + ['--set', override]) for args, override in runs]\n"
        "from pyspark import SparkContext\n"
        "print(json.dumps({'codes': codes, 'spark': SparkContext._active_spark_context is not None,"
        " 'tensorflow': 'tensorflow' in sys.modules}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"codes": [2] * len(COMMAND_LINES), "spark": False, "tensorflow": False}
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(COMMAND_LINES), done.stderr[-3000:]
    for line, (_args, override) in zip(errors, COMMAND_LINES):
        assert line.startswith(f"error: {override.split('.', 1)[0]}"), (line, override)
