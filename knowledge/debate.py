"""Load and validate ``knowledge/data/debate.yaml`` (« points à mettre en débat », /collectif).

Errors use the same shape as every other knowledge file (file, entry, field),
through :class:`knowledge.validation.StrictCollector`, and are raised together.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from knowledge.errors import KnowledgeErrors
from knowledge.loader import DATA_DIR
from knowledge.model import Document
from knowledge.validation import StrictCollector, read_yaml

DEBATE_FILE = "debate.yaml"
TEXT_MAX = 500
QUESTION_MAX = 160
ENTRY_ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True, slots=True)
class DebatePoint:
    """One « point à mettre en débat »: what the document says about a theme, as questions for the group."""

    id: str
    questions: tuple[str, ...]  # answer keys of the orientation it concerns
    theme: str
    says: str
    why: str
    ask: tuple[str, ...]
    chapter: str
    page: int


@dataclass(frozen=True, slots=True)
class DebateRules:
    trigger_phrases: tuple[str, ...]
    points: tuple[DebatePoint, ...]


def _chapter_pages(document: Document) -> dict[str, range]:
    """Pages of each chapter: from its first page to the page before the next chapter's."""
    chapters = sorted(document.chapters.values(), key=lambda c: c.page)
    pages: dict[str, range] = {}
    for chapter, following in zip(chapters, [*chapters[1:], None]):
        end = following.page if following is not None else chapter.page + 4
        pages[chapter.number] = range(chapter.page, max(end, chapter.page + 1))
    return pages


def load_debate(document: Document, questions: Collection[str], path: Path | None = None) -> DebateRules:
    """Read the debate points; ``questions`` are the answer keys the points may refer to."""
    path = Path(path) if path else DATA_DIR / DEBATE_FILE
    check = StrictCollector(path)
    raw = read_yaml(path)
    phrases: tuple[str, ...] = ()
    points: list[DebatePoint] = []
    if check.fields(raw, None, ("trigger_phrases", "points")):
        phrases = check.strings(raw, "debate", "trigger_phrases", minimum=1)
        items = raw["points"]
        if not isinstance(items, list) or not items:
            check.add("liste de points vide ou absente", None, "points")
            items = []
        pages = _chapter_pages(document)
        seen: set[str] = set()
        for index, item in enumerate(items):
            entry = str(item.get("id")) if isinstance(item, dict) and item.get("id") else f"points[{index + 1}]"
            if not check.fields(item, entry, ("id", "questions", "chapter", "page", "theme", "says", "why", "ask")):
                continue
            if not ENTRY_ID.match(entry):
                check.add("identifiant invalide (minuscules, chiffres, soulignés)", entry, "id")
            if entry in seen:
                check.add("identifiant en double", entry, "id")
            seen.add(entry)
            keys = check.strings(item, entry, "questions", minimum=1)
            for key in keys:
                if key not in questions:
                    check.add(f"question « {key} » inconnue du parcours d’orientation", entry, "questions")
            chapter = str(item["chapter"])
            page = item["page"]
            if chapter not in document.chapters:
                check.add(f"chapitre « {chapter} » inconnu de document.yaml", entry, "chapter")
            elif not isinstance(page, int) or page not in pages[chapter]:
                span = pages[chapter]
                check.add(f"page entière attendue dans le chapitre (p. {span.start} à {span.stop - 1})", entry, "page")
            ask = check.strings(item, entry, "ask", minimum=1)
            for question in ask:
                if not question.endswith("?"):
                    check.add(f"chaque question au groupe se termine par « ? » : « {question} »", entry, "ask")
                if len(question) > QUESTION_MAX:
                    check.add(f"question trop longue ({len(question)} caractères, maximum {QUESTION_MAX})", entry, "ask")
            points.append(
                DebatePoint(
                    id=entry,
                    questions=keys,
                    theme=check.text(item, entry, "theme", max_len=60),
                    says=check.text(item, entry, "says", max_len=TEXT_MAX),
                    why=check.text(item, entry, "why", max_len=TEXT_MAX),
                    ask=ask,
                    chapter=chapter,
                    page=page if isinstance(page, int) else 0,
                )
            )
    if check.errors:
        raise KnowledgeErrors(check.errors)
    return DebateRules(phrases, tuple(points))
