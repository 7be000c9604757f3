"""Check every cited statement against the page it cites (``kb check --against``, issue #20).

A *statement* is a text of the knowledge that carries a citation: a synthesis rule (its text
and vigilance points, chapter and page), a topic (short answer on its page; details and
vigilance within its chapter), a glossary definition (its page), a debate point (its page), a
cell of the legal-form comparison (its chapter). Each is compared with the text of the cited
page, cut by :mod:`knowledge.document_pages`:

- **numbers and years** (digits or words: « six marqueurs ») must be printed on the page;
- **proportions** (« deux tiers », « la moitié »…) must be printed on the page;
- **hedges**: a sentence saying « souvent », « généralement », « toujours », « à tous »… must
  rest on a page sentence at least as strong; the document's « peut » or « parfois » hardened
  into « souvent » is a *nuance durcie*;
- **meaning**: a word whose opposite the page uses for the same thing (« lente » where the page
  says « rapides »), or a verb the statement negates (« ne permet pas ») where the page affirms
  it, is a *contresens*;
- **key terms**: the statement's distinctive words (printed on at most two pages of the
  document) must mostly be on the cited pages: a statement citing the wrong page fails.

Findings name the file, the entry and the field, like the other checks of
:mod:`knowledge.source_check`; accepted exceptions live in ``source_exceptions.yaml``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knowledge.document_pages import Page, PagedDocument
from knowledge.text import BASE_STOPWORDS, normalise, stem
from knowledge.validation import read_yaml

NUMBER_WORDS = {
    "deux": "2", "trois": "3", "quatre": "4", "cinq": "5", "six": "6", "sept": "7", "huit": "8", "neuf": "9",
    "dix": "10", "onze": "11", "douze": "12", "vingt": "20", "trente": "30", "cent": "100", "mille": "1000",
}  # fmt: skip
# « un tiers » is left out: in this document a « tiers » is mostly a third party.
PROPORTIONS = ("deux tiers", "trois quarts", "un quart", "la moitie", "la majorite", "la plupart", "une minorite",
               "pour moitie", "trois tiers")  # fmt: skip
#: Hedges by strength: 1 possible, 2 frequent, 3 universal. Matched on normalised text.
HEDGES: dict[int, tuple[str, ...]] = {
    1: ("peut", "peuvent", "pourra", "pourront", "pourrait", "parfois", "possible", "eventuel", "eventuellement",
        "il arrive", "pouvant"),
    2: ("souvent", "le plus souvent", "frequemment", "generalement", "en general", "habituellement", "communement",
        "la plupart", "tres frequemment", "frequente"),
    3: ("toujours", "systematiquement", "necessairement", "obligatoirement", "forcement", "a tous les", "a toutes les",
        "tous les ptce", "toutes les dynamiques", "sans exception", "dans tous les cas", "jamais"),
}  # fmt: skip
#: Words and their opposites, as stems: the statement uses one where the page uses the other.
OPPOSITES = (
    ("rapid", "lent"), ("facil", "difficil"), ("fort", "faibl"), ("solid", "fragil"), ("stabl", "instabl"),
    ("possibl", "impossibl"), ("simpl", "complex"), ("lisibl", "illisibl"), ("souvent", "rar"),
)  # fmt: skip
#: Distinctive: printed on at most this many pages of the document.
DISTINCTIVE_PAGES = 2
#: Share of a statement's distinctive words the cited pages must hold (at least two such words).
KEY_TERMS_SHARE = 0.25
#: Words sharing a stem with one of this many most frequent French words are not distinctive.
EVERYDAY_RANK = 6_000

_DIGITS = re.compile(r"\d+(?:[,.]\d+)?")
_NEGATED = re.compile(r"\bn(?:e)?\s+(\w+)\s+(?:pas|plus|jamais|guere)\b(?!\s+(?:seulement|uniquement|que|toujours|forcement))")
#: Verbs too common to carry a statement's meaning when negated.
_AUXILIARIES = frozenset({"est", "sont", "etre", "ont", "avoir", "fait", "font", "faut", "vont", "peut", "peuvent",
                          "doit", "doivent", "suffit"})  # fmt: skip
_NEGATION_MARK = re.compile(r"\b(?:ne|n|pas|sans|non|aucun|aucune|ni|jamais)\b")
_CITATION = re.compile(r"\((?:chap(?:itre)?\.?|p\.)[^)]*\)|\bp\.\s*\d+|chapitre\s+\d+|chap\.\s*\d+", re.I)
_SPLIT = re.compile(r"(?<=[.!?;])\s+|\n+")
_LIST_NUMBER = re.compile(r"^\s*\**\d+[.)]\s", re.M)
_NEGATED_HEDGE = re.compile(r"\b(?:pas|sans|non|ni)\s+(?:\w+\s+)?$")
_STOP = BASE_STOPWORDS | {"document", "ptce", "selon", "plus", "cette", "leur", "leurs", "votre", "vos", "vous"}


@dataclass(frozen=True, slots=True)
class Statement:
    file: str
    entry: str
    field: str
    text: str
    chapter: str
    pages: tuple[int, ...]  # the cited page, or the chapter's pages when only the chapter is cited
    #: False for a topic's details and vigilance, which may gather several chapters: only their
    #: numbers, proportions and hedges are checked, against the whole document.
    strict: bool = True


@dataclass(frozen=True, slots=True)
class CitationFinding:
    kind: str  # "page", "proportion", "nuance", "contresens", "termes"
    statement: Statement
    value: str

    @property
    def key(self) -> str:
        """How ``source_exceptions.yaml`` names it: « entry › value »."""
        return f"{self.statement.entry} › {self.value}"

    def describe(self) -> str:
        s = self.statement
        pages = f"p. {s.pages[0]}" if len(s.pages) == 1 else f"p. {s.pages[0]}–{s.pages[-1]}"
        place = f"{s.file}, entrée « {s.entry} », champ « {s.field} » (chap. {s.chapter}, {pages})"
        messages = {
            "page": f"« {self.value} » n’est pas imprimé à la page citée",
            "proportion": f"la proportion « {self.value} » n’est pas celle de la page citée",
            "nuance": f"nuance durcie : « {self.value} »",
            "contresens": f"contresens possible : {self.value}",
            "termes": f"la page citée ne contient pas les termes clés ({self.value})",
        }
        return f"{place} : {messages[self.kind]}"


# --------------------------------------------------------------------------- the statements


def cited_statements(data_dir: Path, paged: PagedDocument) -> Iterator[Statement]:
    data_dir = Path(data_dir)
    chapter_pages = {page.chapter: [] for page in paged.pages.values()}  # type: dict[str, list[int]]
    for page in sorted(paged.pages.values(), key=lambda p: p.number):
        chapter_pages[page.chapter].append(page.number)

    last = max(paged.pages)

    def span(chapter: str, page: Any, source: dict | None = None) -> tuple[int, ...]:
        pages = (page,) if isinstance(page, int) and page in paged.pages else tuple(chapter_pages.get(chapter, ()))
        if source and source.get("front_matter") is True:
            pages = (0, *pages)
        if source and source.get("back_cover") is True and last not in pages:
            pages = (*pages, last)
        return pages

    synthesis = read_yaml(data_dir / "synthesis.yaml") or {}
    for section in synthesis.get("sections") or []:
        for rule in section.get("rules") or []:
            chapter, pages = str(rule.get("chapter")), span(str(rule.get("chapter")), rule.get("page"))
            yield Statement("synthesis.yaml", rule["id"], "text", rule.get("text", ""), chapter, pages)
            for index, point in enumerate(rule.get("vigilance") or []):
                yield Statement("synthesis.yaml", rule["id"], f"vigilance[{index + 1}]", point, chapter, pages)
    topics = read_yaml(data_dir / "topics.yaml") or {}
    for topic in topics.get("topics") or []:
        source = topic.get("source") or {}
        chapter = str(source.get("chapter"))
        yield Statement(
            "topics.yaml", topic["id"], "short", topic.get("short", ""), chapter, span(chapter, source.get("page"), source)
        )
        everywhere = (0, *sorted(paged.pages))
        yield Statement("topics.yaml", topic["id"], "details", topic.get("details", ""), chapter, everywhere, False)
        for index, point in enumerate(topic.get("vigilance") or []):
            yield Statement("topics.yaml", topic["id"], f"vigilance[{index + 1}]", point, chapter, everywhere, False)
    glossary = read_yaml(data_dir / "glossary.yaml") or {}
    for term in glossary.get("terms") or []:
        chapter = str(term.get("chapter"))
        yield Statement("glossary.yaml", term["term"], "definition", term.get("definition", ""), chapter,
                        span(chapter, term.get("page"), term))
    debate = read_yaml(data_dir / "debate.yaml") or {}
    for point in debate.get("points") or []:
        chapter, pages = str(point.get("chapter")), span(str(point.get("chapter")), point.get("page"))
        for name in ("says", "why"):
            yield Statement("debate.yaml", point["id"], name, point.get(name, ""), chapter, pages)
    for path in sorted((data_dir / "flows").glob("*.yaml")):
        comparison = (read_yaml(path) or {}).get("comparison")
        if not comparison:
            continue
        chapter = str(comparison.get("chapter"))
        for row in comparison.get("rows") or []:
            for column, cell in (row.get("cells") or {}).items():
                yield Statement(f"flows/{path.name}", f"{row.get('criterion')} › {column}", "cells", cell, chapter,
                                span(chapter, None))


# --------------------------------------------------------------------------- reading texts


def _plain(text: str) -> str:
    text = _LIST_NUMBER.sub(" ", _CITATION.sub(" ", text.replace("deux-tiers", "deux tiers")))
    return normalise(text)


def numbers(plain: str) -> set[str]:
    found = {n.replace(",", ".") for n in _DIGITS.findall(plain)}
    found |= {NUMBER_WORDS[word] for word in plain.split() if word in NUMBER_WORDS}
    return found


def hedge_level(plain: str) -> tuple[int, str]:
    """The strongest hedge of a sentence; « pas forcément », « sans toujours » weaken, they do not count."""
    padded = f" {plain} "
    for level in (3, 2, 1):
        for word in HEDGES[level]:
            at = padded.find(f" {word} ")
            while at >= 0:
                if level == 1 or not _NEGATED_HEDGE.search(padded[: at + 1]):
                    return level, word
                at = padded.find(f" {word} ", at + 1)
    return 0, ""


def content_stems(plain: str) -> set[str]:
    return {stem(word) for word in plain.split() if len(word) > 3 and word not in _STOP and not word.isdigit()}


def sentences(text: str) -> list[str]:
    return [s for s in (_plain(part) for part in _SPLIT.split(text)) if len(s.split()) >= 3]


@dataclass(slots=True)
class _PageIndex:
    plain: dict[int, str]
    numbers: dict[int, set[str]]
    stems: dict[int, set[str]]
    sentences: dict[int, list[tuple[str, set[str]]]]
    frequency: dict[str, int]  # stem → number of pages printing it
    words: dict[int, set[str]]  # stems of every word of the page

    @classmethod
    def build(cls, paged: PagedDocument) -> _PageIndex:
        plain, nums, stems, sents = {}, {}, {}, {}
        frequency: dict[str, int] = {}
        front = Page(0, "00", paged.front_matter)
        for number, page in {0: front, **paged.pages}.items():
            text = _plain(page.text)
            plain[number] = text
            nums[number] = numbers(text)
            stems[number] = content_stems(text)
            sents[number] = [(s, content_stems(s)) for s in (_plain(x) for x in _sentences_of(page)) if s]
            for item in stems[number]:
                frequency[item] = frequency.get(item, 0) + 1
        everyday = _everyday_stems()
        distinctive = {item: count for item, count in frequency.items() if item not in everyday}
        words = {number: {stem(word) for word in text.split()} for number, text in plain.items()}
        return cls(plain, nums, stems, sents, distinctive, words)


def _everyday_stems() -> frozenset[str]:
    from knowledge.source_check import everyday_stems

    return everyday_stems(EVERYDAY_RANK)


_INDEXES: dict[int, tuple[PagedDocument, _PageIndex]] = {}


def _index(paged: PagedDocument) -> _PageIndex:
    """Built once per document read (the mutation test checks many copies of the knowledge)."""
    cached = _INDEXES.get(id(paged))
    if cached is None or cached[0] is not paged:
        cached = _INDEXES[id(paged)] = (paged, _PageIndex.build(paged))
    return cached[1]


def _sentences_of(page: Page) -> list[str]:
    return [part for part in _SPLIT.split(page.text) if part.strip()]


# --------------------------------------------------------------------------- the checks


def check_citations(
    data_dir: Path, paged: PagedDocument, accepted: dict[str, str] | None = None, used: set[str] | None = None
) -> list[CitationFinding]:
    """Every finding, except those ``accepted`` (« entry › value » → reason); the keys met go in ``used``."""
    index = _index(paged)
    findings: list[CitationFinding] = []
    accepted = accepted or {}
    for statement in cited_statements(data_dir, paged):
        if not statement.text or not statement.pages:
            continue
        for finding in _check(statement, index):
            key = finding.key
            if key in accepted:
                if used is not None:
                    used.add(key)
                continue
            findings.append(finding)
    return findings


def read_paged(source_path: Path, data_dir: Path) -> PagedDocument:
    from knowledge.loader import load_document

    document = load_document(Path(data_dir) / "document.yaml")
    return PagedDocument.read(source_path, document, dict(document.unheaded_pages))


def _check(statement: Statement, index: _PageIndex) -> Iterator[CitationFinding]:
    pages = statement.pages
    plain = _plain(statement.text)
    page_text = " ".join(index.plain[p] for p in pages)
    page_numbers = set().union(*(index.numbers[p] for p in pages))
    for value in sorted(numbers(plain) - page_numbers):
        yield CitationFinding("page", statement, value)
    for proportion in PROPORTIONS:
        if f" {proportion} " in f" {plain} " and f" {proportion} " not in f" {page_text} ":
            yield CitationFinding("proportion", statement, proportion)
    page_sentences = [item for p in pages for item in index.sentences[p]]
    page_words = set().union(*(index.words[p] for p in pages))
    for sentence in sentences(statement.text):
        aligned = _aligned(sentence, page_sentences)
        if not aligned:
            continue
        yield from _nuance(statement, sentence, aligned)
        yield from _meaning(statement, sentence, aligned, page_words)
    if not statement.strict:
        return
    distinctive = {s for s in content_stems(plain) if 0 < index.frequency.get(s, 0) <= DISTINCTIVE_PAGES}
    if distinctive:
        cited = set().union(*(index.stems[p] for p in pages))
        missing = sorted(distinctive - cited)
        if len(distinctive) >= 2 and len(missing) > len(distinctive) * (1 - KEY_TERMS_SHARE):
            yield CitationFinding("termes", statement, ", ".join(missing[:6]))


def _aligned(sentence: str, page_sentences: list[tuple[str, set[str]]], least: int = 2) -> list[tuple[int, str]]:
    """The page sentences sharing the most content words with ``sentence`` (at least ``least``), with their score."""
    own = content_stems(sentence)
    scored = [(len(own & stems), text) for text, stems in page_sentences]
    best = max((score for score, _ in scored), default=0)
    if best < least:
        return []
    kept = sorted((item for item in scored if item[0] >= max(least, best - 2)), key=lambda item: -item[0])
    return kept[:4]


def _nuance(statement: Statement, sentence: str, aligned: list[tuple[int, str]]) -> Iterator[CitationFinding]:
    level, word = hedge_level(sentence)
    if level < 2:
        return
    best = aligned[0][0]
    closest = [text for score, text in aligned if score >= best - 1]
    strongest = max(hedge_level(text)[0] for text in closest)
    # A plain assertion of the page is not weaker than « souvent »: only a page that hedges
    # (« peut », « parfois ») or says less than a universal is hardened.
    if 1 <= strongest < level and not any(f" {word} " in f" {t} " for t in closest):
        yield CitationFinding("nuance", statement, word)


def _meaning(
    statement: Statement, sentence: str, scored: list[tuple[int, str]], page_words: set[str]
) -> Iterator[CitationFinding]:
    own = {stem(word) for word in sentence.split()}
    aligned = [text for _, text in scored]
    for one, other in OPPOSITES if statement.strict else ():
        for said, opposite in ((one, other), (other, one)):
            # The page never says it, and says the opposite: a meaning reversed.
            if said in own and said not in page_words and opposite in page_words:
                yield CitationFinding("contresens", statement, f"« {said}… » où la page dit « {opposite}… »")
    for verb in _NEGATED.findall(sentence):
        if verb in _AUXILIARIES:
            continue
        verb_stem = stem(verb)
        affirmed = [t for t in aligned if verb_stem in {stem(w) for w in t.split()} and not _NEGATION_MARK.search(t)]
        if affirmed and len(verb) > 3:
            yield CitationFinding("contresens", statement, f"« ne {verb} pas » où la page l’affirme")
