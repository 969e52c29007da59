"""Playlist-title tokenisation and context-keyword matching.

The rule (docs/labelling.md, "Title matching"): Unicode format characters (category Cf: zero-width
spaces and joiners, soft hyphens, direction marks) are dropped first, so "ch\u200bill" is "chill".
A token is then a maximal run of Unicode letters (L*), combining marks (M*) and decimal digits (Nd);
every other character separates tokens. Each
token is normalised with NFKD, its combining marks are dropped and it is casefolded. A
keyword, tokenised the same way, matches a title when its tokens occur as consecutive title
tokens. So "Água com açúcar" does not contain ``car``, "#WORKOUT" matches ``workout`` but not
``work``, and "Work-Out" matches ``work``.

Spark SQL has no NFKD normalisation nor Python's casefold, so the exact rule runs in a
vectorised (Arrow) pandas UDF, applied to the playlists table only, never to the much
larger playlist-track table. :func:`may_match` is an exact JVM-side pre-filter in front of
it: a pure-ASCII title that contains no keyword's first token as a case-insensitive substring
cannot match, so only the other titles are sent to Python (docs/design-notes.md, "Labelling: the
title pre-filter and the shuffle count").
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Optional

import pandas as pd

_TOKEN_CATEGORIES = ("Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd")
#: The regex class of a non-ASCII character (Java and Python syntax alike).
NON_ASCII_REGEX = "[^\\x00-\\x7F]"


def _format_characters() -> dict[int, None]:
    """A ``str.translate`` table deleting every code point of category Cf (none is ASCII)."""
    return _unicode_tables()[1]


def drop_format_characters(text: str) -> str:
    """``text`` without its Unicode format characters (category Cf), e.g. U+200B, U+00AD.

    They are invisible and carry no letters: a zero-width space or soft hyphen inside a word
    (``ch\u200bill``) must not split it. ASCII text has none and is returned as it is.
    """
    return text if text.isascii() else text.translate(_format_characters())


#: Tables received with a pickled :class:`KeywordMatcher` (a Python worker skips the walk).
_shipped_tables: Optional[tuple[re.Pattern[str], dict[int, None]]] = None


def _unicode_tables() -> tuple[re.Pattern[str], dict[int, None]]:
    return _shipped_tables or _walk_unicode()


@lru_cache(maxsize=1)
def _walk_unicode() -> tuple[re.Pattern[str], dict[int, None]]:
    """The token regex (a ``[...]+`` class covering every code point of a token category) and
    the table of format characters, from one walk over all of Unicode.

    The walk takes ~0.3 s per process; matching then runs in the C regex engine instead of a
    per-character Python loop.
    """
    ranges: list[tuple[int, int]] = []
    formats: dict[int, None] = {}
    start = None
    for code in range(sys.maxunicode + 1):
        category = unicodedata.category(chr(code))
        inside = category in _TOKEN_CATEGORIES
        if category == "Cf":
            formats[code] = None
        if inside and start is None:
            start = code
        elif not inside and start is not None:
            ranges.append((start, code - 1))
            start = None
    if start is not None:
        ranges.append((start, sys.maxunicode))
    parts = []
    for low, high in ranges:
        parts.append(re.escape(chr(low)) if low == high else f"{re.escape(chr(low))}-{re.escape(chr(high))}")
    return re.compile("[" + "".join(parts) + "]+"), formats


def _token_regex() -> re.Pattern[str]:
    return _unicode_tables()[0]


def normalize_token(token: str) -> str:
    """NFKD, drop combining marks, casefold. ASCII tokens skip the Unicode work."""
    if token.isascii():
        return token.lower()
    decomposed = unicodedata.normalize("NFKD", token)
    stripped = "".join(ch for ch in decomposed if not unicodedata.category(ch).startswith("M"))
    return stripped.casefold()


def tokenize(text: Optional[str]) -> list[str]:
    """Split ``text`` into normalised tokens; None or empty text gives no tokens.

    >>> tokenize("Reggaeton relax™ #WORKOUT Work-Out Água")
    ['reggaeton', 'relax', 'workout', 'work', 'out', 'agua']
    """
    if not text:
        return []
    tokens = (normalize_token(t) for t in _token_regex().findall(drop_format_characters(text)))
    return [t for t in tokens if t]


class KeywordMatcher:
    """Match titles against labelled keywords (each label has one or more keywords).

    Args:
        keywords_by_label: label -> keywords; a label is reported when any of its keywords
            occurs in the title. Labels are returned sorted.

    Raises:
        ValueError: a keyword has no token (e.g. only punctuation), so it could never match.
    """

    def __init__(self, keywords_by_label: Mapping[str, Iterable[str]]):
        self.labels = tuple(keywords_by_label)
        index: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for label, words in keywords_by_label.items():
            for word in words:
                tokens = tuple(tokenize(word))
                if not tokens:
                    raise ValueError(f"keyword {word!r} of '{label}' contains no letters or digits")
                index.setdefault(tokens[0], []).append((tokens, label))
        self._index = index
        self._screen = tuple(sorted({t[0] for entries in index.values() for t, _ in entries if _all_ascii(t)}))

    def __getstate__(self) -> dict[str, Any]:
        # The Unicode tables travel with the matcher: a Python worker then skips the walk.
        return {**self.__dict__, "_tables": _unicode_tables()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        global _shipped_tables
        state = dict(state)
        _shipped_tables = _shipped_tables or state.pop("_tables", None)
        state.pop("_tables", None)
        self.__dict__.update(state)

    def match_tokens(self, tokens: Sequence[str]) -> list[str]:
        """Sorted labels whose keyword occurs as consecutive tokens of ``tokens``."""
        found: set[str] = set()
        for i, token in enumerate(tokens):
            for keyword, label in self._index.get(token, ()):
                if label not in found and tuple(tokens[i : i + len(keyword)]) == keyword:
                    found.add(label)
        return sorted(found)

    def match(self, title: Optional[str]) -> list[str]:
        """Sorted labels matched by ``title``; none for a null or empty title."""
        return self.match_tokens(tokenize(title))

    def ascii_screen(self) -> tuple[str, ...]:
        """The first token of every keyword whose tokens are all ASCII, sorted and distinct.

        A pure-ASCII title has only lower-case ASCII tokens, so it can match only those
        keywords, and only if its lower-cased text contains their first token: a title that
        is pure ASCII and contains none of these strings can match nothing. (The whole
        keyword is not a valid screen: "Road-trip" matches ``road trip``.)
        """
        return self._screen

    def may_match(self, title: Optional[str]) -> bool:
        """The pre-filter of :func:`may_match`, in Python: False only for titles that cannot match."""
        if not title:
            return False
        if not title.isascii():
            return True
        lowered = title.lower()
        return any(word in lowered for word in self._screen)


def _all_ascii(tokens: Sequence[str]) -> bool:
    return all(token.isascii() for token in tokens)


def may_match(title: Any, matcher: KeywordMatcher) -> Any:
    """A Spark column, false only for titles that ``matcher`` cannot match (exact by construction).

    True for a title holding any non-ASCII character, and for a pure-ASCII title whose
    lower-cased text contains a string of :meth:`KeywordMatcher.ascii_screen`; false for a
    null title. Spark's ``lower`` of an ASCII string is ASCII lower-casing, as Python's, so
    the filter never drops a title the Python matcher would match (tested on real and
    generated titles). Runs in the JVM, so most titles never reach Python.

    Args:
        title: a string Column.
    """
    from pyspark.sql import functions as F

    lowered = F.lower(title)
    condition = title.rlike(NON_ASCII_REGEX)
    for word in matcher.ascii_screen():
        condition = condition | lowered.contains(word)
    return F.coalesce(condition, F.lit(False))


def match_titles(df, title_col: str, matcher: KeywordMatcher, out_col: str):
    """Add ``out_col`` (array<string>): the labels ``matcher`` finds in ``title_col``.

    Null titles give an empty array. Runs as an Arrow-batched pandas UDF, so Python sees
    titles in batches, not one row at a time. The UDF is declared non-deterministic (the
    matcher itself is deterministic) so that Spark evaluates it where it stands: a
    deterministic UDF under a filter is pushed below a ``distinct`` and copied to the other
    side of a join, which made the labelling job match every candidate title three times
    instead of each distinct title once.

    Args:
        df: a Spark DataFrame with a string column ``title_col``.
        matcher: the matcher to apply; it is pickled once per task.

    Returns:
        ``df`` with the extra column.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, StringType

    # pyspark's stubs lack the overload of a return type alone (the UDF kind comes from the type hints)
    @F.pandas_udf(ArrayType(StringType()))  # type: ignore[call-overload]
    def _match(titles: pd.Series) -> pd.Series:
        return titles.map(lambda t: matcher.match(t) if isinstance(t, str) else [])

    return df.withColumn(out_col, _match.asNondeterministic()(F.col(title_col)))
