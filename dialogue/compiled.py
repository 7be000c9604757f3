"""What the engine derives from a knowledge base, built once per knowledge base and shared.

Every engine on the same :class:`~knowledge.loader.KnowledgeBase` (a second user's
engine, every test) reuses the same matcher index, state machine and patterns, so
building an engine costs a few milliseconds once the first one exists.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dialogue.flows import machine as m
from knowledge.conversation import Conversation, has_phrase
from knowledge.loader import GlossaryTerm, KnowledgeBase, Topic
from knowledge.matcher import Matcher, french_words
from knowledge.text import normalise

T = TypeVar("T")

ORIENTATION = "orientation"
FORMES = "formes"
#: The topics of the legal-form guide: their pages offer the guide.
LEGAL_TOPICS = frozenset(
    {"formalisation.pourquoi", "formalisation.sans_structure", "formalisation.association", "formalisation.scic"}
)


@dataclass(frozen=True, slots=True)
class Gap:
    """A ``not_covered`` entry of a topic, reached by one of its trigger words."""

    topic_id: str
    about: str


@dataclass
class CompiledKnowledge:
    kb: KnowledgeBase
    matcher: Matcher
    fsm: m.FlowMachine
    #: The flows, the orientation first wherever flows are listed.
    flows: dict[str, Any]
    #: question id → the flows that ask it.
    question_flow: dict[str, list[str]]
    glossary_prefix: re.Pattern[str]
    glossary_names: dict[str, GlossaryTerm]
    #: Topics opened first from the menu: a question naming them gets the page, not the glossary line.
    main_topics: frozenset[str]
    #: normalised trigger → the gaps it points to; all triggers in one pattern.
    gaps: dict[str, list[Gap]] = field(default_factory=dict)
    gap_pattern: re.Pattern[str] | None = None
    #: What features derive from the knowledge once (e.g. the collective's debate rules).
    _derived: dict[str, Any] = field(default_factory=dict)

    def derived(self, key: str, build: Callable[[], T]) -> T:
        """``build()`` once per knowledge base, under ``key``."""
        if key not in self._derived:
            self._derived[key] = build()
        value: T = self._derived[key]
        return value

    @property
    def talk(self) -> Conversation:
        conversation: Conversation = self.kb.conversation
        return conversation

    def topic(self, topic_id: str) -> Topic:
        return self.kb.topics[topic_id]


#: The last knowledge bases compiled (a process normally has one; tests load a few variants).
_CACHE: OrderedDict[int, tuple[KnowledgeBase, CompiledKnowledge]] = OrderedDict()
_CACHE_SIZE = 8
_LOCK = threading.Lock()


def compiled(kb: KnowledgeBase) -> CompiledKnowledge:
    """The compiled form of ``kb``, built on first use and shared by every engine on it."""
    with _LOCK:
        entry = _CACHE.get(id(kb))
        if entry is not None and entry[0] is kb:
            _CACHE.move_to_end(id(kb))
            return entry[1]
        result = _compile(kb)
        _CACHE[id(kb)] = (kb, result)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
        return result


def _compile(kb: KnowledgeBase) -> CompiledKnowledge:
    # Load the spelling dictionary alongside start-up rather than inside a user's question.
    threading.Thread(target=french_words, name="french-words", daemon=True).start()
    flows = dict(sorted(kb.flows.items(), key=lambda item: item[0] != ORIENTATION))
    question_flow: dict[str, list[str]] = {}
    for flow in flows.values():
        for step in flow.steps:
            for question in step.questions:
                question_flow.setdefault(question.id, []).append(flow.id)
    talk: Conversation = kb.conversation
    # Longest prefixes first: « c'est quoi une » before « c'est quoi ».
    prefix = re.compile("|".join(re.escape(p) for p in talk.glossary_prefixes))
    gaps: dict[str, list[Gap]] = {}
    for topic in kb.topics.values():
        for gap in topic.not_covered:
            for trigger in gap.triggers:
                gaps.setdefault(normalise(trigger), []).append(Gap(topic.id, gap.about))
    alternatives = "|".join(re.escape(t) for t in sorted(gaps, key=len, reverse=True))
    # Compile the phrase lists now rather than inside a user's first message.
    for phrases in (talk.orientation_intents, *talk.followups.values(), *(f.words for f in talk.forms)):
        has_phrase("", phrases)
    return CompiledKnowledge(
        kb=kb,
        matcher=Matcher(kb),
        fsm=m.FlowMachine(kb.flows),
        flows=flows,
        question_flow=question_flow,
        glossary_prefix=prefix,
        glossary_names={normalise(name): term for term in kb.glossary for name in (term.term, *term.aliases)},
        main_topics=frozenset(q.topics[0] for q in kb.document.intro_questions),
        gaps=gaps,
        gap_pattern=re.compile(rf"(?:^| )({alternatives})(?= |$)") if gaps else None,
    )
