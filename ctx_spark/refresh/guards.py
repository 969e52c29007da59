"""Refusals that keep a meaningless snapshot from being published: no audio at all, or a
dataset most of whose tracks have no spectrogram (a wrong ``audio_dir``, an unmounted
share, a table of dead URIs). Either would otherwise publish labels with hardly any
spectrograms and move ``R/current`` to it.
"""

from __future__ import annotations

from typing import Any

from ctx_spark.errors import InputError
from ctx_spark.refresh.inputs import Catalogue
from ctx_spark.refresh.settings import RefreshSettings


def check_audio_listing(fingerprint: dict[str, Any], cat: Catalogue) -> None:
    """Refuse an audio directory that holds no file, before any stage runs.

    Raises:
        InputError: naming the directory and the settings that choose it.
    """
    audio = (fingerprint.get("inputs") or {}).get("audio")
    if cat.audio_dir is not None and audio is not None and not audio.get("files"):
        raise InputError(
            f"catalogue {cat.root}: the audio directory {cat.audio_dir} holds no files, so no track would get a "
            "spectrogram; point refresh.audio_dir at the audio (or give C/tracks an 'audio' column, "
            "refresh.audio_source)"
        )


def check_extraction(report: dict[str, Any], settings: RefreshSettings, cat: Catalogue) -> None:
    """Refuse to go on when more than ``refresh.max_failure_rate`` of the dataset's tracks
    got no spectrogram (checked after the extraction stage; the run stays resumable, and
    a rerun with the setting raised publishes it without extracting again).

    Raises:
        InputError: the share, the main reasons, where the audio was looked for, and the
            setting to change.
    """
    total = int(report.get("tracks_in") or 0)
    failed = int(report.get("failed_total") or 0)
    if total == 0 or failed / total <= settings.max_failure_rate:
        return
    reasons = sorted((report.get("failed") or {}).items(), key=lambda item: (-item[1], item[0]))
    shown = ", ".join(f"{reason} {n}" for reason, n in reasons[:3])
    where = f"audio directory {cat.audio_dir}" if cat.audio_dir else f"the 'audio' column of {cat.tracks}"
    errors = (report.get("outputs") or {}).get("errors")
    raise InputError(
        f"{failed} of {total} dataset tracks ({failed / total:.0%}) have no spectrogram ({shown}; looked in the "
        f"{where}; rows in {errors}): more than refresh.max_failure_rate ({settings.max_failure_rate:g}) allows, so "
        "the snapshot is not published. Fix the audio, or raise refresh.max_failure_rate to publish it anyway"
    )
