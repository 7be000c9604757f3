"""The reference document cut into its printed pages, from its running headers.

Each page of a chapter begins with the chapter's running header (« 07 » then « Gouvernance et
formalisation », or « 10 Le lieu » on one line); the k-th header of a chapter opens the page
``first page + k`` (first pages from the table of contents, ``document.yaml``). A page printed
without a header is declared in ``document.yaml`` (``unheaded_pages``: its number and its first
words). Everything before the first chapter's header is the front matter (cover, the Institut
Godin, the dynamics observed, the table of contents).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from knowledge.model import Document
from knowledge.text import normalise

_HEADER = re.compile(r"^(\d\d)(?: (.+))?$")
_SENTENCE = re.compile(r"(?<=[.!?;:])\s+|\n+")


@dataclass(frozen=True, slots=True)
class Page:
    number: int
    chapter: str
    text: str

    @cached_property
    def sentences(self) -> tuple[str, ...]:
        return tuple(s.strip(" -•*") for s in _SENTENCE.split(self.text) if len(s.strip()) > 3)


class PageMapError(ValueError):
    """The document's headers do not match the table of contents."""


class NoRunningHeaders(PageMapError):
    """The text has no running header at all (not a page-by-page export of the document)."""


@dataclass(frozen=True, slots=True)
class PagedDocument:
    pages: dict[int, Page]
    front_matter: str

    def chapter_pages(self, chapter: str) -> list[Page]:
        return [page for page in self.pages.values() if page.chapter == chapter]

    @classmethod
    def read(cls, path: Path, document: Document, unheaded: dict[int, str] | None = None) -> PagedDocument:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        titles = {number: normalise(chapter.title) for number, chapter in document.chapters.items()}
        headers: list[tuple[int, int, str]] = []  # (header line, first text line, chapter)
        for index, line in enumerate(lines):
            match = _HEADER.match(line.strip())
            if not match or match.group(1) not in titles:
                continue
            number, rest = match.group(1), match.group(2)
            if rest is None:
                following = next((candidate for candidate in lines[index + 1 : index + 6] if candidate.strip()), "")
                rest_index = lines.index(following, index + 1) if following else index
                title_line, body = following, rest_index + 1
            else:
                title_line, body = rest, index + 1
            if normalise(title_line) == titles[number]:
                headers.append((index, body, number))
        # The table of contents lists each chapter once with its page: its entries do not match
        # (« Introduction p.6 »), so every header found opens a page.
        if not headers:
            raise NoRunningHeaders("aucun en-tête de chapitre trouvé")
        pages: dict[int, Page] = {}
        seen: dict[str, int] = {}
        starts: list[tuple[int, int, int, str]] = []  # (header line, first text line, page, chapter)
        for header, body, number in headers:
            page = document.chapters[number].page + seen.get(number, 0)
            seen[number] = seen.get(number, 0) + 1
            starts.append((header, body, page, number))
        for page_number, first_words in (unheaded or {}).items():
            found = next((i for i, line in enumerate(lines) if line.strip().startswith(first_words)), None)
            if found is None:
                raise PageMapError(f"page {page_number} : « {first_words} » introuvable")
            chapter = max((s for s in starts if s[0] <= found), key=lambda s: s[0])[3]
            starts = [
                (header, body, page + 1 if header > found and of == chapter else page, of)
                for header, body, page, of in starts
            ]
            starts.append((found, found, page_number, chapter))
        starts.sort()
        for position, (_header, body, page, chapter) in enumerate(starts):
            end = starts[position + 1][0] if position + 1 < len(starts) else len(lines)
            if page in pages:
                raise PageMapError(f"page {page} trouvée deux fois")
            pages[page] = Page(page, chapter, "\n".join(lines[body:end]))
        for number in document.chapters:
            first, last = document.pages(number)
            found_pages = [p for p in pages.values() if p.chapter == number]
            if not found_pages or min(p.number for p in found_pages) != first or (
                last < 10_000 and max(p.number for p in found_pages) > last
            ):
                raise PageMapError(f"chapitre {number} : pages {[p.number for p in found_pages]} hors de {first}–{last}")
        front = "\n".join(lines[: min(start[0] for start in starts)])
        return cls(pages, front)
