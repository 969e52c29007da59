"""Stratified assignment of weighted multi-label items (groups of tracks) to subsets, in
plain Python and numpy: it runs on the driver for the largest groups and inside one pandas
task per hash bucket for the others.

An item is a group of tracks: its size (tracks) and its label counts (tracks of the group
carrying each context). Both methods follow Sechidis, Tsoumakas and Vlahavas (ECML PKDD
2011, "On the stratification of multi-label data"): every subset j starts with *desired*
counts, ``r_j`` times the pool's tracks and its tracks per context; items are assigned one
at a time, and each assignment subtracts the item's size and label counts from the
chosen subset's desired counts. They differ in the order of the items and in the choice:

``sechidis`` (the paper's algorithm, adapted from examples to groups)
    repeatedly take the context with the fewest unassigned items carrying it; assign its
    items (largest first) each to the subset that still desires the most of *that*
    context; ties go to the subset that desires the most tracks, then to a seeded random
    choice. Items with no label go where the most tracks are desired.
``greedy`` (the default)
    visit items from the largest to the smallest; put each where it most reduces the
    squared deviation of the subsets' shares from their targets, summed over the item's
    size and all its contexts. With column c's pool total T_c and the subset's desired
    counts W_jc, that is the subset maximising sum_c v_c W_jc / T_c^2 (the item's counts
    v_c), so every label of the item counts, not only the one being processed.

Why the default is not Sechidis' rule: with about 7 labels per track (the paper's data)
nearly every item carries a rare context, so the rarest-first loop places almost
everything while looking at one label only, and the track totals and the other contexts
drift; on the authors' 13,154 artist groups its largest share deviation is 0.021, the
greedy rule's 0.00006 (see docs/dataset.md, "Split"). Equal-size items are visited in the order of
``order_key`` (seeded hashes in the job): a random order matters, since the last, smallest
items are the ones that fine-tune the shares.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

METHODS = ("greedy", "sechidis")


def _prepare(
    sizes: np.ndarray, label_counts: np.ndarray, desired: np.ndarray, desired_labels: np.ndarray, order_key: np.ndarray
):
    """What both methods start from: the visiting order, each item's nonzero labels and
    their counts, and the remaining demand per split and per (split, label) as plain
    Python lists (the inner loops update them one item at a time)."""
    order = np.lexsort((order_key, -sizes))  # largest first, then by key
    nonzero = [np.flatnonzero(row).tolist() for row in label_counts]
    counts = [[int(v) for v in label_counts[i, nz]] for i, nz in enumerate(nonzero)]
    want = [float(x) for x in desired]
    want_l = [[float(x) for x in row] for row in desired_labels]
    return order, nonzero, counts, want, want_l


def _pick(scores: list[float], rng: np.random.Generator) -> int:
    best = max(scores)
    tied = [j for j, s in enumerate(scores) if s == best]
    return tied[0] if len(tied) == 1 else tied[int(rng.integers(len(tied)))]


def greedy_stratification(sizes, label_counts, desired, desired_labels, order_key, rng) -> np.ndarray:
    """The ``greedy`` method; arguments and result as :func:`iterative_stratification`."""
    n = len(sizes)
    k = desired.shape[0]
    assignment = np.full(n, -1, dtype=np.int8)
    if n == 0:
        return assignment
    order, nonzero, counts, want, want_l = _prepare(sizes, label_counts, desired, desired_labels, order_key)
    total = max(float(np.sum(desired)), 1.0)
    inv_size = 1.0 / (total * total)
    column_totals = np.asarray(desired_labels, dtype=float).sum(axis=0)
    inv_label = [1.0 / (t * t) if t > 0 else 0.0 for t in column_totals]
    for item in order.tolist():
        size = int(sizes[item])
        labels, values = nonzero[item], counts[item]
        scores = []
        for j in range(k):
            row = want_l[j]
            score = size * want[j] * inv_size
            for c, v in zip(labels, values):
                score += v * row[c] * inv_label[c]
            scores.append(score)
        j = _pick(scores, rng)
        assignment[item] = j
        want[j] -= size
        row = want_l[j]
        for c, v in zip(labels, values):
            row[c] -= v
    return assignment


def sechidis_stratification(sizes, label_counts, desired, desired_labels, order_key, rng) -> np.ndarray:
    """The ``sechidis`` method; arguments and result as :func:`iterative_stratification`."""
    n, m = label_counts.shape
    k = desired.shape[0]
    assignment = np.full(n, -1, dtype=np.int8)
    if n == 0:
        return assignment
    order, nonzero, counts, want, want_l = _prepare(sizes, label_counts, desired, desired_labels, order_key)
    carriers = [order[label_counts[order, c] > 0].tolist() for c in range(m)]
    remaining = [len(items) for items in carriers]
    done = [False] * n

    def choose(first: list[float]) -> int:
        best = max(first)
        tied = [j for j in range(k) if first[j] == best]
        if len(tied) > 1:
            return tied[_pick([want[j] for j in tied], rng)]
        return tied[0]

    def assign(item: int, j: int) -> None:
        assignment[item] = j
        done[item] = True
        want[j] -= int(sizes[item])
        row = want_l[j]
        for c, v in zip(nonzero[item], counts[item]):
            row[c] -= v
            remaining[c] -= 1

    while True:
        open_contexts = [c for c in range(m) if remaining[c] > 0]
        if not open_contexts:
            break
        c = min(open_contexts, key=lambda x: (remaining[x], x))
        for item in carriers[c]:
            if not done[item]:
                assign(item, choose([want_l[j][c] for j in range(k)]))
    for item in order.tolist():
        if not done[item]:
            assign(item, choose(want))
    return assignment


_METHODS: dict[str, Callable[..., np.ndarray]] = {
    "greedy": greedy_stratification,
    "sechidis": sechidis_stratification,
}


def iterative_stratification(
    sizes: np.ndarray,
    label_counts: np.ndarray,
    desired: np.ndarray,
    desired_labels: np.ndarray,
    order_key: np.ndarray,
    rng: np.random.Generator,
    method: str = "greedy",
) -> np.ndarray:
    """Assign items to subsets.

    Args:
        sizes: (n,) tracks per item.
        label_counts: (n, m) tracks of each item carrying each context.
        desired: (k,) tracks each subset should receive (may be fractional).
        desired_labels: (k, m) tracks of each context each subset should receive.
        order_key: (n,) distinct integers fixing the order among equal-size items (e.g.
            positions after sorting by seeded hashes of the item ids), so the result does
            not depend on the input order.
        rng: breaks exact ties.
        method: one of :data:`METHODS` (see the module docstring).

    Returns:
        (n,) int8 subset index per item.
    """
    if method not in _METHODS:
        raise ValueError(f"unknown stratification method {method!r}; known: {', '.join(METHODS)}")
    return _METHODS[method](
        np.asarray(sizes),
        np.asarray(label_counts),
        np.asarray(desired, dtype=float),
        np.asarray(desired_labels, dtype=float),
        np.asarray(order_key),
        rng,
    )


def targets(fractions: np.ndarray, total: float, total_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Desired counts of each subset: (k,) tracks and (k, m) tracks per context.

    Args:
        fractions: (k,) shares of tracks, or (k, m + 1) shares with column 0 for tracks
            and column 1 + c for context c (what the giant groups left, see
            :func:`leftover_fractions`).
        total: tracks to distribute; ``total_labels``: (m,) tracks per context.
    """
    fractions = np.asarray(fractions, dtype=float)
    if fractions.ndim == 1:
        return fractions * total, fractions[:, None] * total_labels[None, :]
    return fractions[:, 0] * total, fractions[:, 1:] * total_labels[None, :]


def leftover_fractions(fractions: np.ndarray, want: np.ndarray, want_labels: np.ndarray) -> np.ndarray:
    """(k, m + 1) shares for the remaining items after some were placed.

    ``want`` (k,) and ``want_labels`` (k, m) are what each subset still desires; negative
    values (a subset already over its target) count as 0. A column whose desired counts
    are all 0 falls back to ``fractions``.
    """
    stacked = np.clip(np.column_stack([want, want_labels]), 0.0, None)
    sums = stacked.sum(axis=0)
    out = np.where(sums > 0, stacked / np.where(sums > 0, sums, 1.0), np.asarray(fractions, dtype=float)[:, None])
    return out
