"""The synthetic catalogue's parameters (``ctx-spark generate-catalogue --param name=value``)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class CatalogueParams:
    """Generator settings; the defaults give a catalogue shaped like the MPD, denser.

    Attributes:
        rows: target number of playlist-track rows; the written count is within ~1% of
            it (one-artist playlists of small artists come out shorter; duplicate rows
            are added).
        seed: decides every random choice.
        rows_per_track: catalogue size, tracks = rows / this (MPD: ~29; denser here so
            small catalogues still produce labels).
        min_tracks: lower bound on the number of tracks.
        artist_tracks_median, artist_tracks_sigma: log-normal tracks per artist.
        album_tracks_mean: mean tracks per album (geometric), cut at artist boundaries.
        null_album_rate: share of tracks with no album.
        popularity_exponent, popularity_offset: Zipf-Mandelbrot weight of the track at
            popularity rank r (0-based): 1 / (r + 1 + offset) ** exponent.
        artist_popularity_sigma: log-normal spread of artist popularity, which orders
            tracks (with per-track noise) before the Zipf weights are applied.
        size_median, size_sigma, size_min, size_max: log-normal playlist sizes, clipped.
        one_artist_rate, one_album_rate: share of playlists drawn from one artist's or one
            album's tracks (the job's ``max_share`` filter removes them).
        context_title_rate: share of titles naming a context; pair_title_rate: share of
            those naming two; vocab_title_rate: titles naming another vocabulary keyword;
            near_miss_rate: titles with a near-miss word; null_title_rate: null titles.
        pool_share: share of a context playlist's tracks drawn from the context's pool.
        pool_draws_per_track: pool size = expected pool draws / this, so a pool track
            appears in about this many playlists of its context whatever the size.
        pool_min: smallest pool.
        pool_skew: pool rank = floor(size * u ** skew): > 1 favours the pool's head.
        pool_overlap: share of each pool shared with its group (:data:`CONTEXT_GROUPS`).
        unknown_track_rate: share of rows whose track id is not in ``tracks``.
        duplicate_row_rate: share of rows repeated (same playlist and track).
        playlists_per_chunk: playlists generated and written per chunk (memory bound).
    """

    rows: int = 200_000
    seed: int = 0
    rows_per_track: float = 12.0
    min_tracks: int = 2_000
    artist_tracks_median: float = 3.0
    artist_tracks_sigma: float = 1.2
    album_tracks_mean: float = 4.0
    null_album_rate: float = 0.02
    popularity_exponent: float = 1.0
    popularity_offset: float = 50.0
    artist_popularity_sigma: float = 1.5
    size_median: float = 30.0
    size_sigma: float = 0.75
    size_min: int = 5
    size_max: int = 400
    one_artist_rate: float = 0.02
    one_album_rate: float = 0.01
    context_title_rate: float = 0.12
    pair_title_rate: float = 0.12
    vocab_title_rate: float = 0.08
    near_miss_rate: float = 0.04
    null_title_rate: float = 0.005
    pool_share: float = 0.6
    pool_draws_per_track: float = 2.0
    pool_min: int = 30
    pool_skew: float = 2.0
    pool_overlap: float = 0.3
    unknown_track_rate: float = 0.003
    duplicate_row_rate: float = 0.002
    playlists_per_chunk: int = 50_000

    def __post_init__(self) -> None:
        if self.rows < 1:
            raise ValueError(f"rows must be >= 1, got {self.rows}")
        rates = (
            "null_album_rate",
            "one_artist_rate",
            "one_album_rate",
            "context_title_rate",
            "pair_title_rate",
            "vocab_title_rate",
            "near_miss_rate",
            "null_title_rate",
            "pool_share",
            "pool_overlap",
            "unknown_track_rate",
            "duplicate_row_rate",
        )
        for name in rates:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        title_rates = self.context_title_rate + self.vocab_title_rate + self.near_miss_rate + self.null_title_rate
        if title_rates > 1.0:
            raise ValueError(f"title rates add up to {title_rates:.3f} > 1")
        if not 1 <= self.size_min <= self.size_max:
            raise ValueError(f"need 1 <= size_min <= size_max, got {self.size_min}, {self.size_max}")
        if self.playlists_per_chunk < 1 or self.rows_per_track <= 0 or self.pool_draws_per_track <= 0:
            raise ValueError("playlists_per_chunk, rows_per_track and pool_draws_per_track must be positive")

    @property
    def mean_size(self) -> float:
        """Expected playlist size (log-normal mean, ignoring the clip)."""
        return self.size_median * math.exp(self.size_sigma**2 / 2)
