"""Load and validate the knowledge files under ``knowledge/data``.

Every problem is reported with the file, the entry and the field concerned,
so that the domain experts who edit the YAML can fix it themselves.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knowledge.errors import KnowledgeError, KnowledgeErrors
from knowledge.validation import StrictCollector as _Collector, did_you_mean, read_yaml

DATA_DIR = Path(__file__).resolve().parent / "data"
#: Read by ``kb check --against`` only (knowledge/source_check.py).
EXCEPTIONS_FILE = "source_exceptions.yaml"

SHORT_MAX = 700
DETAILS_MAX = 3000
LABEL_MAX = 40
#: Topic labels appear on buttons: short enough never to be cut.
TOPIC_LABEL_MAX = 32
#: A general (out-of-document) glossary definition stays short: it only situates the term.
GENERAL_MAX = 300
#: Glossary terms are button labels and part of button payloads.
TERM_MAX = 40
THEME_ID = re.compile(r"^[a-z][a-z0-9_]{0,15}$")
MIN_QUESTIONS = 8
TOPIC_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
CHAPTER = re.compile(r"^\d{2}$")


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

    def cite(self, chapter: str, page: int | None = None) -> str:
        """French citation such as « chap. 07 — Gouvernance et formalisation, p. 16 »."""
        known = self.chapters[chapter]
        return f"chap. {known.number} — {known.title}, p. {page or known.page}"

    def pages(self, chapter: str) -> tuple[int, int]:
        """First and last page of a chapter (the last one runs to a large bound)."""
        first = self.chapters[chapter].page
        later = [c.page for c in self.chapters.values() if c.page > first]
        return first, (min(later) - 1 if later else 10_000)


@dataclass(frozen=True, slots=True)
class Source:
    chapter: str
    page: int


@dataclass(frozen=True, slots=True)
class NotCovered:
    """Something users ask about a topic that the document does not say.

    ``about`` completes « Le document ne précise pas … »; ``triggers`` are the
    words (normalised at match time) that reveal such a question.
    """

    about: str
    triggers: tuple[str, ...]


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

    def cite(self, topic: Topic) -> str:
        return self.document.cite(topic.source.chapter, topic.source.page)


def load_document(path: Path) -> Document:
    check = _Collector(path)
    raw = read_yaml(path)
    chapters: dict[str, Chapter] = {}
    intro: list[IntroQuestion] = []
    if check.fields(raw, None, ("title", "publisher", "chapters", "intro_questions")):
        title = check.text(raw, "document", "title")
        publisher = check.text(raw, "document", "publisher")
        for index, item in enumerate(raw.get("chapters") or []):
            entry = f"chapters[{index + 1}]"
            if not check.fields(item, entry, ("number", "title", "page")):
                continue
            number = str(item["number"])
            if not CHAPTER.match(number):
                check.add("numéro de chapitre attendu sur deux chiffres (« 01 »)", entry, "number", "écrivez-le entre guillemets : number: \"05\"")
            if number in chapters:
                check.add(f"chapitre « {number} » en double", entry, "number", "chaque chapitre n’apparaît qu’une fois")
            if not isinstance(item["page"], int):
                check.add("numéro de page entier attendu", entry, "page", "écrivez le numéro sans guillemets, par exemple « page: 16 »")
            chapters[number] = Chapter(number, check.text(item, entry, "title"), item["page"])
        seen: set[str] = set()
        for index, item in enumerate(raw.get("intro_questions") or []):
            entry = str(item.get("id")) if isinstance(item, dict) and item.get("id") else f"intro_questions[{index + 1}]"
            if not check.fields(item, entry, ("id", "question", "label", "topics")):
                continue
            if entry in seen:
                check.add("identifiant en double", entry, "id", "donnez un identifiant nouveau")
            seen.add(entry)
            intro.append(
                IntroQuestion(
                    entry,
                    check.text(item, entry, "question"),
                    check.text(item, entry, "label", max_len=LABEL_MAX),
                    check.strings(item, entry, "topics", minimum=1),
                )
            )
        if not chapters:
            check.add("aucun chapitre", "document", "chapters")
        if not intro:
            check.add("aucune question d’introduction", "document", "intro_questions")
    else:
        title = publisher = ""
    if check.errors:
        raise KnowledgeErrors(check.errors)
    return Document(title, publisher, chapters, tuple(intro))


def load_topics(path: Path, document: Document) -> tuple[dict[str, Topic], int]:
    check = _Collector(path)
    raw = read_yaml(path)
    topics: dict[str, Topic] = {}
    version = 0
    if check.fields(raw, None, ("topics",), ("version",)):
        version = raw.get("version", 1)
        if not isinstance(version, int):
            check.add("version entière attendue", None, "version", "écrivez un nombre, par exemple « version: 2 »")
            version = 0
        items = raw["topics"]
        if not isinstance(items, list) or not items:
            check.add("liste de sujets vide ou absente", None, "topics")
            items = []
        for index, item in enumerate(items):
            entry = str(item.get("id")) if isinstance(item, dict) and item.get("id") else f"topics[{index + 1}]"
            if not check.fields(
                item,
                entry,
                ("id", "title", "short", "details", "related", "source", "questions", "keywords"),
                ("vigilance", "label", "not_covered"),
            ):
                continue
            if not TOPIC_ID.match(entry):
                check.add("identifiant invalide (minuscules, chiffres, points, soulignés)", entry, "id", "par exemple « formalisation.scic »")
            if entry in topics:
                check.add("identifiant de sujet en double", entry, "id", "donnez un identifiant nouveau, jamais utilisé")
            source = item["source"]
            chapter, page = "", 0
            if check.fields(source, entry, ("chapter", "page")):
                chapter = str(source["chapter"])
                page = source["page"]
                if chapter not in document.chapters:
                    check.add(f"chapitre « {chapter} » inconnu de document.yaml", entry, "source.chapter",
                              did_you_mean(chapter, document.chapters))
                if not isinstance(page, int) or page <= 0:
                    check.add("numéro de page entier attendu", entry, "source.page", "écrivez le numéro sans guillemets, par exemple « page: 16 »")
                    page = 0
                elif chapter in document.chapters:
                    first, last = document.pages(chapter)
                    if not first <= page <= last:
                        span = f"de {first} à {last}" if last < 10_000 else f"{first} ou plus"
                        check.add(f"la page {page} n’est pas dans le chapitre {chapter}", entry, "source.page",
                                  f"écrivez une page {span}")
            topics[entry] = Topic(
                id=entry,
                title=check.text(item, entry, "title"),
                short=check.text(item, entry, "short", max_len=SHORT_MAX),
                details=check.text(item, entry, "details", max_len=DETAILS_MAX),
                vigilance=check.strings(item, entry, "vigilance", optional=True),
                related=check.strings(item, entry, "related"),
                source=Source(chapter, page),
                questions=check.strings(item, entry, "questions", minimum=MIN_QUESTIONS),
                keywords=check.strings(item, entry, "keywords", minimum=1),
                label=check.text(item, entry, "label", max_len=TOPIC_LABEL_MAX, optional=True)
                or str(item.get("title") or "").strip(),
                not_covered=_not_covered(check, item, entry),
            )
        for topic in topics.values():
            for related in topic.related:
                if related not in topics:
                    check.add(f"sujet lié « {related} » inexistant", topic.id, "related", did_you_mean(related, topics))
                elif related == topic.id:
                    check.add("un sujet ne peut pas être lié à lui-même", topic.id, "related", f"retirez « {related} » de la liste")
    if check.errors:
        raise KnowledgeErrors(check.errors)
    return topics, version


def _not_covered(check: _Collector, item: dict, entry: str) -> tuple[NotCovered, ...]:
    raw = item.get("not_covered")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        check.add("liste attendue (« - about: … / triggers: […] »)", entry, "not_covered")
        return ()
    found: list[NotCovered] = []
    for index, gap in enumerate(raw):
        where = f"not_covered[{index + 1}]"
        if not check.fields(gap, entry, ("about", "triggers")):
            continue
        found.append(
            NotCovered(
                _gap_text(check, gap, entry, where),
                _gap_triggers(check, gap, entry, where),
            )
        )
    return tuple(found)


def _gap_text(check: _Collector, gap: dict, entry: str, where: str) -> str:
    value = gap.get("about")
    if not isinstance(value, str) or not value.strip():
        check.add("texte vide ou absent", entry, f"{where}.about", "complétez la phrase « Le document ne précise pas … »")
        return ""
    return value.strip()


def _gap_triggers(check: _Collector, gap: dict, entry: str, where: str) -> tuple[str, ...]:
    value = gap.get("triggers")
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        check.add("liste de mots déclencheurs non vide attendue", entry, f"{where}.triggers", "écrivez triggers: [\"mot\", \"autre mot\"]")
        return ()
    return tuple(v.strip() for v in value)


def load_glossary(
    path: Path, topics: Mapping[str, Topic], document: Document
) -> tuple[tuple[GlossaryTerm, ...], tuple[GlossaryTheme, ...]]:
    """The glossary terms (sorted) and the themes they are browsed by."""
    check = _Collector(path)
    raw = read_yaml(path)
    terms: list[GlossaryTerm] = []
    themes: list[GlossaryTheme] = []
    if check.fields(raw, None, ("themes", "terms")):
        themes = _glossary_themes(check, raw["themes"], document)
        theme_of = {chapter: theme.id for theme in themes for chapter in theme.chapters}
        seen: set[str] = set()
        for index, item in enumerate(raw["terms"] or []):
            entry = str(item.get("term")) if isinstance(item, dict) and item.get("term") else f"terms[{index + 1}]"
            if not check.fields(item, entry, ("term", "definition", "chapter"), ("aliases", "topic", "general")):
                continue
            if term_key(entry) in seen:
                check.add("terme en double", entry, "term", "fusionnez les deux définitions en une seule entrée")
            seen.add(term_key(entry))
            topic = item.get("topic")
            if topic is not None:
                check.reference(topic, topics, entry, "topic", "sujet")
            chapter = check.chapter(item, entry, "chapter", document.chapters)
            terms.append(
                GlossaryTerm(
                    term=check.text(item, entry, "term", max_len=TERM_MAX),
                    definition=check.text(item, entry, "definition", max_len=SHORT_MAX),
                    aliases=check.strings(item, entry, "aliases", optional=True),
                    topic=topic,
                    chapter=chapter,
                    general=check.text(item, entry, "general", max_len=GENERAL_MAX, optional=True),
                    theme=theme_of.get(chapter, ""),
                )
            )
    if check.errors:
        raise KnowledgeErrors(check.errors)
    return tuple(sorted(terms, key=lambda term: _sort_key(term.term))), tuple(themes)


def _glossary_themes(check: _Collector, raw: Any, document: Document) -> list[GlossaryTheme]:
    themes: list[GlossaryTheme] = []
    owner: dict[str, str] = {}
    if not isinstance(raw, list) or not raw:
        check.add("liste de thèmes vide ou absente", None, "themes", "une ligne « - id: … » par thème")
        return themes
    for index, item in enumerate(raw):
        entry = str(item.get("id")) if isinstance(item, dict) and item.get("id") else f"themes[{index + 1}]"
        if not check.fields(item, entry, ("id", "label", "chapters")):
            continue
        ident = check.ident(item, entry, "id", THEME_ID, 16)
        chapters = check.strings(item, entry, "chapters", minimum=1)
        for chapter in chapters:
            if chapter not in document.chapters:
                check.add(f"chapitre « {chapter} » inconnu du document", entry, "chapters", did_you_mean(chapter, document.chapters))
            elif chapter in owner:
                check.add(f"le chapitre {chapter} est déjà dans le thème « {owner[chapter]} »", entry, "chapters",
                          "un chapitre n’appartient qu’à un thème : retirez-le de l’un des deux")
            owner[chapter] = ident
        themes.append(GlossaryTheme(ident, check.text(item, entry, "label", max_len=TOPIC_LABEL_MAX), chapters))
    for chapter in document.chapters:
        if chapter not in owner:
            check.add(f"le chapitre {chapter} n’appartient à aucun thème", None, "themes",
                      "ajoutez-le à la liste « chapters » d’un thème")
    return themes


def term_key(term: str) -> str:
    """A stable, short identifier for a glossary term (« PTCE « filière » » → ``ptce-filiere``)."""
    from knowledge.text import normalise

    return normalise(term).replace(" ", "-")


def _sort_key(term: str) -> str:
    from knowledge.text import strip_accents

    return strip_accents(term.casefold())


def initial(term: str) -> str:
    """The letter a glossary term is filed under (accents ignored: « Émergent » under E)."""
    letter = _sort_key(term)[:1].upper()
    return letter if letter.isalpha() else "#"


def load_lexicon(path: Path) -> Lexicon:
    from knowledge.text import normalise

    check = _Collector(path)
    raw = read_yaml(path)
    synonyms: dict[str, str] = {}
    stopwords: set[str] = set()
    domain: set[str] = set()
    confidence = Confidence()
    subject: set[str] = set()
    greetings: set[str] = set()
    introductions: set[str] = set()
    optional = ("confidence", "subject_terms", "greetings", "introductions")
    if check.fields(raw, None, ("synonyms", "stopwords", "domain_terms"), optional):
        if not isinstance(raw["synonyms"], dict):
            check.add("dictionnaire « forme canonique: [variantes] » attendu", None, "synonyms")
        else:
            for canonical, variants in raw["synonyms"].items():
                if not isinstance(variants, list) or not all(isinstance(v, str) for v in variants):
                    check.add("liste de variantes attendue", str(canonical), "synonyms")
                    continue
                target = normalise(str(canonical))
                for variant in variants:
                    key = normalise(variant)
                    if key in synonyms and synonyms[key] != target:
                        check.add(f"variante « {variant} » déjà rattachée à « {synonyms[key]} »", str(canonical), "synonyms")
                    synonyms[key] = target
        stopwords = {normalise(word) for word in check.strings(raw, "lexicon", "stopwords")}
        domain = {normalise(word) for word in check.strings(raw, "lexicon", "domain_terms", minimum=1)}
        confidence = _confidence(check, raw.get("confidence"))
        subject = {normalise(word) for word in check.strings(raw, "lexicon", "subject_terms", optional=True)}
        greetings = {normalise(word) for word in check.strings(raw, "lexicon", "greetings", optional=True)}
        introductions = {normalise(word) for word in check.strings(raw, "lexicon", "introductions", optional=True)}
    if check.errors:
        raise KnowledgeErrors(check.errors)
    return Lexicon(
        synonyms,
        frozenset(stopwords),
        frozenset(domain),
        confidence,
        frozenset(subject),
        frozenset(greetings - {""}),
        frozenset(introductions - {""}),
    )


def _confidence(check: _Collector, raw: Any) -> Confidence:
    """The matcher's thresholds: each optional, each a number from 0 to 1."""
    if raw is None:
        return Confidence()
    names = [f.name for f in dataclasses.fields(Confidence)]
    if not check.fields(raw, "confidence", (), names):
        return Confidence()
    values = {}
    for name, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            check.add("nombre entre 0 et 1 attendu", "confidence", name)
        else:
            values[name] = float(value)
    return Confidence(**values)


def _content_version(paths: Iterable[Path], declared: int) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return f"{declared}-{digest.hexdigest()[:10]}"


def load_knowledge(data_dir: Path | None = None, *, with_flows: bool = True) -> KnowledgeBase:
    """Load every knowledge file, validating references across them."""
    data_dir = Path(data_dir) if data_dir else DATA_DIR
    document = load_document(data_dir / "document.yaml")
    topics, declared = load_topics(data_dir / "topics.yaml", document)
    errors: list[KnowledgeError] = []
    check = _Collector(data_dir / "document.yaml")
    for question in document.intro_questions:
        for topic in question.topics:
            check.reference(topic, topics, question.id, "topics", "sujet")
    errors.extend(check.errors)
    glossary, themes = load_glossary(data_dir / "glossary.yaml", topics, document)
    lexicon = load_lexicon(data_dir / "lexicon.yaml")
    if errors:
        raise KnowledgeErrors(errors)
    # The exceptions of « kb check --against » change no answer: they do not change the version.
    files = [p for p in data_dir.rglob("*.yaml") if p.name != EXCEPTIONS_FILE]
    kb = KnowledgeBase(document, topics, glossary, lexicon, _content_version(files, declared), glossary_themes=themes)
    from knowledge.conversation import load_conversation_into

    load_conversation_into(kb, data_dir if (data_dir / "conversation.yaml").exists() else DATA_DIR)
    if with_flows:
        from knowledge.flows import load_flows, load_synthesis

        chapters = set(document.chapters)
        kb.flows = load_flows(data_dir / "flows", set(topics), chapters)
        questions = {}
        for flow in kb.flows.values():
            for _step, question in flow.questions():
                questions[question.id] = question
        pages = {number: document.pages(number) for number in document.chapters}
        kb.synthesis = load_synthesis(data_dir / "synthesis.yaml", questions, chapters, pages)
    return kb
