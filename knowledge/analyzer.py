"""Turn French text into the matcher's terms: lexicon rewriting, typo correction, stemming."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from knowledge.model import Lexicon
from knowledge.text import BASE_STOPWORDS, normalise, stem


class Analyzer:
    """Turns text into stemmed terms, using the lexicon and the known vocabulary."""

    def __init__(self, lexicon: Lexicon) -> None:
        self._synonyms = dict(lexicon.synonyms)
        self._stopwords = BASE_STOPWORDS | lexicon.stopwords
        # Longest variant (in words) starting with each word: rewriting is a dictionary walk over
        # the words, the same leftmost-longest replacement as one big regex, several times faster.
        self._spans: dict[str, int] = {}
        for variant in self._synonyms:
            first, size = variant.split(" ", 1)[0], variant.count(" ") + 1
            self._spans[first] = max(size, self._spans.get(first, 0))
        self._vocabulary: tuple[str, ...] = ()
        self._known: frozenset[str] = frozenset()
        self._correct = self._correct_word

    def rewrite(self, text: str) -> str:
        """Normalised text whose lexicon variants are replaced by their canonical form."""
        words = normalise(text).split()
        if not self._spans:
            return " ".join(words)
        out: list[str] = []
        position, count = 0, len(words)
        while position < count:
            longest = min(self._spans.get(words[position], 0), count - position)
            for size in range(longest, 0, -1):
                canonical = self._synonyms.get(" ".join(words[position : position + size]))
                if canonical is not None:
                    out.append(canonical)
                    position += size
                    break
            else:
                out.append(words[position])
                position += 1
        return " ".join(out)

    def words(self, text: str) -> list[str]:
        return [word for word in self.rewrite(text).split() if word not in self._stopwords]

    @property
    def known_words(self) -> frozenset[str]:
        """The vocabulary learnt so far (what :meth:`learn` was given, words of four letters or more)."""
        return self._known

    def learn(self, words: Iterable[str]) -> None:
        """Record the vocabulary typos are corrected against."""
        known = set(self._known) | {w for w in words if len(w) >= 4}
        self._known = frozenset(known)
        self._vocabulary = tuple(sorted(known))
        # A cache per analyzer (not per class) so that discarded matchers can be freed.
        self._correct = lru_cache(maxsize=20_000)(self._correct_word)

    def correct(self, word: str) -> str:
        """``word`` (normalised), or the known word it is a typo of (never a stop word: « comment »)."""
        return self._correct(word) if self._vocabulary and word not in self._stopwords else word

    def _correct_word(self, word: str) -> str:
        # Only words that are neither in the knowledge nor in a French dictionary
        # are typos: « soldes » must not become « solide ».
        if len(word) < 5 or word in self._known or word.isdigit():
            return word
        cutoff = 85 if len(word) < 8 else 80
        from rapidfuzz import fuzz, process  # only for a word the knowledge does not know

        found = process.extractOne(word, self._vocabulary, scorer=fuzz.ratio, score_cutoff=cutoff)
        # The dictionary is loaded (≈ 0.4 s) only for a word close to the vocabulary, not for any unknown word.
        return found[0] if found and word not in french_words() else word

    def terms(self, text: str, *, correct: bool = True) -> list[str]:
        words = self.words(text)
        if correct and self._vocabulary:
            fixed = []
            for word in words:
                corrected = self._correct(word)
                # A corrected word may be a synonym variant ("asociation" -> "association").
                fixed.extend(self._synonyms.get(corrected, corrected).split() if corrected != word else [word])
            words = fixed
        return [stem(word) for word in words if word not in self._stopwords]


@lru_cache(maxsize=1)
def _frequencies() -> dict[str, int]:
    from spellchecker import SpellChecker

    return SpellChecker(language="fr", distance=1).word_frequency.dictionary


@lru_cache(maxsize=1)
def french_words() -> frozenset[str]:
    """Accent-free French dictionary words (pyspellchecker's frequency list)."""
    # Most entries are plain lower-case ASCII already; normalising only the others
    # divides the start-up cost by four.
    return frozenset(
        word if word.isascii() and word.isalpha() and word.islower() else normalise(word)
        for word in _frequencies()
    )


@lru_cache(maxsize=4)
def everyday_words(count: int) -> frozenset[str]:
    """The ``count`` most frequent French words of pyspellchecker's list, normalised.

    « devenir », « faire », « maison », « demain »: words of any conversation, which say
    nothing about what a question is about even when a topic's text happens to use them.
    """
    frequencies = _frequencies()
    ranked = sorted(frequencies, key=lambda word: -frequencies[word])[:count]
    return frozenset(normalise(word) for word in ranked)
