"""Button data: one typed codec instead of strings split by hand.

A payload is a kind and its arguments, joined by « : » (``t:ptce.definition``,
``x:question:option``). Telegram refuses callback data over 64 bytes, so every
payload is checked when it is made. Features own the kinds they declare
(``tm`` for the team, ``k`` for the collective, ``pdf`` for the report); the core
owns the others, listed here with their constructors.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Telegram refuses callback data longer than this; no payload made here exceeds it.
MAX_PAYLOAD_BYTES = 64
SEPARATOR = ":"


class PayloadTooLong(ValueError):
    """A payload would not fit Telegram's 64 bytes of callback data."""


@dataclass(frozen=True, slots=True)
class Payload:
    """A decoded payload: its kind (``t``, ``x``, ``tm``…) and its arguments."""

    kind: str
    args: tuple[str, ...] = ()

    @classmethod
    def decode(cls, data: str) -> Payload:
        kind, *args = data.split(SEPARATOR)
        return cls(kind, tuple(args))

    def encode(self) -> str:
        return encode(self.kind, *self.args)

    def arg(self, index: int) -> str:
        """The argument at ``index``, or « » when there is none (a forged or old payload)."""
        return self.args[index] if index < len(self.args) else ""


def encode(kind: str, *args: str) -> str:
    """``kind:arg1:arg2``, checked against Telegram's limit."""
    text = SEPARATOR.join((kind, *args))
    if len(text.encode()) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLong(f"payload over {MAX_PAYLOAD_BYTES} bytes: {text!r}")
    return text


def fits(kind: str, *args: str) -> bool:
    return len(SEPARATOR.join((kind, *args)).encode()) <= MAX_PAYLOAD_BYTES


# Core kinds, each with the constructor that makes it.
MENU = "m"
TOPIC = "t"
MORE = "more"
VIGILANCE = "vig"
INTRO = "i"
NOT_THIS = "no"
HUMAN = "human"
FLOW = "f"
GLOSSARY = "g"
SOURCE = "src"
HELP = "help"
SYNTHESIS = "syn"
SYNTHESIS_DETAIL = "synd"
RESUME = "r"
RESTART = "rr"
RESTART_CONFIRMED = "rr!"
FORGET_CONFIRMED = "forget!"
RESULT = "res"
KEEP = "keep"
EDIT = "ed"
ANSWER = "a"
TOGGLE = "x"
VALIDATE = "ok"
SKIP = "s"
BACK = "b"


def topic(topic_id: str) -> str:
    return encode(TOPIC, topic_id)


def more(topic_id: str) -> str:
    return encode(MORE, topic_id)


def vigilance(topic_id: str) -> str:
    return encode(VIGILANCE, topic_id)


def intro(question_id: str) -> str:
    return encode(INTRO, question_id)


def flow(flow_id: str) -> str:
    return encode(FLOW, flow_id)


def glossary(*selection: str) -> str:
    """``g`` (themes and letters), ``g:t:THEME``, ``g:l:LETTER`` or ``g:e:TERM``."""
    return encode(GLOSSARY, *selection)


def synthesis_detail(page: int = 1) -> str:
    """The detailed synthesis, at ``page`` (« synd » alone is the first page)."""
    return SYNTHESIS_DETAIL if page <= 1 else encode(SYNTHESIS_DETAIL, str(page))


def result(flow_id: str, page: int = 1) -> str:
    """A flow's result (the legal guide), at ``page``."""
    return encode(RESULT, flow_id, str(page))


def edit(*selection: str) -> str:
    """/modifier: ``ed`` (which flow), ``ed:FLOW`` (its steps), ``ed:FLOW:STEP`` (its questions), ``ed:FLOW:STEP:QUESTION``."""
    return encode(EDIT, *selection)


def answer(question_id: str, option_id: str) -> str:
    return encode(ANSWER, question_id, option_id)


def toggle(question_id: str, option_id: str) -> str:
    return encode(TOGGLE, question_id, option_id)


def validate(question_id: str) -> str:
    return encode(VALIDATE, question_id)


def skip(question_id: str) -> str:
    return encode(SKIP, question_id)


def back(question_id: str) -> str:
    return encode(BACK, question_id)
