"""Buttons every room uses, and how a label is cut or compared with typed text."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache

from dialogue import payloads as p
from dialogue.types import Button, Reply
from knowledge.text import normalise

MENU_BUTTON = Button("Menu", p.MENU)
HELP_BUTTON = Button("Aide", p.HELP)
RESUME_FLOW_BUTTON = Button("Reprendre le parcours", p.RESUME)
STALE = "Ce choix n’est plus valable."

_BUTTON_MARKS = re.compile(r"^[\s→●✅▫️\ufe0f]+")

Rows = tuple[tuple[Button, ...], ...]


def label(text: str, limit: int = 40) -> str:
    """A button label that fits: cut at a word boundary, never inside a « … » pair."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:–—-«")
    if cut.count("«") > cut.count("»"):
        cut = cut[: cut.rindex("«")].rstrip()
    return cut + "…"


@lru_cache(maxsize=4096)
def button_key(text: str) -> str:
    """A button label as typed text is compared with it (labels are few: cached)."""
    return normalise(_BUTTON_MARKS.sub("", text))


def edit_distance_at_most_one(a: str, b: str) -> bool:
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = j = edits = 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            i += 1
            j += 1
            continue
        edits += 1
        if edits > 1:
            return False
        if len(a) == len(b):
            i += 1
        j += 1
    return edits + (len(b) - j) + (len(a) - i) <= 1


def numbers(replies: Sequence[Reply]) -> list[list[int]]:
    """The number of each button of a screen, reply by reply (« 1 » is the first).

    The last reply that carries buttons is the choice the screen asks for (a step of a flow,
    a confirmation, a menu): its buttons are numbered first, so a step's own options keep
    their numbers whatever is shown above them (a page read in the middle of a step, a
    notice). The buttons of earlier replies follow, in reading order. Every channel that
    shows numbers, and the engine that reads a typed number, use this one order.
    """
    last = next((index for index in range(len(replies) - 1, -1, -1) if replies[index].buttons), None)
    result: list[list[int]] = [[] for _ in replies]
    if last is None:
        return result
    result[last] = list(range(1, len(replies[last].all_buttons()) + 1))
    following = len(result[last])
    for index, reply in enumerate(replies):
        if index != last:
            count = len(reply.all_buttons())
            result[index] = list(range(following + 1, following + count + 1))
            following += count
    return result


def numbered(replies: Sequence[Reply]) -> list[Button]:
    """A screen's buttons in the order of their numbers (see :func:`numbers`)."""
    pairs = [(n, b) for reply, ns in zip(replies, numbers(replies), strict=True) for n, b in zip(ns, reply.all_buttons(), strict=True)]
    return [button for _, button in sorted(pairs, key=lambda pair: pair[0])]


def with_row_above_last(reply: Reply, row: tuple[Button, ...]) -> Reply:
    """``reply`` with ``row`` inserted above its last row (the Menu row)."""
    return replace(reply, buttons=(*reply.buttons[:-1], row, *reply.buttons[-1:]))
