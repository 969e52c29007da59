"""The stage registry: every chained stage's name, output directory, settings, runner and summary.

The refresh pipeline, its manifest and its summary iterate over :data:`STAGES` instead of
naming stages in closures and if/elif chains, so a stage is added in one place. Runners and
summaries are named as ``module:function`` and imported when used: the scoring stage lives
in ``training`` (it needs TensorFlow) and is loaded only when a model is configured, so
nothing here imports ``training`` at import time.

A runner takes a :class:`StageRequest` and returns the stage's report (the dict it also
wrote as ``report.json``); a summary takes that report and returns the few counts the
refresh manifest keeps.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from pyspark.sql import SparkSession

from ctx_spark.config import Config


@dataclass(frozen=True)
class StageRequest:
    """What one stage of a chained run reads and where it writes.

    Attributes:
        spark, cfg: the run's session and configuration.
        out: this stage's output directory.
        inputs: named input paths of the run: ``playlists``, ``playlist_tracks``,
            ``tracks``, ``audio_table`` or ``audio_dir``, ``model`` (absent when not set).
        upstream: output directory of every earlier stage of this run, by stage name.
        previous: this stage's output in the previously published run, or None.
    """

    spark: SparkSession
    cfg: Config
    out: str
    inputs: Mapping[str, str]
    upstream: Mapping[str, str] = field(default_factory=dict)
    previous: Optional[str] = None


@dataclass(frozen=True)
class Stage:
    """One chained stage.

    Attributes:
        name: the stage's name (manifest keys, ``refresh.fail_after_stage``).
        output_dir: the snapshot sub-directory it writes.
        section: its configuration section.
        runner: ``module:function`` taking a :class:`StageRequest`, returning the report.
        summary: ``module:function`` taking the report, returning the manifest's counts.
        line: ``module:function`` taking those counts, returning one line for the run's
            printed summary.
        needs_model: run only when a trained model is configured.
    """

    name: str
    output_dir: str
    section: str
    runner: str
    summary: str
    line: str
    needs_model: bool = False

    def run(self, request: StageRequest) -> dict[str, Any]:
        """Run the stage and return its report."""
        return _resolve(self.runner)(request)

    def manifest_rows(self, report: Mapping[str, Any]) -> dict[str, Any]:
        """The counts the refresh manifest keeps from this stage's report."""
        return _resolve(self.summary)(report)

    def summary_line(self, rows: Mapping[str, Any]) -> str:
        """One line about the stage from its manifest counts."""
        return _resolve(self.line)(rows)


def _resolve(target: str) -> Callable[..., Any]:
    module, attribute = target.split(":")
    return getattr(importlib.import_module(module), attribute)


#: The chained stages, in order.
def _stage(name: str, output_dir: str, module: str, needs_model: bool = False) -> Stage:
    """A stage whose runner module defines ``run_in_chain``, ``manifest_rows`` and ``manifest_line``."""
    return Stage(
        name,
        output_dir,
        name,
        f"{module}:run_in_chain",
        f"{module}:manifest_rows",
        f"{module}:manifest_line",
        needs_model,
    )


STAGES: tuple[Stage, ...] = (
    _stage("label", "labels", "ctx_spark.label.run"),
    _stage("dataset", "dataset", "ctx_spark.dataset.run"),
    _stage("extract", "mels", "ctx_spark.extract.run"),
    _stage("score", "scores", "training.score.run", needs_model=True),
)

BY_NAME: dict[str, Stage] = {stage.name: stage for stage in STAGES}


def stages_for(with_model: bool) -> tuple[Stage, ...]:
    """The stages a run chains: all of them with a model, the others without."""
    return tuple(s for s in STAGES if with_model or not s.needs_model)
