"""The run manifest (``R/snapshots/<run-id>/manifest.json``) and its human summary.

The manifest is built from what the stages left in their own ``report.json`` files (so a
stage completed by an earlier, interrupted attempt reports its real counts and timing), the
run's state, and the label diff against the previously published snapshot.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Optional

import ctx_spark
from ctx_spark.logs import get_logger

log = get_logger("refresh")


def code_version() -> dict[str, Optional[str]]:
    """The package version and, from a git checkout, the commit (None elsewhere: an
    installed package or a container image without .git)."""
    root = Path(ctx_spark.__file__).resolve().parent.parent
    commit = None
    if (root / ".git").exists():
        try:
            done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                  timeout=10, check=False)
            commit = (done.stdout.strip() or None) if done.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            commit = None
    return {"version": ctx_spark.__version__, "git_commit": commit}


def stage_summary(name: str, report: dict[str, Any]) -> dict[str, Any]:
    """Row counts and timing of one stage, from its report.json."""
    if name == "label":
        rows = {"read": report["rows_read"], "playlists_kept": report["playlists_kept"],
                "tracks_labelled": report["tracks_labelled"]}
    elif name == "dataset":
        rows = {"labelled_tracks_in": report["input"]["rows"], "tracks": report["dataset"]["tracks"],
                "per_split": {s: v["tracks"] for s, v in report["split"]["sizes"].items()}}
    elif name == "extract":
        rows = {"tracks_in": report["tracks_in"], "written": report["written_total"],
                "per_split": report["written"], "computed": report["computed"], "reused": report["reused"],
                "failed": report["failed_total"], "failed_by_reason": report["failed"]}
    else:
        rows = {"scored": report["rows_scored"], "unusable": report["rows_unusable"]}
    return {"rows": rows, "seconds": report.get("elapsed_seconds")}


def summary(manifest: dict[str, Any]) -> str:
    """A few lines for the job's stdout (and a cron log)."""
    stages, changes = manifest["stages"], manifest.get("changes") or {}
    head = f"refresh {manifest['run_id']}: {manifest['status']}"
    if manifest["status"] == "published":
        head += f", current snapshot {manifest['snapshot']}"
    if manifest.get("attempt", 1) > 1:
        head += (f" (attempt {manifest['attempt']}; stages done by earlier attempts: "
                 f"{', '.join(manifest['stages_from_earlier_attempts']) or 'none'})")
    lines = [head]
    if "label" in stages:
        line = f"labels: {stages['label']['rows']['tracks_labelled']} tracks"
        if changes.get("labels") is not None:
            c = changes["labels"]
            line += (f"; since {changes['previous_snapshot']}: +{c['tracks_added']} added, "
                     f"-{c['tracks_removed']} removed, {c['tracks_relabelled']} relabelled")
            gained = ", ".join(f"{k} +{v}" for k, v in c["labels_gained"].items() if v)
            lost = ", ".join(f"{k} -{v}" for k, v in c["labels_lost"].items() if v)
            line += f"\n  labels gained: {gained or 'none'}; lost: {lost or 'none'}"
        elif manifest.get("previous_snapshot") is None:
            line += " (first snapshot: nothing to compare with)"
        lines.append(line)
    if "dataset" in stages:
        rows = stages["dataset"]["rows"]
        lines.append(f"dataset: {rows['tracks']} tracks (" + ", ".join(f"{k} {v}" for k, v in rows["per_split"].items()) + ")")
    if "extract" in stages:
        rows = stages["extract"]["rows"]
        lines.append(f"mels: {rows['written']} written, {rows['computed']} computed, {rows['reused']} reused, "
                     f"{rows['failed']} failed")
    if "score" in stages:
        lines.append(f"scores: {stages['score']['rows']['scored']} tracks scored")
    lines.append("seconds: " + ", ".join(f"{k} {v['seconds']:.1f}" for k, v in stages.items() if v.get("seconds") is not None))
    if manifest.get("pruned"):
        lines.append(f"retention: deleted {', '.join(manifest['pruned'])}")
    if manifest.get("error"):
        lines.append(f"error: {manifest['error']}")
    return "\n".join(lines)
