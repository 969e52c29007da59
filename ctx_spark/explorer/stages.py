"""The dataset page (split, per-context shares, co-occurrences, weights) and the extraction
page (computed, reused and failed tracks, with the failed files), from the stages' reports,
``cooccurrence.csv`` and at most ``errors_limit`` rows of ``errors/``."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ctx_spark.explorer import html as H
from ctx_spark.explorer import svg
from ctx_spark.explorer.readers import head_rows
from ctx_spark.explorer.sources import Sources

SPLITS = ("train", "validation", "test")
STAT_KEYS = ("entries", "mean", "std", "min", "p05", "p25", "p50", "p75", "p95", "max")


def _splits(site, report: dict) -> H.Raw:
    split = report.get("split") or {}
    sizes = split.get("sizes") or {}
    rows = [
        (name, H.num((v or {}).get("tracks")), H.num((v or {}).get("share"), 4), H.num((v or {}).get("target"), 2))
        for name, v in sizes.items()
    ]
    facts = [
        ("method", split.get("method")),
        ("groups", split.get("groups")),
        ("largest deviation of any share", split.get("max_deviation")),
        ("tolerance", split.get("tolerance")),
        ("within tolerance", split.get("within_tolerance")),
    ]
    groups = report.get("groups") or {}
    facts += [(f"groups: {k.replace('_', ' ')}", v) for k, v in groups.items() if not isinstance(v, (dict, list))]
    return H.cols(
        H.table("Split sizes", ["split", "tracks", "share", "target"], rows),
        H.key_values("Split and artist/album groups", facts),
    )


def _shares(site, src: Sources, report: dict) -> H.Raw:
    per = (report.get("split") or {}).get("per_context_share") or {}
    if not per:
        return H.notice("the dataset report has no per-context shares")
    names = list(dict.fromkeys([*[n for n in src.contexts if n in per], *per]))
    splits = [s for s in SPLITS if any(s in (per[n] or {}) for n in names)]
    sizes = (report.get("split") or {}).get("sizes") or {}
    rows = [(n, H.num((per[n] or {}).get("tracks")), *[H.num((per[n] or {}).get(s), 3) for s in splits]) for n in names]
    chart = site.svg(
        svg.stacked,
        "Per-context shares per split (dashed: the split targets)",
        "Stacked bar chart of each context's share of tracks in each split; a context without tracks has no bar.",
        names,
        {s: [(per[n] or {}).get(s, 0) for n in names] for s in splits},
        [float(((sizes.get(s) or {}).get("target")) or 0) for s in splits],
    )
    return H.cols(chart, H.table("Per-context shares per split", ["context", "tracks", *splits], rows))


def read_cooccurrence(path: Path) -> Optional[tuple[list[str], np.ndarray]]:
    """(context order, count matrix) from ``cooccurrence.csv``; None when unreadable."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError):
        return None
    names = list(dict.fromkeys([c for r in rows if (c := r.get("context")) is not None]))
    index = {n: i for i, n in enumerate(names)}
    matrix = np.zeros((len(names), len(names)))
    try:
        for r in rows:
            if r.get("co_context") in index:
                matrix[index[r["context"]], index[r["co_context"]]] = float(r.get("tracks") or 0)
    except ValueError:
        return None
    return names, matrix


def _cooccurrence(site, part) -> H.Raw:
    parsed = read_cooccurrence(part.path / "cooccurrence.csv")
    image = site.copy_image(
        part.path / "cooccurrence.png",
        "cooccurrence",
        "Heatmaps of context co-occurrence: track counts and P(column given row)",
        "Co-occurrence of contexts on the dataset's tracks (the dataset stage's figure)",
    )
    if image is None and parsed is not None:
        image = site.svg(
            svg.heatmap,
            "Tracks carrying both contexts (re-plotted from cooccurrence.csv)",
            "Heatmap of context co-occurrence counts: darker cells, more tracks carry both the row's "
            "and the column's context.",
            parsed[0],
            parsed[1].tolist(),
        )
    if parsed is None:
        return H.join([image or "", H.notice(f"{part.path / 'cooccurrence.csv'} is missing or unreadable")])
    names, matrix = parsed
    rows = [(n, *[H.num(int(v)) for v in matrix[i]]) for i, n in enumerate(names)]
    return H.join(
        [
            image or H.notice("no co-occurrence figure"),
            H.details(
                "Co-occurrence counts as a table",
                H.table("Tracks carrying both the row's and the column's context", ["context", *names], rows),
            ),
        ]
    )


def _weights(site, src: Sources, report: dict) -> H.Raw:
    weights = report.get("weights") or {}
    entries, rows = [], []
    for weight in ("neg_exact", "neg_ignore_zeros", "pos_tfidf"):
        by_split = weights.get(weight) or {}
        for split in (*SPLITS, "all"):
            stats = by_split.get(split)
            if not isinstance(stats, dict):
                continue
            rows.append(
                (
                    f"{weight} ({split})",
                    *[H.num(stats.get(k), 4) for k in STAT_KEYS],
                    H.num(stats.get("fallback_entries")),
                )
            )
            if stats.get("entries"):
                entries.append((f"{weight} ({split})", stats))
    parts = []
    if entries:
        parts.append(
            site.svg(
                svg.boxes,
                "Sample-level loss weights per split",
                "Box chart of each weight's distribution per split, from the report's summaries: "
                "p25 to p75 box, p05 to p95 whiskers, median bar, mean dot, min and max ticks.",
                entries,
            )
        )
    parts.append(
        H.table(
            "Weight distributions (entries: track-context pairs the weight applies to)",
            ["weight (split)", *STAT_KEYS, "fallback"],
            rows,
        )
    )
    constants = weights.get("pos_tfidf_constants") or {}
    if constants:
        names = list(dict.fromkeys([*[n for n in src.contexts if n in constants], *constants]))
        parts.append(
            H.table(
                "pos_tfidf per context (estimated on the training split)",
                ["context", "training positives", "N_c", "mean of x", "std of x"],
                [
                    (
                        n,
                        H.num((constants[n] or {}).get("train_positives")),
                        H.num((constants[n] or {}).get("N_c")),
                        H.num((constants[n] or {}).get("mean"), 4),
                        H.num((constants[n] or {}).get("std"), 4),
                    )
                    for n in names
                ],
            )
        )
    return H.join(parts)


def _balance(report: dict) -> H.Raw:
    balance = report.get("balance") or {}
    per = balance.get("per_context") or {}
    facts = [(k.replace("_", " "), v) for k, v in balance.items() if not isinstance(v, (dict, list))]
    rows = [
        (n, H.num((v or {}).get("before")), H.num((v or {}).get("after")), H.number((v or {}).get("reached_cap")))
        for n, v in per.items()
    ]
    return H.cols(
        H.key_values("Balancing", facts),
        H.table("Tracks per context before and after balancing", ["context", "before", "after", "reached cap"], rows),
    )


def write_dataset(site) -> None:
    src: Sources = site.src
    part = src["dataset"]
    report = src.report("dataset")
    if report is None:
        site.write("dataset.html", "Dataset", H.notice(f"dataset output: {part.problem}"))
        return
    seconds = report.get("seconds") or {}
    body = H.join(
        [
            H.tag(
                "p",
                "How the labelled tracks were balanced, grouped and split, how the contexts co-occur, and the "
                "sample-level loss weights.",
                class_="lead",
            ),
            H.key_values(
                "Dataset",
                [
                    ("tracks", (report.get("dataset") or {}).get("tracks")),
                    ("label patterns", (report.get("dataset") or {}).get("label_patterns")),
                    ("labelled tracks in", (report.get("input") or {}).get("rows")),
                    ("elapsed seconds", report.get("elapsed_seconds")),
                ],
            ),
            H.section("Split", _splits(site, report)),
            H.section("Per-context shares per split", _shares(site, src, report)),
            H.section("Co-occurrences", _cooccurrence(site, part)),
            H.section("Loss weights", _weights(site, src, report)),
            H.section("Balancing", _balance(report)),
            H.section(
                "Seconds per step",
                H.table("Seconds per step", ["step", "seconds"], [(k, H.num(v, 2)) for k, v in seconds.items()]),
            ),
        ]
    )
    site.write("dataset.html", "Dataset", body)


def _failures(site, report: dict) -> H.Raw:
    failed = report.get("failed") or {}
    if not failed:
        return H.tag("p", "No track failed.")
    names = sorted(failed, key=lambda k: (-int(failed[k] or 0), k))
    return H.cols(
        H.table("Failed tracks by reason", ["reason", "tracks"], [(n, H.num(failed[n])) for n in names]),
        site.svg(
            svg.hbars,
            "Failed tracks by reason",
            "Bar chart of the failed tracks by reason.",
            names,
            {"tracks": [failed[n] for n in names]},
            "tracks",
        ),
    )


def _errors(site, part) -> H.Raw:
    path = part.path / "errors"
    if not path.exists():
        return H.notice(f"{path} does not exist")
    try:
        rows, total = head_rows(path, site.errors_limit, ["track_id", "audio", "stage", "reason", "message"])
    except Exception as exc:  # a damaged errors/ table is reported, not fatal
        return H.notice(f"{path} could not be read: {type(exc).__name__}: {exc}", "error")
    if not total:
        return H.tag("p", "No failed files.")
    shown = f"{len(rows):,} of {total:,}" if total > len(rows) else f"all {total:,}"
    table = H.table(
        f"Failed files: showing {shown} (errors/, up to {site.errors_limit:,} rows listed)",
        ["track", "audio", "stage", "reason", "message"],
        [
            (
                r.get("track_id"),
                H.Cell(r.get("audio"), "path"),
                r.get("stage"),
                r.get("reason"),
                H.Cell(r.get("message"), "msg"),
            )
            for r in rows
        ],
    )
    return H.join([H.tag("p", f"{H.plural(total, 'failed file')} in all; {shown} listed."), table])


def _extract_facts(report: dict) -> list[tuple[str, Any]]:
    facts: list[tuple[str, Any]] = [("tracks in", report.get("tracks_in"))]
    facts += [(f"tracks in: {k}", v) for k, v in (report.get("tracks_in_per_split") or {}).items()]
    facts += [("tracks without audio", report.get("tracks_without_audio")), ("written", report.get("written_total"))]
    facts += [(f"written: {k}", v) for k, v in (report.get("written") or {}).items()]
    facts += [
        ("computed", report.get("computed")),
        ("reused", report.get("reused")),
        ("failed", report.get("failed_total")),
        ("audio seconds decoded", report.get("audio_seconds_decoded")),
        ("tracks per second", report.get("tracks_per_second")),
        ("elapsed seconds", report.get("elapsed_seconds")),
        ("incremental", report.get("incremental")),
        ("previous output", report.get("previous_output")),
    ]
    return facts


def write_extraction(site) -> None:
    src: Sources = site.src
    part = src["mels"]
    report = src.report("mels")
    if report is None:
        site.write("extraction.html", "Extraction", H.notice(f"mel extraction output: {part.problem}"))
        return
    body = H.join(
        [
            H.tag(
                "p",
                "Which tracks' spectrograms were computed, reused from the previous snapshot or failed, and why.",
                class_="lead",
            ),
            H.key_values("Mel extraction", _extract_facts(report)),
            H.section("Failures by reason", _failures(site, report)),
            H.section("Failed files", _errors(site, part)),
        ]
    )
    site.write("extraction.html", "Extraction", body)
