"""The platforms ctx-spark supports, checked once at start-up, and every version-dependent
difference handled in one place.

A data team installs ctx-spark beside the pyspark of their cluster, so a version outside
the tested ranges must say so in one line when a command starts, not fail deep in a job.
The ranges are setup.cfg's (a test keeps the two in step); docs/platforms.md, "Supported
ranges" says which environment tests each end.

API differences between the supported versions, and where they are handled:

* PySpark 3.5 versus 4.x: 3.5's ``F.array_position`` takes only a literal value;
  :func:`array_position` takes a column on both.
* PyAV 18 versus 19: up to 18, ``av.open`` raises UnicodeDecodeError on metadata that is
  not UTF-8 unless given ``metadata_errors="ignore"``; 19 removed that argument (a
  TypeError) and decodes metadata with surrogate escapes. :func:`av_read_options` gives
  the arguments for the installed one.
* librosa 0.x versus 1.0: before 1.0, ``librosa.load`` falls back to audioread (the
  ffmpeg program) for formats libsndfile cannot read, such as M4A; 1.0 removed audioread.
  ctx-spark decodes those with PyAV itself; :func:`librosa_loads_through_ffmpeg` says
  whether librosa can serve as a reference for them (tests).
* numpy 1.26 versus 2.x: ``np.trapezoid`` is new in 2.0 and ``np.trapz`` is gone by 2.5;
  :func:`trapezoid` is whichever exists.
* pandas 3 (copy-on-write, the ``str`` dtype), numpy 2 (NEP 50 promotion, the other
  removed aliases), librosa 1.0 (keyword-only arguments, no audioread) and pyarrow's dataset API
  (14 to 26): nothing in ctx-spark depends on the difference; both test environments run
  the whole suite, and their outputs are compared (.ci/run).
* PySpark 4.3 with pandas 3 warns "PySpark does not yet fully support pandas >= 3.0.0"
  (a FutureWarning) on its pandas and Arrow paths; those paths are tested on that pair.
* petastorm 0.13.1 needs pyarrow < 15 (:data:`EXTRA_SUPPORTED`), hence numpy < 2: it is an
  optional extra, and the trainer's default reader does not use it.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ctx_spark.errors import CtxSparkError

if TYPE_CHECKING:
    from pyspark.sql import Column

Range = tuple[tuple[int, ...], Optional[tuple[int, ...]]]

#: distribution -> (lowest supported version, first unsupported version or None): setup.cfg's
#: install_requires.
SUPPORTED: dict[str, Range] = {
    "numpy": ((1, 26), None),
    "pyarrow": ((14,), None),
    "pandas": ((2, 0), None),
    "pyspark": ((3, 5), None),
    "librosa": ((0, 10, 2), None),
    "soundfile": ((0, 12, 1), None),
    "soxr": ((1, 1), None),
    "av": ((18, 1), None),
    "scipy": ((1, 11), None),
    "matplotlib": ((3, 8), None),
    "PyYAML": ((6, 0, 1), None),
}

#: extra -> its distributions' ranges (setup.cfg's extras_require). ``tensorflow`` stands
#: for whichever TensorFlow build is installed (:data:`TENSORFLOW_BUILDS`): the tf-cpu and
#: tf-gpu extras, or the platform's own.
EXTRA_SUPPORTED: dict[str, dict[str, Range]] = {
    "train": {"tensorflow": ((2, 16), None), "keras": ((3, 5), None), "scikit-learn": ((1, 3), None)},
    "petastorm": {"petastorm": ((0, 13, 1), None), "pyarrow": ((14,), (15,))},
}

#: The distributions that install the ``tensorflow`` module.
TENSORFLOW_BUILDS = ("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-macos", "tensorflow-rocm")

#: Python: 3.11 to 3.13 (tensorflow has no cp314 wheel).
PYTHON: Range = ((3, 11), (3, 14))


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
        if match.group() != piece:  # '0rc1', '2+local': the rest is not a release number
            break
    return tuple(parts)


def describe(low: tuple[int, ...], high: Optional[tuple[int, ...]]) -> str:
    """``>= 3.5`` or ``>= 14, < 15``."""
    text = ">= " + ".".join(map(str, low))
    return text + (", < " + ".".join(map(str, high)) if high else "")


def installed_version(package: str) -> Optional[str]:
    """The installed version of a distribution, or None when it is not installed.

    ``tensorflow`` is any of :data:`TENSORFLOW_BUILDS`. pyspark without package metadata (a
    Spark distribution's ``python/`` directory on PYTHONPATH, as some platforms provide it)
    is read from its ``version.py`` without importing it.
    """
    for name in TENSORFLOW_BUILDS if package == "tensorflow" else (package,):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    if package == "pyspark":
        try:
            spec = importlib.util.find_spec("pyspark")
        except (ImportError, ValueError):
            return None
        version_file = Path(spec.origin).with_name("version.py") if spec is not None and spec.origin else None
        if version_file is not None and version_file.is_file():
            found = re.search(r"__version__[^=]*=\s*['\"]([^'\"]+)", version_file.read_text())
            return found.group(1) if found else None
    return None


def _refuse(package: str, found: str, supported: Range, what: str) -> None:
    version = version_tuple(found)
    low, high = supported
    if version < low or (high is not None and version >= high):
        raise UnsupportedPlatform(
            f"{package} {found} is not supported; {what} needs {package} {describe(low, high)} (docs/platforms.md)"
        )


def check_versions(extra: Optional[str] = None) -> None:
    """Refuse an interpreter or an installed package outside :data:`SUPPORTED` (and, with
    ``extra``, outside that extra's :data:`EXTRA_SUPPORTED` ranges). A package that is not
    installed is not refused here: its import fails with its own message where it is needed.

    Raises:
        UnsupportedPlatform: naming the package, the version found and the supported range.
    """
    low, high = PYTHON
    if sys.version_info[:2] < low or (high and sys.version_info[:2] >= high):
        raise UnsupportedPlatform(
            f"Python {sys.version.split()[0]} is not supported; ctx-spark needs Python {describe(low, high)}"
        )
    ranges = [(package, supported, "ctx-spark") for package, supported in SUPPORTED.items()]
    if extra is not None:
        what = f"ctx-spark[{extra}]"
        ranges += [(package, supported, what) for package, supported in EXTRA_SUPPORTED.get(extra, {}).items()]
    for package, supported, what in ranges:
        found = installed_version(package)
        if found is not None:
            _refuse(package, found, supported, what)


# --- API differences ---------------------------------------------------------------------


def array_position(array: Column, value: Column) -> Column:
    """``array_position(array, value)`` with a column as the value (1-based, 0 when absent).

    PySpark 3.5's ``F.array_position`` passes its value to the JVM as a literal (a Column
    there fails with NOT_ITERABLE); 4.0 added Column values. ``call_function`` (PySpark
    3.5+) calls the SQL function by name on both.
    """
    from pyspark.sql import functions as F

    return F.call_function("array_position", array, value)


def array_compact(array: Column, fill: Column) -> Column:
    """``array`` without its null elements, typed as an array without nulls on both Spark lines.

    Spark 4's ``array_compact`` says so in its type; 3.5's keeps ``containsNull``, which would
    write a different Parquet schema. A no-op ``coalesce`` of each (never null) element with
    the non-null literal ``fill`` of the element type gives 3.5 the same type.
    """
    from pyspark.sql import functions as F

    return F.transform(F.array_compact(array), lambda item: F.coalesce(item, fill))


def trapezoid(y: Any, x: Any) -> float:
    """The trapezoidal integral of ``y`` over ``x``: ``np.trapezoid`` (numpy 2), or
    ``np.trapz``, its name in numpy 1.x (removed from numpy's namespace by 2.5)."""
    import numpy as np

    integrate: Callable[[Any, Any], Any] = getattr(np, "trapezoid", None) or np.trapz  # type: ignore[attr-defined,unused-ignore]
    return float(integrate(y, x))


def av_read_options(av: Any) -> dict[str, str]:
    """Keyword arguments for ``av.open(file, mode="r", ...)`` that keep metadata which is
    not UTF-8 (an ID3 tag in Latin-1, say) from failing the open: ``metadata_errors`` up to
    PyAV 18, nothing from 19 on (the argument is gone; metadata never fails to decode)."""
    return {"metadata_errors": "ignore"} if version_tuple(av.__version__) < (19,) else {}


def librosa_loads_through_ffmpeg() -> bool:
    """Whether ``librosa.load`` can read what libsndfile cannot (M4A, AAC) through audioread
    and the ffmpeg program: librosa before 1.0 with audioread installed."""
    version = installed_version("librosa")
    return version is not None and version_tuple(version) < (1,) and importlib.util.find_spec("audioread") is not None


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
