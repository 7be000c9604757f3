"""Load and validate the knowledge files under ``knowledge/data``.

Every problem is reported with the file, the entry and the field concerned,
so that the domain experts who edit the YAML can fix it themselves.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from knowledge.errors import KnowledgeError, KnowledgeErrors

DATA_DIR = Path(__file__).resolve().parent / "data"
#: libyaml's safe loader when PyYAML was built with it (several times faster), else the pure-Python one.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

SHORT_MAX = 700
DETAILS_MAX = 3000
LABEL_MAX = 40
#: Topic labels appear on buttons: short enough never to be cut.
TOPIC_LABEL_MAX = 32
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
    definition: str
    aliases: tuple[str, ...] = ()
    topic: str | None = None
    chapter: str | None = None


@dataclass(frozen=True, slots=True)
class Lexicon:
    synonyms: Mapping[str, str]  # variant (normalised) -> canonical (normalised)
    stopwords: frozenset[str]
    domain_terms: frozenset[str]


@dataclass(slots=True)
class KnowledgeBase:
    document: Document
    topics: dict[str, Topic]
    glossary: tuple[GlossaryTerm, ...]
    lexicon: Lexicon
    version: str
    flows: dict[str, Any] = field(default_factory=dict)
    synthesis: Any = None
    #: Everyday conversation and word lists (knowledge.conversation.Conversation).
    conversation: Any = None

    def cite(self, topic: Topic) -> str:
        return self.document.cite(topic.source.chapter, topic.source.page)


class _Collector:
    """Accumulates validation errors for one file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.errors: list[KnowledgeError] = []

    def add(self, message: str, entry: str | None = None, field_name: str | None = None) -> None:
        self.errors.append(KnowledgeError(self.path, message, entry=entry, field=field_name))

    def fields(
        self,
        mapping: Any,
        entry: str | None,
        required: Iterable[str],
        optional: Iterable[str] = (),
    ) -> bool:
        if not isinstance(mapping, dict):
            self.add("une entrée doit être un dictionnaire (clé: valeur)", entry)
            return False
        required = tuple(required)
        allowed = set(required) | set(optional)
        ok = True
        for name in required:
            if name not in mapping:
                self.add("champ obligatoire manquant", entry, name)
                ok = False
        for name in mapping:
            if name not in allowed:
                self.add(f"champ inconnu (champs permis : {', '.join(sorted(allowed))})", entry, str(name))
                ok = False
        return ok

    def text(self, mapping: dict, entry: str, name: str, *, max_len: int | None = None, optional: bool = False) -> str:
        value = mapping.get(name)
        if value is None and optional:
            return ""
        if not isinstance(value, str) or not value.strip():
            self.add("texte vide ou absent", entry, name)
            return ""
        if max_len is not None and len(value) > max_len:
            self.add(f"texte trop long ({len(value)} caractères, maximum {max_len})", entry, name)
        return value.strip()

    def strings(self, mapping: dict, entry: str, name: str, *, minimum: int = 0, optional: bool = False) -> tuple[str, ...]:
        value = mapping.get(name)
        if value is None and optional:
            return ()
        if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
            self.add("doit être une liste de textes non vides", entry, name)
            return ()
        if len(value) < minimum:
            self.add(f"au moins {minimum} éléments attendus, {len(value)} trouvés", entry, name)
        return tuple(item.strip() for item in value)


def read_yaml(path: Path) -> Any:
    """Parse one YAML file, turning syntax errors into a KnowledgeError."""
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.load(handle, Loader=_YAML_LOADER)
    except FileNotFoundError:
        raise KnowledgeErrors([KnowledgeError(path, "fichier introuvable")]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (ligne {mark.line + 1}, colonne {mark.column + 1})" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise KnowledgeErrors([KnowledgeError(path, f"YAML invalide{where} : {problem}")]) from None
    except UnicodeDecodeError:
        raise KnowledgeErrors([KnowledgeError(path, "le fichier doit être encodé en UTF-8")]) from None


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
                check.add("numéro de chapitre attendu sur deux chiffres (« 01 »)", entry, "number")
            if number in chapters:
                check.add(f"chapitre « {number} » en double", entry, "number")
            if not isinstance(item["page"], int):
                check.add("numéro de page entier attendu", entry, "page")
            chapters[number] = Chapter(number, check.text(item, entry, "title"), item["page"])
        seen: set[str] = set()
        for index, item in enumerate(raw.get("intro_questions") or []):
            entry = str(item.get("id")) if isinstance(item, dict) and item.get("id") else f"intro_questions[{index + 1}]"
            if not check.fields(item, entry, ("id", "question", "label", "topics")):
                continue
            if entry in seen:
                check.add("identifiant en double", entry, "id")
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
            check.add("version entière attendue", None, "version")
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
                check.add("identifiant invalide (minuscules, chiffres, points, soulignés)", entry, "id")
            if entry in topics:
                check.add("identifiant de sujet en double", entry, "id")
            source = item["source"]
            chapter, page = "", 0
            if check.fields(source, entry, ("chapter", "page")):
                chapter = str(source["chapter"])
                page = source["page"]
                if chapter not in document.chapters:
                    check.add(f"chapitre « {chapter} » inconnu de document.yaml", entry, "source.chapter")
                if not isinstance(page, int) or page <= 0:
                    check.add("numéro de page entier attendu", entry, "source.page")
                    page = 0
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
                    check.add(f"sujet lié « {related} » inexistant", topic.id, "related")
                elif related == topic.id:
                    check.add("un sujet ne peut pas être lié à lui-même", topic.id, "related")
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
        check.add("texte vide ou absent", entry, f"{where}.about")
        return ""
    return value.strip()


def _gap_triggers(check: _Collector, gap: dict, entry: str, where: str) -> tuple[str, ...]:
    value = gap.get("triggers")
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        check.add("liste de mots déclencheurs non vide attendue", entry, f"{where}.triggers")
        return ()
    return tuple(v.strip() for v in value)


def load_glossary(path: Path, topics: Mapping[str, Topic], document: Document) -> tuple[GlossaryTerm, ...]:
    check = _Collector(path)
    raw = read_yaml(path)
    terms: list[GlossaryTerm] = []
    if check.fields(raw, None, ("terms",)):
        seen: set[str] = set()
        for index, item in enumerate(raw["terms"] or []):
            entry = str(item.get("term")) if isinstance(item, dict) and item.get("term") else f"terms[{index + 1}]"
            if not check.fields(item, entry, ("term", "definition"), ("aliases", "topic", "chapter")):
                continue
            if entry.casefold() in seen:
                check.add("terme en double", entry, "term")
            seen.add(entry.casefold())
            topic = item.get("topic")
            if topic is not None and topic not in topics:
                check.add(f"sujet « {topic} » inexistant", entry, "topic")
            chapter = item.get("chapter")
            if chapter is not None and str(chapter) not in document.chapters:
                check.add(f"chapitre « {chapter} » inconnu", entry, "chapter")
            terms.append(
                GlossaryTerm(
                    term=check.text(item, entry, "term"),
                    definition=check.text(item, entry, "definition", max_len=SHORT_MAX),
                    aliases=check.strings(item, entry, "aliases", optional=True),
                    topic=topic,
                    chapter=str(chapter) if chapter is not None else None,
                )
            )
    if check.errors:
        raise KnowledgeErrors(check.errors)
    return tuple(sorted(terms, key=lambda term: term.term.casefold()))


def load_lexicon(path: Path) -> Lexicon:
    from knowledge.text import normalise

    check = _Collector(path)
    raw = read_yaml(path)
    synonyms: dict[str, str] = {}
    stopwords: set[str] = set()
    domain: set[str] = set()
    if check.fields(raw, None, ("synonyms", "stopwords", "domain_terms")):
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
    if check.errors:
        raise KnowledgeErrors(check.errors)
    return Lexicon(synonyms, frozenset(stopwords), frozenset(domain))


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
            if topic not in topics:
                check.add(f"sujet « {topic} » inexistant", question.id, "topics")
    errors.extend(check.errors)
    glossary = load_glossary(data_dir / "glossary.yaml", topics, document)
    lexicon = load_lexicon(data_dir / "lexicon.yaml")
    if errors:
        raise KnowledgeErrors(errors)
    files = [p for p in data_dir.rglob("*.yaml")]
    kb = KnowledgeBase(document, topics, glossary, lexicon, _content_version(files, declared))
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
        kb.synthesis = load_synthesis(data_dir / "synthesis.yaml", questions, chapters)
    return kb
