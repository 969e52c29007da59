"""Reading the results without Spark: the top tracks of a context, from a scoring output or
the current refresh snapshot.

Only the requested context's ranking partition is opened, and only its rows with
``rank <= n`` are read (a Parquet filter on the ranking's ``rank`` column), so this stays
fast on a catalogue of any size.
"""

from __future__ import annotations

from typing import Any, Optional

import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs

from ctx_spark import fs, schema
from ctx_spark.errors import InputError

#: The optional columns a ranking may carry besides rank, track_id, split and probability.
NAME_COLUMNS = ("track_name", "artist_name", "album_name")


def scores_of_snapshot(root: str) -> str:
    """The ``scores/`` directory of the published snapshot of refresh root ``root``.

    Raises:
        InputError: nothing is published, or the snapshot holds no scores (no
            ``refresh.model`` was configured).
    """
    from ctx_spark.refresh import current_snapshot
    from ctx_spark.refresh.references import resolve_path
    from ctx_spark.refresh.settings import STAGE_DIRS

    snapshot = current_snapshot(None if fs.is_local(root) else _spark(), root)
    if snapshot is None:
        raise InputError(f"refresh root {root}: nothing published yet (no {root}/current)")
    scores = resolve_path(f"{snapshot}/{STAGE_DIRS['score']}")  # a reused stage: where its data is
    if not fs.exists(fs.join(scores, schema.CONTEXT_RANKINGS_DIR)):
        raise InputError(f"snapshot {snapshot} holds no scores: set refresh.model to score each refresh")
    return scores


def _spark():  # pragma: no cover - a non-local root needs Hadoop's filesystems
    from ctx_spark.config import load_config
    from ctx_spark.spark import SparkSettings, get_spark

    return get_spark("ctx-spark top", load_config().section("spark", SparkSettings))


def top_tracks(scores: str, context: str, n: int) -> list[dict[str, Any]]:
    """The ``n`` most probable tracks of ``context`` in a scoring output, rank 1 first.

    Args:
        scores: a ``ctx-spark score`` output directory (holding ``context_rankings/``).

    Returns:
        One dict per track: rank, track_id, probability, split, and the name columns the
        ranking carries.

    Raises:
        InputError: no ranking for ``context`` (the message lists the contexts there are).
    """
    rankings = fs.join(scores, schema.CONTEXT_RANKINGS_DIR)
    if not fs.is_dir(rankings):
        raise InputError(f"{scores}: no {schema.CONTEXT_RANKINGS_DIR}/ here; is it a `ctx-spark score` output?")
    part = fs.join(rankings, f"context={context}")
    if not fs.is_dir(part):
        filesystem, inner = fs.arrow_filesystem(rankings)
        entries = filesystem.get_file_info(pafs.FileSelector(inner))
        found = sorted(i.base_name.split("=", 1)[1] for i in entries if i.base_name.startswith("context="))
        raise InputError(f"{rankings}: no ranking for context '{context}'; there are: {', '.join(found) or 'none'}")
    filesystem, inner = fs.arrow_filesystem(part)
    data = pads.dataset(inner, format="parquet", filesystem=filesystem)
    columns = [c for c in ("rank", schema.TRACK_ID, "probability", "split", *NAME_COLUMNS) if c in data.schema.names]
    table = data.to_table(columns=columns, filter=pc.field("rank") <= n)
    rows = sorted(table.to_pylist(), key=lambda r: r["rank"])
    return rows[:n]


def format_top(rows: list[dict[str, Any]], context: str, where: Optional[str] = None) -> str:
    """The rows of :func:`top_tracks` as an aligned text table."""
    head = f"top {len(rows)} tracks for '{context}'" + (f" ({where})" if where else "")
    lines = [head, f"{'rank':>5}  {'probability':>11}  {'split':<10}  track"]
    for row in rows:
        names = " - ".join(str(row[c]) for c in ("artist_name", "track_name") if row.get(c))
        track = f"{row[schema.TRACK_ID]}" + (f"  {names}" if names else "")
        lines.append(f"{row['rank']:>5}  {row['probability']:>11.4f}  {row.get('split') or '':<10}  {track}")
    return "\n".join(lines)
