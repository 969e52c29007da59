"""The platforms ctx-spark supports, checked once at start-up, and every version-dependent
difference handled in one place.

A data team installs ctx-spark beside the pyspark of their cluster, so a version outside
the tested ranges must say so in one line when a command starts, not fail deep in a job.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from typing import Any, Optional

from ctx_spark.errors import CtxSparkError

#: package -> (lowest supported version, first unsupported version or None). The ranges
#: that are tested (docs/platforms.md); keep in step with setup.cfg's install_requires.
SUPPORTED: dict[str, tuple[tuple[int, ...], Optional[tuple[int, ...]]]] = {
    "pyspark": ((3, 5), None),
    "pyarrow": ((14,), None),
    "numpy": ((1, 26), None),
    "pandas": ((2, 0), None),
}
PYTHON: tuple[tuple[int, ...], Optional[tuple[int, ...]]] = ((3, 11), None)


class UnsupportedPlatform(CtxSparkError):
    """A package (or Python) outside the supported ranges."""


def version_tuple(text: str) -> tuple[int, ...]:
    """``'4.0.5'`` -> (4, 0, 5); pre-release and local suffixes are ignored."""
    parts = []
    for piece in text.split("."):
        match = re.match(r"\d+", piece)
        if not match:
            break
        parts.append(int(match.group()))
    return tuple(parts)


def _describe(low: tuple[int, ...], high: Optional[tuple[int, ...]]) -> str:
    text = ">= " + ".".join(map(str, low))
    return text + (", < " + ".".join(map(str, high)) if high else "")


def check_versions() -> None:
    """Refuse an interpreter or a core package outside :data:`SUPPORTED`.

    Raises:
        UnsupportedPlatform: naming the package, the version found and the supported range.
    """
    low, high = PYTHON
    if sys.version_info[:2] < low or (high and sys.version_info[:2] >= high):
        raise UnsupportedPlatform(
            f"Python {sys.version.split()[0]} is not supported; ctx-spark needs Python {_describe(low, high)}"
        )
    for package, (low, high) in SUPPORTED.items():
        try:
            found = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue  # its import fails with its own message where it is needed
        version = version_tuple(found)
        if version < low or (high is not None and version >= high):
            raise UnsupportedPlatform(
                f"{package} {found} is not supported; ctx-spark needs {package} {_describe(low, high)} "
                "(docs/platforms.md)"
            )


# --- errors raised through Py4J -----------------------------------------------------------

#: Words that open Spark's message for a task that failed reading one input file, the same in
#: 3.5 (``_LEGACY_ERROR_TEMP_2064``) and 4.x (``FAILED_READ_FILE.*``); the file's path follows.
READ_FILE_FAILURE = "Encountered error while reading file"


def java_throwable(exc: BaseException) -> Any:
    """The Java exception behind an error raised through Py4J, or None.

    A ``Py4JJavaError`` carries it as ``java_exception``; PySpark's converted errors
    (``pyspark.errors`` ``AnalysisException``, ``IllegalArgumentException``...) keep it as
    ``_origin`` in 3.5 and 4.x alike (their other attributes differ: ``desc``/``cause`` in 3.5,
    ``_desc``/``_cause`` in 4.x), so this is the one version-independent handle on the cause chain.
    """
    throwable = getattr(exc, "java_exception", None)
    if throwable is None:
        throwable = getattr(exc, "_origin", None)
    return throwable
