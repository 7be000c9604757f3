"""The glossary file (``glossary.yaml``): terms, their definitions and the themes they are browsed by."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from knowledge.errors import KnowledgeErrors
from knowledge.model import Document, GlossaryTerm, GlossaryTheme, Topic
from knowledge.text import normalise, strip_accents
from knowledge.validation import StrictCollector, did_you_mean, read_yaml

#: The document's definition stays as short as a topic's short answer.
DEFINITION_MAX = 700
#: A general (out-of-document) glossary definition stays short: it only situates the term.
GENERAL_MAX = 300
#: Glossary terms are button labels and part of button payloads.
TERM_MAX = 40
#: Theme labels appear on buttons, like topic labels.
THEME_LABEL_MAX = 32
THEME_ID = re.compile(r"^[a-z][a-z0-9_]{0,15}$")


def load_glossary(
    path: Path, topics: Mapping[str, Topic], document: Document
) -> tuple[tuple[GlossaryTerm, ...], tuple[GlossaryTheme, ...]]:
    """The glossary terms (sorted) and the themes they are browsed by."""
    check = StrictCollector(path)
    raw = read_yaml(path)
    terms: list[GlossaryTerm] = []
    themes: list[GlossaryTheme] = []
    if check.fields(raw, None, ("themes", "terms")):
        themes = _glossary_themes(check, raw["themes"], document)
        theme_of = {chapter: theme.id for theme in themes for chapter in theme.chapters}
        seen: set[str] = set()
        for index, item in enumerate(raw["terms"] or []):
            entry = str(item.get("term")) if isinstance(item, dict) and item.get("term") else f"terms[{index + 1}]"
            if not check.fields(item, entry, ("term", "definition", "chapter"), ("aliases", "topic", "general", "page", "front_matter", "back_cover")):
                continue
            if term_key(entry) in seen:
                check.add("terme en double", entry, "term", "fusionnez les deux définitions en une seule entrée")
            seen.add(term_key(entry))
            topic = item.get("topic")
            if topic is not None:
                check.reference(topic, topics, entry, "topic", "sujet")
            chapter = check.chapter(item, entry, "chapter", document.chapters)
            page = item.get("page", 0)
            if "page" in item:
                if isinstance(page, bool) or not isinstance(page, int) or page <= 0:
                    check.add("numéro de page entier attendu", entry, "page", "par exemple « page: 18 »")
                    page = 0
                elif chapter in document.chapters and not (
                    document.pages(chapter)[0] <= page <= document.pages(chapter)[1]
                ):
                    check.add(f"la page {page} n’est pas dans le chapitre {chapter}", entry, "page")
                    page = 0
            terms.append(
                GlossaryTerm(
                    term=check.text(item, entry, "term", max_len=TERM_MAX),
                    definition=check.text(item, entry, "definition", max_len=DEFINITION_MAX),
                    aliases=check.strings(item, entry, "aliases", optional=True),
                    topic=topic,
                    chapter=chapter,
                    general=check.text(item, entry, "general", max_len=GENERAL_MAX, optional=True),
                    theme=theme_of.get(chapter, ""),
                    page=page,
                    front_matter=item.get("front_matter") is True,
                    back_cover=item.get("back_cover") is True,
                )
            )
    if check.errors:
        raise KnowledgeErrors(check.errors)
    return tuple(sorted(terms, key=lambda term: sort_key(term.term))), tuple(themes)


def _glossary_themes(check: StrictCollector, raw: Any, document: Document) -> list[GlossaryTheme]:
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
        themes.append(GlossaryTheme(ident, check.text(item, entry, "label", max_len=THEME_LABEL_MAX), chapters))
    for chapter in document.chapters:
        if chapter not in owner:
            check.add(f"le chapitre {chapter} n’appartient à aucun thème", None, "themes",
                      "ajoutez-le à la liste « chapters » d’un thème")
    return themes


def term_key(term: str) -> str:
    """A stable, short identifier for a glossary term (« PTCE « filière » » → ``ptce-filiere``)."""
    return normalise(term).replace(" ", "-")


def sort_key(term: str) -> str:
    """Glossary order: case and accents ignored."""
    return strip_accents(term.casefold())


def initial(term: str) -> str:
    """The letter a glossary term is filed under (accents ignored: « Émergent » under E)."""
    letter = sort_key(term)[:1].upper()
    return letter if letter.isalpha() else "#"

