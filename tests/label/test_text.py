"""Title tokenisation and keyword matching: each clause of the rule, pinned."""

from __future__ import annotations

import pytest

from ctx_spark.text import KeywordMatcher, match_titles, normalize_token, tokenize


@pytest.fixture(scope="module")
def matcher() -> KeywordMatcher:
    return KeywordMatcher(
        {
            "car": ["car"],
            "relax": ["relax"],
            "work": ["work"],
            "workout": ["workout"],
            "night": ["night"],
            "summer": ["summer"],
            "cafe": ["café"],
            "chill": ["chill"],
            "road_trip": ["road trip"],
        }
    )


#: (title, expected labels) pinning each clause of the rule; also tricky titles for the pre-filter tests.
MATCH_CASES = [
    # The examples.
    ("Água com açúcar", []),  # "açúcar" is one token: "acucar", not "car"
    ("Reggaeton relax™", ["relax"]),  # ™ is a symbol: it separates tokens
    ("#WORKOUT", ["workout"]),  # '#' separates, casefold; not "work"
    ("Work-Out", ["work"]),  # '-' separates: "work", "out"
    # Tokens are maximal runs: no substring matches.
    ("Cars and scars", []),
    ("carpool karaoke", []),
    ("workouts", []),
    # Underscore, digits and emoji.
    ("night_drive", ["night"]),  # '_' separates
    ("summer2019", []),  # digits belong to the token
    ("summer 2019", ["summer"]),
    ("🎉party🎉 car🚗", ["car"]),
    # Accents and compatibility forms are normalised on both sides.
    ("CAFÉ del mar", ["cafe"]),
    ("Cafe music", ["cafe"]),
    ("ｃａｒ ｍｕｓｉｃ", ["car"]),  # full-width letters (NFKD)
    ("Ｃhill ＮＩＧＨＴ", ["chill", "night"]),
    ("RELAX\u0301", ["relax"]),  # a combining mark is part of the token, then dropped
    # Multi-word keywords need consecutive tokens.
    ("Road-trip songs", ["road_trip"]),
    ("road summer trip", ["summer"]),
    # Several contexts in one title; sorted labels; repeated keyword counts once.
    ("Summer night drive in the car, car, CAR", ["car", "night", "summer"]),
    # Unicode format characters (Cf) are dropped before tokenising: they never split a word.
    ("ch\u200bill vibes", ["chill"]),  # zero-width space
    ("ni\u00adght drive", ["night"]),  # soft hyphen
    ("\ufeffsummer\u200d", ["summer"]),  # byte-order mark, zero-width joiner
    ("car\u2060pool", []),  # word joiner: "carpool" is one word
    ("road\u200e trip", ["road_trip"]),  # a direction mark beside a real space
    # Nothing to match.
    ("", []),
    ("   !!! ", []),
]


@pytest.mark.parametrize("title, expected", MATCH_CASES)
def test_match_rule(matcher: KeywordMatcher, title: str, expected: list[str]) -> None:
    assert matcher.match(title) == expected


def test_null_title_matches_nothing(matcher: KeywordMatcher) -> None:
    assert matcher.match(None) == []


def test_tokenize_splits_on_every_non_token_character() -> None:
    assert tokenize("a-b_c#d™e/f.g'h 1") == ["a", "b", "c", "d", "e", "f", "g", "h", "1"]
    assert tokenize("İstanbul STRASSE Straße") == ["istanbul", "strasse", "strasse"]


def test_normalize_token_is_nfkd_without_marks_casefolded() -> None:
    assert normalize_token("Ação") == "acao"
    assert normalize_token("ß") == "ss"  # casefold, not lower
    assert normalize_token("Ⅻ") == "xii"  # NFKD compatibility decomposition
    assert normalize_token("ABC") == "abc"


def test_keyword_without_letters_is_rejected() -> None:
    with pytest.raises(ValueError, match="contains no letters or digits"):
        KeywordMatcher({"bad": ["#!"]})


def test_spark_wrapper_agrees_with_python(spark, matcher: KeywordMatcher) -> None:
    titles = ["Água com açúcar", "Reggaeton relax™", "#WORKOUT", "Work-Out", None, "Ｃhill ＮＩＧＨＴ car"]
    df = spark.createDataFrame([(i, t) for i, t in enumerate(titles)], "id long, title string")
    rows = {r["id"]: r["found"] for r in match_titles(df, "title", matcher, "found").collect()}
    assert [rows[i] for i in range(len(titles))] == [matcher.match(t) for t in titles]
