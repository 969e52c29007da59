"""The ``extract`` config section (conf/extract.yaml): how the extraction job runs."""

from __future__ import annotations

from dataclasses import dataclass

ID_TYPES = ("auto", "int64", "string")
CHANGE_DETECTION = ("size_mtime", "checksum")
COMPRESSIONS = ("snappy", "zstd", "gzip", "none")


@dataclass(frozen=True)
class ExtractSettings:
    """Settings of jobs/extract_mels.py; units in the field comments.

    Attributes:
        extensions: audio file extensions listed by ``--audio-dir``, by preference.
        id_type: ``auto``, ``int64`` or ``string`` (see conf/extract.yaml).
        incremental: reuse the previous output's spectrograms of unchanged tracks.
        change_detection: ``size_mtime`` or ``checksum``.
        silence_peak_dbfs: peak level (dBFS) at or below which an excerpt is silent.
        tracks_per_task: target tracks per audio task.
        partitions: fixed number of audio tasks (0: from ``tracks_per_task``).
        batch_rows: rows per Arrow batch returned by an audio task.
        row_group_mb: target Parquet row group size (MiB).
        row_groups_per_file: row groups per shard file at most.
        compression: Parquet codec of the shards.
        isolate_on_retry: decode in child processes when an audio task is retried.
        max_failure_rate: largest fraction of the tracks in that may fail (no audio
            included) for the output to be published; 1 publishes whatever fails.
        allow_empty: publish an output although the input holds no track at all.
    """

    extensions: tuple[str, ...]
    id_type: str
    incremental: bool
    change_detection: str
    silence_peak_dbfs: float
    tracks_per_task: int
    partitions: int
    batch_rows: int
    row_group_mb: float
    row_groups_per_file: int
    compression: str
    isolate_on_retry: bool
    max_failure_rate: float
    allow_empty: bool

    def __post_init__(self) -> None:
        if not self.extensions or any(not e or "." in e or "/" in e for e in self.extensions):
            raise ValueError("extensions must be a non-empty list of bare extensions such as mp3")
        if self.id_type not in ID_TYPES:
            raise ValueError(f"id_type must be one of {', '.join(ID_TYPES)}, got {self.id_type!r}")
        if self.change_detection not in CHANGE_DETECTION:
            raise ValueError(
                f"change_detection must be one of {', '.join(CHANGE_DETECTION)}, got {self.change_detection!r}"
            )
        if self.compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)}, got {self.compression!r}")
        if self.silence_peak_dbfs > 0:
            raise ValueError("silence_peak_dbfs must be <= 0 (dB relative to full scale)")
        if self.tracks_per_task < 1 or self.partitions < 0 or self.batch_rows < 1:
            raise ValueError("tracks_per_task and batch_rows must be >= 1, partitions >= 0")
        if self.row_group_mb <= 0 or self.row_groups_per_file < 1:
            raise ValueError("row_group_mb must be > 0 and row_groups_per_file >= 1")
        if not 0.0 <= self.max_failure_rate <= 1.0:
            raise ValueError("max_failure_rate must be between 0 and 1 (a fraction of the tracks in)")

    @property
    def checksum(self) -> bool:
        """Whether changes are detected by content checksum rather than size and mtime."""
        return self.change_detection == "checksum"
