"""What runs inside Spark's Python workers: ``mapInArrow`` functions over Arrow batches.

Each function takes an iterator of ``pyarrow.RecordBatch`` and yields batches with the
input columns passed through untouched (no pandas round trip for the target vectors) plus
the columns it adds. Every per-row failure becomes data (an error reason and message in
the row); only a bug in this module can fail a task. A write that no retry can fix (a
full or read-only output) does not fail the task either: the write task hands back its
message (status :data:`WRITE_ERROR`) and the driver ends the job with it in one line.
"""

from __future__ import annotations

import faulthandler
import functools
import multiprocessing
import re
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Optional, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from ctx_spark import schema
from ctx_spark.audio.errors import CRASHED, ERROR, NO_AUDIO, STAGE_OF_REASON, AudioError
from ctx_spark.audio.mel import compute_mel_info
from ctx_spark.audio.params import MelParams
from ctx_spark.audio.sources import checksum_audio, stat_audio
from ctx_spark.shards import contract
from ctx_spark.shards.contract import AUDIO, AUDIO_CHECKSUM, AUDIO_MTIME, AUDIO_SIZE, output_schema
from ctx_spark.shards.writer import ShardWriteError, ShardWriter

SPLIT = schema.SPLIT
MEL = contract.MEL
DECODED = "decoded_seconds"
REUSED = "reused"
ERROR_REASON = "error_reason"
ERROR_STAGE = "error_stage"
ERROR_MESSAGE = "error_message"
STATUS = "status"
WRITTEN = "written"
FAILED = "failed"
#: Status of a write task that could not write (its ``reason`` holds the message).
WRITE_ERROR = "write_error"

#: Columns the audio task adds, as Spark DDL (appended to its input schema).
COMPUTED_DDL = f"{MEL} binary, {DECODED} double, {ERROR_REASON} string, {ERROR_STAGE} string, {ERROR_MESSAGE} string"
#: Columns the fingerprint task adds.
FINGERPRINT_DDL = f"{AUDIO_SIZE} bigint, {AUDIO_MTIME} bigint, {AUDIO_CHECKSUM} string"

_MAX_MESSAGE = 2000
#: A bytes literal in an exception's text (``b'ID3\x04...'``): file content, never recorded.
_BYTES_LITERAL = re.compile(r"""\bb(['"]).*?(?<!\\)\1""")

V = TypeVar("V")


def _attempt_number() -> int:
    from pyspark import TaskContext

    context = TaskContext.get()
    return context.attemptNumber() if context is not None else 0


def _partition_id() -> int:
    from pyspark import TaskContext

    context = TaskContext.get()
    return context.partitionId() if context is not None else 0


def _append(batch: pa.RecordBatch, names: Iterable[str], arrays: Iterable[pa.Array]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(list(batch.columns) + list(arrays), names=list(batch.schema.names) + list(names))


# --- fingerprints -----------------------------------------------------------------------


def fingerprint_batches(batches: Iterator[pa.RecordBatch], checksum: bool) -> Iterator[pa.RecordBatch]:
    """Add size (bytes), mtime (ms) and, when ``checksum``, the SHA-256 of each ``audio``.

    A missing or unreadable file gets nulls: it cannot match a previous fingerprint, so it
    goes to the audio task, which records why it failed.
    """
    for batch in batches:
        sizes, mtimes, sums = [], [], []
        for audio in batch.column(AUDIO).to_pylist():
            size = mtime = digest = None
            if audio is not None:
                try:
                    stat = stat_audio(audio)
                    size, mtime = stat.size, stat.mtime_ms
                    if checksum:
                        digest = checksum_audio(audio)
                except AudioError:
                    pass
            sizes.append(size)
            mtimes.append(mtime)
            sums.append(digest)
        yield _append(
            batch,
            (AUDIO_SIZE, AUDIO_MTIME, AUDIO_CHECKSUM),
            (pa.array(sizes, pa.int64()), pa.array(mtimes, pa.int64()), pa.array(sums, pa.string())),
        )


# --- spectrograms -----------------------------------------------------------------------


def _child(conn, fn: Callable, args: tuple) -> None:
    faulthandler.disable()  # a crash here is expected and reported by the parent
    try:
        conn.send(("ok", fn(*args)))
    except BaseException as exc:  # sent back to the parent as data
        conn.send(("error", exc))
    finally:
        conn.close()


def run_isolated(fn: Callable, *args):
    """Call ``fn(*args)`` in a forked child process and return its result.

    A child that dies without answering (a segfault or abort in a native decoder) becomes
    ``AudioError(crashed)`` instead of killing the calling worker; exceptions raised by
    ``fn`` are re-raised here.
    """
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(sender, fn, args), daemon=True)
    process.start()
    sender.close()
    try:
        kind, value = receiver.recv()
    except EOFError:
        process.join()
        raise AudioError(CRASHED, f"the decoding process died (exit code {process.exitcode})") from None
    finally:
        receiver.close()
    process.join()
    if kind == "error":
        raise value
    return value


def _mel_row(audio: Optional[str], params: MelParams, silence: float, isolate: bool, no_audio: str):
    """(mel bytes, decoded seconds, reason, stage, message) of one row; never raises."""
    if audio is None:
        return None, 0.0, NO_AUDIO, STAGE_OF_REASON[NO_AUDIO], no_audio
    try:
        if isolate:
            result = run_isolated(functools.partial(compute_mel_info, silence_peak_dbfs=silence), audio, params)
        else:
            result = compute_mel_info(audio, params, silence_peak_dbfs=silence)
        return contract.encode_mel(result.mel), result.excerpt.decoded_seconds, None, None, None
    except AudioError as exc:
        return None, 0.0, exc.reason, exc.stage, exc.message[:_MAX_MESSAGE]
    except Exception as exc:  # a bug or an unexpected library error: recorded, not fatal
        return None, 0.0, ERROR, STAGE_OF_REASON[ERROR], f"{audio}: {content_free(exc)}"[:_MAX_MESSAGE]


def content_free(exc: BaseException) -> str:
    """An unexpected exception as one line of text that quotes nothing read from a file:
    bytes literals are elided and control characters replaced (errors/ messages name
    files and causes, never their content)."""
    detail = " ".join("".join(traceback.format_exception_only(type(exc), exc)).split())
    detail = _BYTES_LITERAL.sub("b'...'", detail)
    return "".join(c if c.isprintable() else "?" for c in detail)


@dataclass(frozen=True)
class AudioSpec:
    """What an audio task needs to know (pickled to the executors).

    Attributes:
        params: the transform's parameters.
        silence_peak_dbfs: an excerpt whose peak is at or below this level is ``silent``.
        batch_rows: rows per output Arrow batch.
        isolate_on_retry: decode in child processes when the task is a retry.
        no_audio_message: the ``errors/`` message of a row without audio.
    """

    params: MelParams
    silence_peak_dbfs: float
    batch_rows: int
    isolate_on_retry: bool
    no_audio_message: str = "no audio listed for this track"


def compute_batches(batches: Iterator[pa.RecordBatch], spec: AudioSpec) -> Iterator[pa.RecordBatch]:
    """Add ``mel`` (raw float16 bytes, null on failure), ``decoded_seconds`` and the
    ``error_*`` columns to every row, ``spec.batch_rows`` rows per output batch.

    On a retried task (attempt > 0) with ``isolate_on_retry``, each file is decoded in a
    child process, so the file that crashed the previous attempt is recorded as
    ``crashed`` instead of crashing the job again. A row without audio (a dataset track
    the catalogue lacks) gets reason ``no_audio`` and ``no_audio_message``.
    """
    isolate = spec.isolate_on_retry and _attempt_number() > 0
    for batch in batches:
        for start in range(0, batch.num_rows, spec.batch_rows):
            part = batch.slice(start, spec.batch_rows)
            rows = [
                _mel_row(audio, spec.params, spec.silence_peak_dbfs, isolate, spec.no_audio_message)
                for audio in part.column(AUDIO).to_pylist()
            ]
            columns: list[Sequence[Any]] = list(zip(*rows)) if rows else [[], [], [], [], []]
            yield _append(
                part,
                (MEL, DECODED, ERROR_REASON, ERROR_STAGE, ERROR_MESSAGE),
                (
                    pa.array(columns[0], pa.binary()),
                    pa.array(columns[1], pa.float64()),
                    pa.array(columns[2], pa.string()),
                    pa.array(columns[3], pa.string()),
                    pa.array(columns[4], pa.string()),
                ),
            )


# --- shard writing ----------------------------------------------------------------------

#: What a write task hands back to Spark: its counts per (split, status, reason, reused),
#: so the report needs no second pass over the rows.
STATS_DDL = f"{SPLIT} string, {STATUS} string, reason string, {REUSED} boolean, n bigint, seconds double"
ERRORS_SPLIT = contract.ERRORS_DIR
#: Columns of errors/.
ERROR_FIELDS = (AUDIO, "stage", "reason", "message")


def errors_schema(id_type: pa.DataType) -> pa.Schema:
    """Schema of the ``errors/`` table: track_id, audio, stage, reason, message."""
    return pa.schema([pa.field(contract.TRACK_ID, id_type)] + [pa.field(c, pa.string()) for c in ERROR_FIELDS])


def _runs(values: list[V]) -> Iterator[tuple[V, int, int]]:
    """(value, start, stop) of each run of equal consecutive values."""
    start = 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[start]:
            yield values[start], start, i
            start = i


def _count(stats: dict, batch: pa.RecordBatch, ok: pa.Array) -> None:
    keys = zip(
        batch.column(SPLIT).to_pylist(),
        ok.to_pylist(),
        batch.column(ERROR_REASON).to_pylist(),
        batch.column(REUSED).to_pylist(),
        batch.column(DECODED).to_pylist(),
    )
    for split, good, reason, reused, seconds in keys:
        entry = stats.setdefault((split, WRITTEN if good else FAILED, reason, bool(reused)), [0, 0.0])
        entry[0] += 1
        entry[1] += seconds or 0.0


@dataclass(frozen=True)
class WriteSpec:
    """What a write task needs to know (pickled to the executors).

    Attributes:
        root: the shard root (the job's staging directory) as a path or URI.
        id_type: ``int64`` or ``string``.
        with_targets: write the label and weight columns (a dataset was joined).
        params: the transform's parameters, recorded in every file's metadata.
        contexts: the context order of the target vectors (None without targets).
        group_rows: rows per Parquet row group; groups_per_file: row groups per file.
        compression: Parquet codec or ``none``.
    """

    root: str
    id_type: str
    with_targets: bool
    params: MelParams
    contexts: Optional[tuple[str, ...]]
    group_rows: int
    groups_per_file: int
    compression: str


def _write_error(exc: ShardWriteError, batches: Iterator[pa.RecordBatch]) -> pa.RecordBatch:
    """The stats row of a task that could not write: status :data:`WRITE_ERROR`, the
    message as its reason, the rows it had not read yet as ``n``."""
    n = sum(batch.num_rows for batch in batches)  # drains the input: the job ends anyway
    return pa.RecordBatch.from_arrays(
        [
            pa.array([None], pa.string()),
            pa.array([WRITE_ERROR], pa.string()),
            pa.array([str(exc)], pa.string()),
            pa.array([False], pa.bool_()),
            pa.array([n], pa.int64()),
            pa.array([0.0], pa.float64()),
        ],
        names=[SPLIT, STATUS, "reason", REUSED, "n", "seconds"],
    )


def write_batches(batches: Iterator[pa.RecordBatch], spec: WriteSpec) -> Iterator[pa.RecordBatch]:
    """Write the rows that have a spectrogram to ``root/<split>/`` shard files and the
    others to ``root/errors/``, then yield this task's counts (:data:`STATS_DDL`).

    Input rows must be sorted by (split, track_id) within the task.
    """
    id_arrow = pa.int64() if spec.id_type == "int64" else pa.string()
    schema = output_schema(id_arrow, spec.with_targets, spec.params, spec.contexts)
    failures = errors_schema(id_arrow)
    task = _partition_id()
    shards = ShardWriter(spec.root, task, schema, spec.group_rows, spec.groups_per_file, spec.compression)
    errors = ShardWriter(spec.root, task, failures, 1 << 16, 1 << 10, spec.compression)
    stats: dict = {}
    try:
        for batch in batches:
            if not batch.num_rows:
                continue
            ok = pc.is_valid(batch.column(MEL))
            _count(stats, batch, ok)
            good = pa.Table.from_batches([batch.filter(ok)])
            for split, start, stop in _runs(good.column(SPLIT).to_pylist()):
                shards.write(split, good.slice(start, stop - start).select(schema.names).cast(schema))
            bad = pa.Table.from_batches([batch.filter(pc.invert(ok))])
            if bad.num_rows:
                bad = bad.select([contract.TRACK_ID, AUDIO, ERROR_STAGE, ERROR_REASON, ERROR_MESSAGE])
                errors.write(ERRORS_SPLIT, bad.rename_columns(failures.names).cast(failures))
        shards.close()
        errors.close()
    except ShardWriteError as exc:
        shards.abort()
        errors.abort()
        yield _write_error(exc, batches)
        return
    except BaseException:
        shards.abort()
        errors.abort()
        raise
    keys = sorted(stats, key=lambda k: tuple("" if v is None else str(v) for v in k))
    yield pa.RecordBatch.from_arrays(
        [
            pa.array([k[0] for k in keys], pa.string()),
            pa.array([k[1] for k in keys], pa.string()),
            pa.array([k[2] for k in keys], pa.string()),
            pa.array([k[3] for k in keys], pa.bool_()),
            pa.array([stats[k][0] for k in keys], pa.int64()),
            pa.array([stats[k][1] for k in keys], pa.float64()),
        ],
        names=[SPLIT, STATUS, "reason", REUSED, "n", "seconds"],
    )
