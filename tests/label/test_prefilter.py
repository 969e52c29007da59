"""The JVM-side title pre-filter never drops a title the Python matcher would match.

The pre-filter (:func:`ctx_spark.text.may_match`) is exact by construction; these tests check
it on the real Deezer titles, the tricky-title fixtures, the synthetic generator's near misses
and generated Unicode titles (hypothesis, and a seeded generator for the Spark side), with the
contexts' matcher and the whole keyword vocabulary's (multi-word keywords included).
"""

from __future__ import annotations

import csv
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctx_spark.sources.title_text import NEAR_MISSES
from ctx_spark.text import KeywordMatcher, may_match
from tests.conftest import SHARED_DATA
from tests.label.test_text import MATCH_CASES

TSV = SHARED_DATA / "deezer_playlist_titles_ibrahim" / "sample_playlists_title.tsv"

#: Characters that stress the rule: format characters, marks, full-width and look-alike
#: letters, Turkish and German case pairs, digits of other scripts, separators.
SPICE = "\u200b\u00ad\u200d\ufeff\u2060\u0301\u0308\u030a ｃａｒＣＨＩＬＬİıßẞſＫK\u212a٣-_#/.'™🚗🎉 \t\u3000"


def matchers(config) -> dict[str, KeywordMatcher]:
    vocabulary = {word: [word] for words in config.vocabulary.values() for word in words}
    return {
        "contexts": KeywordMatcher({n: config.contexts.keywords[n] for n in config.contexts.names}),
        "vocabulary": KeywordMatcher(vocabulary),
    }


def generated_titles(config, n: int, seed: int = 0) -> list[str]:
    """Titles built from keywords with random Unicode perturbations (a fixed seed)."""
    rng = random.Random(seed)
    words = sorted({w for ws in config.vocabulary.values() for w in ws} | set(config.contexts.names))
    titles = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 4)):
            word = rng.choice(words) if rng.random() < 0.7 else "".join(rng.choices(SPICE + "abc", k=3))
            word = rng.choice([word, word.upper(), word.title(), word.swapcase()])
            if rng.random() < 0.5:
                i = rng.randint(0, len(word))
                word = word[:i] + rng.choice(SPICE) + word[i:]
            parts.append(word)
        titles.append(rng.choice(["", " ", "-", "_", "\u200b"]).join(parts))
    return titles


def fixture_titles(config) -> list[str]:
    titles = [t for t, _ in MATCH_CASES] + list(NEAR_MISSES) + generated_titles(config, 20_000)
    if TSV.exists():
        with open(TSV, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            next(reader)
            titles += [row[2] for row in reader]
    return titles


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=st.text(alphabet=st.sampled_from(list(SPICE + "carhilgymwokustp ")), max_size=24) | st.text(max_size=24))
def test_python_screen_never_drops_a_match(config, title: str) -> None:
    for matcher in matchers(config).values():
        if matcher.match(title):
            assert matcher.may_match(title), title


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(word=st.sampled_from(["car", "chill", "road trip", "work", "night"]), noise=st.text(max_size=6))
def test_python_screen_keeps_keywords_with_unicode_around_them(config, word: str, noise: str) -> None:
    matcher = matchers(config)["vocabulary"]
    for title in (f"{noise}{word}", f"{word}{noise}", f"{noise} {word.upper()} {noise}"):
        if matcher.match(title):
            assert matcher.may_match(title), title


@pytest.mark.parametrize("name", ["contexts", "vocabulary"])
def test_spark_filter_equals_python_screen_and_drops_no_match(spark, config, name: str) -> None:
    matcher = matchers(config)[name]
    titles = fixture_titles(config)
    df = spark.createDataFrame([(i, t) for i, t in enumerate(titles)], "id long, title string")
    flags = {r["id"]: r["keep"] for r in df.select("id", may_match(df["title"], matcher).alias("keep")).collect()}
    dropped_matches = [t for i, t in enumerate(titles) if not flags[i] and matcher.match(t)]
    assert dropped_matches == []
    disagreements = [t for i, t in enumerate(titles) if flags[i] != matcher.may_match(t)]
    assert disagreements == []
    # The filter is worth having: most of the real titles that match nothing never reach Python.
    kept = sum(flags.values())
    assert kept < len(titles)


def test_screen_uses_keyword_tokens_not_the_keyword_text() -> None:
    matcher = KeywordMatcher({"road_trip": ["road trip"], "cafe": ["café"], "jp": ["日本"]})
    assert matcher.ascii_screen() == ("cafe", "road")  # 日本 cannot match a pure-ASCII title
    assert matcher.match("Road-trip") == ["road_trip"] and matcher.may_match("Road-trip")
    assert matcher.may_match("日本") and not matcher.may_match("jazz") and not matcher.may_match(None)
