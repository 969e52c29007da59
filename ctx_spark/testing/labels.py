"""Generated ``track_labels`` tables for tests and benchmarks (numpy, vectorised).

Shaped like real labelling output: skewed context popularity, 2-7 labels for most tracks,
labels correlated within an artist, artists with several tracks spread over albums, and a
few compilation albums that link many artists. Below-threshold playlist counts (1-2) appear
on some negatives, as in the labelling output.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA = pa.schema(
    [
        ("track_id", pa.int64()),
        ("artist_id", pa.int64()),
        ("album_id", pa.int64()),
        ("contexts", pa.list_(pa.string())),
        ("n_playlists", pa.list_(pa.int32())),
    ]
)


def generate_track_labels(
    n: int,
    names: Sequence[str],
    seed: int = 0,
    tracks_per_artist: float = 4.0,
    compilations: int = 5,
    compilation_size: int = 40,
    themed: bool = False,
) -> pa.Table:
    """A ``track_labels`` table of ``n`` tracks (see module docstring).

    Args:
        tracks_per_artist: mean tracks per artist (geometric-like spread).
        compilations: compilation albums; each takes ``compilation_size`` random tracks
            (so one album links up to that many artists).
        themed: compilation tracks all carry the rarest context ("workout hits"), so that
            many of them survive balancing.
    """
    rng = np.random.default_rng(seed)
    m = len(names)
    n_artists = max(1, int(n / tracks_per_artist))
    # Artist of each track: Zipf-like sizes via a Pareto weight per artist.
    artist_weight = rng.pareto(1.5, n_artists) + 1.0
    artist = rng.choice(n_artists, size=n, p=artist_weight / artist_weight.sum())
    # Albums: about 3 per artist; a track's album is one of its artist's.
    album = artist * 4 + rng.integers(0, 3, size=n)
    compiled = np.zeros(n, dtype=bool)
    if compilations and n >= compilation_size:
        for c in range(compilations):
            members = rng.choice(n, size=compilation_size, replace=False)
            album[members] = 10_000_000 + c
            compiled[members] = True
    # Labels: popularity skewed across contexts, an artist-level taste, Gumbel top-k.
    popularity = np.linspace(1.0, 0.25, m) ** 1.5
    taste = rng.gamma(2.0, 1.0, size=(n_artists, m))
    weights = popularity[None, :] * taste[artist]
    k = np.clip(rng.poisson(3.5, size=n) + 1, 1, m)
    keys = np.log(weights) + rng.gumbel(size=(n, m))
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    labels = rank < k[:, None]
    if themed:
        labels[compiled, m - 1] = True  # the least popular context
    positives = 3 + rng.geometric(0.15, size=(n, m)) - 1
    below = np.where(rng.random((n, m)) < 0.2, rng.integers(1, 3, size=(n, m)), 0)
    counts = np.where(labels, positives, below).astype(np.int32)
    name_array = np.array(names, dtype=object)
    order = np.argsort(name_array)
    sorted_names, sorted_labels = name_array[order], labels[:, order]
    contexts = [sorted_names[row].tolist() for row in sorted_labels]
    ids = np.arange(n, dtype=np.int64) * 7 + 1000  # sparse ids, not row numbers
    return pa.table(
        {
            "track_id": ids,
            "artist_id": artist.astype(np.int64) + 1,
            "album_id": album.astype(np.int64) + 1,
            "contexts": contexts,
            "n_playlists": [row.tolist() for row in counts],
        },
        schema=SCHEMA,
    )


def write_track_labels(path: str | Path, n: int, names: Sequence[str], seed: int = 0, **kwargs) -> str:
    """Write :func:`generate_track_labels` as one Parquet file; returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(generate_track_labels(n, names, seed, **kwargs), str(path))
    return str(path)
