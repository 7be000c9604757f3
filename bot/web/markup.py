"""The engine's light markup as HTML: every character of text escaped, only our own tags added.

The markup of :mod:`dialogue.types`: ``**bold**``, list lines starting with ``- `` or ``• ``,
``[label](https://url)`` links. Bare ``https://`` addresses (invitation links) become links
too. Blank lines separate paragraphs; other line breaks are kept.
"""

from __future__ import annotations

import functools
import re
from html import escape

_LINK = re.compile(r"\[([^\[\]\n]+)\]\((https?://[^\s()<>\"]+)\)|(https?://[^\s<>\"«»]+[^\s<>\"«».,;:!?)])")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_LIST_ITEM = re.compile(r"^\s*(?:- |• )")


def _bold(text: str) -> str:
    out: list[str] = []
    position = 0
    for match in _BOLD.finditer(text):
        out.append(escape(text[position : match.start()]))
        out.append(f"<strong>{escape(match.group(1))}</strong>")
        position = match.end()
    out.append(escape(text[position:]))
    return "".join(out)


def _anchor(url: str, label_html: str) -> str:
    return f'<a href="{escape(url, quote=True)}" rel="noopener noreferrer">{label_html}</a>'


def inline(text: str) -> str:
    """One line: links and bold; everything else escaped."""
    out: list[str] = []
    position = 0
    for match in _LINK.finditer(text):
        out.append(_bold(text[position : match.start()]))
        if match.group(3):
            out.append(_anchor(match.group(3), escape(match.group(3))))
        else:
            out.append(_anchor(match.group(2), _bold(match.group(1))))
        position = match.end()
    out.append(_bold(text[position:]))
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def to_html(text: str) -> str:
    """Paragraphs (``<p>``) and lists (``<ul>``) of one reply (cached: a page shows the same replies again and again)."""
    blocks: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text.strip("\n")):
        # Consecutive lines of the same kind (list item or not) make one block.
        groups: list[tuple[bool, list[str]]] = []
        for line in paragraph.split("\n"):
            item = _LIST_ITEM.match(line)
            content = line[item.end() :] if item else line
            if groups and groups[-1][0] == bool(item):
                groups[-1][1].append(content)
            else:
                groups.append((bool(item), [content]))
        for is_list, lines in groups:
            if is_list:
                blocks.append("<ul>" + "".join(f"<li>{inline(line)}</li>" for line in lines) + "</ul>")
            else:
                blocks.append("<p>" + "<br>".join(inline(line) for line in lines) + "</p>")
    return "".join(blocks)


def to_plain(text: str) -> str:
    """The reply as plain text (the label of a user bubble, a screen reader's announcement)."""
    text = _LINK.sub(lambda m: m.group(1) or m.group(3), text)
    return _BOLD.sub(lambda m: m.group(1), text)
