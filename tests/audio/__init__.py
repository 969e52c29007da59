"""Tests of the audio floor: decoding and the log-mel transform."""
