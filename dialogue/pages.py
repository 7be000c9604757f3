"""Long content as pages with a « Suite » button, and the engine's guarantee on a message's size.

Telegram refuses a message over 4,096 characters (counted in UTF-16 code units), and a
phone screen is read one page at a time: a long result (the detailed synthesis, the legal
guide, a group view) is shown one page per turn, each with its number and a « Suite »
button. Whatever a room produces, :func:`fit` is applied by the engine to every reply, so
no reply ever exceeds :data:`MAX_REPLY`, on any channel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from dialogue.types import Button, Reply

#: Telegram's limit on one message, in UTF-16 code units; no reply of the engine goes over it.
MAX_REPLY = 4096
#: The label of the button that shows the next page.
NEXT = "Suite"

Rows = tuple[tuple[Button, ...], ...]


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (a character outside the BMP, such as most emoji, counts twice)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def page(pages: Sequence[str], number: int, payload: Callable[[int], str], closing: Rows) -> Reply:
    """Page ``number`` (1-based, clamped) of ``pages``: its text, « Page 2/4 », and « Suite (3/4) ».

    Every page carries the ``closing`` rows, so that nothing is out of reach on page 1; « Suite »
    goes just above their last row (the Menu), so the other buttons keep their numbers on every page.
    """
    total = len(pages)
    number = min(max(number, 1), total)
    text = pages[number - 1]
    if total == 1:
        return Reply(text, closing)
    text = f"{text}\n\n(Page {number}/{total})"
    if number == total:
        return Reply(text, closing)
    following = (Button(f"{NEXT} ({number + 1}/{total})", payload(number + 1)),)
    return Reply(text, (*closing[:-1], following, *closing[-1:]))


def page_number(raw: str) -> int | None:
    """A page number read from a payload argument (« » is the first page); ``None`` if forged."""
    if not raw:
        return 1
    return int(raw) if raw.isdigit() and 0 < int(raw) < 100 else None


def fit(replies: list[Reply], limit: int = MAX_REPLY) -> list[Reply]:
    """Every reply within ``limit``: one that is longer is cut at paragraphs, then lines, then spaces.

    The pieces are sent in order; the buttons stay under the last one, and only the first
    may replace the message it edits.
    """
    out: list[Reply] = []
    for reply in replies:
        if utf16_len(reply.text) <= limit:
            out.append(reply)
            continue
        pieces = split(reply.text, limit)
        out.append(replace(reply, text=pieces[0], buttons=() if len(pieces) > 1 else reply.buttons, attachment=None))
        out.extend(Reply(piece) for piece in pieces[1:-1])
        if len(pieces) > 1:
            out.append(Reply(pieces[-1], reply.buttons, attachment=reply.attachment))
        else:
            out[-1] = replace(out[-1], attachment=reply.attachment)
    return out


def split(text: str, limit: int = MAX_REPLY) -> list[str]:
    """``text`` cut into pieces of at most ``limit`` UTF-16 units, at the widest boundary that fits."""
    return [piece for piece in _pieces(text, ("\n\n", "\n", " "), limit) if piece.strip()] or [text[:limit]]


def _pieces(text: str, separators: tuple[str, ...], limit: int) -> list[str]:
    if utf16_len(text) <= limit:
        return [text]
    if not separators:  # one word longer than a message: cut it
        pieces, current = [], ""
        for char in text:
            if utf16_len(current + char) > limit:
                pieces.append(current)
                current = ""
            current += char
        return [*pieces, current]
    separator, rest = separators[0], separators[1:]
    packed: list[str] = []
    open_piece: str | None = None
    for part in text.split(separator):
        for piece in _pieces(part, rest, limit):
            if open_piece is None:
                open_piece = piece
            elif utf16_len(open_piece) + utf16_len(separator) + utf16_len(piece) <= limit:
                open_piece = f"{open_piece}{separator}{piece}"
            else:
                packed.append(open_piece)
                open_piece = piece
    if open_piece is not None:
        packed.append(open_piece)
    return packed
