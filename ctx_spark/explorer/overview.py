"""The overview page (what this snapshot is, read and did, and what changed) and the
labelling page, from the manifest and the labelling report alone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ctx_spark.explorer import html as H
from ctx_spark.explorer import svg
from ctx_spark.explorer.sources import Sources

STAGE_NAMES = {"label": "labels", "dataset": "dataset", "extract": "mels", "score": "scores"}
PART_TITLES = {
    "labels": "Labelling (labels/)",
    "dataset": "Dataset (dataset/)",
    "mels": "Mel extraction (mels/)",
    "scores": "Scores (scores/)",
    "run": "Training run",
    "evaluation": "Evaluation (Table 1)",
    "comparison": "Comparison (Table 2)",
    "keywords": "Keyword ranking",
}


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Nested counts as (``a.b``, value) pairs, in their order (an empty mapping: "none")."""
    if not isinstance(value, dict):
        yield prefix, value
        return
    for key, inner in value.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(inner, dict) and inner:
            yield from flatten(inner, name)
        else:
            yield name, ("none" if isinstance(inner, dict) else inner)


def stage_rows(src: Sources) -> dict[str, dict[str, Any]]:
    """Per stage: its row counts and seconds, from the manifest, else from the reports
    (separate outputs have no manifest)."""
    stages = (src.manifest or {}).get("stages")
    if isinstance(stages, dict) and stages:
        return {str(k): v for k, v in stages.items() if isinstance(v, dict)}
    out: dict[str, dict[str, Any]] = {}
    label, data, mels, scores = (src.report(n) or None for n in ("labels", "dataset", "mels", "scores"))
    if label:
        out["label"] = {
            "rows": {
                "read": label.get("rows_read"),
                "playlists_kept": label.get("playlists_kept"),
                "tracks_labelled": label.get("tracks_labelled"),
            }
        }
    if data:
        sizes = (data.get("split") or {}).get("sizes") or {}
        out["dataset"] = {
            "rows": {
                "labelled_tracks_in": (data.get("input") or {}).get("rows"),
                "tracks": (data.get("dataset") or {}).get("tracks"),
                "per_split": {s: (v or {}).get("tracks") for s, v in sizes.items()},
            }
        }
    if mels:
        out["extract"] = {
            "rows": {
                "tracks_in": mels.get("tracks_in"),
                "written": mels.get("written_total"),
                "computed": mels.get("computed"),
                "reused": mels.get("reused"),
                "failed": mels.get("failed_total"),
                "failed_by_reason": mels.get("failed"),
            }
        }
    if scores:
        out["score"] = {"rows": {"scored": scores.get("rows_scored"), "unusable": scores.get("rows_unusable")}}
    for name, report in (("label", label), ("dataset", data), ("extract", mels), ("score", scores)):
        if report and name in out:
            out[name]["seconds"] = report.get("elapsed_seconds")
    return out


def _value(v: Any) -> H.Cell:
    return H.num(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else H.Cell(H.number(v))


def _parts_table(src: Sources) -> H.Raw:
    rows = []
    for name, part in src.parts.items():
        status = "present" if part.present else f"absent: {part.problem}"
        rows.append((PART_TITLES.get(name, name), status, H.Cell(part.path or "", "path"), part.how))
    return H.table("What this site was built from", ["part", "status", "path", "found"], rows)


def _inputs(src: Sources) -> H.Raw:
    manifest = src.manifest
    if not manifest:
        rows: list[tuple[Any, ...]] = []
        for name in ("labels", "dataset", "mels", "scores"):
            for key, path in ((src.report(name) or {}).get("inputs") or {}).items():
                rows.append((name, key, H.Cell(path, "path")))
        why = src.manifest_problem or "separate stage outputs have no manifest"
        return H.join(
            [
                H.notice(
                    f"no refresh manifest ({why}): the inputs below come from the stage reports, without fingerprints"
                ),
                H.table("Inputs named by the stage reports", ["stage", "input", "path"], rows),
            ]
        )
    inputs = manifest.get("inputs") or {}
    fingerprint = inputs.get("fingerprint") or {}
    rows = []
    for name, fp in (fingerprint.get("inputs") or {}).items():
        fp = fp if isinstance(fp, dict) else {}
        rows.append(
            (
                name,
                H.Cell(fp.get("path"), "path"),
                H.num(fp.get("files")),
                H.num(fp.get("bytes")),
                fp.get("latest_mtime") or "",
                H.Cell(fp.get("digest"), "path"),
            )
        )
    about = [
        ("catalogue", inputs.get("catalogue")),
        ("audio source", inputs.get("audio_source")),
        ("audio directory", inputs.get("audio_dir")),
        ("model", inputs.get("model") or "none (no scoring)"),
        ("fingerprint digest", fingerprint.get("digest")),
        ("configuration digest", fingerprint.get("config")),
        ("code version", (manifest.get("code") or {}).get("version")),
        ("git commit", (manifest.get("code") or {}).get("git_commit") or "not recorded"),
        ("Spark", " ".join(str(v) for v in (manifest.get("spark") or {}).values())),
    ]
    return H.join(
        [
            H.table(
                "Inputs and their fingerprints", ["input", "path", "files", "bytes", "latest mtime", "digest"], rows
            ),
            H.key_values("Run inputs and code", about),
        ]
    )


def _stages(site, src: Sources) -> H.Raw:
    stages = stage_rows(src)
    if not stages:
        return H.notice("no stage reports to count rows from")
    rows = []
    for stage, info in stages.items():
        counts = [f"{k.replace('_', ' ')}: {H.number(v)}" for k, v in flatten(info.get("rows") or {})]
        rows.append((stage, H.bullet_list(counts, "counts"), H.num(info.get("seconds"), 1)))
    seconds = [(s, v.get("seconds")) for s, v in stages.items() if isinstance(v.get("seconds"), (int, float))]
    table = H.table("Rows and seconds per stage", ["stage", "rows", "seconds"], rows)
    if not seconds:
        return table
    return H.cols(
        table,
        site.svg(
            svg.hbars,
            "Seconds per stage",
            "Bar chart of the seconds each stage took (the table's last column).",
            [s for s, _ in seconds],
            {"seconds": [v for _, v in seconds]},
            "seconds",
        ),
    )


def _changes(site, src: Sources) -> H.Raw:
    if not src.manifest:
        return H.notice("no refresh manifest: changes between snapshots are recorded by the refresh only")
    changes = src.manifest.get("changes") or {}
    previous = src.manifest.get("previous_snapshot")
    parts = []
    mels = changes.get("mels") or {}
    labels = changes.get("labels")
    if labels is None:
        parts.append(
            H.notice(
                "first snapshot of this root: nothing to compare with"
                if previous is None
                else f"no label changes recorded against {previous}"
            )
        )
    else:
        parts.append(
            H.key_values(
                f"Since snapshot {previous}",
                [
                    ("tracks added", labels.get("tracks_added")),
                    ("tracks removed", labels.get("tracks_removed")),
                    ("tracks relabelled", labels.get("tracks_relabelled")),
                    ("spectrograms computed", mels.get("computed")),
                    ("spectrograms reused", mels.get("reused")),
                ],
            )
        )
        gained, lost = labels.get("labels_gained") or {}, labels.get("labels_lost") or {}
        names = list(dict.fromkeys([*src.contexts, *gained, *lost]))
        chart = site.svg(
            svg.diverging,
            "Labels gained and lost per context since the previous snapshot",
            "Bar chart of labels gained (to the right of zero) and lost (to the left) per context; "
            "the table beside it has the same numbers.",
            names,
            [gained.get(n, 0) for n in names],
            [lost.get(n, 0) for n in names],
        )
        parts.append(
            H.cols(
                chart,
                H.table(
                    "Labels gained and lost per context",
                    ["context", "gained", "lost"],
                    [(n, H.num(gained.get(n, 0)), H.num(lost.get(n, 0))) for n in names],
                ),
            )
        )
    return H.join(parts)


def _context_links(site, src: Sources) -> H.Raw:
    labelled = (src.report("labels") or {}).get("tracks_labelled_per_context") or {}
    rows = [(H.Raw(H.tag("a", name, href=H.context_file(name))), H.num(labelled.get(name))) for name in src.contexts]
    what = "top tracks by probability" if src["scores"].present else "labelled tracks (no scores in this snapshot)"
    return H.join(
        [
            H.tag("p", f"Pick a context: its page lists the {what}."),
            H.table("Contexts", ["context", "tracks labelled"], rows),
        ]
    )


def write_overview(site) -> None:
    src: Sources = site.src
    m = src.manifest or {}
    if m:
        lead = H.key_values(
            "Snapshot",
            [
                ("run-id", m.get("run_id")),
                ("status", m.get("status")),
                ("snapshot", m.get("snapshot")),
                ("root", m.get("root")),
                ("started", m.get("started")),
                ("finished", m.get("finished")),
                (
                    "published",
                    m.get("published_at")
                    or (
                        "at the pointer swap, just after this site was written"
                        if m.get("status") == "published"
                        else "no"
                    ),
                ),
                ("attempt", m.get("attempt")),
                ("stages from earlier attempts", ", ".join(m.get("stages_from_earlier_attempts") or []) or "none"),
                ("previous snapshot", m.get("previous_snapshot") or "none (first snapshot)"),
                ("failed stage", m.get("failed_stage") or "none"),
                ("error", m.get("error") or "none"),
            ],
        )
    else:
        lead = H.notice(
            f"built from {'snapshot ' + str(src.snapshot) if src.snapshot else 'separate stage outputs'}"
            f" without a manifest ({src.manifest_problem or 'none given'})",
            "note",
        )
    body = H.join(
        [
            H.tag(
                "p",
                "What this snapshot read, how many rows each stage produced and how long it took, and what "
                "changed since the previous snapshot.",
                class_="lead",
            ),
            H.cols(lead, H.section("Contexts", _context_links(site, src), id_="contexts")),
            H.section("Parts", _parts_table(src), id_="parts"),
            H.section("Inputs", _inputs(src), id_="inputs"),
            H.section("Stages", _stages(site, src), id_="stages"),
            H.section("Changes since the previous snapshot", _changes(site, src), id_="changes"),
        ]
    )
    site.write("index.html", "Overview", body)


def _per_context(site, src: Sources, report: dict) -> H.Raw:
    contexts = report.get("contexts")
    keywords = contexts if isinstance(contexts, dict) else {}
    matched = report.get("playlists_matched_per_context") or {}
    labelled = report.get("tracks_labelled_per_context") or {}
    names = list(dict.fromkeys([*src.contexts, *matched, *labelled]))
    rows = [
        (n, ", ".join(str(k) for k in keywords.get(n) or []), H.num(matched.get(n)), H.num(labelled.get(n)))
        for n in names
    ]
    chart = site.svg(
        svg.hbars,
        "Playlists matched and tracks labelled per context",
        "Bar chart of playlists matched and tracks labelled per context (numbers in the table).",
        names,
        {
            "playlists matched": [matched.get(n, 0) for n in names],
            "tracks labelled": [labelled.get(n, 0) for n in names],
        },
        "count",
    )
    return H.cols(H.table("Per context", ["context", "keywords", "playlists matched", "tracks labelled"], rows), chart)


def _removed(site, report: dict) -> H.Raw:
    removed = report.get("playlists_removed") or {}
    if not removed:
        return H.notice("the labelling report lists no filters")
    names = list(removed)
    return H.cols(
        H.table(
            "Playlists removed by each filter (a playlist may fail several)",
            ["filter", "playlists"],
            [(n.replace("_", " "), H.num(removed[n])) for n in names],
        ),
        site.svg(
            svg.hbars,
            "Playlists removed by each filter",
            "Bar chart of the playlists removed by each filter.",
            [n.replace("_", " ") for n in names],
            {"playlists": [removed[n] for n in names]},
            "playlists",
        ),
    )


def _keywords(src: Sources) -> H.Raw:
    part = src["keywords"]
    if not part.present:
        return H.notice(f"keyword ranking: {part.problem}")
    ranking = (part.report or {}).get("ranking") or []
    rows = [
        (
            H.num(r.get("rank")),
            r.get("keyword"),
            r.get("category"),
            r.get("context") or "",
            H.num(r.get("n_playlists")),
            H.Cell(f"{100 * float(r.get('share') or 0):.2f}%", "num"),
        )
        for r in ranking
        if isinstance(r, dict)
    ]
    return H.table(
        f"Keyword ranking over {H.number((part.report or {}).get('playlists'))} playlists",
        ["rank", "keyword", "category", "context", "playlists", "share"],
        rows,
    )


def _summary(report: dict) -> H.Raw:
    items: list[tuple[str, Any]] = []
    items += [(f"rows read: {k}", v) for k, v in (report.get("rows_read") or {}).items()]
    items += [(f"rows dropped: {k.replace('_', ' ')}", v) for k, v in (report.get("rows_dropped") or {}).items()]
    items += [
        ("playlists matched", report.get("playlists_matched")),
        ("playlists kept", report.get("playlists_kept")),
        ("track-context pairs", report.get("track_context_pairs")),
        ("tracks labelled", report.get("tracks_labelled")),
    ]
    items += [(f"setting: {k}", v) for k, v in (report.get("settings") or {}).items()]
    items += [("elapsed seconds", report.get("elapsed_seconds"))]
    return H.key_values("Labelling summary", items)


def write_labelling(site) -> None:
    src: Sources = site.src
    report = src.report("labels")
    if report is None:
        body = H.join(
            [H.notice(f"labelling output: {src['labels'].problem}"), H.section("Keyword ranking", _keywords(src))]
        )
    else:
        body = H.join(
            [
                H.tag(
                    "p",
                    "Which playlist titles named a context, which playlists the filters removed, and how many "
                    "tracks each context labels.",
                    class_="lead",
                ),
                _summary(report),
                H.section("Playlists and tracks per context", _per_context(site, src, report)),
                H.section("Playlists removed by the filters", _removed(site, report)),
                H.section("Keyword ranking", _keywords(src)),
            ]
        )
    site.write("labelling.html", "Labelling", body)
