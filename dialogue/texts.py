"""French texts built from the knowledge base, shared by the engine and the CLI."""

from __future__ import annotations

import re

from knowledge.loader import KnowledgeBase, Topic
from knowledge.matcher import Match

OFF_TOPIC = (
    "Je n’ai pas trouvé de réponse à cette question dans le document de référence sur les PTCE. "
    "Je peux vous renseigner sur ce qu’est un PTCE, son territoire, son collectif, sa formalisation "
    "juridique, ses ressources, son financement ou son lieu."
)
DID_YOU_MEAN = "Vouliez-vous dire… ?"


_SPACE_BEFORE = re.compile(r"[ \u00a0\u202f]*([!?;:»])(?=\s|$|[.,)])")
_SPACE_AFTER = re.compile(r"«[ \u00a0\u202f]*")
NBSP = "\u00a0"


def typeset(text: str) -> str:
    """French typography: a non-breaking space inside « » and before ! ? ; : (never inside URLs)."""
    text = _SPACE_BEFORE.sub(lambda m: NBSP + m.group(1), text)
    return _SPACE_AFTER.sub("«" + NBSP, text)


def source_line(kb: KnowledgeBase, topic: Topic) -> str:
    return f"Source : {kb.document.title} ({kb.document.publisher}), {kb.cite(topic)}"


def topic_answer(kb: KnowledgeBase, topic: Topic) -> str:
    """The short answer a user reads first, with its source."""
    return f"**{topic.title}**\n\n{topic.short}\n\n{source_line(kb, topic)}"


def match_answer(kb: KnowledgeBase, match: Match) -> str:
    """Plain answer for a match: the topic, the alternatives if ambiguous, or the off-topic notice."""
    if match.topic is None:
        return OFF_TOPIC
    text = topic_answer(kb, kb.topics[match.topic])
    if match.ambiguous:
        others = ", ".join(f"« {kb.topics[c.topic].title} »" for c in match.alternatives[:2])
        text += f"\n\nVotre question touche peut-être aussi : {others}."
    return text
