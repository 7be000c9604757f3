"""A learned topic model beside the matcher's hand-built scorer: logistic regression over n-grams.

Features: character 2–5-grams of each word (padded with a space at each end, so they
survive typos and SMS spelling) and word 1–2-grams, each block TF-IDF weighted (sublinear
term frequency) and normalised to unit length. The character block is a sum of one vector
per distinct word (its grams, weighted by the word's own sublinear count), normalised as if
words shared no gram: a word's contribution to every topic's score is then computed once
and remembered, and a question costs a few additions per word. The weights are learnt from the knowledge
base's own texts only — each topic's example questions, title, label and keywords — by
:mod:`knowledge.topic_model_training` (scikit-learn, imported only there), then kept as plain
values in the matcher's index cache: answering a question never imports scikit-learn or numpy.

The probabilities are calibrated by a temperature (``learned_temperature`` in lexicon.yaml)
fitted on cross-validated predictions of the training texts (``python -m bench.matcher_cv
--calibrate``), so that « 0.9 » means right about nine times out of ten on unseen wording.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

#: Character n-gram lengths, and word n-gram lengths.
CHAR_SIZES = (2, 3, 4, 5)
WORD_SIZES = (1, 2)


def char_features(words: Iterable[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for word in words:
        padded = f" {word} "
        length = len(padded)
        for size in CHAR_SIZES:
            if size > length:
                break
            counts.update("c" + padded[i : i + size] for i in range(length - size + 1))
    return counts


def word_features(words: list[str]) -> Counter[str]:
    counts: Counter[str] = Counter("w" + w for w in words)
    if 2 in WORD_SIZES:
        counts.update(f"w{a} {b}" for a, b in zip(words, words[1:]))
    return counts


def features(text: str) -> tuple[Counter[str], Counter[str]]:
    """The two blocks of raw counts of ``text`` (already normalised and rewritten by the analyzer)."""
    words = text.split()
    return char_features(words), word_features(words)


def word_grams(word: str, vocabulary: dict[str, int], idf: array) -> dict[int, float]:
    """One word's character block before normalisation: sublinear count times IDF of each known gram."""
    weights = {}
    for feature, count in char_features((word,)).items():
        column = vocabulary.get(feature)
        if column is not None:
            weights[column] = (1.0 + math.log(count)) * idf[column]
    return weights


def char_vector(words: list[str], vocabulary: dict[str, int], idf: array) -> dict[int, float]:
    """The character block: each distinct word's grams times its sublinear count, normalised as if no gram were shared."""
    vector: dict[int, float] = {}
    squares = 0.0
    for word, count in Counter(words).items():
        grams = word_grams(word, vocabulary, idf)
        scale = 1.0 + math.log(count)
        squares += scale * scale * sum(w * w for w in grams.values())
        for column, weight in grams.items():
            vector[column] = vector.get(column, 0.0) + scale * weight
    norm = math.sqrt(squares)
    return {c: w / norm for c, w in vector.items()} if norm else {}


def tfidf(block: Counter[str], vocabulary: dict[str, int], idf: array) -> dict[int, float]:
    """Sublinear TF-IDF of one block over the known features, normalised to unit length."""
    weights = {}
    for feature, count in block.items():
        column = vocabulary.get(feature)
        if column is not None:
            weights[column] = (1.0 + math.log(count)) * idf[column]
    norm = math.sqrt(sum(w * w for w in weights.values()))
    return {c: w / norm for c, w in weights.items()} if norm else {}


def vectorise(text: str, vocabulary: dict[str, int], idf: array) -> dict[int, float]:
    """The model's input for ``text``: the character block and the word block (their columns never overlap)."""
    words = text.split()
    vector = char_vector(words, vocabulary, idf)
    vector.update(tfidf(word_features(words), vocabulary, idf))
    return vector


#: Words whose contribution is remembered (a bound on memory; forgotten all at once past it).
WORD_CACHE = 20_000


@dataclass(frozen=True, slots=True)
class TopicModel:
    """Multinomial logistic regression, ready for inference in pure Python."""

    classes: tuple[str, ...]
    vocabulary: dict[str, int]
    idf: array
    #: Feature-major coefficients: ``coef[f * len(classes) + k]`` (single precision: half the cache, same ranking).
    coef: array
    intercept: tuple[float, ...]
    temperature: float
    #: word → (its character grams' score for each topic, the squared norm of its grams' vector).
    _words: dict[str, tuple[list[float], float]] = field(default_factory=dict, compare=False, repr=False)

    def _add(self, totals: list[float], vector: dict[int, float], scale: float = 1.0) -> list[float]:
        size = len(self.classes)
        coef = self.coef
        for column, value in vector.items():
            start = column * size
            value *= scale
            totals = [total + value * weight for total, weight in zip(totals, coef[start : start + size])]
        return totals

    def _word(self, word: str) -> tuple[list[float], float]:
        known = self._words.get(word)
        if known is None:
            grams = word_grams(word, self.vocabulary, self.idf)
            known = (self._add([0.0] * len(self.classes), grams), sum(w * w for w in grams.values()))
            if len(self._words) >= WORD_CACHE:
                self._words.clear()
            self._words[word] = known
        return known

    def scores(self, text: str) -> list[float]:
        """The linear score of each class for ``text`` (normalised and rewritten): exactly ``W·vectorise(text) + b``."""
        words = text.split()
        chars = [0.0] * len(self.classes)
        squares = 0.0
        for word, count in Counter(words).items():
            partial, square = self._word(word)
            scale = 1.0 + math.log(count)
            squares += scale * scale * square
            chars = [total + scale * value for total, value in zip(chars, partial)]
        norm = math.sqrt(squares)
        totals = [b + c / norm for b, c in zip(self.intercept, chars)] if norm else list(self.intercept)
        return self._add(totals, tfidf(word_features(words), self.vocabulary, self.idf))

    def probabilities(self, text: str, temperature: float = 0.0) -> dict[str, float]:
        """Probability of each topic for ``text`` (normalised and rewritten), calibrated by ``temperature``
        (the model's own when 0)."""
        totals = self.scores(text)
        scale = 1.0 / (temperature or self.temperature)
        top = max(totals)
        odds = [math.exp((t - top) * scale) for t in totals]
        total = sum(odds)
        return {topic: odd / total for topic, odd in zip(self.classes, odds)}

    def to_plain(self) -> tuple[Any, ...]:
        return (self.classes, self.vocabulary, self.idf.tobytes(), self.coef.tobytes(), self.intercept, self.temperature)

    @classmethod
    def from_plain(cls, values: Any) -> TopicModel:
        """The model back from :meth:`to_plain`; ``TypeError`` when the shape does not fit."""
        if not isinstance(values, tuple) or len(values) != 6:
            raise TypeError("not a topic model")
        classes, vocabulary, idf_bytes, coef_bytes, intercept, temperature = values
        if not isinstance(vocabulary, dict) or not isinstance(idf_bytes, bytes) or not isinstance(coef_bytes, bytes):
            raise TypeError("not a topic model")
        idf, coef = array("f"), array("f")
        idf.frombytes(idf_bytes)
        coef.frombytes(coef_bytes)
        if len(idf) != len(vocabulary) or len(coef) != len(vocabulary) * len(classes) or len(intercept) != len(classes):
            raise TypeError("topic model of inconsistent shape")
        return cls(tuple(classes), vocabulary, idf, coef, tuple(intercept), float(temperature))
