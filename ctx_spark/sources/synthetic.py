"""A seeded synthetic catalogue: the three input tables at any size, with realistic skew.

Used for the demo (scripts/demo.sh), tests and benchmarks, since real catalogues (Deezer, the MPD)
may not be redistributed. Everything is vectorised numpy and written chunk by chunk with
pyarrow, so memory stays bounded by one chunk and 20M playlist-track rows take seconds;
no Spark is involved. The seed decides everything: the same parameters give byte-identical
Parquet files.

What makes it realistic enough to exercise the labelling job:

- Tracks belong to artists (log-normal catalogue sizes: most artists have a few tracks,
  some hundreds) and albums (geometric sizes, split at artist boundaries, a few tracks with
  no album). Popularity follows a Zipf-Mandelbrot law over a popularity ranking that
  favours popular artists.
- Playlist sizes are log-normal (median 30: most 10-60, ~5% above 100, which the job's
  ``max_tracks`` filter removes); some playlists hold one artist's or one album's tracks.
- Titles (:mod:`ctx_spark.sources.title_text`) contain context keywords at roughly the
  rates seen in real MPD titles (~12% of playlists), other vocabulary keywords, near-miss
  words that must not match, generic titles, and nulls.
- A playlist whose title names a context draws ``pool_share`` of its tracks from that
  context's pool (tracks with an affinity to the context; related contexts such as gym,
  workout and running share part of their pools), the rest by global popularity. That is
  what makes tracks collect >= 3 playlists of one context, i.e. labels, even in a small
  catalogue.
- Anomalies the job must handle: unknown track ids, duplicate (playlist, track) rows,
  null titles, null albums.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ctx_spark.sources.catalogue_params import CatalogueParams
from ctx_spark.sources.title_text import TitleBank

__all__ = ["CatalogueParams", "MANIFEST", "TABLES", "generate_catalogue", "table_paths"]

TABLES = ("playlists", "playlist_tracks", "tracks")
MANIFEST = "catalogue.json"

#: Relative frequency of each context in titles: MPD title counts (../shared/data
#: SOURCE.md files); "night", which the MPD's word filter removed, and "club", rare there,
#: take their Deezer share. Contexts not listed get the median weight.
CONTEXT_WEIGHTS: Mapping[str, float] = {
    "car": 1905,
    "chill": 5068,
    "club": 600,
    "dance": 1878,
    "gym": 1054,
    "happy": 1111,
    "night": 1300,
    "party": 3994,
    "relax": 591,
    "running": 1091,
    "sad": 921,
    "sleep": 1056,
    "summer": 5485,
    "work": 1696,
    "workout": 2948,
}

#: Contexts whose pools overlap (``pool_overlap`` of each pool is shared in the group).
CONTEXT_GROUPS: tuple[tuple[str, ...], ...] = (
    ("gym", "workout", "running"),
    ("chill", "relax", "sleep"),
    ("party", "dance", "club", "night"),
    ("summer", "happy", "car"),
)

# Title kinds, see TitleBank.titles.
_NULL, _CONTEXT, _VOCAB, _NEAR_MISS, _GENERIC = range(5)
# Playlist kinds.
_NORMAL, _ONE_ARTIST, _ONE_ALBUM = range(3)


@dataclass
class _Tracks:
    """The track catalogue: structure (artist, album) and popularity, as index arrays."""

    artist: np.ndarray  # (T,) artist index of each track
    album: np.ndarray  # (T,) album index of each track
    album_null: np.ndarray  # (T,) bool: album reported as null
    artist_first: np.ndarray  # (A,) first track index of each artist (tracks contiguous)
    artist_count: np.ndarray  # (A,)
    album_first: np.ndarray  # (B,)
    album_count: np.ndarray  # (B,)
    by_rank: np.ndarray  # (T,) track index at each popularity rank
    cdf: np.ndarray  # (T,) cumulative popularity over ranks, last == 1

    @property
    def n(self) -> int:
        return len(self.artist)

    def popular(self, u: np.ndarray) -> np.ndarray:
        """Track indexes drawn by popularity from uniforms ``u`` in [0, 1)."""
        return self.by_rank[np.minimum(np.searchsorted(self.cdf, u, side="right"), self.n - 1)]


def _build_tracks(rng: np.random.Generator, n_tracks: int, p: CatalogueParams) -> _Tracks:
    est = int(n_tracks / (p.artist_tracks_median * math.exp(p.artist_tracks_sigma**2 / 2))) + 16
    counts = np.empty(0, dtype=np.int64)
    while counts.sum() < n_tracks:
        more = np.ceil(rng.lognormal(math.log(p.artist_tracks_median), p.artist_tracks_sigma, est)).astype(np.int64)
        counts = np.concatenate([counts, np.maximum(more, 1)])
    ends = np.cumsum(counts)
    n_artists = int(np.searchsorted(ends, n_tracks) + 1)
    counts = counts[:n_artists]
    counts[-1] -= int(ends[n_artists - 1] - n_tracks)
    artist_first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    artist = np.repeat(np.arange(n_artists), counts)
    # Albums: geometric sizes laid end to end, cut again at every artist boundary.
    sizes = rng.geometric(1.0 / p.album_tracks_mean, n_tracks // 2 + 16)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    starts = np.union1d(starts[starts < n_tracks], artist_first)
    album = np.searchsorted(starts, np.arange(n_tracks), side="right") - 1
    album_count = np.diff(np.concatenate([starts, [n_tracks]]))
    album_null = rng.random(n_tracks) < p.null_album_rate
    # Popularity: popular artists' tracks rank high; Zipf-Mandelbrot weights by rank.
    artist_pop = rng.lognormal(0.0, p.artist_popularity_sigma, n_artists)
    weight = artist_pop[artist] * rng.lognormal(0.0, 1.0, n_tracks)
    by_rank = np.argsort(-weight, kind="stable")
    zipf = 1.0 / (np.arange(n_tracks) + 1.0 + p.popularity_offset) ** p.popularity_exponent
    cdf = np.cumsum(zipf)
    cdf /= cdf[-1]
    return _Tracks(artist, album, album_null, artist_first, counts, starts, album_count, by_rank, cdf)


def _build_pools(
    rng: np.random.Generator,
    tracks: _Tracks,
    names: Sequence[str],
    weights: np.ndarray,
    n_playlists: float,
    p: CatalogueParams,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-context pools of track indexes, concatenated: (members, first, size)."""
    draws = n_playlists * p.context_title_rate * weights * p.mean_size * p.pool_share
    sizes = np.clip(np.round(draws / p.pool_draws_per_track), p.pool_min, tracks.n).astype(np.int64)
    group_of = {name: g for g, group in enumerate(CONTEXT_GROUPS) for name in group}
    shared: dict[int, np.ndarray] = {}
    pools = []
    for c, name in enumerate(names):
        own = rng.choice(tracks.n, size=sizes[c], replace=False)
        g = group_of.get(name)
        if g is not None:
            if g not in shared:
                members = [i for i, n in enumerate(names) if group_of.get(n) == g]
                shared[g] = rng.choice(tracks.n, size=int(np.max(sizes[members])), replace=False)
            k = int(sizes[c] * p.pool_overlap)
            own = np.concatenate([shared[g][:k], own[: sizes[c] - k]])
        pools.append(own)
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return np.concatenate(pools), first, sizes


def _chunk_rows(
    rng: np.random.Generator,
    tracks: _Tracks,
    pools: tuple[np.ndarray, np.ndarray, np.ndarray],
    sizes: np.ndarray,
    kinds: np.ndarray,
    context: np.ndarray,
    p: CatalogueParams,
) -> tuple[np.ndarray, np.ndarray]:
    """Playlist-track rows of one chunk: (playlist index in chunk, track id), grouped."""
    members, pool_first, pool_size = pools
    # Draw a quarter more than needed, so that dropping repeated tracks still fills most
    # playlists to their size (one-artist playlists of small artists stay shorter).
    owner = np.repeat(np.arange(len(sizes)), sizes + sizes // 4 + 2)
    n = len(owner)
    track = tracks.popular(rng.random(n))
    # Context playlists: a share of rows from the context's pool, head-heavy.
    row_ctx = context[owner]
    from_pool = (row_ctx >= 0) & (kinds[owner] == _NORMAL) & (rng.random(n) < p.pool_share)
    c = row_ctx[from_pool]
    rank = np.floor(pool_size[c] * rng.random(len(c)) ** p.pool_skew).astype(np.int64)
    track[from_pool] = members[pool_first[c] + rank]
    # One-artist and one-album playlists: anchor on a popular track, draw within its group.
    anchor = tracks.popular(rng.random(len(sizes)))
    for kind, first, count, of in (
        (_ONE_ARTIST, tracks.artist_first, tracks.artist_count, tracks.artist),
        (_ONE_ALBUM, tracks.album_first, tracks.album_count, tracks.album),
    ):
        rows = kinds[owner] == kind
        group = of[anchor[owner[rows]]]
        track[rows] = first[group] + np.floor(rng.random(int(rows.sum())) * count[group]).astype(np.int64)
    # One row per (playlist, track), in draw order; then the anomalies.
    key = owner.astype(np.int64) * tracks.n + track
    _, keep = np.unique(key, return_index=True)
    keep.sort()
    owner, track = owner[keep], track[keep]
    group_start = np.flatnonzero(np.concatenate([[True], owner[1:] != owner[:-1]]))
    position = np.arange(len(owner)) - np.repeat(group_start, np.diff(np.append(group_start, len(owner))))
    fits = position < sizes[owner]
    owner, track_id = owner[fits], track[fits] + 1
    unknown = rng.random(len(track_id)) < p.unknown_track_rate
    track_id[unknown] = tracks.n + 1 + rng.integers(0, tracks.n, int(unknown.sum()))
    dup = np.flatnonzero(rng.random(len(track_id)) < p.duplicate_row_rate)
    owner = np.concatenate([owner, owner[dup]])
    track_id = np.concatenate([track_id, track_id[dup]])
    order = np.argsort(owner, kind="stable")
    return owner[order], track_id[order]


class _Writers:
    """One Parquet file per table under a staging directory."""

    SCHEMAS = {
        "playlists": pa.schema([("playlist_id", pa.int64()), ("title", pa.string())]),
        "playlist_tracks": pa.schema([("playlist_id", pa.int64()), ("track_id", pa.int64())]),
        "tracks": pa.schema([("track_id", pa.int64()), ("artist_id", pa.int64()), ("album_id", pa.int64())]),
    }

    def __init__(self, root: Path):
        self.writers = {}
        for table, schema in self.SCHEMAS.items():
            (root / table).mkdir(parents=True)
            self.writers[table] = pq.ParquetWriter(
                str(root / table / "part-00000.parquet"), schema, compression="snappy"
            )

    def write(self, table: str, columns: dict[str, Any]) -> None:
        self.writers[table].write_table(pa.table(columns, schema=self.SCHEMAS[table]))

    def close(self) -> None:
        """Close every file (idempotent)."""
        for writer in self.writers.values():
            if writer.is_open:
                writer.close()


def generate_catalogue(
    out: str | os.PathLike,
    params: CatalogueParams,
    contexts: Mapping[str, Sequence[str]],
    vocabulary: Sequence[str],
) -> dict[str, Any]:
    """Write ``out/playlists``, ``out/playlist_tracks``, ``out/tracks`` and ``out/catalogue.json``.

    The whole directory is written under a staging name and renamed into place, so ``out``
    is either absent, the previous catalogue, or complete. Local paths only.

    Args:
        contexts: context name -> keywords (``cfg.contexts.keywords``), in vector order.
        vocabulary: all candidate keywords (``cfg.vocabulary`` flattened).

    Returns:
        The manifest: the parameters and the row counts of each table.
    """
    p = params
    rng = np.random.default_rng(p.seed)
    bank = TitleBank(contexts, vocabulary)
    names = bank.names
    weights = np.array([CONTEXT_WEIGHTS.get(n, float(np.median(list(CONTEXT_WEIGHTS.values())))) for n in names])
    weights = weights / weights.sum()
    n_tracks = max(p.min_tracks, int(p.rows / p.rows_per_track))
    tracks = _build_tracks(rng, n_tracks, p)
    pools = _build_pools(rng, tracks, names, weights, p.rows / p.mean_size, p)
    kind_p = np.array([p.null_title_rate, p.context_title_rate, p.vocab_title_rate, p.near_miss_rate])
    kind_p = np.append(kind_p, 1.0 - kind_p.sum())

    final = Path(out)
    staging = final.parent / f".{final.name}.staging-{uuid.uuid4().hex[:8]}"
    final.parent.mkdir(parents=True, exist_ok=True)
    writers = _Writers(staging)
    counts = {"playlists": 0, "playlist_tracks": 0, "tracks": n_tracks}
    try:
        remaining, next_id = p.rows, 1
        while remaining > 0:
            sizes = np.clip(
                np.round(rng.lognormal(math.log(p.size_median), p.size_sigma, p.playlists_per_chunk)),
                p.size_min,
                p.size_max,
            ).astype(np.int64)
            ends = np.cumsum(sizes)
            if ends[-1] >= remaining:
                last = int(np.searchsorted(ends, remaining))
                sizes = sizes[: last + 1]
                sizes[-1] -= int(ends[last] - remaining)
            remaining -= int(sizes.sum())
            n = len(sizes)
            title_kind = rng.choice(5, size=n, p=kind_p)
            primary = np.where(title_kind == _CONTEXT, rng.choice(len(names), size=n, p=weights), -1)
            second = rng.choice(len(names), size=n, p=weights)
            second = np.where(
                (title_kind == _CONTEXT) & (rng.random(n) < p.pair_title_rate) & (second != primary), second, -1
            )
            u = rng.random(n)
            kinds = np.where(
                u < p.one_artist_rate,
                _ONE_ARTIST,
                np.where(u < p.one_artist_rate + p.one_album_rate, _ONE_ALBUM, _NORMAL),
            )
            titles = bank.titles(rng, title_kind, primary, second)
            owner, track_id = _chunk_rows(rng, tracks, pools, sizes, kinds, primary, p)
            ids = np.arange(next_id, next_id + n, dtype=np.int64)
            writers.write("playlists", {"playlist_id": ids, "title": titles})
            writers.write("playlist_tracks", {"playlist_id": ids[owner], "track_id": track_id})
            counts["playlists"] += n
            counts["playlist_tracks"] += len(track_id)
            next_id += n
        step = 1_000_000
        for start in range(0, n_tracks, step):
            idx = np.arange(start, min(start + step, n_tracks))
            album = pa.array(tracks.album[idx] + 1, mask=tracks.album_null[idx], type=pa.int64())
            writers.write("tracks", {"track_id": idx + 1, "artist_id": tracks.artist[idx] + 1, "album_id": album})
        writers.close()
        manifest = {
            "generator": "ctx_spark.sources.synthetic",
            "params": asdict(p),
            "contexts": list(names),
            "rows": counts,
            "artists": int(len(tracks.artist_count)),
            "albums": int(len(tracks.album_count)),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _publish(staging, final)
    except BaseException:
        writers.close()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _publish(staging: Path, final: Path) -> None:
    """Rename ``staging`` to ``final``, replacing an existing ``final`` only once complete."""
    retired: Optional[Path] = None
    if final.exists():
        retired = final.parent / f".{final.name}.retired-{uuid.uuid4().hex[:8]}"
        final.rename(retired)
    staging.rename(final)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def table_paths(root: str | os.PathLike) -> dict[str, str]:
    """The paths of the three tables under a generated catalogue's root."""
    return {table: str(Path(root) / table) for table in TABLES}
