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

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz, process

from knowledge.loader import KnowledgeBase, Lexicon, Topic
from knowledge.text import BASE_STOPWORDS, normalise, stem, strip_accents

#: Weight of the best single example versus the whole topic profile.
EXAMPLE_WEIGHT = 0.65
#: How many of a topic's closest examples are averaged into its example score.
NEIGHBOURS = 2
#: Share of the final score given to the naive Bayes posterior (times the best similarity).
BAYES_WEIGHT = 0.5
#: Additive smoothing of the naive Bayes word counts.
SMOOTHING = 0.3
#: A sentence of an answer counts this much (times PROSE_WEIGHT) as a word occurrence for naive Bayes.
PROSE_COUNT = 0.5
#: Length of the character n-grams, and their share of the similarity.
GRAM = 3
GRAM_WEIGHT = 0.3
#: How much a sentence of an answer counts, compared with an example question.
PROSE_WEIGHT = 0.85

Vector = dict[str, float]
_SENTENCE = re.compile(r"(?<=[.!?;:])\s+|\n+")


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

    def learn(self, words: Iterable[str]) -> None:
        """Record the vocabulary typos are corrected against."""
        known = set(self._known) | {w for w in words if len(w) >= 4}
        self._known = frozenset(known)
        self._vocabulary = tuple(sorted(known))
        # A cache per analyzer (not per class) so that discarded matchers can be freed.
        self._correct = lru_cache(maxsize=20_000)(self._correct_word)

    def _correct_word(self, word: str) -> str:
        # Only words that are neither in the knowledge nor in a French dictionary
        # are typos: « soldes » must not become « solide ».
        if len(word) < 5 or word in self._known or word.isdigit():
            return word
        cutoff = 85 if len(word) < 8 else 80
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
def french_words() -> frozenset[str]:
    """Accent-free French dictionary words (pyspellchecker's frequency list)."""
    from spellchecker import SpellChecker

    checker = SpellChecker(language="fr", distance=1)
    # Most entries are plain lower-case ASCII already; normalising only the others
    # divides the start-up cost by four.
    return frozenset(
        word if word.isascii() and word.isalpha() and word.islower() else normalise(word)
        for word in checker.word_frequency.dictionary
    )


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


def _tf(terms: Iterable[str]) -> Counter[str]:
    return Counter(terms)


class Matcher:
    """Ranks topics for a question. Build once; ``match`` is pure and fast."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.analyzer = Analyzer(kb.lexicon)
        topics = list(kb.topics.values())
        texts = {topic.id: self._topic_texts(topic) for topic in topics}
        self.analyzer.learn(
            word for pieces in texts.values() for piece in pieces for word in self.analyzer.words(piece)
        )
        # Typos of a lexicon variant (« subvantion », « coordinnateur ») are corrected to the
        # variant, which the lexicon then rewrites.
        self.analyzer.learn(variant for variant in kb.lexicon.synonyms if " " not in variant)
        profiles: dict[str, Counter[str]] = {}
        examples: dict[str, list[tuple[Counter[str], float]]] = {}
        word_counts: dict[str, Counter[str]] = {}
        # The words of each example question: asked again as such, they need no further evidence.
        self._asked: dict[frozenset[str], set[str]] = defaultdict(set)
        analysed: dict[str, list[str]] = {}

        def terms(text: str) -> list[str]:
            if text not in analysed:
                analysed[text] = self.analyzer.terms(text, correct=False)
            return analysed[text]

        for topic in topics:
            written = [topic.title, *topic.questions, " ".join(topic.keywords), *topic.keywords]
            # Sentences of the answers themselves also count, a little less than the examples.
            prose = [p for text in (topic.short, topic.details, *topic.vigilance) for p in _SENTENCE.split(text)]
            examples[topic.id] = [
                (tf, factor)
                for texts, factor in ((written, 1.0), (prose, PROSE_WEIGHT))
                for tf in (_tf(terms(t)) for t in texts)
                if tf
            ]
            for question in (topic.title, *topic.questions):
                self._asked[frozenset(terms(question))].add(topic.id)
            profile: Counter[str] = Counter()
            for text in (topic.title, *topic.questions, *topic.keywords, topic.short):
                profile.update(set(terms(text)))
            profiles[topic.id] = profile
            counts: Counter[str] = Counter()
            for text in written:
                counts.update(set(terms(text)))
            for text in prose:
                for term in set(terms(text)):
                    counts[term] += PROSE_WEIGHT * PROSE_COUNT
            word_counts[topic.id] = counts
        document_frequency: Counter[str] = Counter()
        for profile in profiles.values():
            document_frequency.update(profile.keys())
        count = len(topics)
        self._idf = {term: math.log(1 + count / df) for term, df in document_frequency.items()}
        self._unknown_idf = math.log(1 + count)
        domain_words = {*kb.lexicon.domain_terms, *kb.lexicon.synonyms.values()}
        self._domain_stems = {stem(word) for term in domain_words for word in term.split()} - {
            stem(word) for word in BASE_STOPWORDS | kb.lexicon.stopwords
        }
        # Character n-grams of each topic's words: « reconnaît » meets « reconnu », « rédige »
        # meets « rédaction », where stems differ.
        grams: dict[str, Counter[str]] = {}
        for topic in topics:
            grams[topic.id] = Counter()
            for text in (topic.title, *topic.questions, *topic.keywords, topic.short):
                grams[topic.id].update(set(self._grams(text)))
        gram_df: Counter[str] = Counter()
        for counts in grams.values():
            gram_df.update(counts.keys())
        self._gram_idf = {g: math.log(1 + count / df) for g, df in gram_df.items()}
        self._gram_profiles = {
            tid: self._normalised({g: (1 + math.log(n)) * self._gram_idf[g] for g, n in counts.items()})
            for tid, counts in grams.items()
        }
        self._subject_stems = {stem(word) for term in kb.lexicon.subject_terms for word in term.split()}
        self._profiles = {tid: self._normalised(self._weigh(p, sublinear=True)) for tid, p in profiles.items()}
        self._examples = {
            tid: [self._normalised(self._weigh(tf)) for tf, _ in pairs] for tid, pairs in examples.items()
        }
        self._factors = {tid: [factor for _, factor in pairs] for tid, pairs in examples.items()}
        self._index: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for tid, vectors in self._examples.items():
            for position, vector in enumerate(vectors):
                for term in vector:
                    self._index[term].append((tid, position))
        self._thresholds = kb.lexicon.confidence
        self._opening = _opening_pattern(kb.lexicon.greetings, kb.lexicon.introductions)
        self._likelihoods = self._naive_bayes(word_counts)
        # Every word a topic uses, answers included; a word used by many topics is generic
        # (« créer », « projet », « PTCE »), one used by few is specific to them.
        self._vocabulary = {
            tid: frozenset(self._profiles[tid]).union(*self._examples[tid]) for tid in self._profiles
        }
        spread: Counter[str] = Counter()
        for words in self._vocabulary.values():
            spread.update(words)
        self._specificity = {term: math.log(count / df) / math.log(count) for term, df in spread.items()} if count > 1 else {}

    def _grams(self, text: str) -> list[str]:
        return [
            f" {word} "[i : i + GRAM]
            for word in self.analyzer.words(text)
            if len(word) >= GRAM - 1
            for i in range(len(word) + 3 - GRAM)
        ]

    def _gram_similarity(self, question: str) -> dict[str, float]:
        counts = Counter(g for g in self._grams(question) if g in self._gram_idf)
        query = self._normalised({g: (1 + math.log(n)) * self._gram_idf[g] for g, n in counts.items()})
        return {
            tid: sum(weight * profile.get(g, 0.0) for g, weight in query.items())
            for tid, profile in self._gram_profiles.items()
        }

    @staticmethod
    def _naive_bayes(word_counts: Mapping[str, Counter[str]]) -> dict[str, tuple[dict[str, float], float]]:
        """Per topic, the smoothed log-probability of each word (and of a word it never uses)."""
        vocabulary = set().union(*word_counts.values()) if word_counts else set()
        likelihoods = {}
        for tid, counts in word_counts.items():
            total = sum(counts.values()) + SMOOTHING * len(vocabulary)
            logs = {term: math.log((count + SMOOTHING) / total) for term, count in counts.items()}
            likelihoods[tid] = (logs, math.log(SMOOTHING / total))
        return likelihoods

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

    @staticmethod
    def _topic_texts(topic: Topic) -> list[str]:
        return [topic.title, topic.short, topic.details, *topic.questions, *topic.keywords, *topic.vigilance]

    def _weigh(self, tf: Mapping[str, float], *, sublinear: bool = False) -> Vector:
        weights: Vector = {}
        for term, count in tf.items():
            idf = self._idf.get(term, self._unknown_idf)
            weights[term] = (1 + math.log(count) if sublinear else count) * idf
        return weights

    @staticmethod
    def _normalised(vector: Vector) -> Vector:
        norm = math.sqrt(sum(w * w for w in vector.values()))
        return {t: w / norm for t, w in vector.items()} if norm else {}

    def match(self, question: str, *, limit: int = 3) -> Match:
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
        top = scores[0]
        if self._asked.get(frozenset(query)) == {top.topic}:
            tier = "confident"  # an example question of that topic, and of no other
        else:
            tier = self._tier(scores, self.evidence(query, top.topic, posterior.get(top.topic, 0.0)))
        if tier == "declined":
            return Match(None, top.score, tuple(scores[:limit]), False, tier)
        return Match(top.topic, top.score, tuple(scores[1:limit]), tier == "suggest", tier)

    def _query(self, question: str) -> Vector:
        # A number the document never uses (« on est 5 structures ») says nothing about the subject.
        terms = [t for t in self.analyzer.terms(question[:2000]) if not t.isdigit() or t in self._index]
        query = self._normalised(self._weigh(_tf(terms)))
        return query if any(term in self._idf for term in query) else {}

    def _rank(self, query: Vector, question: str = "") -> tuple[list[Candidate], dict[str, float]]:
        """Topics by decreasing score, and the naive Bayes probability of each."""
        if not query:
            return [], {}
        best_example: dict[str, float] = defaultdict(float)
        partial: dict[tuple[str, int], float] = defaultdict(float)
        for term, weight in query.items():
            for tid, position in self._index.get(term, ()):
                partial[(tid, position)] += weight * self._examples[tid][position][term]
        per_topic: dict[str, list[float]] = defaultdict(list)
        for (tid, position), similarity in partial.items():
            per_topic[tid].append(similarity * self._factors[tid][position])
        for tid, sims in per_topic.items():
            # The mean of the closest few examples: one lucky word shared with a single
            # example weighs less than agreement with several.
            best_example[tid] = sum(sorted(sims, reverse=True)[:NEIGHBOURS]) / NEIGHBOURS
        similarity: dict[str, float] = {}
        spelled = self._gram_similarity(question) if question else {}
        for tid, profile in self._profiles.items():
            whole = sum(weight * profile.get(term, 0.0) for term, weight in query.items())
            close = EXAMPLE_WEIGHT * best_example.get(tid, 0.0) + (1 - EXAMPLE_WEIGHT) * whole
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
                anchors += term in self._domain_stems and specificity >= self._thresholds.anchor
                if term in self._domain_stems:
                    domain_anchor = max(domain_anchor, specificity)
        domain = bool(set(query) & self._domain_stems)
        subject = bool(set(query) & self._subject_stems)
        return Evidence(
            known, coverage, specific, domain, anchors > 0 or shared > 1, shared, subject, posterior, domain_anchor
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

    def _tier(self, scores: list[Candidate], evidence: Evidence) -> str:
        """Answer only what speaks the domain's language; be sure only of clear, specific matches."""
        limits = self._thresholds
        best = scores[0].score
        # « à quoi reconnaît-on un PTCE ? »: whatever its other words, a question naming the
        # subject is not off-topic.
        if not evidence.subject and self._off_topic(best, evidence):
            return "declined"
        ratio = scores[1].score / best if len(scores) > 1 else 0.0
        if (
            best >= limits.answer_from
            and (ratio <= limits.confident_ratio or evidence.posterior >= limits.confident_posterior)
            and evidence.coverage >= limits.coverage
            and evidence.specific >= limits.specific
            and evidence.anchored
        ):
            return "confident"
        # A hedged answer offers the next topics too, so a domain word moderately specific to the
        # topic (« le coordinateur du PTCE, il fait quoi ? ») is enough to venture it.
        if (
            best >= limits.hedge_from
            and ratio <= limits.hedge_ratio
            and (evidence.anchored or evidence.domain_anchor >= limits.hedge_anchor)
        ):
            return "hedged"
        return "suggest"
