"""Importing Spotify Million Playlist Dataset (MPD) slices as the three input tables.

An MPD slice (``mpd.slice.<a>-<b>.json``) is one JSON object of ~33 MB: ``info`` and
``playlists``, each playlist with ``name``, ``pid`` and ``tracks`` (``track_uri``,
``artist_uri``, ``artist_name``, ``album_uri``, ... in the full schema; some published
subsets keep only ``artist_name``, ``track_uri`` and ``track_name``). The mapping:

- ``playlists``: ``playlist_id`` = ``pid`` (int64), ``title`` = ``name``.
- ``playlist_tracks``: ``playlist_id``, ``track_id`` = ``track_uri``, ``pos`` = the track's
  index in the playlist's ``tracks`` array.
- ``tracks``: ``track_id``; ``artist_id`` = ``artist_uri``, or when no entry of the track
  has one, ``artist-name:`` + the first 32 hex digits of SHA-256(UTF-8 ``artist_name``):
  stable across runs and files, one id per exact artist name, never equal to a Spotify URI
  (see :func:`artist_name_id`); ``album_id`` = ``album_uri`` or null; and the optional name
  columns ``track_name``, ``artist_name``, ``album_name`` (null where a slice lacks them; a
  track whose entries disagree keeps the smallest of each), which the labelling and scoring
  outputs carry along.

Why Spark's JSON reader and not Python: the full MPD is 1,000 files, ~33 GB of JSON and 66M
track entries. Spark reads each file in its own task (``multiLine``), parses in the JVM
with an explicit schema (no inference pass over 33 GB; fields outside the schema are
skipped) and keeps the rows columnar, so the import scales with the cluster. A Python
``json.load`` loop would parse everything in one driver process and then ship 66M Python
rows to the JVM. Python is used only to explain why a malformed file was rejected
(:func:`diagnose_slice`), on the rejected files alone, inside the executors.

Malformed files are reported and skipped, never fatal: invalid JSON, a top level that is
not an object, no ``playlists`` array, or a value of the wrong type anywhere in the schema's
fields (e.g. a string ``pid``). JSON numbers are accepted where a string is expected (they
become text), as Spark does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ctx_spark import __version__, io, schema
from ctx_spark.errors import InputError
from ctx_spark.logs import get_logger, stage

log = get_logger("mpd")

SLICE_GLOB = "mpd.slice.*.json"
ARTIST_NAME_PREFIX = "artist-name:"
TRACK_FIELDS = ("track_uri", "artist_uri", "artist_name", "album_uri", "track_name", "album_name")
CORRUPT = "_corrupt_record"

#: The part of the MPD schema the import reads; other fields are ignored.
SLICE_SCHEMA = T.StructType(
    [
        T.StructField(
            "playlists",
            T.ArrayType(
                T.StructType(
                    [
                        T.StructField("name", T.StringType()),
                        T.StructField("pid", T.LongType()),
                        T.StructField(
                            "tracks",
                            T.ArrayType(T.StructType([T.StructField(name, T.StringType()) for name in TRACK_FIELDS])),
                        ),
                    ]
                )
            ),
        ),
        T.StructField(CORRUPT, T.StringType()),
    ]
)

_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def diagnose_slice(content: bytes) -> str:
    """Why a slice file cannot be imported, in one line (the first problem found).

    Checks, in order: UTF-8, JSON syntax, a top-level object, a ``playlists`` array, and the
    types of each playlist's ``pid`` (integer), ``name`` (string), ``tracks`` (array of
    objects whose uri and name fields are strings); nulls are allowed.
    """
    if not content.strip():
        return "empty file (no JSON value)"
    try:
        data = json.loads(content.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text: {exc}"
    except json.JSONDecodeError as exc:
        return f"invalid JSON: {exc}"
    if not isinstance(data, dict):
        return f"the top-level JSON value is {_json_type(data)}, expected an object"
    if "playlists" not in data:
        return "no 'playlists' key"
    playlists = data["playlists"]
    if not isinstance(playlists, list):
        return f"'playlists' is {_json_type(playlists)}, expected an array"
    for i, playlist in enumerate(playlists):
        where = f"playlists[{i}]"
        if not isinstance(playlist, dict):
            return f"{where} is {_json_type(playlist)}, expected an object"
        pid = playlist.get("pid")
        if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int)):
            return f"{where}.pid is {_json_type(pid)} ({json.dumps(pid)[:40]}), expected an integer"
        if not isinstance(playlist.get("name"), (str, int, float, type(None))) or isinstance(
            playlist.get("name"), bool
        ):
            return f"{where}.name is {_json_type(playlist['name'])}, expected a string"
        tracks = playlist.get("tracks")
        if tracks is None:
            continue
        if not isinstance(tracks, list):
            return f"{where}.tracks is {_json_type(tracks)}, expected an array"
        for j, track in enumerate(tracks):
            if not isinstance(track, dict):
                return f"{where}.tracks[{j}] is {_json_type(track)}, expected an object"
            for field in TRACK_FIELDS:
                value = track.get(field)
                if isinstance(value, (dict, list, bool)):
                    return f"{where}.tracks[{j}].{field} is {_json_type(value)}, expected a string"
    return "Spark could not parse it with the MPD schema (a value out of range?)"


def artist_name_id(name: Column) -> Column:
    """The artist id derived from an artist name, for slices without ``artist_uri``.

    ``artist-name:`` + the first 32 hex digits (128 bits) of SHA-256 of the UTF-8 name:
    the same name gives the same id in every file and run; names differing in any
    character (case included) are different artists, as on Spotify's side. Null stays null.
    """
    return F.when(name.isNotNull(), F.concat(F.lit(ARTIST_NAME_PREFIX), F.substring(F.sha2(name, 256), 1, 32)))


def list_slices(spark: SparkSession, pattern: str) -> list[str]:
    """Slice files named by a directory (its ``mpd.slice.*.json``) or a glob, sorted.

    Raises:
        InputError: nothing matches.
    """
    jvm = spark.sparkContext._jvm
    assert jvm is not None  # set while the SparkContext is running
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    path = jvm.org.apache.hadoop.fs.Path(io.qualify(pattern))
    fs = path.getFileSystem(conf)
    if fs.exists(path) and fs.getFileStatus(path).isDirectory():
        path = jvm.org.apache.hadoop.fs.Path(path, SLICE_GLOB)
    statuses = fs.globStatus(path) or []
    files = sorted(s.getPath().toString() for s in statuses if s.isFile())
    if not files:
        raise InputError(f"MPD slices: no file matches {pattern} (give a directory of {SLICE_GLOB} or a glob)")
    return files


def read_entries(spark: SparkSession, files: Iterable[str]) -> DataFrame:
    """One row per track entry (and per empty playlist, and per unreadable file).

    Returns:
        (file, malformed, no_playlists, is_playlist, pid, title, pos, track_uri, artist_uri,
        artist_name, album_uri). ``malformed``: Spark could not parse the file with the
        schema; ``no_playlists``: the file has no ``playlists`` array. Both flags hold for
        every row of a file. ``is_playlist`` is false on the single row of a file with an
        empty ``playlists`` array (or for a null element of it). Entry columns are null for a
        playlist without tracks.
    """
    raw = (
        spark.read.schema(SLICE_SCHEMA)
        .option("multiLine", True)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .json(list(files))
    )
    playlists = raw.select(
        F.col("_metadata.file_path").alias("file"),
        F.col(CORRUPT).isNotNull().alias("malformed"),
        F.col("playlists").isNull().alias("no_playlists"),
        F.explode_outer("playlists").alias("p"),
    )
    entries = playlists.select(
        "file",
        "malformed",
        "no_playlists",
        F.col("p").isNotNull().alias("is_playlist"),
        F.col("p.pid").alias("pid"),
        F.col("p.name").alias("title"),
        F.posexplode_outer("p.tracks").alias("pos", "t"),
    )
    return entries.select(
        "file",
        "malformed",
        "no_playlists",
        "is_playlist",
        "pid",
        "title",
        "pos",
        *[F.col(f"t.{f}").alias(f) for f in TRACK_FIELDS],
    )


def diagnose_files(spark: SparkSession, files: list[str]) -> dict[str, str]:
    """file -> reason, by :func:`diagnose_slice` run in the executors (rejected files only)."""
    if not files:
        return {}
    reason = F.udf(lambda content: diagnose_slice(bytes(content)), T.StringType())
    rows = spark.read.format("binaryFile").load(files).select("path", reason("content").alias("reason")).collect()
    found = {unquote(r["path"]): r["reason"] for r in rows}
    return {f: found.get(unquote(f), "could not be read") for f in files}


def build_tables(good: DataFrame) -> tuple[DataFrame, DataFrame, DataFrame, DataFrame]:
    """The three input tables from the entries of well-formed files.

    A pid found in several files keeps the copy of the first file in path order.

    Returns:
        (playlists, playlist_tracks, tracks, chosen): ``chosen`` is (pid, file, n_files);
        ``tracks`` has the name columns of :data:`ctx_spark.schema.TRACK_NAME_COLUMNS`.
    """
    copies = good.where(F.col("pid").isNotNull()).select("pid", "file", "title").distinct()
    chosen = (
        copies.groupBy("pid")
        .agg(F.min(F.struct("file", "title")).alias("first"), F.countDistinct("file").alias("n_files"))
        .select("pid", F.col("first.file").alias("file"), F.col("first.title").alias("title"), "n_files")
    )
    playlists = chosen.select(F.col("pid").alias("playlist_id"), "title")
    playlist_tracks = (
        good.where(F.col("track_uri").isNotNull())
        .join(chosen.select("pid", "file"), ["pid", "file"], "left_semi")
        .select(
            F.col("pid").alias("playlist_id"), F.col("track_uri").alias("track_id"), F.col("pos").cast(T.IntegerType())
        )
    )
    tracks = (
        good.where(F.col("track_uri").isNotNull())
        .groupBy("track_uri")
        .agg(
            F.max("artist_uri").alias("artist_uri"),
            F.min(artist_name_id(F.col("artist_name"))).alias("name_id"),
            F.max("album_uri").alias("album_id"),
            *[F.min(name).alias(name) for name in schema.TRACK_NAME_COLUMNS],
        )
        .select(
            F.col("track_uri").alias("track_id"),
            F.coalesce("artist_uri", "name_id").alias("artist_id"),
            "album_id",
            *schema.TRACK_NAME_COLUMNS,
        )
    )
    return playlists, playlist_tracks, tracks, chosen


def run_import_stage(spark: SparkSession, pattern: str, out: str) -> dict[str, Any]:
    """Import the slices matching ``pattern`` into ``out/playlists``, ``out/playlist_tracks``,
    ``out/tracks`` (Parquet, string track ids, int64 playlist ids) and ``out/report.json``,
    each written atomically. Malformed files are logged, reported and skipped.

    Raises:
        InputError: no file matches ``pattern``.
    """
    started = time.perf_counter()
    out = io.qualify(out).rstrip("/")
    files = list_slices(spark, pattern)
    log.info("importing %d MPD slice files from %s", len(files), pattern)
    entries = read_entries(spark, files).persist(StorageLevel.DISK_ONLY)
    try:
        with stage(log, "parse slices") as timer:
            status = (
                entries.groupBy("file")
                .agg(
                    F.max(F.col("malformed").cast("int")).alias("malformed"),
                    F.max(F.col("no_playlists").cast("int")).alias("no_playlists"),
                    F.countDistinct("pid").alias("playlists"),
                    F.count("track_uri").alias("entries"),
                )
                .collect()
            )  # one row per file
            timer.rows = sum(r["entries"] for r in status)
        skipped = _skipped_files(spark, files, status)
        for item in skipped:
            log.warning("skipped %s: %s", item["file"], item["reason"])
        good = entries.where(~F.col("malformed") & ~F.col("no_playlists"))
        playlists, playlist_tracks, tracks, chosen = build_tables(good)
        with stage(log, "write playlists"):
            io.write_parquet(playlists, f"{out}/playlists", sort_by=("playlist_id",))
        with stage(log, "write playlist_tracks"):
            io.write_parquet(playlist_tracks, f"{out}/playlist_tracks", sort_by=("playlist_id", "pos"))
        with stage(log, "write tracks"):
            io.write_parquet(tracks, f"{out}/tracks", sort_by=("track_id",))
        counts = _counts(good, chosen, spark, out)
    finally:
        entries.unpersist()
    report = {
        "stage": "import_mpd",
        "version": __version__,
        "input": pattern,
        "outputs": {t: f"{out}/{t}" for t in ("playlists", "playlist_tracks", "tracks")},
        "files": {"found": len(files), "imported": len(files) - len(skipped), "skipped": len(skipped)},
        "skipped_files": skipped,
        **counts,
        "elapsed_seconds": round(time.perf_counter() - started, 3),
    }
    io.write_json(spark, f"{out}/report.json", report)
    return report


def _skipped_files(spark: SparkSession, files: list[str], status: list) -> list[dict[str, str]]:
    by_file = {unquote(r["file"]): r for r in status}
    reasons: dict[str, str] = {}
    to_diagnose = []
    for f in files:
        row = by_file.get(unquote(f))
        if row is None or row["malformed"]:
            to_diagnose.append(f)  # no row at all: an empty file
        elif row["no_playlists"]:
            reasons[f] = "no 'playlists' array (key missing or null)"
    reasons.update(diagnose_files(spark, to_diagnose))
    return [{"file": f, "reason": reasons[f]} for f in files if f in reasons]


def _counts(good: DataFrame, chosen: DataFrame, spark: SparkSession, out: str) -> dict[str, Any]:
    """Row counts for the report, from the persisted entries and the written tables."""
    e = good.agg(
        # one row per playlist object: its first entry, or its only row when it has no tracks
        F.count(
            F.when(F.col("is_playlist") & F.col("pid").isNull() & F.coalesce(F.col("pos") == 0, F.lit(True)), 1)
        ).alias("no_pid"),
        F.count(F.when(F.col("pid").isNotNull() & F.col("pos").isNotNull() & F.col("track_uri").isNull(), 1)).alias(
            "no_uri"
        ),
    ).first()
    assert e is not None  # a global aggregation always returns one row
    c = chosen.agg(
        F.count(F.lit(1)).alias("playlists"),
        F.count(F.when(F.col("n_files") > 1, 1)).alias("dup"),
        F.count(F.when(F.col("title").isNull(), 1)).alias("null_title"),
    ).first()
    assert c is not None  # a global aggregation always returns one row
    tracks = spark.read.parquet(f"{out}/tracks")
    t = tracks.agg(
        F.count(F.lit(1)).alias("tracks"),
        F.count(F.when(F.col("artist_id").startswith(ARTIST_NAME_PREFIX), 1)).alias("derived"),
        F.count(F.when(F.col("artist_id").isNull(), 1)).alias("no_artist"),
        F.count(F.when(F.col("album_id").isNull(), 1)).alias("no_album"),
    ).first()
    assert t is not None  # a global aggregation always returns one row
    return {
        "rows": {
            "playlists": int(c["playlists"]),
            "playlist_tracks": spark.read.parquet(f"{out}/playlist_tracks").count(),
            "tracks": int(t["tracks"]),
        },
        "playlists_null_title": int(c["null_title"]),
        "duplicate_pids_kept_first_file": int(c["dup"]),
        "entries_dropped": {"playlists_without_pid": int(e["no_pid"]), "tracks_without_uri": int(e["no_uri"])},
        "tracks_artist_id_from_name": int(t["derived"]),
        "tracks_without_artist": int(t["no_artist"]),
        "tracks_without_album": int(t["no_album"]),
    }
