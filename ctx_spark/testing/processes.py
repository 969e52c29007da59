"""Process trees read from ``/proc``: what a test starts, and what is left of it.

A Spark worker's executors start Python daemons in process groups of their own, so a
test that must stop everything it started walks the whole tree by parent pid, and tells
a process from a later one that reused its pid by its start time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Optional


def stat(pid: int) -> Optional[tuple[int, str, int]]:
    """(parent pid, state letter, start time in clock ticks) of a process, None if gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), fields[0], int(fields[19])


def process_tree(pid: int) -> list[tuple[int, int]]:
    """``pid`` and all its live descendants, as (pid, start time) pairs, parents first."""
    parents: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = stat(int(entry))
            if info is not None and info[1] != "Z":
                parents.setdefault(info[0], []).append(int(entry))
                starts[int(entry)] = info[2]
    if pid not in starts:
        return []
    tree, frontier = [], [pid]
    while frontier:
        current = frontier.pop(0)
        tree.append((current, starts[current]))
        frontier += [c for c in parents.get(current, []) if c in starts]
    return tree


def alive(processes: Sequence[tuple[int, int]]) -> list[int]:
    """The pids of ``processes`` (pid, start time) still running (zombies count as gone;
    a reused pid, whose start time differs, too)."""
    left = []
    for pid, start in processes:
        info = stat(pid)
        if info is not None and info[1] != "Z" and info[2] == start:
            left.append(pid)
    return left


def cmdline(pid: int) -> str:
    """A process's command line, '' when it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def signal_all(processes: Sequence[tuple[int, int]], sig: int) -> None:
    for pid in alive(processes):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def tail(path: Path, chars: int = 3000) -> str:
    """The last ``chars`` characters of a text file, '' when it does not exist."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-chars:]
