"""The explorer on a snapshot made by a real refresh (tests/explorer/explorer_helpers.py: label,
dataset, extract and score on a local[2] session, real audio), read as files and in a real
browser (headless Chromium driven by Selenium, from file://).

The site is written the way the refresh is to write it: by the command line, into the
snapshot (``S/report/``), so its links to the catalogue's audio are relative links out of
the snapshot. A second site is built from the same snapshot's labels, dataset and mels
alone (no scores, no model, no manifest): the labelled-tracks variant of the pages.

The browser tests skip, saying why, when selenium, chromium or chromedriver is missing
(CI installs them: apt-get install chromium chromium-driver; pip install selenium).
"""

from __future__ import annotations

import html
import math
import os
import shutil
import tempfile
import time
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from ctx_spark.explorer import build_site, main
from ctx_spark.explorer.html import context_file
from tests.explorer.explorer_helpers import WEIRD_DIR, real_snapshot

pytestmark = pytest.mark.slow  # one real refresh run (Spark + TensorFlow in the workers)

FIXED = ["index.html", "labelling.html", "dataset.html", "extraction.html", "model.html"]
CLIP_SECONDS = 61.5  # tests/fixtures/audio/Kevin_MacLeod_-_Vibe_Ace.ogg


@pytest.fixture(scope="module")
def snap(spark, tmp_path_factory):
    return real_snapshot(tmp_path_factory)


@pytest.fixture(scope="module")
def site(snap):
    """``ctx-spark report --snapshot R --out S/report`` (through main)."""
    out = snap["snapshot"] / "report"
    started = time.perf_counter()
    assert main(["--snapshot", str(snap["root"]), "--out", str(out)]) == 0
    print(f"explorer site of the real snapshot: {time.perf_counter() - started:.2f} s")
    return out


@pytest.fixture(scope="module")
def labels_only(snap, tmp_path_factory):
    s = snap["snapshot"]
    out = tmp_path_factory.mktemp("explorer-labels-only") / "site"
    build_site(None, out, labels=s / "labels", dataset=s / "dataset", mels=s / "mels")
    return out


class Page(HTMLParser):
    """What the checks need from a page: its tags with their attributes, and element ids."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.title_ids: set[str] = set()
        self.ids: set[str] = set()
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        values = {k: (v or "") for k, v in attrs}
        self.tags.append((tag, values))
        if "id" in values:
            self.ids.add(values["id"])
            if tag == "title":
                self.title_ids.add(values["id"])

    def all(self, name: str) -> list[dict]:
        return [a for t, a in self.tags if t == name]


def ranking_ids(snapshot: Path, context: str, n: int = 100) -> list[int]:
    part = snapshot / "scores" / "context_rankings" / f"context={context}"
    table = ds.dataset(str(part)).to_table(columns=["rank", "track_id"]).sort_by("rank")
    return table.column("track_id").to_pylist()[:n]


def rows_of(text: str) -> list[str]:
    return [a["data-track"] for t, a in Page(text).tags if t == "tr" and "data-track" in a]


def local_target(page: Path, url: str) -> Path:
    return (page.parent / urllib.parse.unquote(url.split("#")[0])).resolve()


def test_every_page_is_written_accessible_and_self_contained(site, labels_only):
    for directory in (site, labels_only):
        names = sorted(p.name for p in directory.glob("*.html"))
        assert set(FIXED) <= set(names) and len(names) == len(FIXED) + 15
    for path in [*site.glob("*.html"), *labels_only.glob("*.html")]:
        text = path.read_text(encoding="utf-8")
        page = Page(text)
        assert page.all("html")[0]["lang"] == "en" and len(page.all("h1")) == 1 and page.all("main"), path.name
        for img in page.all("img"):
            assert img.get("alt") and local_target(path, img["src"]).is_file(), (path.name, img)
        for svg in page.all("svg"):
            labels = svg["aria-labelledby"].split()
            assert svg["role"] == "img" and labels[0] in page.title_ids and set(labels) <= page.ids, path.name
        assert all(th.get("scope") in ("col", "row") for th in page.all("th")), path.name
        assert len(page.all("caption")) == len(page.all("table")), path.name
        assert not [s for s in page.all("script") if "src" in s], path.name
        assert all(link.get("rel") == "icon" for link in page.all("link")), path.name
        for tag, attr in (("a", "href"), ("img", "src"), ("audio", "src")):
            for element in page.all(tag):
                url = element[attr]
                assert not url.startswith(("http:", "https:", "//")), (path.name, url)
                if not url.startswith("#"):
                    assert local_target(path, url).exists(), (path.name, url)


def test_context_pages_follow_the_ranking_parquet(site, snap):
    for context in ("gym", "party", "car", "workout"):
        text = (site / context_file(context)).read_text(encoding="utf-8")
        expected = ranking_ids(snap["snapshot"], context)
        assert rows_of(text) == [str(t) for t in expected] and len(expected) == 10  # 11 failed extraction
        assert "11" not in rows_of(text)
    gym = (site / context_file("gym")).read_text(encoding="utf-8")
    assert '<span class="lab">gym</span>' in gym and "2 of the 10 tracks listed carry the label gym now." in gym
    assert gym.count("<audio controls") == 10  # every scored track has a local file
    assert urllib.parse.quote(WEIRD_DIR) + "/12.ogg" in gym


def test_failure_messages_and_file_names_show_as_text(site):
    extraction = (site / "extraction.html").read_text(encoding="utf-8")
    # The rejected file holds a <script> element: its message says what it looks like and quotes none of it.
    assert "looks like" in extraction and "xss" not in extraction and "not an Ogg stream" not in extraction
    assert "Failed files: showing all 1" in extraction and "<td>not_audio</td>" in extraction
    gym = (site / context_file("gym")).read_text(encoding="utf-8")
    assert html.escape(WEIRD_DIR, quote=True) in gym and WEIRD_DIR not in gym


def test_overview_and_model_side_found_from_the_manifest(site, snap):
    index = (site / "index.html").read_text(encoding="utf-8")
    run_id = snap["snapshot"].name
    assert f"snapshot {run_id}" in index and "first snapshot of this root" in index
    for found in ("manifest inputs.model", "RUN/evaluation", "the training run&#x27;s parent"):
        assert found in index
    assert "failed by reason.not audio: 1" in index and "scored: 10" in index
    model = (site / "model.html").read_text(encoding="utf-8")
    assert "Table 1, fixed threshold 0.5" in model and "per-context thresholds tuned on validation" in model
    assert 'src="assets/roc.png"' in model and "Table 2: macro averages" in model
    assert "Training and validation loss per epoch" in model and "paper Table 1 (macro)" in model
    dataset = (site / "dataset.html").read_text(encoding="utf-8")
    assert 'src="assets/cooccurrence.png"' in dataset


def test_labels_only_site_lists_labelled_tracks_by_playlist_count(labels_only, snap):
    counts = pq.read_table(str(snap["snapshot"] / "labels" / "track_context_counts")).to_pandas()
    for context in ("gym", "chill", "summer"):
        rows = counts[counts.context == context].sort_values(["n_playlists", "track_id"], ascending=[False, True])
        text = (labels_only / context_file(context)).read_text(encoding="utf-8")
        assert rows_of(text) == [str(t) for t in rows.track_id] and "No scores in this snapshot" in text
    index = (labels_only / "index.html").read_text(encoding="utf-8")
    assert "absent: not given and not found" in index and "without fingerprints" in index
    assert "No model part" in (labels_only / "model.html").read_text(encoding="utf-8")


# -- in a real browser -------------------------------------------------------------------

CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)  # the last: containers with a small /dev/shm (CI)


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install selenium)")
    binary = next(
        (b for b in (os.environ.get("CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")) if b), None
    )
    driver_path = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if not binary:
        pytest.skip("no chromium on PATH (apt-get install chromium)")
    if not driver_path:
        pytest.skip("no chromedriver on PATH (apt-get install chromium-driver)")
    profile = tempfile.mkdtemp(prefix="explorer-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROME_FLAGS + (f"--user-data-dir={profile}",):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver, script: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script)
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def problems_on(driver) -> list[str]:
    """Console messages worse than info (CSP violations, failed loads, script errors)."""
    return [f"{e['level']}: {e['message']}" for e in driver.get_log("browser") if e["level"] != "INFO"]


def screenshot(driver, path: Path, width: int) -> None:
    driver.set_window_size(width, 800)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(int(height) + 40, 12000))
    driver.save_screenshot(str(path))


def test_every_page_loads_in_chromium_without_errors_or_broken_links(browser, site, labels_only, tmp_path_factory):
    from selenium.common.exceptions import NoAlertPresentException

    shots = tmp_path_factory.mktemp("explorer-screenshots")
    for name, directory in (("snapshot", site), ("labels-only", labels_only)):
        for path in sorted(directory.glob("*.html")):
            browser.set_window_size(1280, 800)
            browser.get(path.as_uri())
            assert wait_for(
                browser,
                "return document.readyState === 'complete' && Array.from(document.images).every(i => i.complete)",
            ), path
            broken = browser.execute_script(
                "return Array.from(document.images).filter(i => !(i.naturalWidth > 0)).map(i => i.src)"
            )
            assert broken == [], (path.name, broken)
            links = browser.execute_script("return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
            for url in links:
                assert url.startswith("file://"), (path.name, url)
                target = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
                assert target.exists(), (path.name, url)
            with pytest.raises(NoAlertPresentException):
                browser.switch_to.alert.text  # noqa: B018 - no injected script ran
            assert problems_on(browser) == [], path.name
            if name == "snapshot":
                screenshot(browser, shots / f"{path.stem}.png", 1280)
            elif path.name in ("index.html", context_file("gym")):
                screenshot(browser, shots / f"{name}-{path.stem}.png", 1280)
            browser.set_window_size(390, 800)  # a phone: the page itself never scrolls sideways
            assert browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth") <= 1, (
                path.name
            )
    browser.get((site / context_file("gym")).as_uri())
    screenshot(browser, shots / "context-gym-narrow.png", 390)
    print(f"explorer screenshots: {shots}")
    assert len(list(shots.glob("*.png"))) == len(list(site.glob("*.html"))) + 3


def test_context_page_in_chromium_plays_audio_and_finds_a_track(browser, site, snap):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.set_window_size(1280, 900)
    browser.get((site / context_file("gym")).as_uri())
    order = browser.execute_script(
        "return Array.from(document.querySelectorAll('tr[data-track]')).map(r => r.dataset.track)"
    )
    assert order == [str(t) for t in ranking_ids(snap["snapshot"], "gym")]
    ready = wait_for(
        browser, "return Array.from(document.querySelectorAll('audio')).every(a => a.readyState >= 1 || a.error)", 60
    )
    audio = browser.execute_script(
        "return Array.from(document.querySelectorAll('audio')).map(a => "
        "[a.closest('tr').dataset.track, a.duration, a.error && a.error.code])"
    )
    assert ready and len(audio) == 10, audio
    for track, duration, error in audio:
        assert error is None and math.isfinite(duration) and abs(duration - CLIP_SECONDS) < 1.0, (track, duration)
    box = browser.find_element(By.ID, "q")
    assert box.is_displayed()  # the script showed the search form
    box.send_keys("12", Keys.ENTER)
    status = browser.find_element(By.ID, "search-status").text
    position = order.index("12") + 1
    assert status == f"Track 12 is at position {position} on this page."
    found = browser.execute_script("return Array.from(document.querySelectorAll('tr.found')).map(r => r.dataset.track)")
    assert found == ["12"]
    box.clear()
    box.send_keys("424242", Keys.ENTER)
    assert browser.find_element(By.ID, "search-status").text == "No track matching \u201c424242\u201d on this page."
    assert problems_on(browser) == []
