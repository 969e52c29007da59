"""The ``score`` config section (conf/score.yaml)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScoreSettings:
    """The ``score`` config section (conf/score.yaml)."""

    batch_size: int
    arrow_batch_rows: int
    parquet_batch_rows: int
    tf_threads: int
    ranking_partitions: int
    report_top: int

    def __post_init__(self) -> None:
        if min(self.batch_size, self.arrow_batch_rows, self.parquet_batch_rows) < 1:
            raise ValueError("batch_size, arrow_batch_rows and parquet_batch_rows must be >= 1")
        if self.tf_threads < 0 or self.ranking_partitions < 0 or self.report_top < 0:
            raise ValueError("tf_threads, ranking_partitions and report_top must be >= 0")
