"""The explorer on a million-track snapshot builds in seconds (tests/explorer/explorer_fakes.py).

The snapshot holds 1,000,000 labelled tracks (track_labels, 2,000,000 track-context
counts, a 1,000,000-track dataset), mel shards for all of them laid out as the extraction
writes them (sorted by track id, 404 rows per row group, 4 row groups per file: 619 files;
a 2-byte ``mel`` since only ``audio`` is read), and context_rankings of 1,000,000 rows
(15 contexts x 66,667, 4 files each). ``build_site`` reads the reports, ``rank <= 100`` of
each ranking and the labels and audio paths of the 1,500 tracks shown, so it should not
care how big the tables are. ``CTX_EXPLORER_BENCH_TRACKS`` changes the size (the timing
is printed; run with ``-s`` to see it).
"""

from __future__ import annotations

import os
import re
import time

import pytest

from ctx_spark.explorer import build_site
from ctx_spark.explorer.html import context_file
from tests.explorer.explorer_fakes import NAMES, fake_snapshot, ranking

TRACKS = int(os.environ.get("CTX_EXPLORER_BENCH_TRACKS", "1000000"))


@pytest.mark.slow
def test_a_million_track_snapshot_builds_in_seconds(tmp_path):
    started = time.perf_counter()
    fake_snapshot(tmp_path / "R", TRACKS, errors=5000)
    generated = time.perf_counter() - started
    size = sum(p.stat().st_size for p in (tmp_path / "R").rglob("*") if p.is_file())
    started = time.perf_counter()
    index = build_site(tmp_path / "R", tmp_path / "site", top_n=100)
    seconds = time.perf_counter() - started
    print(
        f"\nexplorer on {TRACKS:,} tracks ({size / 2**20:.0f} MiB of outputs, generated in {generated:.1f} s): "
        f"build_site {seconds:.2f} s"
    )
    site = index.parent
    expected = ranking(TRACKS, NAMES)
    for name in (NAMES[0], NAMES[7], NAMES[-1]):
        page = (site / context_file(name)).read_text(encoding="utf-8")
        rows = re.findall(r'<tr data-track="(\d+)"', page)
        assert rows == [str(t) for t in expected[name].column("track_id").to_pylist()[:100]]
        assert page.count("no local file") == 100  # the fake audio paths do not exist
    extraction = (site / "extraction.html").read_text(encoding="utf-8")
    assert "Failed files: showing 200 of 5,000" in extraction
    assert seconds < 60, f"build_site took {seconds:.1f} s on {TRACKS:,} tracks"
