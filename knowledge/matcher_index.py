"""The matcher's index: every weight computed from the knowledge base once, before any question.

Building it stems and weighs every example question, keyword and answer sentence (≈ 0.1 s);
:mod:`knowledge.index_cache` keeps it on disk so that ``ptce-bot ask`` does not pay it at each
start. The index holds only plain values (strings, floats, tuples, dicts, sets), so that it
round-trips through :mod:`marshal` unchanged, in the same order.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from knowledge.model import KnowledgeBase, Topic
from knowledge.text import BASE_STOPWORDS, stem

if TYPE_CHECKING:
    from knowledge.analyzer import Analyzer

#: Share of the naive Bayes word count given to a sentence of an answer (times PROSE_WEIGHT).
PROSE_COUNT = 0.5
#: Additive smoothing of the naive Bayes word counts.
SMOOTHING = 0.3
#: Length of the character n-grams.
GRAM = 3
#: How much a sentence of an answer counts, compared with an example question.
PROSE_WEIGHT = 0.85
#: How many of the most frequent French words count as everyday words (see ``MatcherIndex.everyday``).
EVERYDAY = 500

Vector = dict[str, float]
_SENTENCE = re.compile(r"(?<=[.!?;:])\s+|\n+")


@dataclass(frozen=True, slots=True)
class MatcherIndex:
    """What the matcher knows of the knowledge base, ready for scoring questions."""

    #: Words of the knowledge (≥ 4 letters) typos are corrected against.
    known_words: frozenset[str]
    #: The terms of each example question (and title) → the topics it belongs to.
    asked: dict[frozenset[str], set[str]]
    idf: dict[str, float]
    unknown_idf: float
    domain_stems: frozenset[str]
    subject_stems: frozenset[str]
    gram_idf: dict[str, float]
    #: Character 3-gram → (topic, weight in the topic's normalised gram profile): a question's
    #: similarity is summed over its own grams only.
    gram_postings: dict[str, tuple[tuple[str, float], ...]]
    #: Term → (topic, weight in the topic's normalised profile), the topic as a whole.
    profile_postings: dict[str, tuple[tuple[str, float], ...]]
    #: Term → (example number, weight in that example's vector times the example's factor).
    postings: dict[str, tuple[tuple[int, float], ...]]
    #: The topic of each example number.
    example_topics: tuple[str, ...]
    #: Per topic, the log-probability of each word, and of a word the topic never uses.
    likelihoods: dict[str, tuple[dict[str, float], float]]
    vocabulary: dict[str, frozenset[str]]
    specificity: dict[str, float]
    #: The learned topic model (:meth:`knowledge.topic_model.TopicModel.to_plain`), None without one.
    model: tuple[Any, ...] | None = None
    #: Stems of everyday French words (the most frequent ones) that are not domain words: a match
    #: resting on them and on words many topics use says little about the subject.
    everyday: frozenset[str] = frozenset()

    def to_plain(self) -> tuple[Any, ...]:
        """The fields as a tuple of plain values (for :mod:`marshal`)."""
        return tuple(getattr(self, f.name) for f in fields(self))

    @classmethod
    def from_plain(cls, values: tuple[Any, ...]) -> MatcherIndex:
        """The index back from :meth:`to_plain`; ``TypeError`` when the shape does not fit."""
        if not isinstance(values, tuple) or len(values) != len(fields(cls)):
            raise TypeError("not a matcher index")
        index = cls(*values)
        if not isinstance(index.idf, dict) or not isinstance(index.postings, dict) or not isinstance(index.known_words, frozenset):
            raise TypeError("not a matcher index")
        return index


def topic_texts(topic: Topic) -> list[str]:
    return [topic.title, topic.short, topic.details, *topic.questions, *topic.keywords, *topic.vigilance]


def term_counts(terms: Iterable[str]) -> Counter[str]:
    return Counter(terms)


def char_grams(analyzer: Analyzer, text: str) -> list[str]:
    """Character 3-grams of the words (padded with a space at each end)."""
    return [
        f" {word} "[i : i + GRAM]
        for word in analyzer.words(text)
        if len(word) >= GRAM - 1
        for i in range(len(word) + 3 - GRAM)
    ]


def weigh(tf: Mapping[str, float], idf: Mapping[str, float], unknown_idf: float, *, sublinear: bool = False) -> Vector:
    weights: Vector = {}
    for term, count in tf.items():
        weights[term] = (1 + math.log(count) if sublinear else count) * idf.get(term, unknown_idf)
    return weights


def normalised(vector: Vector) -> Vector:
    norm = math.sqrt(sum(w * w for w in vector.values()))
    return {t: w / norm for t, w in vector.items()} if norm else {}


def _naive_bayes(word_counts: Mapping[str, Counter[str]]) -> dict[str, tuple[dict[str, float], float]]:
    vocabulary = set().union(*word_counts.values()) if word_counts else set()
    likelihoods = {}
    for tid, counts in word_counts.items():
        total = sum(counts.values()) + SMOOTHING * len(vocabulary)
        logs = {term: math.log((count + SMOOTHING) / total) for term, count in counts.items()}
        likelihoods[tid] = (logs, math.log(SMOOTHING / total))
    return likelihoods


def build_index(kb: KnowledgeBase, analyzer: Analyzer) -> MatcherIndex:
    """Weigh every text of the knowledge base; teaches ``analyzer`` the vocabulary as it goes."""
    topics = list(kb.topics.values())
    texts = {topic.id: topic_texts(topic) for topic in topics}
    analyzer.learn(word for pieces in texts.values() for piece in pieces for word in analyzer.words(piece))
    # Typos of a lexicon variant (« subvantion », « coordinnateur ») are corrected to the
    # variant, which the lexicon then rewrites.
    analyzer.learn(variant for variant in kb.lexicon.synonyms if " " not in variant)
    profiles: dict[str, Counter[str]] = {}
    examples: dict[str, list[tuple[Counter[str], float]]] = {}
    word_counts: dict[str, Counter[str]] = {}
    # The words of each example question: asked again as such, they need no further evidence.
    asked: dict[frozenset[str], set[str]] = defaultdict(set)
    analysed: dict[str, list[str]] = {}

    def terms(text: str) -> list[str]:
        if text not in analysed:
            analysed[text] = analyzer.terms(text, correct=False)
        return analysed[text]

    for topic in topics:
        written = [topic.title, *topic.questions, " ".join(topic.keywords), *topic.keywords]
        # Sentences of the answers themselves also count, a little less than the examples.
        prose = [p for text in (topic.short, topic.details, *topic.vigilance) for p in _SENTENCE.split(text)]
        examples[topic.id] = [
            (tf, factor)
            for texts_, factor in ((written, 1.0), (prose, PROSE_WEIGHT))
            for tf in (term_counts(terms(t)) for t in texts_)
            if tf
        ]
        for question in (topic.title, *topic.questions):
            asked[frozenset(terms(question))].add(topic.id)
        profile: Counter[str] = Counter()
        for text in (topic.title, *topic.questions, *topic.keywords, topic.short):
            profile.update(set(terms(text)))
        profiles[topic.id] = profile
        counts: Counter[str] = Counter()
        for text in written:
            counts.update(set(terms(text)))
        for text in prose:
            for term in set(terms(text)):
                counts[term] += PROSE_WEIGHT * PROSE_COUNT  # type: ignore[assignment]  # weighted counts: floats in a Counter
        word_counts[topic.id] = counts
    document_frequency: Counter[str] = Counter()
    for profile in profiles.values():
        document_frequency.update(profile.keys())
    count = len(topics)
    idf = {term: math.log(1 + count / df) for term, df in document_frequency.items()}
    unknown_idf = math.log(1 + count)
    domain_words = {*kb.lexicon.domain_terms, *kb.lexicon.synonyms.values()}
    domain_stems = {stem(word) for term in domain_words for word in term.split()} - {
        stem(word) for word in BASE_STOPWORDS | kb.lexicon.stopwords
    }
    # Character n-grams of each topic's words: « reconnaît » meets « reconnu », « rédige »
    # meets « rédaction », where stems differ.
    grams: dict[str, Counter[str]] = {}
    for topic in topics:
        grams[topic.id] = Counter()
        for text in (topic.title, *topic.questions, *topic.keywords, topic.short):
            grams[topic.id].update(set(char_grams(analyzer, text)))
    gram_df: Counter[str] = Counter()
    for counts in grams.values():
        gram_df.update(counts.keys())
    gram_idf = {g: math.log(1 + count / df) for g, df in gram_df.items()}
    gram_profiles = {
        tid: normalised({g: (1 + math.log(n)) * gram_idf[g] for g, n in counts.items()}) for tid, counts in grams.items()
    }
    gram_postings: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for tid, gram_profile in gram_profiles.items():
        for gram, weight in gram_profile.items():
            gram_postings[gram].append((tid, weight))
    subject_stems = {stem(word) for term in kb.lexicon.subject_terms for word in term.split()}
    weighed_profiles = {tid: normalised(weigh(p, idf, unknown_idf, sublinear=True)) for tid, p in profiles.items()}
    example_vectors = {tid: [normalised(weigh(tf, idf, unknown_idf)) for tf, _ in pairs] for tid, pairs in examples.items()}
    factors = {tid: [factor for _, factor in pairs] for tid, pairs in examples.items()}
    postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
    example_topics: list[str] = []
    for tid, vectors in example_vectors.items():
        for position, vector in enumerate(vectors):
            number = len(example_topics)
            example_topics.append(tid)
            for term, weight in vector.items():
                postings[term].append((number, weight * factors[tid][position]))
    profile_postings: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for tid, weighed in weighed_profiles.items():
        for term, weight in weighed.items():
            profile_postings[term].append((tid, weight))
    # Every word a topic uses, answers included; a word used by many topics is generic
    # (« créer », « projet », « PTCE »), one used by few is specific to them.
    vocabulary = {tid: frozenset(weighed_profiles[tid]).union(*example_vectors[tid]) for tid in weighed_profiles}
    spread: Counter[str] = Counter()
    for words in vocabulary.values():
        spread.update(words)
    specificity = {term: math.log(count / df) / math.log(count) for term, df in spread.items()} if count > 1 else {}
    from knowledge.analyzer import everyday_words
    from knowledge.topic_model_training import train

    everyday = {stem(word) for word in everyday_words(EVERYDAY)} - domain_stems

    model = train(kb, analyzer.rewrite)
    return MatcherIndex(
        known_words=analyzer.known_words,
        asked=dict(asked),
        idf=idf,
        unknown_idf=unknown_idf,
        domain_stems=frozenset(domain_stems),
        subject_stems=frozenset(subject_stems),
        gram_idf=gram_idf,
        gram_postings={gram: tuple(pairs) for gram, pairs in gram_postings.items()},
        profile_postings={term: tuple(pairs) for term, pairs in profile_postings.items()},
        postings={term: tuple(entries) for term, entries in postings.items()},
        example_topics=tuple(example_topics),
        likelihoods=_naive_bayes(word_counts),
        vocabulary=vocabulary,
        specificity=specificity,
        model=model.to_plain() if model is not None else None,
        everyday=frozenset(everyday),
    )
