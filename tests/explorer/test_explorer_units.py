"""The explorer on hand-made snapshots (tests/explorer/explorer_fakes.py): no Spark, a second or so.

What they pin: values with HTML in them show as text on every page; a missing, empty or
damaged part gives a site that says so; the context pages list the rankings' top N in
order, with names when a table carries them; the failed-files table stops at its limit but
tells the total; the readers' bounded look-ups return the right rows; the command line's
exit codes; the site directory is replaced whole.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ctx_spark.explorer import ExplorerError, build_site, main
from ctx_spark.explorer.html import context_file, esc, table
from ctx_spark.explorer.readers import local, lookup, top_ranked
from tests.explorer.explorer_fakes import EVIL, NAMES, fake_snapshot, ranking

PAGES = ["index.html", "labelling.html", "dataset.html", "extraction.html", "model.html"]


def pages(site: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(site.glob("*.html"))}


def track_order(text: str) -> list[str]:
    return re.findall(r'<tr data-track="([^"]+)"', text)


def test_escaping_and_attribute_helpers():
    assert esc("<a href='x'>&</a>") == "&lt;a href=&#x27;x&#x27;&gt;&amp;&lt;/a&gt;"
    cell = table("<cap>", ["<h>"], [["<r>", "<v>"]])
    assert "<caption>&lt;cap&gt;</caption>" in cell and '<th scope="col">&lt;h&gt;</th>' in cell
    assert '<th scope="row">&lt;r&gt;</th><td>&lt;v&gt;</td>' in cell
    assert context_file("chill") == "context-chill.html"
    assert context_file("<b>/../x") == "context-~3cb~3e~2f~2e~2e~2fx.html"


def test_html_in_every_free_text_field_shows_as_text(tmp_path):
    """Track names, keywords, error messages, file names and input paths all carry a
    <script>: every page shows it escaped, and no page holds it as markup."""
    fake_snapshot(tmp_path / "R", 45, with_names=True, evil=True)
    keywords = tmp_path / "K"
    keywords.mkdir()
    (keywords / "report.json").write_text(
        json.dumps(
            {
                "playlists": 9,
                "ranking": [
                    {"rank": 1, "keyword": EVIL, "category": "mood", "context": None, "n_playlists": 3, "share": 0.3}
                ],
            }
        )
    )
    site = Path(build_site(tmp_path / "R", tmp_path / "site", keywords=keywords)).parent
    text = pages(site)
    escaped = html.escape(EVIL, quote=True)
    for name, page in text.items():
        assert EVIL not in page, name
        assert "<script>" not in page.replace(f"<script>{_search_script()}</script>", ""), name
    for name in ("labelling.html", "extraction.html", "index.html", "context-car.html"):
        assert escaped in text[name], name


def _search_script() -> str:
    from ctx_spark.explorer.html import SEARCH_SCRIPT

    return SEARCH_SCRIPT


def test_context_pages_list_the_top_n_in_rank_order_with_names(tmp_path):
    fake_snapshot(tmp_path / "R", 900, with_names=True)
    site = Path(build_site(tmp_path / "R", tmp_path / "site", top_n=7)).parent
    expected = ranking(900, NAMES)
    for name in NAMES:
        page = (site / context_file(name)).read_text()
        assert track_order(page) == [str(t) for t in expected[name].column("track_id").to_pylist()[:7]]
        assert '<th scope="col">title</th><th scope="col">artist</th><th scope="col">album</th>' in page
        first = expected[name].column("track_id")[0].as_py()
        assert f'data-text="Song {first} Artist {first % 97} Album {first % 31}"' in page
        assert '<form id="search" class="search" role="search" hidden>' in page


def test_names_only_in_track_labels_are_shown_too(tmp_path):
    snapshot = fake_snapshot(tmp_path / "R", 60, with_names=False)
    labels = pq.read_table(snapshot / "labels" / "track_labels")
    labels = labels.append_column("track_name", pa.array([f"Named {i}" for i in labels.column("track_id").to_pylist()]))
    pq.write_table(labels, snapshot / "labels" / "track_labels" / "part-00000.parquet")
    site = Path(build_site(tmp_path / "R", tmp_path / "site")).parent
    page = (site / "context-gym.html").read_text()
    assert '<th scope="col">title</th>' in page and '<th scope="col">artist</th>' not in page
    first = ranking(60, NAMES)["gym"].column("track_id")[0].as_py()
    assert f"<td>Named {first}</td>" in page


def test_a_snapshot_without_scores_lists_labelled_tracks_by_playlist_count(tmp_path):
    fake_snapshot(tmp_path / "R", 90, scores=False)
    site = Path(build_site(tmp_path / "R", tmp_path / "site", top_n=5)).parent
    text = pages(site)
    pairs = pq.read_table(next((tmp_path / "R").rglob("track_context_counts")) / "part-00000.parquet").to_pandas()
    for name in NAMES:
        rows = pairs[(pairs.context == name) & (pairs.n_playlists >= 3)].sort_values(
            ["n_playlists", "track_id"], ascending=[False, True]
        )
        assert track_order(text[context_file(name)]) == [str(t) for t in rows.track_id[:5]]
        assert "No scores in this snapshot" in text[context_file(name)]
    assert "absent: " in text["index.html"] and "Scores (scores/)" in text["index.html"]
    assert "No model part" in text["model.html"]


def test_missing_and_damaged_parts_are_named_not_fatal(tmp_path):
    snapshot = fake_snapshot(tmp_path / "R", 30, scores=False, parts=("labels",))
    (snapshot / "dataset").mkdir()
    (snapshot / "dataset" / "report.json").write_text("{not json")
    site = Path(build_site(tmp_path / "R", tmp_path / "site")).parent
    text = pages(site)
    assert set(PAGES) <= set(text) and all(context_file(n) in text for n in NAMES)
    assert "is not valid JSON" in text["dataset.html"] and "is not valid JSON" in text["index.html"]
    assert f"{snapshot / 'mels'} does not exist" in text["extraction.html"]
    assert "Co-occurrences" not in text["dataset.html"]


def test_damaged_tables_become_notes_on_the_pages(tmp_path):
    snapshot = fake_snapshot(tmp_path / "R", 60)
    (snapshot / "labels" / "track_labels" / "part-00000.parquet").write_bytes(b"PAR1 not a parquet file")
    (snapshot / "scores" / "context_rankings" / "context=gym" / "part-00000.parquet").write_bytes(b"garbage")
    site = Path(build_site(tmp_path / "R", tmp_path / "site")).parent
    car, gym = (site / "context-car.html").read_text(), (site / "context-gym.html").read_text()
    assert "track_labels could not be read" in car and len(track_order(car)) == 4
    assert "<td>n/a</td>" in car  # current labels unknown, the ranking still listed
    assert "holds no readable ranking" in gym and track_order(gym) == []


def test_a_report_of_an_unexpected_shape_breaks_one_page_only(tmp_path):
    snapshot = fake_snapshot(tmp_path / "R", 30)
    report = json.loads((snapshot / "labels" / "report.json").read_text())
    report["playlists_removed"] = ["not", "a", "mapping"]
    (snapshot / "labels" / "report.json").write_text(json.dumps(report))
    text = pages(Path(build_site(tmp_path / "R", tmp_path / "site")).parent)
    assert "this page could not be built from its inputs: TypeError" in text["labelling.html"]
    assert "could not be built" not in text["index.html"] + text["context-car.html"]


def test_only_separate_outputs_and_an_empty_errors_table(tmp_path):
    snapshot = fake_snapshot(tmp_path / "R", 30, errors=0)
    site = Path(
        build_site(
            None,
            tmp_path / "site",
            labels=snapshot / "labels" / "track_labels",
            mels=snapshot / "mels",
            scores=snapshot / "scores",
        )
    ).parent
    text = pages(site)
    assert "No failed files." in text["extraction.html"] and "No track failed." in text["extraction.html"]
    assert "without fingerprints" in text["index.html"] and "dataset output: not given" in text["dataset.html"]
    assert len(track_order(text["context-car.html"])) == 2
    # the demo's case: nothing but a labelling output
    text = pages(Path(build_site(None, tmp_path / "labels-site", labels=snapshot / "labels")).parent)
    assert "No scores in this snapshot" in text["context-car.html"] and len(track_order(text["context-car.html"])) == 4
    assert '<td></td><td class="audio">no local file</td>' in text["context-car.html"]  # no split, no audio


def test_the_failed_files_table_stops_at_its_limit_and_tells_the_total(tmp_path):
    fake_snapshot(tmp_path / "R", 20, errors=250)
    site = Path(build_site(tmp_path / "R", tmp_path / "site", errors_limit=40)).parent
    page = (site / "extraction.html").read_text()
    assert "Failed files: showing 40 of 250" in page and "250 failed files in all" in page
    assert page.count('<td class="msg">') == 40


def test_changes_chart_and_first_snapshot(tmp_path):
    fake_snapshot(tmp_path / "R", 20)
    index = (Path(build_site(tmp_path / "R", tmp_path / "a")).parent / "index.html").read_text()
    assert "Since snapshot 20251229T030000Z-012345" in index
    assert re.search(
        r'<svg class="chart" role="img" aria-labelledby="(chart\d+)-t \1-d"[^>]*><title id="\1-t">'
        r"Labels gained and lost per context",
        index,
    )
    assert "<title>sad: -2 lost</title>" in index and "<title>gym: +2 gained</title>" in index
    assert re.search(r'<th scope="row">sad</th><td class="num">0</td><td class="num">2</td>', index)
    fake_snapshot(tmp_path / "R2", 20, first=True)
    index = (Path(build_site(tmp_path / "R2", tmp_path / "b")).parent / "index.html").read_text()
    assert "first snapshot of this root: nothing to compare with" in index


def test_cooccurrence_heatmap_is_replotted_from_the_csv_and_roc_from_predictions(tmp_path):
    fake_snapshot(tmp_path / "R", 20)
    evaluation = tmp_path / "E"
    evaluation.mkdir()
    (evaluation / "metrics.json").write_text(json.dumps({"test_split": "test", "fixed_threshold": {"threshold": 0.5}}))
    rng = np.random.default_rng(0)
    labels = (rng.random((40, 15)) < 0.4).astype(np.uint8)
    probs = rng.random((40, 15)).astype(np.float32)
    lists = lambda v, t: pa.ListArray.from_arrays(
        pa.array(np.arange(0, 601, 15, dtype=np.int32)),  # noqa: E731
        pa.array(v.reshape(-1), t),
    )
    pq.write_table(
        pa.table(
            {
                "track_id": np.arange(40),
                "labels": lists(labels, pa.uint8()),
                "probabilities": lists(probs, pa.float32()),
            }
        ),
        evaluation / "predictions.parquet",
    )
    site = Path(build_site(tmp_path / "R", tmp_path / "site", evaluation=evaluation)).parent
    assert "re-plotted from cooccurrence.csv" in (site / "dataset.html").read_text()
    model = (site / "model.html").read_text()
    assert "re-plotted from predictions.parquet" in model and "table1_fixed.csv is missing" in model
    assert all(p.stat().st_size > 1000 for p in (site / "assets").glob("*.png"))


def test_readers_bounded_lookup_and_top_ranked(tmp_path):
    ids = np.arange(0, 20000, 2, dtype=np.int64)
    pq.write_table(
        pa.table({"track_id": ids, "audio": [f"a{i}" for i in ids]}), tmp_path / "t.parquet", row_group_size=100
    )
    found = lookup(tmp_path, [4, 4, 5, 19998, 123456], ["audio", "nope"])
    assert found == {4: {"track_id": 4, "audio": "a4"}, 19998: {"track_id": 19998, "audio": "a19998"}}
    pq.write_table(pa.table({"track_id": ["b", "a"], "x": [1, 2]}), tmp_path / "s.parquet")
    (tmp_path / "strings").mkdir()
    shutil.move(tmp_path / "s.parquet", tmp_path / "strings" / "s.parquet")
    assert lookup(tmp_path / "strings", ["a"], ["x"]) == {"a": {"track_id": "a", "x": 2}}
    rank = ranking(600, NAMES)["club"]
    part = tmp_path / "context=club"
    part.mkdir()
    for i, start in enumerate(range(0, rank.num_rows, 13)):
        pq.write_table(rank.slice(start, 13), str(part / f"p{i:03d}.parquet"))
    top = top_ranked(part, 20)
    assert top.column("rank").to_pylist() == list(range(1, 21))
    assert top.column("track_id").to_pylist() == rank.column("track_id").to_pylist()[:20]
    assert local("file:/a b/c.ogg") == Path("/a b/c.ogg") and local("file:///x%20y.ogg") == Path("/x y.ogg")
    assert local("hdfs://nn/x.ogg") is None and local(None) is None


def test_the_site_is_replaced_whole(tmp_path):
    fake_snapshot(tmp_path / "R", 20)
    out = tmp_path / "site"
    build_site(tmp_path / "R", out)
    (out / "stale.html").write_text("old")
    build_site(tmp_path / "R", out)
    assert not (out / "stale.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R", "site"]  # no staging or retired leftovers


def test_bad_sources_and_the_command_line(tmp_path, capsys):
    with pytest.raises(ExplorerError, match="does not exist"):
        build_site(tmp_path / "nowhere", tmp_path / "s")
    (tmp_path / "root" / "snapshots").mkdir(parents=True)
    with pytest.raises(ExplorerError, match="nothing published yet"):
        build_site(tmp_path / "root", tmp_path / "s")
    with pytest.raises(ExplorerError, match="nothing to report on"):
        build_site(None, tmp_path / "s")
    assert main(["--snapshot", str(tmp_path / "root"), "--out", str(tmp_path / "s")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'root'} is a refresh root with nothing published")
    fake_snapshot(tmp_path / "R", 20)
    snapshot_dir = next((tmp_path / "R" / "snapshots").iterdir())
    assert main(["--snapshot", str(snapshot_dir), "--out", str(tmp_path / "s"), "--top", "3"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "s" / "index.html")
    assert len(track_order((tmp_path / "s" / "context-car.html").read_text())) == 2
    assert main(["--snapshot", str(snapshot_dir), "--out", str(tmp_path / "s"), "--top", "0"]) == 2
