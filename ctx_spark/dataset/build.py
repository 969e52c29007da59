"""The whole dataset plan: checks, balancing, groups, split, weights, co-occurrences.

:func:`build_dataset` runs every step that needs a decision on the driver (balancing
rounds, components, giant groups, weight tables) and returns the final table lazily, plus
the bounded statistics the report and the co-occurrence files are made from. Each step
ends with a Spark action, so the step timings in the report are meaningful.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Optional, cast

import numpy as np
from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ctx_spark.dataset import balance as B
from ctx_spark.dataset import cooccurrence as C
from ctx_spark.dataset import patterns as P
from ctx_spark.dataset import weights as W
from ctx_spark.dataset.groups import connected_groups
from ctx_spark.dataset.inputs import check_track_labels, prepare_tracks
from ctx_spark.dataset.settings import SPLITS, DatasetSettings
from ctx_spark.dataset.split import assign_splits, group_statistics, group_table, previous_groups, split_report
from ctx_spark.errors import InputError
from ctx_spark.logs import get_logger, stage
from ctx_spark.schema import LABELS, SPLIT, TRACK_ID, WEIGHT_COLUMNS

log = get_logger("dataset")

#: Columns of the ``dataset/`` output, in order.
OUTPUT_COLUMNS = (
    TRACK_ID,
    "artist_id",
    "album_id",
    "group_id",
    SPLIT,
    LABELS,
    "n_playlists",
    *WEIGHT_COLUMNS,
)


@dataclass
class DatasetBuild:
    """The result of :func:`build_dataset`.

    Attributes:
        dataset: the output rows (:data:`OUTPUT_COLUMNS`), sorted by track id, lazy over
            persisted intermediate tables; call ``release`` after writing.
        cooccurrence: (counts, conditional) (m, m) matrices over the dataset.
        report: counts and statistics of every step (see docs/dataset.md, "Outputs").
        seconds: wall time of each step.
    """

    dataset: DataFrame
    cooccurrence: tuple[np.ndarray, np.ndarray]
    report: dict[str, Any]
    seconds: dict[str, float]
    counts_by_split: dict[str, np.ndarray]
    _cached: list[DataFrame] = field(default_factory=list)
    _releases: list[Any] = field(default_factory=list)

    def release(self) -> None:
        """Drop the cached intermediate tables."""
        for df in self._cached:
            df.unpersist()
        for release in self._releases:
            release()


def check_splits(
    counts_by_split: dict[str, np.ndarray], tracks: int, groups: dict[str, Any], settings: DatasetSettings
) -> None:
    """Refuse a split left without tracks, before anything is written.

    Raises:
        InputError: the train split is empty (no loss weight can be estimated), or the
            validation or test split is empty and ``dataset.allow_empty_splits`` is false;
            the message says why it happens and which settings change it.
    """
    empty = [s for s in SPLITS if int(counts_by_split[s].sum()) == 0]
    if not empty:
        return
    if SPLITS[0] not in empty and settings.allow_empty_splits:
        log.warning("the %s split is empty (dataset.allow_empty_splits: true)", " and ".join(empty))
        return
    shares = ", ".join(f"{s} {f:g}" for s, f in zip(SPLITS, settings.split.as_tuple()))
    why = (
        f"{tracks} tracks in {groups['groups']} artist/album groups (the largest holds {groups['size_max']}) "
        f"cannot fill every split of dataset.split ({shares})"
    )
    if SPLITS[0] in empty:
        raise InputError(
            f"dataset: the train split is empty: {why}, and the loss weights are estimated on it; give the "
            "dataset more tracks (a larger dataset.cap, more labelled tracks) or a larger dataset.split.train"
        )
    raise InputError(
        f"dataset: the {' and '.join(empty)} split{'s are' if len(empty) > 1 else ' is'} empty: {why}; training "
        "needs a validation split and evaluation a test split. Give the dataset more tracks (a larger dataset.cap, "
        "more labelled tracks) or change dataset.split; dataset.allow_empty_splits: true writes it anyway"
    )


@contextmanager
def _step(seconds: dict[str, float], name: str) -> Iterator[Any]:
    started = time.perf_counter()
    with stage(log, name) as timer:
        yield timer
    seconds[name] = round(time.perf_counter() - started, 3)


def build_dataset(
    track_labels: DataFrame,
    names: Sequence[str],
    settings: DatasetSettings,
    source: str = "track_labels",
    previous_splits: Optional[DataFrame] = None,
) -> DatasetBuild:
    """Plan and partly run the dataset assembly.

    Args:
        track_labels: contract-validated ``track_labels`` (see
            :data:`ctx_spark.schema.TRACK_LABELS`).
        names: the configured contexts, in order (m of them).
        settings: the ``dataset`` section.
        source: where the table came from, for error messages.
        previous_splits: (track_id, split) of an earlier dataset whose groups keep their
            split (:func:`ctx_spark.dataset.split.previous_groups`); None stratifies all.

    Raises:
        InputError: bad rows (see :func:`check_track_labels`), or no track left to split.
    """
    m = len(names)
    seconds: dict[str, float] = {}
    cached: list[DataFrame] = []
    report: dict[str, Any] = {}

    with _step(seconds, "check input") as t:
        report["input"] = check_track_labels(track_labels, names, source)
        t.rows = report["input"]["rows"]
    with _step(seconds, "label patterns") as t:
        prepared = prepare_tracks(track_labels, names).persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(prepared)
        input_counts = P.dense_counts([(p, n) for p, n in P.collect_pattern_counts(prepared)], m)
        report["input"]["tracks_without_context"] = int(input_counts[0])
        t.rows = report["input"]["rows"]
    with _step(seconds, "balance") as t:
        if settings.balance:
            balanced = B.balance(prepared, names, settings.cap, settings.seed, input_counts)
        else:
            balanced = B.keep_all(prepared, names, input_counts)
        report["balance"] = balanced.report
        t.rows = report["input"]["rows"]
    n_selected = int(balanced.selected_counts.sum())
    if n_selected == 0:
        raise InputError(f"table 'track_labels' ({source}): no track carries a configured context; nothing to split")

    with _step(seconds, "connected components") as t:
        groups_result = connected_groups(
            balanced.selected,
            settings.max_component_iterations,
            settings.checkpoint_dir,
            settings.max_album_artists,
            settings.driver_components_max_edges,
        )
        grouped = groups_result.tracks.persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(grouped)
        t.rows = n_selected
    with _step(seconds, "group table") as t:
        groups = group_table(grouped, m, settings.seed).persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(groups)
        report["groups"] = {**groups_result.report(), **group_statistics(groups)}
        largest = report["groups"]["size_max"] / n_selected
        report["groups"]["size_max_share"] = round(largest, 5)
        smallest = min(f for f in settings.split.as_tuple() if f > 0)
        if largest > smallest:
            log.warning(
                "the largest group holds %.1f%% of the tracks, more than the smallest split's "
                "target (%.1f%%); the split cannot meet its proportions (see dataset.max_album_artists)",
                100 * largest,
                100 * smallest,
            )
        t.rows = n_selected
    with _step(seconds, "split") as t:
        totals = np.concatenate([[n_selected], P.context_counts(balanced.selected_counts, m)])
        kept = None
        if previous_splits is not None:
            kept = previous_groups(grouped, previous_splits).persist(StorageLevel.MEMORY_AND_DISK)
            cached.append(kept)
        split = assign_splits(groups, settings, totals, m, report["groups"]["groups"], kept)
        rows = grouped.join(split.assignment, "group_id").persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(rows)
        by_split = P.collect_pattern_counts(rows, ["split"])
        counts_by_split = {s: P.dense_counts([(p, n) for sp, p, n in by_split if sp == s], m) for s in SPLITS}
        assigned = int(sum(d.sum() for d in counts_by_split.values()))
        if assigned != n_selected:  # an invariant of the join, checked because it is free here
            raise RuntimeError(f"split assigned {assigned} tracks, expected {n_selected}")
        check_splits(counts_by_split, n_selected, report["groups"], settings)
        report["split"] = {
            **split.report,
            **split_report(counts_by_split, settings.split.as_tuple(), names, settings.tolerance),
        }
        if not report["split"]["within_tolerance"]:
            log.warning(
                "split shares deviate by up to %.4f from the targets (tolerance %.4f)",
                report["split"]["max_deviation"],
                settings.tolerance,
            )
        t.rows = n_selected
    with _step(seconds, "weights") as t:
        all_patterns = np.flatnonzero(sum(counts_by_split.values()))
        negative = W.negative_weights(counts_by_split["train"], all_patterns, m)
        stats = W.positive_stats(W.positive_sums(rows.where(F.col("split") == "train")), m)
        weighted = W.add_weights(rows, negative, stats, m)
        report["weights"] = {
            "estimated_on": "train",
            "pos_tfidf_constants": {
                names[c]: {
                    "N_c": int(stats.totals[c]),
                    "mean": float(stats.mean[c]),
                    "std": float(stats.std[c]),
                    "train_positives": int(stats.positives[c]),
                }
                for c in range(m)
            },
            **W.negative_summary(negative, counts_by_split, m),
        }
        t.rows = n_selected
    total_counts = cast(np.ndarray, sum(counts_by_split.values()))  # one array per split: never the empty sum 0
    report["dataset"] = {
        "tracks": n_selected,
        "label_patterns": int(np.count_nonzero(total_counts)),
        "per_context": dict(zip(names, (int(v) for v in P.context_counts(total_counts, m)))),
    }
    dataset = weighted.select(*OUTPUT_COLUMNS).orderBy("track_id")
    return DatasetBuild(
        dataset=dataset,
        cooccurrence=C.matrices(total_counts, m),
        report=report,
        seconds=seconds,
        counts_by_split=counts_by_split,
        _cached=cached,
        _releases=[balanced.release],
    )
