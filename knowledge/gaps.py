"""Questions about what the document does not say: gaps as data, precise.

Each topic's ``not_covered`` entries (``topics.yaml``) name what the document leaves out
(``about``), the kind of fact asked for (``asks``: the cue lists of ``fact_kinds`` in
``conversation.yaml`` — a count, an amount, a date, criteria, a name…), optional ``triggers``
narrowing it to the topic's own words (« collège », « parts sociales »), and ``examples``.
A gap fires only when the question is about its topic **and** asks for that kind of fact
(and, with triggers, uses one of them): « combien de PTCE le document a-t-il étudiés ? » is
about the 24 dynamics it names, not about how many PTCE exist in France.

Some kinds of fact are missing from the whole document (``document_gaps`` of ``conversation.yaml``:
it never gives an amount in euros). They are said about the topic the question is about, when
that topic declares nothing more precise; phrases that only look like a kind of fact
(``fact_kinds_not``: « depuis quand » is not a deadline) are left out before looking.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from knowledge.conversation import elided, has_phrase
from knowledge.model import KnowledgeBase, NotCovered
from knowledge.text import normalise

#: In a gap's triggers, the places the document does not speak of.
PLACES = "@lieux"


@dataclass(frozen=True, slots=True)
class Gap:
    """A ``not_covered`` entry of a topic, ready to be recognised."""

    topic_id: str
    about: str
    kinds: tuple[str, ...]
    cues: tuple[str, ...]  # every cue of its kinds, normalised
    triggers: tuple[str, ...]  # normalised
    examples: tuple[str, ...]
    unlike: tuple[str, ...] = ()  # phrases that look like its kinds of fact but are not (normalised)
    #: Triggers enough on their own after the topic's page (« et le capital ? »): those its title does not use.
    alone: tuple[str, ...] = ()

    def fits(self, plain: str, *, loose: bool = False) -> bool:
        """Whether ``plain`` (normalised) asks for this kind of fact (and uses a trigger, when any);
        ``loose``: a trigger is enough."""
        if loose and self.triggers:
            # « et émergent ? » after the page on maturity asks about what the page says, not for a missing fact.
            return has_phrase(plain, self.alone)
        if self.unlike and has_phrase(plain, self.unlike):
            plain = _without(plain, self.unlike)
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
        talk = kb.conversation
        unlike = {kind: tuple(talk.fact_kinds_not.get(kind, ())) for kind in fact_kinds}
        self.by_topic: dict[str, tuple[Gap, ...]] = {}
        for topic in kb.topics.values():
            page = f" {normalise(' '.join((topic.title, topic.label)))} "
            self.by_topic[topic.id] = tuple(_gap(topic.id, entry, fact_kinds, unlike, page, talk.places) for entry in topic.not_covered)
        #: Kind → (what the document never gives, its cues, its look-alikes).
        self.document_wide_kinds = {
            kind: (about, fact_kinds.get(kind, ()), unlike.get(kind, ())) for kind, about in talk.document_gaps.items()
        }

    def find(self, plain: str, about: Iterable[str], *, worded: bool = False, loose: bool = False) -> Gap | None:
        """The gap of the first topic in ``about`` that ``plain`` asks for, if any (``worded``: only
        gaps with both a kind of fact and triggers of their own)."""
        for topic_id in about:
            fitting = [gap for gap in self.by_topic.get(topic_id, ()) if (not worded or gap.worded(loose)) and gap.fits(plain, loose=loose)]
            if fitting:
                return max(fitting, key=lambda gap: gap.strength(plain))
        return None

    def document_wide(self, plain: str, topic_id: str) -> Gap | None:
        """What the whole document never gives (an amount, a template), said about ``topic_id``:
        tried last, when no topic declares anything more precise."""
        for kind, (text, cues, unlike) in self.document_wide_kinds.items():
            gap = Gap(topic_id, text, (kind,), cues, (), (), unlike)
            if gap.fits(plain):
                return gap
        return None

    def all(self) -> list[Gap]:
        return [gap for gaps in self.by_topic.values() for gap in gaps]


def _gap(
    topic_id: str, entry: NotCovered, fact_kinds: dict[str, tuple[str, ...]], unlike: dict[str, tuple[str, ...]], page: str, places: tuple[str, ...]
) -> Gap:
    cues = tuple(dict.fromkeys(cue for kind in entry.asks for cue in fact_kinds.get(kind, ())))
    # « @lieux »: every place the document does not speak of (conversation.yaml, places).
    written = [p for t in entry.triggers for p in (places if t.strip() == PLACES else (t,))]
    triggers = tuple(dict.fromkeys(normalise(form) for t in written for form in (t, elided(t)) if normalise(form)))
    looks = tuple(dict.fromkeys(phrase for kind in entry.asks for phrase in unlike.get(kind, ())))
    alone = tuple(t for t in triggers if f" {t} " not in page)
    return Gap(topic_id, entry.about, tuple(entry.asks), cues, triggers, tuple(entry.examples), looks, alone)


def _without(plain: str, phrases: tuple[str, ...]) -> str:
    for phrase in sorted(phrases, key=len, reverse=True):
        plain = f" {plain} ".replace(f" {phrase} ", " ").strip()
    return plain
