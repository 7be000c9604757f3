"""Load and validate the knowledge files under ``knowledge/data``.

Every problem is reported with the file, the entry and the field concerned,
so that the domain experts who edit the YAML can fix it themselves. The data
classes live in :mod:`knowledge.model`, the glossary and lexicon files have
their own loaders; the names long imported from here are re-exported.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

from knowledge.conversation import load_conversation
from knowledge.errors import KnowledgeError, KnowledgeErrors
from knowledge.flows import Question
from knowledge.flows_loader import load_flows
from knowledge.glossary import initial, load_glossary, term_key
from knowledge.lexicon import load_lexicon
from knowledge.model import (
    Chapter,
    Confidence,
    Document,
    GlossaryTerm,
    GlossaryTheme,
    IntroQuestion,
    KnowledgeBase,
    Lexicon,
    NotCovered,
    Source,
    Topic,
)
from knowledge.synthesis_loader import load_synthesis
from knowledge.validation import StrictCollector, did_you_mean, read_yaml

__all__ = [
    "DATA_DIR",
    "EXCEPTIONS_FILE",
    "Chapter",
    "Confidence",
    "Document",
    "GlossaryTerm",
    "GlossaryTheme",
    "IntroQuestion",
    "KnowledgeBase",
    "Lexicon",
    "NotCovered",
    "Source",
    "Topic",
    "initial",
    "load_document",
    "load_glossary",
    "load_knowledge",
    "load_lexicon",
    "load_topics",
    "read_yaml",
    "term_key",
]

DATA_DIR = Path(__file__).resolve().parent / "data"
#: Read by ``kb check --against`` only (knowledge/source_check.py).
EXCEPTIONS_FILE = "source_exceptions.yaml"

SHORT_MAX = 700
DETAILS_MAX = 3000
LABEL_MAX = 40
#: Topic labels appear on buttons: short enough never to be cut.
TOPIC_LABEL_MAX = 32
MIN_QUESTIONS = 8
TOPIC_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
CHAPTER = re.compile(r"^\d{2}$")


def load_document(path: Path) -> Document:
    check = StrictCollector(path)
    raw = read_yaml(path)
    chapters: dict[str, Chapter] = {}
    intro: list[IntroQuestion] = []
    unheaded: dict[int, str] = {}
    if check.fields(raw, None, ("title", "publisher", "chapters", "intro_questions"), ("unheaded_pages",)):
        for index, item in enumerate(raw.get("unheaded_pages") or []):
            entry = f"unheaded_pages[{index + 1}]"
            if check.fields(item, entry, ("page", "starts")) and isinstance(item["page"], int):
                unheaded[item["page"]] = check.text(item, entry, "starts")
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
    return Document(title, publisher, chapters, tuple(intro), unheaded)


def load_topics(path: Path, document: Document) -> tuple[dict[str, Topic], int]:
    check = StrictCollector(path)
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
            if check.fields(source, entry, ("chapter", "page"), ("front_matter", "back_cover")):
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
                source=Source(
                    chapter, page, source.get("front_matter") is True, source.get("back_cover") is True
                ) if isinstance(source, dict) else Source(chapter, page),
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


def _not_covered(check: StrictCollector, item: dict, entry: str) -> tuple[NotCovered, ...]:
    raw = item.get("not_covered")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        check.add("liste attendue (« - about: … / triggers: […] »)", entry, "not_covered")
        return ()
    found: list[NotCovered] = []
    for index, gap in enumerate(raw):
        where = f"not_covered[{index + 1}]"
        if not check.fields(gap, entry, ("about",), ("triggers", "asks", "examples")):
            continue
        asks = check.strings(gap, entry, "asks", optional=True)
        found.append(
            NotCovered(
                _gap_text(check, gap, entry, where),
                _gap_triggers(check, gap, entry, where) if "triggers" in gap or not asks else (),
                asks,
                check.strings(gap, entry, "examples", optional=True),
            )
        )
    return tuple(found)


def _gap_text(check: StrictCollector, gap: dict, entry: str, where: str) -> str:
    value = gap.get("about")
    if not isinstance(value, str) or not value.strip():
        check.add("texte vide ou absent", entry, f"{where}.about", "complétez la phrase « Le document ne précise pas … »")
        return ""
    return value.strip()


def _gap_triggers(check: StrictCollector, gap: dict, entry: str, where: str) -> tuple[str, ...]:
    value = gap.get("triggers")
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        check.add("liste de mots déclencheurs non vide attendue", entry, f"{where}.triggers", "écrivez triggers: [\"mot\", \"autre mot\"]")
        return ()
    return tuple(v.strip() for v in value)



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
    check = StrictCollector(data_dir / "document.yaml")
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
    conversation_dir = data_dir if (data_dir / "conversation.yaml").exists() else DATA_DIR
    kb.conversation = load_conversation(conversation_dir / "conversation.yaml", set(kb.topics))
    unknown = [
        KnowledgeError(
            "topics.yaml", f"type de fait « {kind} » inconnu", entry=topic.id, field="not_covered.asks",
            hint=f"choisissez parmi : {', '.join(kb.conversation.fact_kinds)} (fact_kinds de conversation.yaml)",
        )
        for topic in topics.values()
        for gap in topic.not_covered
        for kind in gap.asks
        if kind not in kb.conversation.fact_kinds
    ]
    if unknown:
        raise KnowledgeErrors(unknown)
    if with_flows:
        chapters = set(document.chapters)
        kb.flows = load_flows(data_dir / "flows", set(topics), chapters)
        questions: dict[str, Question] = {}
        for flow in kb.flows.values():
            for _step, flow_question in flow.questions():
                questions[flow_question.id] = flow_question
        pages = {number: document.pages(number) for number in document.chapters}
        kb.synthesis = load_synthesis(data_dir / "synthesis.yaml", questions, chapters, pages)
    return kb
