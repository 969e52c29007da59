"""The ``refresh`` config section (conf/refresh.yaml) and the names of the chained stages."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

from ctx_spark import fs
from ctx_spark.registry import STAGES
from ctx_spark.shards.store import StoreSettings

#: The chained stages, in order, and the snapshot subdirectory each one writes.
STAGE_DIRS = {stage.name: stage.output_dir for stage in STAGES}
AUDIO_SOURCES = ("auto", "column", "dir")

#: Settings that change how a run is operated, not what it produces: left out of the
#: fingerprint that decides whether an unfinished run may be resumed.
OPERATIONAL_KEYS = (
    "keep_snapshots",
    "lock_stale_seconds",
    "lock_heartbeat_seconds",
    "fail_after_stage",
    "report",
    "report_top",
    "max_failure_rate",
)
#: ``refresh.store`` settings that change where spectrograms sit or when unused ones go,
#: never what a snapshot holds: also left out of the fingerprint.
OPERATIONAL_STORE_KEYS = ("file_mb", "compact_below", "gc", "gc_grace_seconds")
#: The store's directory under the root when ``refresh.store.path`` is null.
STORE_DIR = "melstore"


@dataclass(frozen=True)
class RefreshSettings:
    """Settings of jobs/refresh_catalogue.py; see conf/refresh.yaml.

    Attributes:
        audio_source: ``auto``, ``column`` or ``dir``.
        audio_dir: audio directory (relative to the catalogue, or absolute / a URI).
        model: training run directory to score with, or None.
        keep_snapshots: published snapshots kept (>= 1).
        lock_stale_seconds: lock age (s) after which it is taken over.
        lock_heartbeat_seconds: interval (s) of the lock's heartbeat.
        fail_after_stage: test/ops hook, a stage name or None.
        report: write the snapshot's report site (``S/report/index.html``).
        report_top: tracks per context page of the site.
        max_failure_rate: largest share of the dataset's tracks without a spectrogram
            (no audio, or a file that failed) a run may publish.
        store: the shared mel store (``refresh.store``).
    """

    audio_source: str
    audio_dir: str
    model: Optional[str]
    keep_snapshots: int
    lock_stale_seconds: float
    lock_heartbeat_seconds: float
    fail_after_stage: Optional[str]
    report: bool = True
    report_top: int = 100
    max_failure_rate: float = 0.5
    store: StoreSettings = field(default_factory=StoreSettings)

    def __post_init__(self) -> None:
        if not 0 <= self.max_failure_rate <= 1:
            raise ValueError(f"max_failure_rate must be in [0, 1], got {self.max_failure_rate}")
        if self.audio_source not in AUDIO_SOURCES:
            raise ValueError(f"audio_source must be one of {', '.join(AUDIO_SOURCES)}, got {self.audio_source!r}")
        if not self.audio_dir:
            raise ValueError("audio_dir must not be empty")
        if self.model is not None and not self.model.strip():
            raise ValueError("model must be null (no scores) or a training run directory, got an empty string")
        if self.keep_snapshots < 1:
            raise ValueError(f"keep_snapshots must be >= 1, got {self.keep_snapshots}")
        if self.lock_heartbeat_seconds <= 0 or self.lock_stale_seconds < 2 * self.lock_heartbeat_seconds:
            raise ValueError("lock_heartbeat_seconds must be > 0 and at most half of lock_stale_seconds")
        if self.report_top < 1:
            raise ValueError(f"report_top must be >= 1, got {self.report_top}")
        if self.fail_after_stage is not None and self.fail_after_stage not in STAGE_DIRS:
            raise ValueError(
                f"fail_after_stage must be null or one of {', '.join(STAGE_DIRS)}, got {self.fail_after_stage!r}"
            )


def store_root(settings: RefreshSettings, root: str) -> str:
    """The mel store's directory: ``refresh.store.path`` (relative to the root ``root``, or
    absolute / a URI), or ``<root>/melstore``."""
    path = settings.store.path
    if not path:
        return f"{root.rstrip('/')}/{STORE_DIR}"
    if "://" in path or path.startswith("file:") or os.path.isabs(path):
        return fs.qualify(path).rstrip("/")
    return f"{root.rstrip('/')}/{path.strip('/')}"
