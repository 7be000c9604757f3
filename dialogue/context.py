"""What the engine remembers of a conversation between two messages, typed.

Stored as one JSON object per user (``users.context``). The JSON keys are those of
earlier versions, so a database written by them is read as it is. Each feature keeps
its own state in a namespace of its own (:meth:`ConversationContext.feature`), which
the core never reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

#: Older versions kept the report's keys at the top level; they now live in the « report » namespace.
_LEGACY_REPORT_KEYS = {"ptce_name": "name", "awaiting_ptce_name": "awaiting"}


@dataclass
class ConversationContext:
    """The conversation's short-term memory (what is discussed, what is on screen)."""

    #: The topic being discussed, the one before it, and which part of it was shown (short, more, vig, gloss).
    topic: str | None = None
    previous: str | None = None
    part: str = "short"
    #: Free questions in a row that the document did not answer.
    misses: int = 0
    #: Buttons on screen, as (label, payload), so that a label or a number typed acts as the button.
    buttons: list[tuple[str, str]] = field(default_factory=list)
    #: The screen awaits a choice among its buttons (kept on screen after a message not understood).
    pending: bool = False
    #: Per-user counters that vary the wordings.
    said: dict[str, int] = field(default_factory=dict)
    #: Options ticked in a multiple-choice question, before « Valider ».
    selection: dict[str, list[str]] = field(default_factory=dict)
    #: The flows the user has opened (a flow whose questions were all answered in another is not « done »).
    opened: list[str] = field(default_factory=list)
    #: The flow state whose answer is being changed (/modifier): answering it returns to the result.
    editing: str | None = None
    #: Each feature's own state, by feature name.
    features: dict[str, dict[str, Any]] = field(default_factory=dict)

    def feature(self, name: str) -> dict[str, Any]:
        """The namespace of one feature (created empty on first use)."""
        return self.features.setdefault(name, {})

    def count(self, key: str) -> int:
        """How many times a wording was used before (0 the first time), then counts this use."""
        self.said[key] = self.said.get(key, -1) + 1
        return self.said[key]

    def set_topic(self, topic_id: str, part: str = "short") -> None:
        if self.topic != topic_id:
            if self.topic:
                self.previous = self.topic
            self.topic = topic_id
        self.part = part
        self.misses = 0

    def unsettle(self) -> None:
        """Several topics were offered and none chosen yet: what comes next cannot lean on the old page."""
        if self.topic:
            self.previous = self.topic
        self.topic = None
        self.part = "short"

    def forget_topic(self) -> None:
        """After a long silence follow-ups no longer refer to the old topic."""
        self.topic = self.previous = None
        self.part = "short"
        self.misses = 0

    # ------------------------------------------------------------------ JSON

    def to_dict(self, *, screen: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.topic:
            data["topic"] = self.topic
        if self.previous:
            data["previous"] = self.previous
        if self.topic or self.part != "short":
            data["part"] = self.part
        if self.misses:
            data["misses"] = self.misses
        if self.selection:
            data["selection"] = self.selection
        if self.opened:
            data["opened"] = self.opened
        if self.editing:
            data["editing"] = self.editing
        if screen:
            if self.buttons:
                data["buttons"] = [list(button) for button in self.buttons]
                data["pending"] = self.pending
            if self.said:
                data["said"] = self.said
        for name, state in self.features.items():
            if state:
                data[name] = state
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | None) -> ConversationContext:
        """Read a stored context; anything unreadable gives an empty one (never an error)."""
        try:
            data = json.loads(text) if text else {}
        except json.JSONDecodeError:
            data = {}
        return cls.from_dict(data if isinstance(data, dict) else {})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConversationContext:
        data = dict(data)
        context = cls(
            topic=_text(data.pop("topic", None)),
            previous=_text(data.pop("previous", None)),
            part=_text(data.pop("part", None)) or "short",
            misses=_number(data.pop("misses", 0)),
            buttons=[
                (str(item[0]), str(item[1]))
                for item in _list(data.pop("buttons", None))
                if isinstance(item, list | tuple) and len(item) == 2
            ],
            pending=bool(data.pop("pending", False)),
            said={str(k): _number(v) for k, v in _dict(data.pop("said", None)).items()},
            selection={str(k): [str(o) for o in _list(v)] for k, v in _dict(data.pop("selection", None)).items()},
            opened=[str(flow) for flow in _list(data.pop("opened", None))],
            editing=_text(data.pop("editing", None)),
        )
        for legacy, key in _LEGACY_REPORT_KEYS.items():
            if legacy in data:
                context.feature("report")[key] = data.pop(legacy)
        for name, state in data.items():
            if isinstance(state, dict):
                context.features[name] = state
        return context


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
