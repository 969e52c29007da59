"""The labelling rules in plain DuckDB, as a single-node baseline for bench/label_tracks.py.

    python bench/label_duckdb.py CATALOGUE OUT [--threads 2] [--set key=value ...]

Titles are matched in Python with the project's matcher (:mod:`ctx_spark.text`, every non-null
title, no pre-filter: the plain way), the rest is one SQL script over the Parquet files: the
same rules as ``ctx_spark/label/rules.py`` (docs/labelling.md, "Labelling rules"), ids with two
titles dropped, null track ids ignored. Writes ``OUT/track_context_counts.parquet`` and
``OUT/track_labels.parquet`` and prints one ``DUCKDB {json}`` line with the seconds of the
matching and of the SQL. DuckDB is a benchmark-only dependency (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ctx_spark.config import load_config  # noqa: E402
from ctx_spark.label.settings import LabelSettings  # noqa: E402
from ctx_spark.text import KeywordMatcher  # noqa: E402


def _glob(catalogue: Path, table: str) -> str:
    return str(catalogue / table / "*.parquet")


def match_titles(con: Any, catalogue: Path, matcher: KeywordMatcher) -> Any:
    """(playlist_id, context) of every playlists row whose title matches, as an Arrow table."""
    import pyarrow as pa

    titles = con.sql(
        f"SELECT playlist_id, title FROM read_parquet('{_glob(catalogue, 'playlists')}') "
        "WHERE playlist_id IS NOT NULL AND title IS NOT NULL"
    ).to_arrow_table()
    ids, contexts = [], []
    for playlist_id, title in zip(titles.column(0).to_pylist(), titles.column(1).to_pylist()):
        for context in matcher.match(title):
            ids.append(playlist_id)
            contexts.append(context)
    return pa.table({"playlist_id": pa.array(ids, titles.schema.field(0).type), "context": contexts})


def label_sql(catalogue: Path, names: tuple[str, ...], settings: LabelSettings) -> str:
    """The SQL script creating the tables ``counts`` and ``labels`` from ``matches``."""
    playlists, pt, tracks = (_glob(catalogue, t) for t in ("playlists", "playlist_tracks", "tracks"))
    vector = ", ".join(f"coalesce(max(n_playlists) FILTER (WHERE context = '{n}'), 0)" for n in names)
    return f"""
CREATE TEMP TABLE ids AS
  SELECT playlist_id, count(DISTINCT title) + max(CASE WHEN title IS NULL THEN 1 ELSE 0 END) AS n_titles
  FROM read_parquet('{playlists}')
  WHERE playlist_id IN (SELECT playlist_id FROM matches)
  GROUP BY playlist_id;
CREATE TEMP TABLE matched AS
  SELECT DISTINCT playlist_id, context FROM matches JOIN ids USING (playlist_id) WHERE n_titles = 1;
CREATE TEMP TABLE pairs AS
  SELECT DISTINCT playlist_id, track_id FROM read_parquet('{pt}')
  WHERE track_id IS NOT NULL AND playlist_id IN (SELECT playlist_id FROM matched);
CREATE TEMP TABLE known AS
  SELECT p.playlist_id, p.track_id, c.artist_id, c.album_id
  FROM pairs p JOIN (
    SELECT track_id, min(artist_id) AS artist_id, min(album_id) AS album_id FROM read_parquet('{tracks}')
    WHERE track_id IN (SELECT track_id FROM pairs) GROUP BY track_id
  ) c USING (track_id);
CREATE TEMP TABLE kept AS
  SELECT s.playlist_id FROM
    (SELECT playlist_id, count(*) AS n FROM known GROUP BY playlist_id) s
    LEFT JOIN (SELECT playlist_id, max(k) AS a FROM
               (SELECT playlist_id, artist_id, count(*) AS k FROM known WHERE artist_id IS NOT NULL GROUP BY ALL)
               GROUP BY playlist_id) ar USING (playlist_id)
    LEFT JOIN (SELECT playlist_id, max(k) AS b FROM
               (SELECT playlist_id, album_id, count(*) AS k FROM known WHERE album_id IS NOT NULL GROUP BY ALL)
               GROUP BY playlist_id) al USING (playlist_id)
  WHERE s.n <= {settings.max_tracks}
    AND NOT coalesce(ar.a, 0) / s.n > {settings.max_share!r}
    AND NOT coalesce(al.b, 0) / s.n > {settings.max_share!r};
CREATE TEMP TABLE counts AS
  SELECT k.track_id, k.artist_id, k.album_id, m.context, count(*)::INTEGER AS n_playlists
  FROM matched m JOIN kept USING (playlist_id) JOIN known k USING (playlist_id)
  GROUP BY ALL;
CREATE TEMP TABLE labels AS
  SELECT track_id, artist_id, album_id,
         list_sort(list(context) FILTER (WHERE n_playlists >= {settings.min_playlists})) AS contexts,
         [{vector}]::INTEGER[] AS n_playlists
  FROM counts GROUP BY track_id, artist_id, album_id
  HAVING count(*) FILTER (WHERE n_playlists >= {settings.min_playlists}) > 0;
"""


def run(catalogue: Path, out: Path, threads: int, overrides: list[str]) -> dict[str, Any]:
    """Label ``catalogue`` with DuckDB; write the two outputs under ``out``; return timings."""
    import duckdb

    cfg = load_config(overrides=overrides)
    settings = cfg.section("label", LabelSettings)
    matcher = KeywordMatcher({n: cfg.contexts.keywords[n] for n in cfg.contexts.names})
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    started = time.perf_counter()
    matches = match_titles(con, catalogue, matcher)
    con.register("matches", matches)
    matched_at = time.perf_counter()
    con.execute(label_sql(catalogue, cfg.contexts.names, settings))
    out.mkdir(parents=True, exist_ok=True)
    con.execute(f"COPY (SELECT * FROM counts ORDER BY track_id, context) TO '{out}/track_context_counts.parquet'")
    con.execute(f"COPY (SELECT * FROM labels ORDER BY track_id) TO '{out}/track_labels.parquet'")
    done = time.perf_counter()
    return {
        "match_seconds": matched_at - started,
        "sql_seconds": done - matched_at,
        "inner_seconds": done - started,
        "duck_peak_mib": _peak_mib(),
    }


def _peak_mib() -> float | None:
    """This process's peak resident memory (VmHWM) in MiB."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("catalogue", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
    args = parser.parse_args()
    print("DUCKDB " + json.dumps(run(args.catalogue, args.out, args.threads, args.overrides)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
