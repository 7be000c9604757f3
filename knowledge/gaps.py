"""Questions about what the document does not say: gaps as data, precise.

Each topic's ``not_covered`` entries (``topics.yaml``) name what the document leaves out
(``about``), the kind of fact asked for (``asks``: the cue lists of ``fact_kinds`` in
``conversation.yaml`` — a count, an amount, a date, criteria, a name…), optional ``triggers``
narrowing it to the topic's own words (« collège », « parts sociales »), and ``examples``.
A gap fires only when the question is about its topic **and** asks for that kind of fact
(and, with triggers, uses one of them): « combien de PTCE le document a-t-il étudiés ? » is
about the 24 dynamics it names, not about how many PTCE exist in France.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from knowledge.conversation import elided, has_phrase
from knowledge.model import KnowledgeBase, NotCovered
from knowledge.text import normalise


@dataclass(frozen=True, slots=True)
class Gap:
    """A ``not_covered`` entry of a topic, ready to be recognised."""

    topic_id: str
    about: str
    kinds: tuple[str, ...]
    cues: tuple[str, ...]  # every cue of its kinds, normalised
    triggers: tuple[str, ...]  # normalised
    examples: tuple[str, ...]

    def fits(self, plain: str, *, loose: bool = False) -> bool:
        """Whether ``plain`` (normalised) asks for this kind of fact (and uses a trigger, when any);
        ``loose``: a trigger is enough."""
        if loose and self.triggers:
            return has_phrase(plain, self.triggers)
        if self.cues and not has_phrase(plain, self.cues):
            return False
        return not self.triggers or has_phrase(plain, self.triggers)

    def worded(self, loose: bool = False) -> bool:
        """Recognisable without knowing its topic: words of its own, and a kind of fact (or none needed)."""
        return bool(self.triggers) and bool(self.cues or loose or not self.kinds)

    def strength(self, plain: str) -> int:
        return (2 if self.triggers else 0) + (1 if self.cues else 0)


class Gaps:
    """The gaps of a knowledge base, by topic."""

    def __init__(self, kb: KnowledgeBase, fact_kinds: dict[str, tuple[str, ...]]) -> None:
        self.by_topic: dict[str, tuple[Gap, ...]] = {}
        for topic in kb.topics.values():
            self.by_topic[topic.id] = tuple(_gap(topic.id, entry, fact_kinds) for entry in topic.not_covered)

    def find(self, plain: str, about: Iterable[str], *, worded: bool = False, loose: bool = False) -> Gap | None:
        """The gap of the first topic in ``about`` that ``plain`` asks for, if any (``worded``: only
        gaps with both a kind of fact and triggers of their own)."""
        for topic_id in about:
            fitting = [gap for gap in self.by_topic.get(topic_id, ()) if (not worded or gap.worded(loose)) and gap.fits(plain, loose=loose)]
            if fitting:
                return max(fitting, key=lambda gap: gap.strength(plain))
        return None

    def all(self) -> list[Gap]:
        return [gap for gaps in self.by_topic.values() for gap in gaps]


def _gap(topic_id: str, entry: NotCovered, fact_kinds: dict[str, tuple[str, ...]]) -> Gap:
    cues = tuple(dict.fromkeys(cue for kind in entry.asks for cue in fact_kinds.get(kind, ())))
    triggers = tuple(dict.fromkeys(normalise(form) for t in entry.triggers for form in (t, elided(t)) if normalise(form)))
    return Gap(topic_id, entry.about, tuple(entry.asks), cues, triggers, tuple(entry.examples))
