"""The extraction job's report.json and its human summary."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ctx_spark import __version__, io
from ctx_spark.extract import tasks
from ctx_spark.shards import contract

if TYPE_CHECKING:
    from ctx_spark.extract.run import ExtractRun


def extract_report(
    run: ExtractRun, staging: str, previous_note: str, stats: list[dict], rejected: Mapping[str, int]
) -> dict[str, Any]:
    """The report of a finished run, from the write tasks' counts (``stats``, see
    :func:`ctx_spark.extract.plan.summarise`), the listing's rejected entries written to
    errors/ per reason (``rejected``) and a listing of the staged shard files."""
    spark, cfg, inputs, out, params, catalogue = run.spark, run.cfg, run.inputs, run.out, run.params, run.catalogue
    assert catalogue is not None
    elapsed = time.perf_counter() - run.started
    written: dict[str, int] = {}
    failed: dict[str, int] = {}
    tracks_in: dict[str, int] = {}
    reused = computed = 0
    seconds = 0.0
    for s in stats:
        tracks_in[s["split"]] = tracks_in.get(s["split"], 0) + s["n"]
        if s["status"] == tasks.WRITTEN:
            written[s["split"]] = written.get(s["split"], 0) + s["n"]
        else:
            failed[s["reason"]] = failed.get(s["reason"], 0) + s["n"]
        if s["reused"]:
            reused += s["n"]
        elif s["reason"] != "no_audio":
            computed += s["n"]
        seconds += s["seconds"]
    files = {
        split: len([n for n in io.list_dir(spark, f"{staging}/{split}") if n.endswith(".parquet")])
        for split in sorted(written)
    }
    return {
        "stage": "extract",
        "version": __version__,
        "inputs": {"tracks": inputs.tracks, "audio_dir": inputs.audio_dir, "dataset": inputs.dataset},
        "outputs": {
            "root": out,
            "shards": {split: f"{out}/{split}" for split in sorted(written)},
            "errors": f"{out}/{contract.ERRORS_DIR}",
            "mel_params": f"{out}/{contract.PARAMS_FILE}",
            "shards_info": f"{out}/{contract.INFO_FILE}",
        },
        "mel_params": params.to_dict(),
        "format_version": contract.FORMAT_VERSION,
        "contexts": list(run.contexts) if run.contexts is not None else None,
        "settings": cfg.to_dict()["extract"],
        "catalogue_entries": catalogue.entries,
        "catalogue_bad_names": rejected.get("bad_name", 0),
        "catalogue_tracks": catalogue.tracks,
        "catalogue_rejected": dict(sorted(rejected.items())),
        "catalogue_rejected_total": sum(rejected.values()),
        "catalogue_relative_paths": catalogue.relative_paths,
        "tracks_in": sum(tracks_in.values()),
        "tracks_in_per_split": dict(sorted(tracks_in.items())),
        "tracks_without_audio": failed.get("no_audio", 0),
        "incremental": previous_note,
        "written": dict(sorted(written.items())),
        "written_total": sum(written.values()),
        "shard_files": files,
        "reused": reused,
        "computed": computed,
        "failed": dict(sorted(failed.items())),
        "failed_total": sum(failed.values()),
        "audio_seconds_decoded": round(seconds, 3),
        "tracks_per_second": round(computed / elapsed, 3) if elapsed > 0 else None,
        "elapsed_seconds": round(elapsed, 3),
    }


def summary(report: dict[str, Any]) -> str:
    """A few human-readable lines about a finished extraction run."""
    lines = [
        f"shards written to {report['outputs']['root']}: "
        + ", ".join(f"{split} {n}" for split, n in report["written"].items())
        if report["written"]
        else f"no shards written to {report['outputs']['root']}",
        f"{report['tracks_in']} tracks in; {report['computed']} computed, {report['reused']} reused from the previous "
        f"output, {report['failed_total']} failed; {report['audio_seconds_decoded']:.0f} s of audio decoded in "
        f"{report['elapsed_seconds']:.1f} s ({report['tracks_per_second']} tracks/s)",
    ]
    if report.get("catalogue_rejected"):
        lines.append(
            f"{report['catalogue_rejected_total']} listed entries are no track's audio: "
            + ", ".join(f"{k} {v}" for k, v in report["catalogue_rejected"].items())
            + f" (see {report['outputs']['errors']}, stage 'list')"
        )
    if report["failed"]:
        lines.append(
            "failed by reason: "
            + ", ".join(f"{k} {v}" for k, v in report["failed"].items())
            + f" (see {report['outputs']['errors']})"
        )
    return "\n".join(lines)
