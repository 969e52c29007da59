"""Stage outputs reused by reference: a stage whose inputs, settings and code are those of
the previous snapshot's is not run again; its directory in the new snapshot holds only a
``report.json`` naming the directory that has the data (docs/refresh.md, "Reuse").

A stage's *key* is a digest of what its output depends on: its configuration sections,
the fingerprints of the catalogue inputs it reads, the keys of the stages before it and
the package version. Equal keys mean equal outputs, so the new snapshot's stage directory
becomes a reference: the previous snapshot's report with a ``reference`` entry (the run-id
and path of the directory that holds the data, never another reference). Readers resolve a
stage directory with :func:`resolve` (any root, through the refresh's store) or
:func:`resolve_path` (pyarrow paths: the report site, ``ctx-spark top``); retention keeps a
referenced directory as long as a kept snapshot references it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Optional

import ctx_spark
from ctx_spark.schema import REPORT_FILE
from ctx_spark.shards.store import REFERENCE, resolve_reference

__all__ = ["REFERENCE", "referenced", "resolve", "resolve_path", "stage_key", "write_reference"]

#: The configuration sections each stage's output depends on.
SECTIONS: dict[str, tuple[str, ...]] = {
    "label": ("label", "contexts"),
    "dataset": ("dataset", "contexts"),
    "extract": ("audio", "extract", "contexts"),
    "score": ("score", "contexts"),
}
#: The run's inputs (fingerprint names) each stage reads.
INPUTS: dict[str, tuple[str, ...]] = {
    "label": ("playlists", "playlist_tracks", "tracks"),
    "extract": ("audio",),
    "score": ("model",),
}


def stage_key(
    name: str,
    config: dict[str, Any],
    fingerprints: dict[str, Any],
    upstream: dict[str, Optional[str]],
    extra: Optional[dict[str, Any]] = None,
) -> Optional[str]:
    """The key of stage ``name``, or None when its output cannot be judged unchanged (an
    earlier stage has no key, or an input it reads is not fingerprinted).

    Args:
        config: the run's whole configuration (``cfg.to_dict()``).
        fingerprints: the run fingerprint's ``inputs`` (listing per input).
        upstream: keys of the stages before it, by name.
        extra: anything else the output depends on (the mel store's identity).
    """
    if any(key is None for key in upstream.values()):
        return None
    inputs = {}
    for input_name in INPUTS.get(name, ()):
        if input_name not in fingerprints:
            return None
        inputs[input_name] = fingerprints[input_name]
    parts = {
        "stage": name,
        "version": ctx_spark.__version__,
        "config": {section: config.get(section) for section in SECTIONS.get(name, (name,))},
        "inputs": inputs,
        "upstream": dict(sorted(upstream.items())),
        "extra": extra or {},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def read_report(store: Any, directory: str) -> Optional[dict[str, Any]]:
    """A stage directory's report.json, or None when absent or unreadable."""
    try:
        report = json.loads(store.read_text(f"{directory}/{REPORT_FILE}"))
    except (FileNotFoundError, ValueError):
        return None
    return report if isinstance(report, dict) else None


def resolve(store: Any, directory: str) -> str:
    """The directory that holds a stage directory's data: itself, or the one it references."""
    report = read_report(store, directory)
    reference = (report or {}).get(REFERENCE)
    if isinstance(reference, dict) and isinstance(reference.get("path"), str):
        return str(reference["path"])
    return directory


def resolve_path(directory: str) -> str:
    """:func:`resolve` for readers without a SparkSession (pyarrow filesystems)."""
    return resolve_reference(directory)


def write_reference(store: Any, out: str, source: str, source_run: str, key: str, reused_at: str) -> dict[str, Any]:
    """Make ``out`` a reference to the stage directory ``source`` (which holds data) of run
    ``source_run``; returns the reference's report (the source's, with ``reference``)."""
    report = read_report(store, source)
    if report is None:
        raise FileNotFoundError(f"{source}/{REPORT_FILE}")
    report = {**report, REFERENCE: {"run_id": source_run, "path": source, "key": key, "reused_at": reused_at}}
    store.make_dirs(out)
    store.write_text(f"{out}/{REPORT_FILE}", json.dumps(report, indent=2, default=str) + "\n")
    return report


def referenced(store: Any, directories: list[str]) -> set[str]:
    """The data directories that the given stage directories reference."""
    found = set()
    for directory in directories:
        target = resolve(store, directory)
        if target != directory:
            found.add(target.rstrip("/"))
    return found
