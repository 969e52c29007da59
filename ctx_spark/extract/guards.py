"""Refusals of the extraction job: inputs and outcomes that make its output meaningless, and
output filesystems that cannot take it.

A run whose input holds no track, or in which more than ``extract.max_failure_rate`` of the
tracks fail, would replace a good output (and with it the spectrograms that incremental
runs reuse) with an empty or nearly empty one. Every check here runs before the staged
output is published (:func:`ctx_spark.io.atomic_output`), so a refused run leaves the
previous output exactly where it was; the message names the cause and the setting that
lets such a run through (docs/extraction.md, "Refusals").
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Optional

from ctx_spark.errors import CtxSparkError, InputError, OutputError
from ctx_spark.extract import listing, rejected, tasks
from ctx_spark.extract.settings import ExtractSettings
from ctx_spark.extract.targets import RowCounts
from ctx_spark.logs import get_logger
from ctx_spark.shards.writer import permanent_cause

if TYPE_CHECKING:
    from ctx_spark.extract.run import ExtractRun

log = get_logger("extract")

#: Hadoop's words for an output directory it cannot create (no permission, a file in the
#: way, a filesystem that refuses new entries), which carry no errno.
JAVA_MKDIRS = "Mkdirs failed to create"


class OutputRefused(OutputError):
    """The extraction's own one-line refusal of an output it cannot write (full, read-only,
    refused), which already says that nothing was published."""


def _unchanged(out: str) -> str:
    return f"nothing was published (an earlier output at {out} stays as it was)"


def _by_reason(counts: Mapping[str, int], shown: int = 6) -> str:
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    text = ", ".join(f"{reason} {n}" for reason, n in ordered[:shown])
    return text + (f" and {len(ordered) - shown} more reasons" if len(ordered) > shown else "")


def _percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%"


def _empty_audio(source: str, catalogue: listing.Catalogue) -> str:
    """Why an audio input gave no track."""
    what = "entries" if source.startswith("--audio-dir") else "rows"
    if not catalogue.entries:
        return f"{source} gives no track with audio (no {what} at all)"
    detail = f"{catalogue.entries} {what}, none usable: {_by_reason(catalogue.rejected_counts)}"
    if catalogue.rejected_counts.get(listing.UNLISTED_EXTENSION):
        extensions = ", ".join(f".{ext or '(none)'} {n}" for ext, n in listing.unlisted_extensions(catalogue))
        detail += f"; commonest unlisted extensions: {extensions} (extract.extensions)"
    return f"{source} gives no track with audio ({detail}; errors/ of a run with extract.allow_empty=true lists them)"


def _source(run: ExtractRun) -> str:
    if run.inputs.audio_dir is not None:
        return f"--audio-dir {run.inputs.audio_dir}"
    return f"--tracks {run.inputs.tracks}"


def empty_input(run: ExtractRun, counts: RowCounts) -> Optional[str]:
    """Why the run's input holds no track, or None."""
    assert run.catalogue is not None
    if not run.catalogue.tracks:
        return _empty_audio(_source(run), run.catalogue)
    if run.inputs.dataset is not None and not counts.total:
        return f"--dataset {run.inputs.dataset} holds no track"
    return None


def refuse_inputs(run: ExtractRun, counts: RowCounts) -> None:
    """Before any decoding: refuse an empty input (unless ``extract.allow_empty``), and a
    run in which the dataset's tracks without audio alone exceed
    ``extract.max_failure_rate`` (hours of decoding would end in a refusal anyway).

    Raises:
        InputError: naming the cause and the setting that lets the run through.
    """
    settings = run.settings
    why = empty_input(run, counts)
    if why is not None:
        if not settings.allow_empty:
            raise InputError(
                f"extract: {why}; {_unchanged(run.out)}; set extract.allow_empty=true to publish an empty output"
            )
        log.warning("%s; publishing an empty output (extract.allow_empty)", why)
        return
    what = f"of the dataset have no audio in {_source(run)}"
    _refuse_rate(counts.without_audio, counts.total, what, settings, run.out)


def _refuse_rate(failed: int, total: int, what: str, settings: ExtractSettings, out: str) -> None:
    if total and failed / total > settings.max_failure_rate:
        raise InputError(
            f"extract: {failed} of {total} tracks ({_percent(failed, total)}) {what}, more than "
            f"extract.max_failure_rate ({settings.max_failure_rate:g}); {_unchanged(out)}; fix the inputs, or set "
            "extract.max_failure_rate=1 to publish whatever fails"
        )


def refuse_outcome(
    run: ExtractRun, stats: Sequence[Mapping], unused: rejected.RejectedWrite, total: Optional[int] = None
) -> None:
    """After writing, before publishing: refuse when a task could not write (the output is
    full, read-only or refused), or when more than ``extract.max_failure_rate`` of the
    tracks failed (any reason, no audio included).

    Args:
        stats: the write tasks' summed counts (:func:`ctx_spark.extract.plan.summarise`).
        unused: what writing the listing's rejected entries gave.
        total: the tracks the rate is over; by default every track in ``stats`` (a run on
            the mel store writes only its new tracks, so it passes all of its tracks).

    Raises:
        OutputError: a task handed back a write error (the first is quoted).
        InputError: too many failed tracks.
    """
    written_errors = [str(s["reason"]) for s in stats if s["status"] == tasks.WRITE_ERROR]
    refuse_write_errors([*written_errors, *unused.write_errors], run.out)
    failed: dict[str, int] = {}
    for s in stats:
        if s["status"] == tasks.FAILED:
            failed[s["reason"]] = failed.get(s["reason"], 0) + s["n"]
    assert run.catalogue is not None
    if not run.catalogue.tracks and run.settings.allow_empty:
        return  # an empty input let through: every dataset track has no audio
    what = f"failed ({_by_reason(failed)}; errors/ lists them)"
    tracks = sum(s["n"] for s in stats) if total is None else total
    _refuse_rate(sum(failed.values()), tracks, what, run.settings, run.out)


def refuse_write_errors(messages: Sequence[str], out: str) -> None:
    """Raise :class:`OutputError` quoting the first write error handed back by a task."""
    if messages:
        more = f" (and {len(messages) - 1} more)" if len(messages) > 1 else ""
        raise OutputRefused(f"extract: cannot write the output {out} ({sorted(messages)[0]}{more}); {_unchanged(out)}")


@contextmanager
def output_errors(out: str) -> Iterator[None]:
    """Turn a driver-side write that no retry fixes (pyarrow's OSError, Hadoop's
    IOException through Py4J) into one :class:`OutputError` line; anything else passes."""
    try:
        yield
    except OutputRefused:
        raise
    except OutputError as exc:  # a driver-side write of ctx_spark.io (ctx_spark/causes.py named the file)
        raise OutputRefused(f"extract: {exc}; {_unchanged(out)}") from None
    except CtxSparkError:
        raise
    except OSError as exc:
        cause = permanent_cause(exc)
        if cause is None:
            raise
        raise OutputRefused(f"extract: cannot write the output {out} ({cause}); {_unchanged(out)}") from None
    except Exception as exc:
        java = getattr(exc, "java_exception", None)
        lines = str(java.toString()).splitlines() if java is not None else []
        # Only the driver's own Hadoop calls: a failed Spark job (a task's error, with its
        # whole traceback in the text) is not judged by the words it happens to contain.
        first = lines[0][:300] if lines and "SparkException" not in lines[0] else ""
        cause = permanent_cause(RuntimeError(first)) if first else None
        if cause is None and JAVA_MKDIRS in first:
            cause = "cannot create a directory there"
        if cause is None:
            raise
        raise OutputRefused(f"extract: cannot write the output {out} ({cause}: {first}); {_unchanged(out)}") from None
