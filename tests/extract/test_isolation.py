"""Decoding in a child process (a retried audio task): the same spectrogram, or ``crashed``."""

from __future__ import annotations

import os

import pytest

from ctx_spark.audio.errors import CRASHED, AudioError
from ctx_spark.audio.params import MelParams
from ctx_spark.extract import tasks
from ctx_spark.testing.audio import VIBE_ACE


def test_an_isolated_decode_gives_the_same_spectrogram(config) -> None:
    params = config.section("audio", MelParams)
    here = tasks._mel_row(str(VIBE_ACE), params, -60.0, False, "none")
    isolated = tasks._mel_row(str(VIBE_ACE), params, -60.0, True, "none")
    assert here[2] is None and isolated[2] is None, (here[2:], isolated[2:])
    assert isolated[0] == here[0] and isolated[1] == here[1]


def test_a_child_that_dies_becomes_crashed() -> None:
    with pytest.raises(AudioError) as caught:
        tasks.run_isolated(os._exit, 3)
    assert caught.value.reason == CRASHED and "exit code 3" in caught.value.message
