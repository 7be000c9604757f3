"""What the engine derives from a knowledge base, built once per knowledge base and shared.

Every engine on the same :class:`~knowledge.loader.KnowledgeBase` (a second user's
engine, every test) reuses the same matcher index, state machine and patterns, so
building an engine costs a few milliseconds once the first one exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dialogue import payloads as p
from dialogue.flows import machine as m
from knowledge.conversation import Conversation, has_phrase
from knowledge.loader import KnowledgeBase, Topic
from knowledge.matcher import Matcher

ORIENTATION = "orientation"
FORMES = "formes"
#: The topics of the legal-form guide: their pages offer the guide.
LEGAL_TOPICS = frozenset(
    {"formalisation.pourquoi", "formalisation.sans_structure", "formalisation.association", "formalisation.scic"}
)


@dataclass
class CompiledKnowledge:
    kb: KnowledgeBase
    matcher: Matcher
    fsm: m.FlowMachine
    #: The flows, the orientation first wherever flows are listed.
    flows: dict[str, Any]
    #: question id → the flows that ask it.
    question_flow: dict[str, list[str]]
    #: Topics opened first from the menu: a question naming them gets the page, not the glossary line.
    main_topics: frozenset[str]
    @property
    def talk(self) -> Conversation:
        conversation: Conversation = self.kb.conversation
        return conversation

    def topic(self, topic_id: str) -> Topic:
        return self.kb.topics[topic_id]


def compiled(kb: KnowledgeBase) -> CompiledKnowledge:
    """The compiled form of ``kb``, built on first use and shared by every engine on it."""
    return kb.shared(_compile)


def _compile(kb: KnowledgeBase) -> CompiledKnowledge:
    flows = dict(sorted(kb.flows.items(), key=lambda item: item[0] != ORIENTATION))
    question_flow: dict[str, list[str]] = {}
    for flow in flows.values():
        for step in flow.steps:
            for question in step.questions:
                question_flow.setdefault(question.id, []).append(flow.id)
    talk: Conversation = kb.conversation
    # Compile the phrase lists now rather than inside a user's first message.
    for phrases in (talk.orientation_intents, *talk.followups.values(), *(f.words for f in talk.forms)):
        has_phrase("", phrases)
    _check_payloads(kb, flows)
    return CompiledKnowledge(
        kb=kb,
        matcher=Matcher.for_knowledge(kb),
        fsm=m.FlowMachine(kb.flows),
        flows=flows,
        question_flow=question_flow,
        main_topics=frozenset(q.topics[0] for q in kb.document.intro_questions),
    )


def _check_payloads(kb: KnowledgeBase, flows: dict[str, Any]) -> None:
    """Every button the knowledge makes must fit Telegram's 64 bytes: refused at load, not in a turn."""
    made: list[tuple[str, ...]] = [(p.MORE, topic_id) for topic_id in kb.topics]
    made.extend((p.VIGILANCE, topic_id) for topic_id in kb.topics)
    for flow in flows.values():
        for step in flow.steps:
            for question in step.questions:
                made.extend((p.TOGGLE, question.id, option.id) for option in question.options)
                made.extend((p.ANSWER, question.id, option.id) for option in question.options)
                made.append((p.VALIDATE, question.id))
    too_long = [p.SEPARATOR.join(parts) for parts in made if not p.fits(*parts)]
    if too_long:
        raise ValueError(f"payloads over {p.MAX_PAYLOAD_BYTES} bytes: {too_long}")
