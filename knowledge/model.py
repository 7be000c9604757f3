"""The knowledge base as frozen data: the document, its topics, glossary and lexicon.

Loading and validating the YAML files that fill it is :mod:`knowledge.loader`'s job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

Derived = TypeVar("Derived")
NBSP = "\u00a0"
#: How the pages before the table of contents are cited (they carry no page number).
FRONT_MATTER = "pages d’ouverture, avant le sommaire"
#: How the back cover is cited.
BACK_COVER = "dos du document"


@dataclass(frozen=True, slots=True)
class Chapter:
    number: str
    title: str
    page: int


@dataclass(frozen=True, slots=True)
class IntroQuestion:
    id: str
    question: str
    label: str
    topics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Document:
    title: str
    publisher: str
    chapters: Mapping[str, Chapter]
    intro_questions: tuple[IntroQuestion, ...]
    #: Pages printed without a running header: page number → the page's first words.
    unheaded_pages: Mapping[int, str] = field(default_factory=dict)

    def cite(self, chapter: str, page: int | None = None, *, front: bool = False, back: bool = False) -> str:
        """French citation such as « chap. 07 — Gouvernance et formalisation, p. 16 ».

        ``front``: the text also rests on the pages before the table of contents (the Institut
        Godin, the dynamics observed); ``back``: on the back cover (the author's address).
        """
        known = self.chapters[chapter]
        citation = f"chap. {known.number} — {known.title}, p. {page or known.page}"
        if front:
            citation = f"{FRONT_MATTER}{NBSP}; {citation}"
        if back:
            citation = f"{citation}{NBSP}; {BACK_COVER}"
        return citation

    def cite_chapter(self, chapter: str) -> str:
        """« chap. 07 — Gouvernance et formalisation »: a heading's citation, each finding giving its page."""
        known = self.chapters[chapter]
        return f"chap. {known.number} — {known.title}"

    def pages(self, chapter: str) -> tuple[int, int]:
        """First and last page of a chapter (the last one runs to a large bound)."""
        first = self.chapters[chapter].page
        later = [c.page for c in self.chapters.values() if c.page > first]
        return first, (min(later) - 1 if later else 10_000)


@dataclass(frozen=True, slots=True)
class Source:
    chapter: str
    page: int
    #: The text also rests on the pages before the table of contents, or on the back cover.
    front_matter: bool = False
    back_cover: bool = False


@dataclass(frozen=True, slots=True)
class NotCovered:
    """Something users ask about a topic that the document does not say.

    ``about`` completes « Le document ne précise pas … »; ``asks`` names the kinds of fact
    missing (``fact_kinds`` of conversation.yaml: count, amount, date…); ``triggers`` are
    words of the topic (normalised at match time) that the question must also use, when
    given; ``examples`` are questions it must answer (checked by ``kb check``).
    """

    about: str
    triggers: tuple[str, ...]
    asks: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Topic:
    id: str
    title: str
    short: str
    details: str
    vigilance: tuple[str, ...]
    related: tuple[str, ...]
    source: Source
    questions: tuple[str, ...]
    keywords: tuple[str, ...]
    #: Short button label (≤ TOPIC_LABEL_MAX characters); the title when the YAML gives none.
    label: str = ""
    not_covered: tuple[NotCovered, ...] = ()


@dataclass(frozen=True, slots=True)
class GlossaryTerm:
    term: str
    #: What the document says about the term, in our words.
    definition: str
    aliases: tuple[str, ...] = ()
    topic: str | None = None
    chapter: str | None = None
    #: A general definition the document does not give; always shown as « hors document ».
    general: str = ""
    #: Id of the GlossaryTheme the term is browsed under (from its chapter).
    theme: str = ""
    #: The page of its chapter where the document speaks of the term (0: the chapter's first page).
    page: int = 0
    #: The definition also rests on the pages before the table of contents, or on the back cover.
    front_matter: bool = False
    back_cover: bool = False


@dataclass(frozen=True, slots=True)
class GlossaryTheme:
    id: str
    label: str
    chapters: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Confidence:
    """Thresholds of the matcher's answer tiers (``confidence:`` in lexicon.yaml); all between 0 and 1."""

    answer_from: float = 0.2  # best score from which an answer may be confident
    confident_ratio: float = 0.35  # runner-up / best above this: not confident…
    confident_posterior: float = 0.95  # … unless the best topic is at least this probable (naive Bayes)
    coverage: float = 0.6  # share of the question the best topic must cover to be confident
    specific: float = 0.2  # share of the question carried by words specific to the topic (not generic)
    anchor: float = 0.4  # specificity from which one domain word alone can carry a confident answer
    hedge_from: float = 0.2  # below: suggestions only
    hedge_ratio: float = 0.8  # runner-up / best above this: suggestions
    hedge_anchor: float = 1.0  # specificity from which one domain word alone can carry a hedged answer
    decline_below: float = 0.2  # best score under which a question without domain word is declined
    known_share: float = 0.6  # share of the question that must be known vocabulary, without domain word
    domain_decline_below: float = 0.1  # same with a domain word (PTCE, SCIC, EPCI…)
    domain_known_share: float = 0.4  # with a domain word, share of the question that must be known vocabulary
    shallow_known_share: float = 0.6  # same when the best topic shares only one word with the question
    generic_specific: float = 0.55  # without domain word, resting on one word: declined under this specificity
    blend_weight: float = 0.5  # share of the scorer's relative similarity in the blend with the learned model
    learned_temperature: float = 0.61  # divides the learned model's scores (cross-validated log-loss)
    learned_confident: float = 0.85  # learned probability from which the blend's top topic may be confident


@dataclass(frozen=True, slots=True)
class Lexicon:
    synonyms: Mapping[str, str]  # variant (normalised) -> canonical (normalised)
    stopwords: frozenset[str]
    domain_terms: frozenset[str]
    confidence: Confidence = Confidence()
    #: The knowledge base's own subject (« PTCE »): a question naming it is never off-topic.
    subject_terms: frozenset[str] = frozenset()
    #: Greetings and self-introductions (« bonjour », « je suis élu ») that open a question:
    #: context about the asker, not the subject asked about.
    greetings: frozenset[str] = frozenset()
    introductions: frozenset[str] = frozenset()


@dataclass(slots=True)
class KnowledgeBase:
    document: Document
    topics: dict[str, Topic]
    glossary: tuple[GlossaryTerm, ...]
    lexicon: Lexicon
    version: str
    flows: dict[str, Any] = field(default_factory=dict)
    synthesis: Any = None
    glossary_themes: tuple[GlossaryTheme, ...] = ()
    #: Everyday conversation and word lists (knowledge.conversation.Conversation).
    conversation: Any = None
    #: Values derived from this knowledge, by builder (see :meth:`shared`); never copied nor compared.
    derived: dict[Callable[[KnowledgeBase], Any], Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def cite(self, topic: Topic) -> str:
        source = topic.source
        return self.document.cite(source.chapter, source.page, front=source.front_matter, back=source.back_cover)

    def shared(self, build: Callable[[KnowledgeBase], Derived]) -> Derived:
        """``build(self)``, computed once per knowledge base and then reused.

        For indexes derived from the knowledge (the matcher's, compiled patterns…): every engine
        built on the same knowledge base shares them. Keyed by ``build`` itself; a knowledge base
        copied with ``dataclasses.replace`` starts with none (``derived`` is not an init field).
        """
        try:
            return cast(Derived, self.derived[build])
        except KeyError:
            value = self.derived[build] = build(self)
            return value
