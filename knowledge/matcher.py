"""Route a French free-text question to the knowledge topics.

The method is classic and deterministic: normalise (case, accents,
elisions), rewrite synonyms and abbreviations from ``lexicon.yaml``, correct
typos against the knowledge vocabulary, stem, then score each topic by

- the TF-IDF similarity of the question with the topic's closest example
  questions, title, keywords and answer sentences, and with the topic as a whole;
- the similarity of their character 3-grams (« reconnaît » meets « reconnu »);
- a naive Bayes probability over the topics' words, which separates close topics.

Words the knowledge base has never seen weigh like the rarest known word, so a
question about the weather scores low. How sure the answer is (``Match.tier``)
then depends on evidence measured on the question, with thresholds from
``lexicon.yaml`` (``confidence:``): the best score and its margin over the
runner-up, how much of the question the topic covers, how much of it rests on
words specific to the topic rather than generic ones (« PTCE », « projet »,
« créer »), and whether the question speaks the domain's language at all.
"""

from __future__ import annotations

import copy
import heapq
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from knowledge.analyzer import Analyzer, french_words
from knowledge.index_cache import building, load_index, store_index
from knowledge.matcher_index import MatcherIndex, Vector, build_index, char_grams, normalised, term_counts, weigh
from knowledge.model import KnowledgeBase
from knowledge.text import strip_accents
from knowledge.topic_model import TopicModel

__all__ = ["TIERS", "Analyzer", "Candidate", "Evidence", "Match", "Matcher", "french_words", "normalise_keeping_punctuation"]

#: Weight of the best single example versus the whole topic profile.
EXAMPLE_WEIGHT = 0.65
#: How many of a topic's closest examples are averaged into its example score.
NEIGHBOURS = 2
#: Share of the final score given to the naive Bayes posterior (times the best similarity).
BAYES_WEIGHT = 0.5
#: Share of the similarity given to character n-grams.
GRAM_WEIGHT = 0.3


@dataclass(frozen=True, slots=True)
class Candidate:
    topic: str
    score: float


TIERS = ("confident", "hedged", "suggest", "declined")


@dataclass(frozen=True, slots=True)
class Match:
    """Ranked topics for one question and how sure the matcher is.

    ``tier`` is ``confident`` (answer), ``hedged`` (answer, saying so, and offer the next two
    topics), ``suggest`` (« Vouliez-vous dire… » with three choices) or ``declined`` (off-topic;
    ``topic`` is then None and ``alternatives`` holds the closest topics). ``ambiguous`` is true
    for ``suggest`` only, as before tiers existed: callers that know no tiers answer a hedged
    match. Built without a tier, a match takes the one its other fields imply.
    """

    topic: str | None
    score: float
    alternatives: tuple[Candidate, ...]
    ambiguous: bool
    tier: str = ""

    def __post_init__(self) -> None:
        if not self.tier:
            implied = "declined" if self.topic is None else "suggest" if self.ambiguous else "confident"
            object.__setattr__(self, "tier", implied)
        elif self.tier not in TIERS:
            raise ValueError(f"unknown tier {self.tier!r}")

    @property
    def abstained(self) -> bool:
        return self.topic is None


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the best topic's score rests on, as shares of the question's weight (0–1)."""

    known: float  # words the knowledge base knows
    coverage: float  # words found in the best topic
    specific: float  # words of the best topic, weighted by how specific to it they are
    domain: bool  # a domain word (PTCE, SCIC, EPCI…) is present
    anchored: bool  # the match rests on a specific domain word or on several words, not on one generic word
    shared: int = 0  # distinct words of the question found in the best topic
    subject: bool = False  # the question names the knowledge base's subject (« PTCE »)
    posterior: float = 0.0  # naive Bayes probability of the best topic
    domain_anchor: float = 0.0  # specificity of the most specific domain word shared with the best topic
    #: The match rests on a specific domain word, or on several words of which one is specific: neither
    #: spread over many topics' texts (« collectivité ») nor an everyday word (« devenir »).
    firm: bool = False


def normalise_keeping_punctuation(text: str) -> str:
    """Lower-case, accent-free text whose clause punctuation (, . ; : ! ?) is kept."""
    return strip_accents(text.casefold()).replace("’", "'")


def _opening_pattern(greetings: Iterable[str], introductions: Iterable[str]) -> re.Pattern[str] | None:
    """Greetings, then at most one self-introduction clause up to its punctuation, at the start."""
    if not introductions:
        return None
    greeting = "|".join(re.escape(g) for g in sorted(greetings, key=len, reverse=True)) or r"(?!)"
    intro = "|".join(
        r"\W+".join(map(re.escape, phrase.split())) for phrase in sorted(introductions, key=len, reverse=True)
    )
    return re.compile(rf"\W*(?:(?:{greeting})\b[\W]*)*(?:{intro})\b[^,.;:!?]*[,.;:!?]")


class Matcher:
    """Ranks topics for a question. Build once (``for_knowledge`` shares one per knowledge base); ``match`` is pure and fast."""

    def __init__(self, kb: KnowledgeBase, index: MatcherIndex | None = None) -> None:
        """Builds the index from ``kb`` unless given one built from the same knowledge."""
        self.analyzer = Analyzer(kb.lexicon)
        if index is None:
            index = build_index(kb, self.analyzer)
        else:
            self.analyzer.learn(index.known_words)
        self.index = index
        self._asked = index.asked
        self._idf = index.idf
        self._unknown_idf = index.unknown_idf
        self._domain_stems = index.domain_stems
        self._subject_stems = index.subject_stems
        self._gram_idf = index.gram_idf
        self._gram_postings = index.gram_postings
        self._profile_postings = index.profile_postings
        self._index = index.postings
        self._example_topics = index.example_topics
        self._likelihoods = index.likelihoods
        self._vocabulary = index.vocabulary
        self._specificity = index.specificity
        self._everyday = index.everyday
        self._thresholds = kb.lexicon.confidence
        self.model = TopicModel.from_plain(index.model) if index.model is not None else None
        # The same text is often matched twice in a turn (the understanding, then a feature), and
        # people send the same short questions again and again.
        self.learned = lru_cache(maxsize=256)(self._learned)
        self._matched = lru_cache(maxsize=1024)(self._match_whole)
        self._opening = _opening_pattern(kb.lexicon.greetings, kb.lexicon.introductions)

    def scorer_only(self) -> Matcher:
        """This matcher without its learned model: the hand-built scorer alone (for side-by-side figures)."""
        other = copy.copy(self)
        other.model = None
        other.learned = lru_cache(maxsize=256)(other._learned)
        other._matched = lru_cache(maxsize=1024)(other._match_whole)
        return other

    @classmethod
    def for_knowledge(cls, kb: KnowledgeBase) -> Matcher:
        """The matcher of ``kb``, built once per knowledge base object and shared by every engine.

        Its index comes from the on-disk cache when one matches the knowledge and the code
        (:mod:`knowledge.index_cache`), else it is built and stored there.
        """
        return kb.shared(_cached_matcher)

    def _gram_similarity(self, question: str) -> dict[str, float]:
        counts = Counter(g for g in char_grams(self.analyzer, question) if g in self._gram_idf)
        query = normalised({g: (1 + math.log(n)) * self._gram_idf[g] for g, n in counts.items()})
        similarity: dict[str, float] = defaultdict(float)
        postings = self._gram_postings
        for gram, weight in query.items():
            for tid, profile_weight in postings[gram]:
                similarity[tid] += weight * profile_weight
        return similarity

    def _posterior(self, query: Vector) -> dict[str, float]:
        """Probability of each topic given the question's known words (naive Bayes, uniform prior)."""
        terms = [term for term in query if term in self._index]
        if not terms:
            return {}
        logs = {
            tid: sum(known.get(term, unseen) for term in terms)
            for tid, (known, unseen) in self._likelihoods.items()
        }
        top = max(logs.values())
        odds = {tid: math.exp(value - top) for tid, value in logs.items()}
        total = sum(odds.values())
        return {tid: value / total for tid, value in odds.items()}

    def match(self, question: str, *, limit: int = 3) -> Match:
        return self._matched(question, limit)

    def _match_whole(self, question: str, limit: int) -> Match:
        found = self._match(question, limit)
        if found.tier == "confident" or self._opening is None:
            return found
        # « Bonjour, je suis maire d’une petite commune, un PTCE ça sert à quoi ? »: who asks is
        # context, not the subject. When the question without its opening clause is clearer
        # (a higher tier), answer that; otherwise the whole message stands.
        opening = self._opening.match(normalise_keeping_punctuation(question))
        if opening is None:
            return found
        rest = self._match(normalise_keeping_punctuation(question)[opening.end():], limit)
        return rest if TIERS.index(rest.tier) < TIERS.index(found.tier) else found

    def _match(self, question: str, limit: int) -> Match:
        query = self._query(question)
        scores, posterior = self._rank(query, question[:2000])
        if not scores:
            return Match(None, 0.0, (), False, "declined")
        learned = self.learned(question)
        ranked = self._blend(scores, learned)
        top = ranked[0]
        asked = self._asked.get(frozenset(query))
        if asked is not None and len(asked) == 1 and scores[0].topic in asked:
            tier = "confident"  # an example question of that topic, and of no other
            top = next(c for c in ranked if c.topic in asked)
            ranked = [top, *(c for c in ranked if c is not top)]
        else:
            tier = self._tier(scores, ranked, query, posterior, learned)
        if tier == "declined":
            return Match(None, top.score, tuple(ranked[:limit]), False, tier)
        return Match(top.topic, top.score, tuple(ranked[1:limit]), tier == "suggest", tier)

    def _learned(self, question: str) -> dict[str, float]:
        """The learned model's calibrated probability of each topic (empty without a model)."""
        if self.model is None:
            return {}
        return self.model.probabilities(self.analyzer.rewrite(question[:2000]), self._thresholds.learned_temperature)

    def _blend(self, scores: list[Candidate], learned: dict[str, float]) -> list[Candidate]:
        """Topics ranked by the scorer's similarity (relative to its best) blended with the learned probability."""
        if not learned:
            return scores
        weight = self._thresholds.blend_weight
        best = scores[0].score or 1.0
        base = {c.topic: c.score / best for c in scores}
        blended = [
            Candidate(tid, round(weight * base.get(tid, 0.0) + (1 - weight) * learned.get(tid, 0.0), 4))
            for tid in base.keys() | learned.keys()
        ]
        blended.sort(key=lambda c: (-c.score, c.topic))
        return blended

    def _query(self, question: str) -> Vector:
        # A number the document never uses (« on est 5 structures ») says nothing about the subject.
        terms = [t for t in self.analyzer.terms(question[:2000]) if not t.isdigit() or t in self._index]
        query = normalised(weigh(term_counts(terms), self._idf, self._unknown_idf))
        return query if any(term in self._idf for term in query) else {}

    def _rank(self, query: Vector, question: str = "") -> tuple[list[Candidate], dict[str, float]]:
        """Topics by decreasing score, and the naive Bayes probability of each."""
        if not query:
            return [], {}
        partial: dict[int, float] = defaultdict(float)
        whole: dict[str, float] = defaultdict(float)
        for term, weight in query.items():
            for number, example_weight in self._index.get(term, ()):
                partial[number] += weight * example_weight
            for tid, profile_weight in self._profile_postings.get(term, ()):
                whole[tid] += weight * profile_weight
        per_topic: dict[str, list[float]] = defaultdict(list)
        topics = self._example_topics
        for number, example_similarity in partial.items():
            per_topic[topics[number]].append(example_similarity)
        # The mean of the closest few examples: one lucky word shared with a single
        # example weighs less than agreement with several.
        best_example = {
            tid: sum(sims if len(sims) <= NEIGHBOURS else heapq.nlargest(NEIGHBOURS, sims)) / NEIGHBOURS
            for tid, sims in per_topic.items()
        }
        similarity: dict[str, float] = {}
        spelled = self._gram_similarity(question) if question else {}
        for tid in best_example.keys() | whole.keys():
            close = EXAMPLE_WEIGHT * best_example.get(tid, 0.0) + (1 - EXAMPLE_WEIGHT) * whole.get(tid, 0.0)
            similarity[tid] = (1 - GRAM_WEIGHT) * close + GRAM_WEIGHT * spelled.get(tid, 0.0) if close > 0 else 0.0
        # The similarity says how close the question is; naive Bayes, which weighs each word by
        # how typical it is of each topic, helps decide between close topics.
        ceiling = max(similarity.values(), default=0.0)
        posterior = self._posterior(query)
        scores: list[Candidate] = []
        for tid, close in similarity.items():
            score = (1 - BAYES_WEIGHT) * close + BAYES_WEIGHT * ceiling * posterior.get(tid, 0.0)
            if close > 0:
                scores.append(Candidate(tid, round(min(1.0, score), 4)))
        scores.sort(key=lambda c: (-c.score, c.topic))
        return scores, posterior

    def evidence(self, query: Vector | str, topic: str, posterior: float = 0.0) -> Evidence:
        """How much of the question the knowledge base, and ``topic`` in particular, accounts for."""
        if isinstance(query, str):
            query = self._query(query)
        words = self._vocabulary.get(topic, frozenset())
        known = coverage = specific = 0.0
        shared = anchors = 0
        specific_word = False
        telling = 0  # shared words neither everyday nor spread over most topics
        domain_anchor = 0.0
        for term, weight in query.items():
            share = weight * weight  # the squares of a normalised vector add up to 1
            if term in self._index:
                known += share
            if term in words:
                coverage += share
                specificity = self._specificity.get(term, 0.0)
                specific += share * specificity
                shared += specificity > 0
                if term not in self._everyday:
                    specific_word = specific_word or specificity >= self._thresholds.anchor
                    telling += specificity >= self._thresholds.hedge_anchor
                anchors += term in self._domain_stems and specificity >= self._thresholds.anchor
                if term in self._domain_stems:
                    domain_anchor = max(domain_anchor, specificity)
        domain = bool(set(query) & self._domain_stems)
        subject = bool(set(query) & self._subject_stems)
        return Evidence(
            known, coverage, specific, domain, anchors > 0 or shared > 1, shared, subject, posterior, domain_anchor,
            anchors > 0 or telling > 1 or (shared > 1 and specific_word),
        )

    def _off_topic(self, best: float, evidence: Evidence) -> bool:
        limits = self._thresholds
        if evidence.domain:
            # « diagnostic de ma voiture », « projet de rénovation de ma cuisine »: one domain
            # word lost among words the knowledge base has never seen is not a PTCE question.
            if best < limits.domain_decline_below or evidence.known < limits.domain_known_share:
                return True
        elif best < limits.decline_below or evidence.known < limits.known_share:
            return True
        elif not evidence.anchored and evidence.specific < limits.generic_specific:
            # « aide », « créer », « qui t’a créé », « what is the capital… »: no domain word, and the
            # match rests on a single everyday word that many topics use.
            return True
        # One word in common, the rest unheard of in the document (« la TVA pour une
        # association », « gouvernance de l’Union européenne »): another subject.
        return evidence.shared <= 1 and evidence.known < limits.shallow_known_share

    def _tier(
        self, scores: list[Candidate], ranked: list[Candidate], query: Vector, posterior: dict[str, float], learned: dict[str, float]
    ) -> str:
        """Answer only what speaks the domain's language; be sure only of clear, specific matches.

        ``scores`` is the hand-built scorer's ranking, ``ranked`` the blended one. Whether the
        question is off-topic stays the scorer's lexical decision (the learned model always
        names some topic); how sure the answer is may rest on either.
        """
        limits = self._thresholds
        best = scores[0].score
        evidence = self.evidence(query, scores[0].topic, posterior.get(scores[0].topic, 0.0))
        # « à quoi reconnaît-on un PTCE ? »: whatever its other words, a question naming the
        # subject is not off-topic.
        if not evidence.subject and self._off_topic(best, evidence):
            return "declined"
        top = ranked[0].topic
        if top == scores[0].topic and self._scorer_confident(scores, evidence):
            return "confident"
        chosen = evidence if top == scores[0].topic else self.evidence(query, top, posterior.get(top, 0.0))
        if (
            learned.get(top, 0.0) >= limits.learned_confident
            and chosen.coverage >= limits.coverage
            and chosen.specific >= limits.specific
            and chosen.firm
        ):
            return "confident"
        ratio = ranked[1].score / ranked[0].score if len(ranked) > 1 and ranked[0].score else 0.0
        # A hedged answer offers the next topics too, so a domain word moderately specific to the
        # topic (« le coordinateur du PTCE, il fait quoi ? ») is enough to venture it.
        if (
            best >= limits.hedge_from
            and ratio <= limits.hedge_ratio
            and (chosen.anchored or chosen.domain_anchor >= limits.hedge_anchor)
        ):
            return "hedged"
        return "suggest"

    def _scorer_confident(self, scores: list[Candidate], evidence: Evidence) -> bool:
        limits = self._thresholds
        best = scores[0].score
        ratio = scores[1].score / best if len(scores) > 1 else 0.0
        return (
            best >= limits.answer_from
            and (ratio <= limits.confident_ratio or evidence.posterior >= limits.confident_posterior)
            and evidence.coverage >= limits.coverage
            and evidence.specific >= limits.specific
            and evidence.anchored
        )


def _cached_matcher(kb: KnowledgeBase) -> Matcher:
    index = load_index(kb)
    if index is not None:
        return Matcher(kb, index)
    with building(kb):
        index = load_index(kb)  # built by another process while this one waited
        if index is not None:
            return Matcher(kb, index)
        matcher = Matcher(kb)
        store_index(kb, matcher.index)
    return matcher
