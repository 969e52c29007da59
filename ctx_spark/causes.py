"""One-line causes of the errors a run meets in its inputs and outputs.

Spark reports a bad input file as ``An error occurred while calling o6954.parquet`` and a
few hundred lines of Java stack; the cause a user can act on ("is not a Parquet file", "No
space left on device") sits some levels down the Java exception's cause chain. The
functions here walk that chain (through :func:`ctx_spark.platform.java_throwable`, the one
place that knows PySpark's error classes) and make one line of it. The context managers
turn the errors that are the user's to fix (an unreadable input file, a full or read-only
output directory) into :class:`InputError` / :class:`OutputError`, which the CLI prints as
one ``error:`` line with exit code 2; every other error is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Optional

from ctx_spark import platform
from ctx_spark.errors import CtxSparkError, InputError, OutputError

#: Longest message made here (a cause chain can quote whole files or schemas).
MAX_CHARS = 500

#: Messages of wrapping exceptions, which say nothing about the cause.
_WRAPPERS = (
    "An error occurred while calling",
    "Job aborted due to stage failure",
    "Exception thrown in awaitResult",
    "Job aborted",
    "Writing job aborted",
    "Task failed while writing rows",  # 3.5 wraps a read failure met by a writing task in this
)
_ERROR_CLASS = re.compile(r"^\[[A-Za-z0-9_.]+\]\s*")
_SQLSTATE = re.compile(r"\s*SQLSTATE:\s*\w+\s*$")

_FREE = "free space there or write elsewhere"
_ACCESS = "give the job write access there, or write elsewhere"
#: errno of an OSError -> what the user reads, and what to do about it.
_OUTPUT_ERRNOS = {
    errno.ENOSPC: ("no space left on device", _FREE),
    errno.EDQUOT: ("disk quota exceeded", _FREE),
    errno.EFBIG: ("file too large for that filesystem", "write elsewhere"),
    errno.EROFS: ("read-only file system", "write elsewhere"),
    errno.EACCES: ("permission denied", _ACCESS),
    errno.EPERM: ("operation not permitted", _ACCESS),
}
#: Words of an error's message or Java class (Hadoop, S3A, HDFS, pyarrow) -> what they mean.
_MARKERS = (
    ("No space left on device", _OUTPUT_ERRNOS[errno.ENOSPC]),
    ("Disk quota exceeded", _OUTPUT_ERRNOS[errno.EDQUOT]),
    ("DSQuotaExceededException", _OUTPUT_ERRNOS[errno.EDQUOT]),
    ("Read-only file system", _OUTPUT_ERRNOS[errno.EROFS]),
    ("Permission denied", _OUTPUT_ERRNOS[errno.EACCES]),
    ("AccessControlException", _OUTPUT_ERRNOS[errno.EACCES]),
    ("AccessDeniedException", _OUTPUT_ERRNOS[errno.EACCES]),
    ("Mkdirs failed to create", ("cannot create a directory there (no permission, or a file in the way)", _ACCESS)),
)


def chain(exc: BaseException) -> list[tuple[str, str]]:
    """(Java class name, message) of the Java exception behind ``exc`` and of each of its
    causes, outermost first; empty when ``exc`` did not come through Py4J."""
    found: list[tuple[str, str]] = []
    throwable = platform.java_throwable(exc)
    while throwable is not None and len(found) < 32:
        try:
            name, message = str(throwable.getClass().getName()), throwable.getMessage()
            throwable = throwable.getCause()
        except Exception:  # the gateway is gone: what was read so far is all there is
            break
        found.append((name, "" if message is None else str(message)))
    return found


def _clean(message: str) -> str:
    lines = message.strip().splitlines()
    text = lines[0].strip() if lines else ""
    return _SQLSTATE.sub("", _ERROR_CLASS.sub("", text)).strip()


def _short(text: str) -> str:
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 3] + "..."


def describe(exc: BaseException, prefer: str = "") -> str:
    """One line for ``exc``: the outermost informative message (the first holding
    ``prefer``, when one does), and the root cause when it says something more
    (``... is not a Parquet file``), without Java stack frames."""
    messages = []
    for name, message in chain(exc):
        text = _clean(message)
        if text.startswith(_WRAPPERS):
            continue
        messages.append(text or name.rsplit(".", 1)[-1])
    if not messages:
        return _short(_clean(str(exc)) or type(exc).__name__)
    first = next((m for m in messages if prefer and prefer in m), messages[0])
    root = messages[-1]
    return _short(first if root in first else f"{first} (cause: {root})")


def came_through_spark(exc: BaseException) -> bool:
    """Whether ``exc`` was raised by Spark's JVM (Py4J) rather than by Python code."""
    return platform.java_throwable(exc) is not None


def read_failure(exc: BaseException) -> Optional[str]:
    """The one-line cause when ``exc`` is a Spark task failing to read an input file."""
    if any(platform.READ_FILE_FAILURE in message for _name, message in chain(exc)):
        return describe(exc, prefer=platform.READ_FILE_FAILURE)
    return None


def output_failure(exc: BaseException) -> Optional[tuple[str, str]]:
    """(reason, hint) when ``exc`` says the output cannot be written there (no space, no
    permission, a read-only filesystem); None for any other error."""
    if isinstance(exc, OSError) and exc.errno in _OUTPUT_ERRNOS:
        return _OUTPUT_ERRNOS[exc.errno]
    text = " ".join(f"{name} {message}" for name, message in chain(exc))
    if not text and isinstance(exc, OSError):  # pyarrow's OSError carries the errno in its text only
        text = str(exc)
    return next((meaning for marker, meaning in _MARKERS if marker in text), None) if text else None


@contextmanager
def output_errors(target: str) -> Iterator[None]:
    """Turn a full disk, a missing permission or a read-only filesystem met while writing
    ``target`` into an :class:`OutputError` naming it; other errors pass unchanged."""
    try:
        yield
    except CtxSparkError:
        raise
    except Exception as exc:
        failure = output_failure(exc)
        if failure is None:
            raise
        reason, hint = failure
        raise OutputError(f"cannot write {target}: {reason} ({hint})") from None


@contextmanager
def job_errors(target: str) -> Iterator[None]:
    """:func:`output_errors`, and an input file that a Spark job writing ``target`` could not
    read (Spark reads lazily, so a corrupt input file fails the job that writes) as an
    :class:`InputError` naming the file and the cause."""
    try:
        with output_errors(target):
            yield
    except CtxSparkError:
        raise
    except Exception as exc:
        cause = read_failure(exc)
        if cause is None:
            raise
        raise InputError(f"cannot read an input file while writing {target}: {cause}") from None


@contextmanager
def read_errors(what: str) -> Iterator[None]:
    """Turn an error Spark raises while opening a table (``spark.read.parquet``: a path that
    is not Parquet, an empty directory) into an :class:`InputError` starting with ``what``."""
    try:
        yield
    except CtxSparkError:
        raise
    except Exception as exc:
        if not came_through_spark(exc):
            raise
        raise InputError(f"{what}: {describe(exc)}") from None
