"""The words of the understanding's replies, shared by the engine and ``ptce-bot ask``."""

from __future__ import annotations

import re

from dialogue.texts import topic_answer
from dialogue.understanding.reading import Reading
from knowledge.gaps import Gap
from knowledge.loader import KnowledgeBase, Topic

_TOOLS = {
    "formes": (
        "Pour choisir entre association, SCIC ou rester sans structure, le guide des formes juridiques vous pose "
        "quelques questions sur votre collectif puis vous dit ce que le document conseille dans votre cas."
    ),
    "collectif": (
        "La vue de groupe compare les réponses des membres de votre collectif. Tapez /collectif pour la créer "
        "ou la rejoindre."
    ),
    "glossaire": "Le glossaire rassemble les termes du document, par thème ou par lettre.",
    "orientation": "L’orientation pas à pas situe votre projet en quelques questions.",
}


def gap_text(kb: KnowledgeBase, gap: Gap) -> str:
    topic = kb.topics[gap.topic_id]
    return f"Le document ne précise pas {gap.about}.\n\nCe qu’il dit de plus proche :\n\n{topic_answer(kb, topic)}"


def tool_text(tool: str) -> str:
    return _TOOLS[tool]


def understood_note(reading: Reading) -> str:
    return f"J’ai compris : « {reading.spelling.shown} »."


def compare_text(kb: KnowledgeBase, left: Topic, right: Topic) -> str:
    return (
        f"**Comparaison**\n\n**{left.title}**\n{left.short}\n({kb.cite(left)})\n\n"
        f"**{right.title}**\n{right.short}\n({kb.cite(right)})"
    )


#: Sentences that give an example: the document's own markers and the places and lists it cites.
_EXAMPLE = re.compile(r"exemple|hauts-de-france|notamment|\boise\b|\bsomme\b|labo de l.ess|\(.+…\)", re.IGNORECASE)
_DENIES = re.compile(r"ne (?:donne|précise|décrit|dit) (?:pas|aucun)", re.IGNORECASE)
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")


def examples_in(topic: Topic) -> list[str]:
    """Sentences of a topic's text that give an example from the document (at most three)."""
    found: list[str] = []
    for text in (topic.short, topic.details, *topic.vigilance):
        for sentence in _SENTENCES.split(text):
            sentence = sentence.strip().lstrip("- ").strip()
            if sentence.startswith("**") and sentence.endswith("**"):
                continue  # a heading
            if len(sentence) > 30 and _EXAMPLE.search(sentence) and not _DENIES.search(sentence) and sentence not in found:
                found.append(sentence)
    return found[:3]
