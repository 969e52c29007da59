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
from ctx_spark.registry import BY_NAME, STAGES

log = get_logger("refresh")


def code_version() -> dict[str, Optional[str]]:
    """The package version and, from a git checkout, the commit (None elsewhere: an
    installed package or a container image without .git)."""
    root = Path(ctx_spark.__file__).resolve().parent.parent
    commit = None
    if (root / ".git").exists():
        try:
            done = subprocess.run(
                ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False
            )
            commit = (done.stdout.strip() or None) if done.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            commit = None
    return {"version": ctx_spark.__version__, "git_commit": commit}


def stage_summary(
    name: str, report: dict[str, Any], key: Optional[str] = None, reused_from: Optional[str] = None
) -> dict[str, Any]:
    """Row counts and timing of one stage, from its report.json, and whether this run
    computed it or reused the output of run ``reused_from`` by reference (its rows are
    then that output's, and ``seconds`` is null: nothing ran)."""
    rows = BY_NAME[name].manifest_rows(report)
    if reused_from:  # nothing computed: every row is the referenced output's
        rows = _reused_rows(rows)
    return {
        "rows": rows,
        "seconds": None if reused_from else report.get("elapsed_seconds"),
        "computed": reused_from is None,
        "reused_from": reused_from,
        "key": key,
    }


def _reused_rows(rows: dict[str, Any]) -> dict[str, Any]:
    """A reused stage's counts: what it holds, none of it computed by this run."""
    rows = dict(rows)
    if "computed" in rows and "written" in rows:  # extraction
        rows.update(computed=0, reused=rows["written"])
        for key in ("copied", "imported", "store_bytes_written"):
            if key in rows:
                rows[key] = 0
        if "from_store" in rows:
            rows["from_store"] = rows["written"]
    if "scored" in rows:  # scoring
        rows.update(scored=0, reused=rows.get("reused", 0) + rows["scored"])
    return rows


def summary(manifest: dict[str, Any]) -> str:
    """A few lines for the job's stdout (and a cron log)."""
    stages, changes = manifest["stages"], manifest.get("changes") or {}
    head = f"refresh {manifest['run_id']}: {manifest['status']}"
    if manifest["status"] == "published":
        head += f", current snapshot {manifest['snapshot']}"
    if manifest.get("attempt", 1) > 1:
        head += (
            f" (attempt {manifest['attempt']}; stages done by earlier attempts: "
            f"{', '.join(manifest['stages_from_earlier_attempts']) or 'none'})"
        )
    lines = [head]
    for definition in STAGES:
        if definition.name not in stages:
            continue
        line = definition.summary_line(stages[definition.name]["rows"])
        if stages[definition.name].get("reused_from"):
            line += f" (reused from {stages[definition.name]['reused_from']}, not recomputed)"
        if definition.name == "label":
            line += _label_changes(manifest, changes)
        lines.append(line)
    timed = [f"{k} {v['seconds']:.1f}" for k, v in stages.items() if v.get("seconds") is not None]
    lines.append("seconds: " + (", ".join(timed) or "none (every stage reused)"))
    if manifest.get("pruned"):
        lines.append(f"retention: deleted {', '.join(manifest['pruned'])}")
    gc = manifest.get("gc") or {}
    if gc.get("swept") or gc.get("marked"):
        lines.append(
            f"mel store: {gc.get('swept', {}).get('files', 0)} unused files deleted "
            f"({gc.get('swept', {}).get('bytes', 0) / 1e6:.1f} MB), {gc.get('marked', {}).get('files', 0)} withdrawn"
        )
    if manifest.get("error"):
        lines.append(f"error: {manifest['error']}")
    return "\n".join(lines)


def _label_changes(manifest: dict[str, Any], changes: dict[str, Any]) -> str:
    """The label diff against the previous snapshot, as the end of the labels line."""
    if changes.get("labels") is not None:
        c = changes["labels"]
        gained = ", ".join(f"{k} +{v}" for k, v in c["labels_gained"].items() if v)
        lost = ", ".join(f"{k} -{v}" for k, v in c["labels_lost"].items() if v)
        return (
            f"; since {changes['previous_snapshot']}: +{c['tracks_added']} added, "
            f"-{c['tracks_removed']} removed, {c['tracks_relabelled']} relabelled"
            f"\n  labels gained: {gained or 'none'}; lost: {lost or 'none'}"
        )
    if manifest.get("previous_snapshot") is None:
        return " (first snapshot: nothing to compare with)"
    return ""
