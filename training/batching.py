"""Shuffling and batching row groups in numpy, for the pyarrow reader.

Splitting every 124 KB spectrogram into its own tf.data element (``unbatch``), shuffling
and re-batching copies each sample several times, and a classic shuffle buffer (copy rows
in, gather a batch out, fill the holes) three times; on the 2-core test machine either
halved the reader's throughput (README, "Input pipeline"). Here a sample is copied once:

:func:`window_batches` gathers row groups (zero-copy views on the Arrow buffers) until the
window holds at least ``window_rows`` rows, draws a random permutation of all its rows and
gathers each batch straight from the groups. Rows left over (fewer than a batch) are carried
into the next window. Every row appears exactly once per pass, each batch mixes rows from
all groups of its window, and the groups' order is itself random (the caller's).

:func:`ordered_batches` re-batches row groups without shuffling (evaluation, prediction).
"""

from __future__ import annotations

from typing import Iterable, Iterator, Mapping

import numpy as np

Arrays = Mapping[str, np.ndarray]


def _rows(arrays: Arrays) -> int:
    return len(next(iter(arrays.values())))


def _gather(window: list[Arrays], group: np.ndarray, row: np.ndarray) -> dict[str, np.ndarray]:
    """Rows (group[i], row[i]) of the window, in that order, as new arrays."""
    out = {key: np.empty((len(group),) + value.shape[1:], value.dtype) for key, value in window[0].items()}
    for g in np.unique(group):
        where = np.flatnonzero(group == g)
        for key, value in window[int(g)].items():
            out[key][where] = value[row[where]]
    return out


def _emit(window: list[Arrays], batch_size: int, rng: np.random.Generator, final: bool):
    """Shuffled batches of a window; returns (batches, carried rows or None)."""
    sizes = np.array([_rows(a) for a in window])
    group = np.repeat(np.arange(len(window)), sizes)
    row = np.concatenate([np.arange(n) for n in sizes])
    order = rng.permutation(len(group))
    full = len(order) // batch_size * batch_size
    batches = [_gather(window, group[order[i:i + batch_size]], row[order[i:i + batch_size]])
               for i in range(0, full, batch_size)]
    rest = order[full:]
    carry = _gather(window, group[rest], row[rest]) if len(rest) else None
    if final and carry is not None:
        batches.append(carry)
        carry = None
    return batches, carry


def window_batches(groups: Iterable[Arrays], window_rows: int, batch_size: int,
                   rng: np.random.Generator) -> Iterator[dict[str, np.ndarray]]:
    """Random batches over ``groups`` (see the module docstring); the last may be partial."""
    window: list[Arrays] = []
    rows = 0
    for arrays in groups:
        if not _rows(arrays):
            continue
        window.append(arrays)
        rows += _rows(arrays)
        if rows >= window_rows:
            batches, carry = _emit(window, batch_size, rng, final=False)
            yield from batches
            window = [carry] if carry is not None else []
            rows = _rows(carry) if carry is not None else 0
    if window:
        batches, _ = _emit(window, batch_size, rng, final=True)
        yield from batches


def ordered_batches(groups: Iterable[Arrays], batch_size: int) -> Iterator[dict[str, np.ndarray]]:
    """Batches of ``batch_size`` rows in reading order (the last may be partial)."""
    pending: list[dict[str, np.ndarray]] = []
    count = 0
    for arrays in groups:
        pending.append(dict(arrays))
        count += _rows(arrays)
        while count >= batch_size:
            batch, pending, count = _split(pending, batch_size, count)
            yield batch
    if count:
        yield {key: np.concatenate([p[key] for p in pending]) for key in pending[0]}


def _split(pending: list[dict[str, np.ndarray]], k: int, count: int):
    taken, rest, need = [], [], k
    for part in pending:
        n = _rows(part)
        if need >= n:
            taken.append(part)
            need -= n
        elif need > 0:
            taken.append({key: v[:need] for key, v in part.items()})
            rest.append({key: v[need:] for key, v in part.items()})
            need = 0
        else:
            rest.append(part)
    batch = {key: np.concatenate([p[key] for p in taken]) if len(taken) > 1 else taken[0][key] for key in taken[0]}
    return batch, rest, count - k
