"""The catalogue a refresh reads, and the fingerprint that says whether it changed.

Catalogue layout ``C``: ``C/playlists``, ``C/playlist_tracks``, ``C/tracks`` (Parquet, the
labelling job's input contract; a directory or a single file each) and the audio: an
``audio`` column in ``C/tracks`` (a path or URI per track) or a directory of
``<track_id>.<ext>`` files (``refresh.audio_dir``, default ``C/audio``).

The fingerprint decides whether an unfinished run may be resumed: the configuration (less
the ``spark`` section and the operational ``refresh`` keys, which change how a run is
operated, not what it writes), and for every input its path, file count, total bytes,
latest modification time and an order-free digest of (path, size, mtime) over its files.
The listings are Spark aggregations over the ``binaryFile`` source selecting only path,
length and modification time (no file is read), so an audio directory of millions of files
gives four numbers to the driver, never its listing.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Optional

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from ctx_spark import io
from ctx_spark.config import Config
from ctx_spark.errors import InputError
from ctx_spark.refresh.settings import OPERATIONAL_KEYS, OPERATIONAL_STORE_KEYS, RefreshSettings

TABLES = ("playlists", "playlist_tracks", "tracks")
AUDIO_COLUMN = "audio"


@dataclass(frozen=True)
class Catalogue:
    """Resolved input paths (qualified) and where the audio comes from.

    Attributes:
        audio_source: ``column`` (``tracks`` has an ``audio`` column) or ``dir``.
        audio_dir: the audio directory for ``dir``, else None.
    """

    root: str
    playlists: str
    playlist_tracks: str
    tracks: str
    audio_source: str
    audio_dir: Optional[str]

    def tables(self) -> dict[str, str]:
        return {"playlists": self.playlists, "playlist_tracks": self.playlist_tracks, "tracks": self.tracks}


def _under(root: str, path: str) -> str:
    if "://" in path or path.startswith("file:") or os.path.isabs(path):
        return io.qualify(path)
    return f"{root}/{path}"


def resolve_catalogue(spark: SparkSession, catalogue: str, settings: RefreshSettings) -> Catalogue:
    """Check that the catalogue's tables exist and decide where the audio is.

    Raises:
        InputError: a table or the audio directory is missing, or ``audio_source: column``
            while ``C/tracks`` has no ``audio`` column.
    """
    root = io.qualify(catalogue).rstrip("/")
    paths = {name: f"{root}/{name}" for name in TABLES}
    for name, path in paths.items():
        if not io.path_exists(spark, path):
            raise InputError(f"catalogue {root}: table '{name}' is missing (expected Parquet at {path})")
    source = settings.audio_source
    if source in ("auto", "column"):
        has_column = AUDIO_COLUMN in spark.read.parquet(paths["tracks"]).columns
        if source == "column" and not has_column:
            raise InputError(
                f"table 'tracks' ({paths['tracks']}): refresh.audio_source is 'column' but it "
                f"has no '{AUDIO_COLUMN}' column"
            )
        source = "column" if has_column else "dir"
    audio_dir = None
    if source == "dir":
        audio_dir = _under(root, settings.audio_dir)
        if not io.path_exists(spark, audio_dir):
            raise InputError(
                f"catalogue {root}: no '{AUDIO_COLUMN}' column in table 'tracks' and no audio "
                f"directory {audio_dir} (refresh.audio_dir)"
            )
    return Catalogue(root=root, audio_source=source, audio_dir=audio_dir, **paths)


def check_model(settings: RefreshSettings) -> None:
    """Fail before any work when ``refresh.model`` names no exported model (scoring is the
    last stage: a typo would otherwise surface after hours of extraction)."""
    from ctx_spark.schema import META_FILE, MODEL_FILE

    if settings.model and not all(os.path.isfile(os.path.join(settings.model, f)) for f in (MODEL_FILE, META_FILE)):
        raise InputError(f"refresh.model: {settings.model} holds no exported model ({MODEL_FILE} and {META_FILE})")


def listings(spark: SparkSession, paths: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Per input: the files under its path (any depth; hidden and ``_``-prefixed names
    skipped, as Spark does), as count, total bytes, latest modification time and a digest
    of (path, size, mtime); one listing and one aggregation for all inputs together."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None  # set while the SparkContext is running
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    qualified = {}
    for name, path in paths.items():
        jpath = jvm.org.apache.hadoop.fs.Path(path)
        qualified[name] = jpath.getFileSystem(conf).makeQualified(jpath).toString().rstrip("/")
    files = (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .load(list(paths.values()))
        .select("path", "length", F.unix_millis("modificationTime").alias("mtime"))
    )
    owner = F.lit(None).cast("string")
    for name, prefix in sorted(qualified.items(), key=lambda item: len(item[1])):  # longest prefix wins
        owner = F.when((F.col("path") == prefix) | F.col("path").startswith(prefix + "/"), F.lit(name)).otherwise(owner)
    rows = (
        files.withColumn("input", owner)
        .groupBy("input")
        .agg(
            F.count(F.lit(1)).alias("files"),
            F.sum("length").alias("bytes"),
            F.max("mtime").alias("latest"),
            F.bit_xor(F.xxhash64("path", "length", "mtime")).alias("digest"),
        )
        .collect()
    )  # one row per input
    found = {row["input"]: row for row in rows}
    result = {}
    for name, path in paths.items():
        row = found.get(name)
        latest = row["latest"] if row is not None else None
        result[name] = {
            "path": path,
            "files": int(row["files"]) if row is not None else 0,
            "bytes": int(row["bytes"] or 0) if row is not None else 0,
            "latest_mtime": (
                datetime.fromtimestamp(latest / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                if latest is not None
                else None
            ),
            "digest": f"{(row['digest'] or 0) & 0xFFFFFFFFFFFFFFFF:016x}" if row is not None else None,
        }
    return result


def _local_listing(path: str) -> dict[str, Any]:
    """The model directory (a local path read by the driver)."""
    entries = []
    for directory, _, names in os.walk(path):
        for name in names:
            stat = os.stat(os.path.join(directory, name))
            entries.append((os.path.relpath(os.path.join(directory, name), path), stat.st_size, stat.st_mtime_ns))
    digest = hashlib.sha256(json.dumps(sorted(entries)).encode()).hexdigest()[:16]
    return {"path": os.path.abspath(path), "files": len(entries), "bytes": sum(e[1] for e in entries), "digest": digest}


def output_config(cfg: Config) -> dict[str, Any]:
    """The configuration that shapes a run's outputs (what the fingerprint covers)."""
    data = copy.deepcopy(cfg.to_dict())
    data.pop("spark", None)
    refresh = data.get("refresh", {})
    for key in OPERATIONAL_KEYS:
        refresh.pop(key, None)
    for key in OPERATIONAL_STORE_KEYS:
        (refresh.get("store") or {}).pop(key, None)
    return data


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def fingerprint(spark: SparkSession, cfg: Config, catalogue: Catalogue, settings: RefreshSettings) -> dict[str, Any]:
    """{digest, config (digest), inputs: {name: listing}}; equal digests mean a resumed run
    reads what the interrupted one read, under the same settings."""
    paths = dict(catalogue.tables())
    if catalogue.audio_dir is not None:
        paths["audio"] = catalogue.audio_dir
    inputs = listings(spark, paths)
    if settings.model:
        inputs["model"] = _local_listing(settings.model)
    parts = {"config": _digest(output_config(cfg)), "inputs": inputs}
    return {"digest": _digest(parts), **parts}


def changed_parts(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Names of what differs between two fingerprints (for the log)."""
    changed = ["config"] if old.get("config") != new.get("config") else []
    names = sorted(set(old.get("inputs", {})) | set(new.get("inputs", {})))
    return changed + [n for n in names if old.get("inputs", {}).get(n) != new.get("inputs", {}).get(n)]
