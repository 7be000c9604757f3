"""Buttons every room uses, and how a label is cut or compared with typed text."""

from __future__ import annotations

import re
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


def with_row_above_last(reply: Reply, row: tuple[Button, ...]) -> Reply:
    """``reply`` with ``row`` inserted above its last row (the Menu row)."""
    return replace(reply, buttons=(*reply.buttons[:-1], row, *reply.buttons[-1:]))
