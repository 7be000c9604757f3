"""Scripted users: deterministic event sequences that stay valid without reading replies.

A fresh user opens the bot, reads a topic page and its details, asks a free-text
question, goes back to the menu, opens an introduction question, starts the orientation
and answers it in order (single answers, toggles then « Valider », a few skips), with
free-text questions slipped in between. The engine skips nothing for a fresh user, so
every payload in the script is the one the user would see; ``STALE`` replies are counted
by the bench as a check of that claim.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dialogue.types import Choose, Command, Event, Say
from knowledge.loader import KnowledgeBase
from knowledge.text import normalise

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS_TSV = ROOT / "tests" / "data" / "questions.tsv"


def free_text_questions(kb: KnowledgeBase, path: Path = QUESTIONS_TSV) -> list[str]:
    """Questions people type: the dev set if present, else the topics' example questions."""
    questions: list[str] = []
    if path.exists():
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
                text = (row.get("question") or "").strip()
                if text and not text.startswith("/"):
                    questions.append(text)
    if not questions:
        questions = [q for topic in kb.topics.values() for q in topic.questions]
    return questions


def _flow_inputs(kb: KnowledgeBase) -> frozenset[str]:
    """Normalised texts that answer, skip, go back or validate inside a flow."""
    words: set[str] = set()
    for name in ("skip_words", "back_words", "validate_words", "yes_words", "no_words", "menu_words", "help_words"):
        words |= set(kb.conversation.words[name])
    for flow in kb.flows.values():
        for _, question in flow.questions():
            for option in question.options:
                words |= {normalise(option.label), normalise(option.id.replace("_", " "))}
                words |= {normalise(k) for k in option.keywords}
    return frozenset(words)


@dataclass(frozen=True)
class Workload:
    """Everything the scripts draw from, computed once."""

    topics: tuple[str, ...]
    intros: tuple[str, ...]
    questions: tuple[str, ...]
    orientation: tuple  # (question id, kind, option ids)

    @classmethod
    def from_kb(cls, kb: KnowledgeBase) -> Workload:
        flow = kb.flows["orientation"]
        orientation = tuple((q.id, q.kind, tuple(o.id for o in q.options)) for _, q in flow.questions())
        answers = _flow_inputs(kb)
        # Texts the engine would take as an answer (« ok », « 2 », an option's name) would move the
        # user on and make the next scripted button stale: they are not free-text questions here.
        questions = tuple(q for q in free_text_questions(kb) if normalise(q) not in answers and not normalise(q).isdigit())
        return cls(
            topics=tuple(sorted(kb.topics)),
            intros=tuple(q.id for q in kb.document.intro_questions),
            questions=questions,
            orientation=orientation,
        )

    def script(self, rng: random.Random, length: int = 30) -> list[Event]:
        """One fresh user's events (exactly ``length`` of them)."""
        topic = rng.choice(self.topics)
        events: list[Event] = [
            Command("start"),
            Choose(f"t:{topic}"),
            Choose(f"more:{topic}"),
            Say(rng.choice(self.questions)),
            Choose("m"),
        ]
        if self.intros:
            events.append(Choose(f"i:{rng.choice(self.intros)}"))
        events.append(Choose("f:orientation"))
        for question, kind, options in self.orientation:
            if rng.random() < 0.15:
                events.append(Say(rng.choice(self.questions)))
            if rng.random() < 0.08:
                events.append(Choose(f"s:{question}"))
            elif kind == "single":
                events.append(Choose(f"a:{question}:{rng.choice(options)}"))
            else:
                for option in rng.sample(options, k=rng.randint(1, min(3, len(options)))):
                    events.append(Choose(f"x:{question}:{option}"))
                events.append(Choose(f"ok:{question}"))
            if len(events) >= length:
                break
        tail: Iterable[Event] = (Command("progression"), Command("synthese"), Choose("m"), Choose(f"t:{rng.choice(self.topics)}"))
        for event in tail:
            if len(events) >= length:
                break
            events.append(event)
        while len(events) < length:
            events.append(Say(rng.choice(self.questions)))
        return events[:length]

    def scripts(self, users: int, length: int = 30, seed: int = 20261127) -> list[list[Event]]:
        rng = random.Random(seed)
        return [self.script(rng, length) for _ in range(users)]


def kind_of(event: Event) -> str:
    """The workload category of an event, for per-kind latency figures."""
    if isinstance(event, Command):
        return "command"
    if isinstance(event, Say):
        return "free_text"
    prefix = event.payload.partition(":")[0]
    return {
        "m": "menu",
        "t": "topic_page",
        "more": "topic_page",
        "vig": "topic_page",
        "i": "topic_page",
        "f": "flow_start",
        "a": "answer",
        "s": "answer",
        "x": "toggle",
        "ok": "validate",
    }.get(prefix, "other")


def interleave(scripts: list[list[Event]]) -> list[tuple[int, Event]]:
    """(user index, event) in round-robin order: every user's n-th event, then the n+1-th."""
    order: list[tuple[int, Event]] = []
    longest = max((len(s) for s in scripts), default=0)
    for step in range(longest):
        for user, script in enumerate(scripts):
            if step < len(script):
                order.append((user, script[step]))
    return order
