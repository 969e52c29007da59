"""Bounded reads of the pipeline's outputs with pyarrow: no Spark, nothing that grows with
the catalogue reaches memory.

A site over a million-track snapshot must build in seconds, so every reader here touches
only what the pages show:

* reports and small CSV/JSON files, whole (they are aggregates);
* the rankings' top N: one ``rank <= N`` filtered scan per ``context=<name>`` partition
  (row-group statistics skip the rest; ranks increase within each file);
* per-track facts for the few tracks shown (labels, split, audio path, names): a keyed
  look-up that prunes row groups by their ``track_id`` min/max before reading two or three
  columns (the tables are sorted by track id, so about one row group per wanted id is read);
* error rows up to a limit, and their total from the files' footers.
"""

from __future__ import annotations

import bisect
import json
import os
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Optional

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from ctx_spark.schema import TRACK_NAME_COLUMNS

#: Ranking columns the site can show, when the table has them (the names are optional:
#: they come with catalogues whose importer keeps them).
NAME_COLUMNS = TRACK_NAME_COLUMNS


def read_json(path: Path) -> tuple[Optional[dict], Optional[str]]:
    """(the parsed object, None), or (None, why not): a missing or unreadable report is a
    part of the site to mark absent, never a crash."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, f"{path} does not exist"
    except OSError as exc:
        return None, f"{path} could not be read: {exc}"
    try:
        value = json.loads(text)
    except ValueError as exc:
        return None, f"{path} is not valid JSON: {exc}"
    if not isinstance(value, dict):
        return None, f"{path} does not hold a JSON object"
    return value, None


def local(path_or_uri: Optional[str]) -> Optional[Path]:
    """The local path behind a path or ``file:`` URI; None for other URIs (``hdfs://``...).

    Spark writes local paths as ``file:/dir/name`` without percent-encoding while standard
    URIs are encoded, so the raw path wins when it exists (as the extraction stage reads
    them, ``ctx_spark.audio.decode.local_path``).
    """
    if not path_or_uri:
        return None
    text = str(path_or_uri)
    if text.startswith("file:"):
        rest = text[len("file:") :]
        if rest.startswith("//"):
            host, _, tail = rest[2:].partition("/")
            if host not in ("", "localhost"):
                return None
            rest = "/" + tail
        return Path(rest) if os.path.exists(rest) else Path(urllib.parse.unquote(rest))
    if "://" in text:
        return None
    return Path(text)


def dataset(path: Path) -> Optional[ds.Dataset]:
    """A Parquet dataset (hidden and ``_`` files ignored), or None when the path does not
    exist. A damaged file raises (pyarrow's error): callers turn it into a note."""
    if not path.exists():
        return None
    return ds.dataset(str(path), format="parquet")


def ranking_partitions(rankings: Path) -> dict[str, Path]:
    """Context name -> its ``context=<name>`` directory (names percent-decoded, as Spark
    escapes partition values)."""
    out: dict[str, Path] = {}
    if not rankings.is_dir():
        return out
    for entry in sorted(rankings.iterdir()):
        if entry.is_dir() and entry.name.startswith("context="):
            out[urllib.parse.unquote(entry.name[len("context=") :])] = entry
    return out


def top_ranked(partition: Path, n: int) -> Optional[pa.Table]:
    """The rows of one context's ranking with ``rank <= n``, by rank; None when unreadable."""
    data = dataset(partition)
    if data is None:
        return None
    names = data.schema.names
    columns = [c for c in ("rank", "track_id", "split", "probability", *NAME_COLUMNS) if c in names]
    if "rank" not in names or "track_id" not in names:
        return None
    table = data.to_table(columns=columns, filter=pc.field("rank") <= n)
    return table.sort_by([("rank", "ascending")])


def _key_index(metadata, key: str) -> Optional[int]:
    if metadata.num_row_groups == 0:
        return None
    group = metadata.row_group(0)
    for i in range(group.num_columns):
        if group.column(i).path_in_schema == key:
            return i
    return None


def _as_key_type(values: Iterable[Any], dtype: pa.DataType) -> list:
    if pa.types.is_integer(dtype):
        return sorted({int(v) for v in values})
    return sorted({str(v) for v in values})


def lookup(path: Path, ids: Iterable[Any], columns: Sequence[str], key: str = "track_id") -> dict[Any, dict]:
    """``{id: {column: value}}`` for the rows of ``path`` whose ``key`` is in ``ids``.

    Columns the table lacks are left out. Row groups whose ``key`` statistics cannot hold
    any wanted id are skipped before any data is read; only ``key`` and ``columns`` are
    decoded. Ids are matched as the key column's type (integers or strings). Where a key
    occurs twice the first row read wins.
    """
    data = dataset(path)
    out: dict[Any, dict] = {}
    if data is None or key not in data.schema.names:
        return out
    dtype = data.schema.field(key).type
    try:
        wanted = _as_key_type(ids, dtype)
    except (TypeError, ValueError):
        return out
    if not wanted:
        return out
    present = [c for c in columns if c in data.schema.names and c != key]
    condition = pc.field(key).isin(pa.array(wanted, type=dtype))
    subsets = []
    for fragment in data.get_fragments():
        metadata = fragment.metadata
        index = _key_index(metadata, key)
        groups = []
        for g in range(metadata.num_row_groups):
            stats = metadata.row_group(g).column(index).statistics if index is not None else None
            if stats is None or not stats.has_min_max:
                groups.append(g)
                continue
            i = bisect.bisect_left(wanted, stats.min)
            if i < len(wanted) and wanted[i] <= stats.max:
                groups.append(g)
        if groups:
            subsets.append(fragment.subset(row_group_ids=groups))
    if not subsets:
        return out
    # One scan over the chosen row groups of every file (threads across files), not one
    # scanner per file: a catalogue's shards are thousands of files.
    chosen = ds.FileSystemDataset(subsets, data.schema, data.format, filesystem=data.filesystem)
    for row in chosen.to_table(columns=[key, *present], filter=condition).to_pylist():
        out.setdefault(row[key], row)
    return out


def head_rows(path: Path, limit: int, columns: Sequence[str]) -> tuple[list[dict], Optional[int]]:
    """The first ``limit`` rows (the given columns that exist) and the total row count."""
    data = dataset(path)
    if data is None:
        return [], None
    present = [c for c in columns if c in data.schema.names]
    total = data.count_rows()
    rows = data.head(limit, columns=present).to_pylist() if limit > 0 and total else []
    return rows, total


def labelled_top(counts: Path, names: Sequence[str], min_playlists: int, n: int) -> dict[str, list[dict]]:
    """Per context, its ``n`` labelled tracks with the most playlists (ties by track id),
    from ``track_context_counts`` (track_id, context, n_playlists): the context pages of a
    snapshot without scores. Reads three columns of the pairs at or above the threshold."""
    data = dataset(counts)
    if data is None or not {"track_id", "context", "n_playlists"} <= set(data.schema.names):
        return {}
    extra = [c for c in NAME_COLUMNS if c in data.schema.names]
    table = data.to_table(
        columns=["track_id", "context", "n_playlists", *extra], filter=pc.field("n_playlists") >= min_playlists
    )
    out = {}
    for name in names:
        rows = table.filter(pc.equal(table["context"], name))
        out[name] = rows.sort_by([("n_playlists", "descending"), ("track_id", "ascending")]).slice(0, n).to_pylist()
    return out


def mel_split_dirs(mels: Path) -> list[Path]:
    """The shard directories of a mel output (train/validation/test, or all)."""
    return [mels / s for s in ("train", "validation", "test", "all") if (mels / s).is_dir()]


def audio_paths(
    mels: Optional[Path],
    audio_dir: Optional[Path],
    ids: Iterable[Any],
    extensions: Sequence[str] = ("mp3", "ogg", "flac", "wav"),
) -> dict[Any, Path]:
    """Local audio file per track id: the mel shards' ``audio`` column (what extraction
    decoded), else ``<audio_dir>/<id>.<ext>`` at the top level of the catalogue's audio
    directory. Only files that exist are returned: a player is shown for those alone."""
    wanted = list(ids)
    found: dict[Any, Path] = {}
    if mels is not None:
        for split in mel_split_dirs(mels):
            for track_id, row in lookup(split, [i for i in wanted if i not in found], ["audio"]).items():
                path = local(row.get("audio"))
                if path is not None and path.is_file():
                    found[track_id] = path
    if audio_dir is not None and audio_dir.is_dir():
        for track_id in wanted:
            if track_id in found:
                continue
            for ext in extensions:
                candidate = audio_dir / f"{track_id}.{ext}"
                if candidate.is_file():
                    found[track_id] = candidate
                    break
    return found
