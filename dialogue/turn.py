"""One event being handled: what it changes, kept in memory and written once at the end."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from dialogue.flows.machine import Conversation
from dialogue.storage.progress import AnswerValue, UserRecord
from knowledge.matcher import Match


@dataclass(frozen=True, slots=True)
class Asked:
    """A free question the engine answered (or not): what features such as the team's log see.

    ``kind`` is ``topic`` (the matcher's answer, by ``tier``), ``glossary`` or ``not_covered``.
    ``answer`` is the reply that answered it, so a feature may add to that reply only.
    """

    text: str
    match: Match
    kind: str
    tier: str
    in_flow: bool
    flow: str | None
    step: str | None
    answer: object | None = None


@dataclass
class Turn:
    """The user's record, their place in the flows, and what this event changes."""

    record: UserRecord
    conversation: Conversation
    now: datetime
    changed: dict[str, AnswerValue] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    #: /oublier confirmed: everything about the user is deleted instead of saved.
    forget: bool = False
    #: The reply offers choices the user is expected to pick from (kept alive after a fallback).
    pending: bool = False
    #: The user comes back after a long absence (measured before this turn's ``last_seen``).
    absent: bool = False
    #: The event is a button's label or number typed as text (the user did not press it).
    typed: bool = False
    #: Nothing in the document answered the message.
    missed: bool = False
    #: The free question of this turn, once understood.
    asked: Asked | None = None

    @property
    def user_id(self) -> str:
        return self.record.id

    @property
    def state(self) -> str:
        return self.conversation.state

    def count(self, key: str) -> int:
        """A per-user counter used to vary wordings."""
        return self.record.context.count(key)
