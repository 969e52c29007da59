"""Building the SparkSession: local mode by default, whatever spark-submit says otherwise.

Jobs call :func:`get_spark` and never set a master themselves, so the same file runs under
``python -m jobs.x`` (local mode), ``spark-submit --master local[4]`` and on a standalone,
YARN or Kubernetes cluster.
"""

from __future__ import annotations

import os
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession

from ctx_spark.logs import get_logger

log = get_logger("spark")

#: The package shipped to executors of a non-local master with every session; a stage
#: that needs another one (the scoring stage: ``training``) ships it with
#: :func:`ship_package`.
SHIPPED_PACKAGES = ("ctx_spark",)

#: Packages already shipped, per SparkContext (by its application id).
_shipped: dict[str, set[str]] = {}


#: What ``SparkContext.setLogLevel`` accepts (checked before the session starts).
LOG_LEVELS = ("ALL", "DEBUG", "ERROR", "FATAL", "INFO", "OFF", "TRACE", "WARN")


@dataclass(frozen=True)
class SparkSettings:
    """The ``spark`` config section (conf/spark.yaml)."""

    master: str
    log_level: str
    ship_package: bool
    conf: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.master.strip():
            raise ValueError("master must not be empty (e.g. local[*], yarn, spark://host:7077)")
        if self.log_level.upper() not in LOG_LEVELS:
            raise ValueError(f"log_level must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}")
        nested = [key for key, value in self.conf.items() if isinstance(value, (Mapping, list, tuple))]
        if nested:
            raise ValueError(f"conf.{nested[0]} must be one value (a string, number or boolean), not a list or map")


def _project_root() -> Path:
    return Path(__file__).resolve().parent.parent


def _prepare_local_environment() -> None:
    """Make Python workers of a JVM we launch use this interpreter and this code.

    Local-mode workers are forked from a daemon that inherits the JVM's environment, not
    the driver's sys.path; pointing PYTHONPATH at the project root makes them import the
    same ``ctx_spark`` as the driver, installed or not.
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    root = str(_project_root())
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([root] + parts)


def _package_zip(package: str) -> str:
    """Zip one of the project's packages for SparkContext.addPyFile."""
    root = _project_root()
    handle, path = tempfile.mkstemp(prefix=f"{package}-", suffix=".zip")
    os.close(handle)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted((root / package).rglob("*.py")):
            archive.write(file, file.relative_to(root).as_posix())
    return path


def _needs_shipping(spark: SparkSession) -> bool:
    """Workers of a JVM we did not start (a cluster, or spark-submit in local mode) cannot
    see this checkout through PYTHONPATH."""
    master = spark.sparkContext.master
    assert master is not None  # a running SparkContext always has a master URL
    return not master.startswith("local") or _launched_by_spark_submit()


def ship_package(spark: SparkSession, package: str) -> None:
    """Ship ``package`` (a top-level package of this project) to the executors, once per
    application, when they cannot import it from this checkout."""
    shipped = _shipped.setdefault(spark.sparkContext.applicationId, set())
    if package in shipped or not _needs_shipping(spark):
        return
    spark.sparkContext.addPyFile(_package_zip(package))
    shipped.add(package)


def _launched_by_spark_submit() -> bool:
    """True when spark-submit started the JVM and handed Python its gateway port."""
    return bool(os.environ.get("PYSPARK_GATEWAY_PORT"))


def _submitted_conf() -> SparkConf:
    """What spark-submit was told (``--master``, ``--conf``), empty under plain ``python``.

    spark-submit starts the JVM first and passes its gateway port to Python; its options
    live there as system properties, which a SparkConf only loads once the gateway is
    connected. Connecting early is harmless then (the JVM exists already) but would start
    a JVM too soon under plain ``python``, before driver options from the config apply,
    so it happens only when a gateway is waiting.
    """
    if _launched_by_spark_submit():
        SparkContext._ensure_initialized()
    return SparkConf()


def get_spark(app_name: str, settings: SparkSettings) -> SparkSession:
    """Return the active session or create one.

    The master comes from spark-submit (``--master``) or ``spark.master`` in the
    environment's defaults when present, else ``settings.master``.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        # Runtime SQL settings can still change on a live session (tests, notebooks).
        for key, value in settings.conf.items():
            if key.startswith("spark.sql."):
                active.conf.set(key, str(value).lower() if isinstance(value, bool) else str(value))
        return active
    submitted = _submitted_conf()
    builder = SparkSession.builder.appName(app_name)
    master = submitted.get("spark.master", None) or settings.master
    builder = builder.master(master)
    local = master.startswith("local")
    if local:
        _prepare_local_environment()
    for key, value in settings.conf.items():
        if not submitted.contains(key):
            builder = builder.config(key, str(value).lower() if isinstance(value, bool) else str(value))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(settings.log_level)
    if settings.ship_package:
        for package in SHIPPED_PACKAGES:
            ship_package(spark, package)
    log.info("Spark %s session '%s' on %s", spark.version, app_name, spark.sparkContext.master)
    return spark
