"""Render the engine's light markup for Telegram: HTML text, message splitting, keyboards.

The markup of :mod:`dialogue.types` is small: ``**bold**``, list lines starting with
``- `` or ``• ``, and ``[label](https://url)`` links. Everything else is plain text and is
escaped, so a reply can never produce HTML that Telegram refuses.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterable, Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from dialogue.types import MAX_PAYLOAD_BYTES, Button

logger = logging.getLogger(__name__)

#: Telegram's limit on a message's text, counted in UTF-16 code units after entity parsing.
MAX_MESSAGE_LENGTH = 4096

_LINK = re.compile(r"\[([^\[\]\n]+)\]\((https?://[^\s()<>\"]+)\)")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_LIST_ITEM = re.compile(r"^(\s*)(?:- |• )")


def utf16_len(text: str) -> int:
    """Length of ``text`` as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def _inline(text: str) -> str:
    """Escape a run of text without links and turn ``**bold**`` into ``<b>``."""
    out: list[str] = []
    position = 0
    for match in _BOLD.finditer(text):
        out.append(html.escape(text[position : match.start()], quote=False))
        out.append(f"<b>{html.escape(match.group(1), quote=False)}</b>")
        position = match.end()
    out.append(html.escape(text[position:], quote=False))
    return "".join(out)


def _line_to_html(line: str) -> str:
    """Convert one line: list marker, links, bold; every tag opened on the line is closed on it."""
    item = _LIST_ITEM.match(line)
    prefix = ""
    if item:
        prefix = item.group(1) + "• "
        line = line[item.end() :]
    out: list[str] = [html.escape(prefix, quote=False)]
    position = 0
    for match in _LINK.finditer(line):
        out.append(_inline(line[position : match.start()]))
        label, url = match.group(1), match.group(2)
        out.append(f'<a href="{html.escape(url, quote=True)}">{_inline(label)}</a>')
        position = match.end()
    out.append(_inline(line[position:]))
    return "".join(out)


def to_html(text: str) -> str:
    """Convert the engine's markup to Telegram HTML (``parse_mode="HTML"``)."""
    return "\n".join(_line_to_html(line) for line in text.split("\n"))


def to_plain(text: str) -> str:
    """Markup stripped down to plain text (fallback when Telegram rejects the HTML)."""
    lines = []
    for line in text.split("\n"):
        line = _LIST_ITEM.sub(lambda m: m.group(1) + "• ", line)
        line = _LINK.sub(lambda m: f"{m.group(1)} ({m.group(2)})", line)
        line = _BOLD.sub(lambda m: m.group(1), line)
        lines.append(line)
    return "\n".join(lines)


def _hard_split(text: str, limit: int) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` UTF-16 units, preferring spaces."""
    pieces: list[str] = []
    while utf16_len(text) > limit:
        # Longest prefix that fits (code points outside the BMP count twice).
        size, end = 0, 0
        for index, char in enumerate(text):
            size += 2 if ord(char) > 0xFFFF else 1
            if size > limit:
                break
            end = index + 1
        cut = text.rfind(" ", 0, end + 1)
        if cut <= 0:
            cut = end
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        pieces.append(text)
    return pieces


def _pieces(block: str, separators: Sequence[str], limit: int) -> list[str]:
    """Split ``block`` on the first separator, recursing into pieces still too long."""
    if utf16_len(block) <= limit:
        return [block]
    if not separators:
        return _hard_split(block, limit)
    separator, rest = separators[0], separators[1:]
    pieces: list[str] = []
    for part in block.split(separator):
        pieces.extend(_pieces(part, rest, limit))
    return _pack(pieces, separator, limit)


def _pack(pieces: Iterable[str], separator: str, limit: int) -> list[str]:
    """Greedily join consecutive pieces with ``separator`` while they fit in ``limit``."""
    packed: list[str] = []
    current: str | None = None
    for piece in pieces:
        if current is None:
            current = piece
        elif utf16_len(current) + utf16_len(separator) + utf16_len(piece) <= limit:
            current = current + separator + piece
        else:
            packed.append(current)
            current = piece
    if current is not None:
        packed.append(current)
    return packed


def split_text(text: str, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """Split markup text into messages of at most ``limit`` characters.

    Cuts at paragraph boundaries (blank lines) first, then at line ends, then at
    spaces; the markup never spans lines, so each part renders on its own.
    Empty parts are dropped; the result is never empty.
    """
    parts = [part.strip("\n") for part in _pieces(text, ("\n\n", "\n"), limit)]
    parts = [part for part in parts if part.strip()]
    return parts or [text]


def keyboard(rows: Sequence[Sequence[Button]]) -> InlineKeyboardMarkup | None:
    """The reply's buttons as an inline keyboard (rows kept as given), or ``None``."""
    keyboard_rows = []
    for row in rows:
        buttons = []
        for button in row:
            if button.label and 0 < len(button.payload.encode("utf-8")) <= MAX_PAYLOAD_BYTES:
                buttons.append(InlineKeyboardButton(button.label, callback_data=button.payload))
            else:  # Telegram would refuse the whole message: drop the button, keep the reply
                logger.warning("Bouton ignoré (libellé vide ou donnée hors limites) : %r", button.payload[:80])
        if buttons:
            keyboard_rows.append(buttons)
    return InlineKeyboardMarkup(keyboard_rows) if keyboard_rows else None

