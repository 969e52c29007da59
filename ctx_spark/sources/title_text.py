"""Real-looking playlist titles for the synthetic catalogue, each with a known intent.

Every title is built from a template and a keyword, so the generator knows which contexts
the title is *meant* to match; a test checks that the project's matcher
(:mod:`ctx_spark.text`) finds exactly those. Titles mix languages, accents, emoji, hashtags,
punctuation and casing, and a share of them are near misses: words that contain a context
word but must not match it under the token rule ("scar", "Água com açúcar", "workouts",
"summer2018", "chillミックス").

The word lists below are checked against the configured keywords when a
:class:`TitleBank` is built: an entry that would match a context it is not meant for (for
instance after a user adds an alias) is dropped, so the intent stays exact for any config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Optional

import numpy as np

from ctx_spark.text import KeywordMatcher

#: Templates for a title about one keyword ``{k}``. The filler words are in several
#: languages and match no context and no vocabulary keyword.
KEYWORD_TEMPLATES: tuple[str, ...] = (
    "{k}",
    "{k}",
    "{k}",
    "{k}",
    "{k} songs",
    "{k} music",
    "{k} playlist",
    "{k} mix",
    "{k} vibes",
    "{k} vibes ✨",
    "{k} 🔥",
    "{k}!!!",
    "#{k}",
    "{k} 2018",
    "{k} hits 2019",
    "my {k} playlist",
    "songs for {k}",
    "best {k} songs ever",
    "{k} time",
    "{k}-time",
    "~{k}~",
    "{k}...",
    "{k} ♥",
    "{k} 🎶🎶",
    "{k} & more",
    "{k} / throwbacks",
    "{k}: the playlist",
    "{k} (2017)",
    "{k}_mix",
    "{k}™",
    "J's {k} mix",
    "Música para {k}",
    "musique {k} du soir",
    "chansons {k} été 2018",
    "canciones {k} ❤️",
    "Für die {k}-Zeit",
    "canzoni {k}",
    "{k} şarkıları",
    "{k} プレイリスト",
    "{k} музыка",
    "«{k}»",
    "{k}, baby",
    "[{k}] rock edition",
    "{k} — indie",
    "{k} w/ friends",
    "{k}?",
    "Lo-fi {k}",
)

#: Templates for a title about two keywords.
PAIR_TEMPLATES: tuple[str, ...] = (
    "{k} & {k2}",
    "{k}/{k2}",
    "{k2} {k} mix",
    "{k} + {k2} 🔥",
    "{k} and {k2} songs",
    "{k}, {k2}",
    "#{k} #{k2}",
    "{k} x {k2} 2019",
)

#: Templates that glue extra letters or digits to a keyword: one token, hence no match.
GLUE_TEMPLATES: tuple[str, ...] = (
    "{k}s",
    "{k}2018",
    "{k}ミックス",
    "#{k}life",
    "my{k}",
    "{k}music 🎧",
    "Super{k}",
    "{k}é",
)

#: Real words that contain a context word but are other tokens: they must not match.
NEAR_MISSES: tuple[str, ...] = (
    "scar",
    "cart",
    "Água com açúcar",
    "Pão de Açúcar",
    "carnaval 2019",
    "Oscar nominees",
    "Carly Rae Jepsen",
    "carpool karaoke",
    "caribbean nights out",
    "chilled",
    "chillout lounge",
    "chillax",
    "chillwave",
    "Red Hot Chili Peppers",
    "clubbing",
    "clubhouse",
    "nightclub classics",
    "dancehall",
    "dancefloor fillers",
    "dancing queen",
    "danceable",
    "gymnastics",
    "gymnase",
    "unhappy",
    "happyhour",
    "happier than ever",
    "nightcore",
    "tonight",
    "midnight city",
    "nightlife",
    "knight rider",
    "goodnight moon",
    "partying",
    "afterparty",
    "partystarter",
    "relaxing piano",
    "relaxation",
    "relaxed",
    "runningman",
    "Runnin'",
    "sadness",
    "Sade",
    "Sadé",
    "saddest songs",
    "sleepless",
    "sleepy time",
    "sleeping",
    "asleep",
    "summertime",
    "summers gone",
    "indiansummer",
    "workouts",
    "worker songs",
    "network",
    "homework",
    "workshop",
    "workaholic",
    "worká",
)

#: Titles with no keyword at all.
GENERIC_TITLES: tuple[str, ...] = (
    "Throwbacks",
    "Rock classics",
    "Favoris",
    "Mis canciones favoritas",
    "Lieblingslieder",
    "2000s hits",
    "Rap FR",
    "My playlist",
    "🔥🔥🔥",
    "K-pop ✨",
    "お気に入り",
    "Лучшее",
    "Indie folk",
    "Oldies but goodies",
    "Country",
    "New Playlist",
    "Jazz",
    "Électro",
    "Années 80",
    "Música brasileira",
    "Reggaeton 2018",
    "Top 40",
    "random",
    "Disney",
    "Worship",
    "feels",
    "Throwback Thursday",
    "Émotions",
    "Ça plane",
    "ROCK!!!",
    "guilty pleasures",
    "90's R&B",
    "Hip-Hop/Rap",
    "Soundtrack",
    "emo phase",
    "Metal \\m/",
    "Türkçe pop",
    "Canções",
    "lofi beats",
    "Musik",
    "songs i like",
    "good vibes only",
    "Bangers",
    "Classical",
    "EDM",
    "house",
    "techno",
    "Latin",
    "Blues",
    "Mom's playlist",
    "Spotify Wrapped",
    "Discover",
    "coldplay & co",
    "Queen",
    "Beatles",
    "old school",
    "TikTok",
    "Soul",
    "funk",
    "ska-punk",
    "Musique québécoise",
    "J-rock",
    "音楽",
    "♡♡♡",
    "Untitled",
    "playlist #3",
    "Tim's mix",
    "ok",
    "Dad rock",
    "Bollywood",
    "Afrobeat",
)


def _fullwidth(text: str) -> str:
    """ASCII letters and digits to their full-width forms (NFKD maps them back)."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


def _mixed(text: str) -> str:
    return "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(text))


#: Title casings and their probabilities; casefolding makes them all equivalent.
CASINGS = (
    (str.lower, 0.50),
    (lambda t: t, 0.15),
    (str.title, 0.15),
    (str.upper, 0.15),
    (_mixed, 0.04),
    (_fullwidth, 0.01),
)


class TitleBank:
    """Titles with a known intent for a given set of contexts and vocabulary.

    Args:
        contexts: context name -> its keywords (``conf/contexts.yaml``), in vector order.
        vocabulary: candidate keywords; the ones that are not context keywords make the
            "other keyword" titles.

    Raises:
        ValueError: a context has no usable keyword or no template survives the checks.
    """

    def __init__(self, contexts: Mapping[str, Sequence[str]], vocabulary: Sequence[str]):
        self.names = tuple(contexts)
        self.matcher = KeywordMatcher(contexts)
        self.keywords = {name: tuple(words) for name, words in contexts.items()}
        vocab_matcher = KeywordMatcher({w: [w] for w in vocabulary})
        filler = "zq"  # a token that is no keyword
        clean = lambda text: not self.matcher.match(text) and not vocab_matcher.match(text)  # noqa: E731
        self.templates = tuple(t for t in KEYWORD_TEMPLATES if clean(t.format(k=filler)))
        self.pair_templates = tuple(t for t in PAIR_TEMPLATES if clean(t.format(k=filler, k2=filler)))
        self.vocab_words = tuple(w for w in vocabulary if not self.matcher.match(w))
        misses = list(NEAR_MISSES)
        for words in self.keywords.values():
            misses += [t.format(k=w) for t in GLUE_TEMPLATES for w in words]
        self.near_misses = tuple(m for m in misses if not self.matcher.match(m))
        self.generic = tuple(g for g in GENERIC_TITLES if clean(g))
        if not self.templates or not self.pair_templates or not self.generic:
            raise ValueError("no title template survives the keyword checks; check the vocabulary")
        for name, words in self.keywords.items():
            if not words:
                raise ValueError(f"context '{name}' has no keyword")
        self._casings = [c for c, _ in CASINGS]
        self._casing_p = np.array([p for _, p in CASINGS]) / sum(p for _, p in CASINGS)

    def titles(
        self, rng: np.random.Generator, kinds: np.ndarray, primary: np.ndarray, second: np.ndarray
    ) -> list[Optional[str]]:
        """One title per playlist.

        Args:
            kinds: (n,) title kind per playlist: 0 null, 1 context, 2 other vocabulary
                keyword, 3 near miss, 4 generic.
            primary, second: (n,) context indexes for kind 1 (``second`` -1 for none).

        Returns:
            n titles (None for kind 0), in playlist order.
        """
        n = len(kinds)
        casing = rng.choice(len(self._casings), size=n, p=self._casing_p)
        template = rng.integers(len(self.templates), size=n)
        pair = rng.integers(len(self.pair_templates), size=n)
        pick = rng.random(n)
        pick2 = rng.random(n)
        out: list[Optional[str]] = []
        for i in range(n):
            kind = kinds[i]
            if kind == 0:
                out.append(None)
                continue
            if kind == 1:
                words = self.keywords[self.names[primary[i]]]
                word = words[int(pick[i] * len(words))]
                if second[i] >= 0:
                    words2 = self.keywords[self.names[second[i]]]
                    text = self.pair_templates[pair[i]].format(k=word, k2=words2[int(pick2[i] * len(words2))])
                else:
                    text = self.templates[template[i]].format(k=word)
            elif kind == 2:
                text = self.templates[template[i]].format(k=self.vocab_words[int(pick[i] * len(self.vocab_words))])
            elif kind == 3:
                text = self.near_misses[int(pick[i] * len(self.near_misses))]
            else:
                text = self.generic[int(pick[i] * len(self.generic))]
            out.append(self._casings[casing[i]](text))
        return out

    def intended(self, kinds: np.ndarray, primary: np.ndarray, second: np.ndarray) -> list[list[str]]:
        """The sorted context names each title of :meth:`titles` is meant to match."""
        result = []
        for kind, p, s in zip(kinds, primary, second):
            names = {self.names[p], self.names[s]} if kind == 1 and s >= 0 else {self.names[p]} if kind == 1 else set()
            result.append(sorted(names))
        return result
