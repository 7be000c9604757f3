"""Compare the knowledge files with the reference document (``ptce-bot kb check --against FILE.txt``).

Three checks keep the knowledge honest:

1. **Facts** — every number (years, dates, percentages included) and every
   capitalised proper noun or acronym written in a knowledge file must occur in
   the document, or be listed in ``source_exceptions.yaml`` with a reason.
2. **Own words** — no run of :data:`COPY_RUN` words or more may be copied from
   the document (key terms and short lists may keep its vocabulary; longer
   accepted quotations are listed in the exceptions file).
3. **Citations** — every cited statement is checked against the page it cites (numbers,
   proportions, hedges, meaning, key terms): see :mod:`knowledge.fact_check`.
4. **Promises** — a topic's example questions and keywords must not point at
   content the document does not have. The heuristic: a content word of the
   question that is rare in French, absent from the document, from the topic's
   own answer and from the lexicon, and not a typo, suggests the question asks
   about something else (a SCIC's colleges, a steering committee's members…).
   Such a word is either removed, declared in the topic's ``not_covered``
   triggers (the bot then says « le document ne précise pas »), or accepted in
   the exceptions file with a reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from knowledge.loader import EXCEPTIONS_FILE
from knowledge.text import normalise, stem
from knowledge.validation import Collector, read_yaml

#: A run of this many words found in the document counts as copied.
COPY_RUN = 12
#: Words sharing a stem with one of this many most frequent French words are everyday language, not content.
EVERYDAY_RANK = 10_000
#: Fields that hold identifiers, references or logic, not text a person reads or types.
_NOT_TEXT = frozenset({
    "id", "topic", "topics", "related", "chapter", "chapters", "when", "recommend", "kind", "result", "mode",
    "assumes", "shown", "route", "revisit", "why",  # synthesis logic and the notes of its contradiction scan
})  # fmt: skip
#: Fields that hold what users type (example questions, keywords, trigger words).
_TYPED = frozenset({"questions", "keywords", "triggers", "aliases"})

_NUMBER = re.compile(r"\d+(?:[,.]\d+)?(?:\s?%)?")
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
_SENTENCE_END = tuple(".!?:;…—–-•(\n")


@dataclass(frozen=True, slots=True)
class Text:
    """One string of a knowledge file and where it sits."""

    file: str
    entry: str
    field: str
    text: str


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # "valeur", "copie", "citation", "non couvert" or "promesse"
    where: Text
    value: str

    def describe(self) -> str:
        place = f"{self.where.file}, entrée « {self.where.entry} », champ « {self.where.field} »"
        if self.kind == "valeur":
            return f"{place} : « {self.value} » n’apparaît pas dans le document"
        if self.kind == "copie":
            return f"{place} : passage recopié du document (« {self.value} »)"
        if self.kind == "citation":
            return self.value
        if self.kind == "non couvert":
            return f"{place} : « {self.where.text} » demande ce que le sujet dit ne pas couvrir ({self.value})"
        return f"{place} : « {self.where.text} » évoque « {self.value} », que le document n’aborde pas"


@dataclass(slots=True)
class Exceptions:
    """What the experts accept although the document does not contain it, each with a reason."""

    values: dict[str, str] = field(default_factory=dict)  # casefolded value -> reason
    words: dict[str, str] = field(default_factory=dict)  # normalised word -> reason
    passages: dict[str, str] = field(default_factory=dict)  # normalised passage -> reason
    citations: dict[str, str] = field(default_factory=dict)  # « entry › value » -> reason
    used: set[str] = field(default_factory=set)

    def unused(self) -> list[str]:
        found = [f"valeur « {v} »" for v in self.values if f"v:{v}" not in self.used]
        found += [f"mot « {w} »" for w in self.words if f"w:{w}" not in self.used]
        found += [f"passage « {p[:60]} »" for p in self.passages if f"p:{p}" not in self.used]
        found += [f"citation « {c} »" for c in self.citations if f"c:{c}" not in self.used]
        return found


@dataclass(slots=True)
class Report:
    findings: list[Finding]
    unused_exceptions: list[str]
    texts: int

    @property
    def problems(self) -> list[Finding]:
        """Findings that fail the check; a « promesse » is a heuristic hint for a person to review."""
        return [finding for finding in self.findings if finding.kind != "promesse"]

    @property
    def hints(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.kind == "promesse"]

    @property
    def clean(self) -> bool:
        return not self.problems


def load_exceptions(path: Path) -> Exceptions:
    """Read the accepted exceptions (see docs/knowledge-base.md); a missing file means none."""
    exceptions = Exceptions()
    if not path.exists():
        return exceptions
    check = Collector(path)
    raw = read_yaml(path) or {}
    same: Callable[[str], str] = str
    sections: dict[str, tuple[str, dict[str, str], Callable[[str], str]]] = {
                "values": ("values", exceptions.values, str.casefold),
                "words": ("words", exceptions.words, normalise),
                "passages": ("passages", exceptions.passages, normalise),
                "citations": ("found", exceptions.citations, same)}
    if check.fields(raw, None, (), tuple(sections), strict=True):
        for name, (items, target, key) in sections.items():
            for index, item in enumerate(raw.get(name) or []):
                entry = f"{name}[{index + 1}]"
                if not check.fields(item, entry, (items, "reason"), strict=True):
                    continue
                reason = check.text(item, entry, "reason")
                values = item[items]
                if not isinstance(values, list) or not values:
                    check.add("une liste non vide est attendue", entry, items, f"écrivez « {items}: [\"…\", \"…\"] »")
                    continue
                for value in values:
                    target[key(str(value))] = reason
    check.raise_if_any()
    return exceptions


# --------------------------------------------------------------------------- reading the knowledge


def knowledge_texts(data_dir: Path) -> Iterator[Text]:
    """Every string of every knowledge file, with its entry and field."""
    for path in sorted(Path(data_dir).rglob("*.yaml")):
        if path.name == EXCEPTIONS_FILE:
            continue
        name = str(path.relative_to(data_dir))
        yield from _walk(name, read_yaml(path), "", "")


def _walk(file: str, value: Any, entry: str, where: str) -> Iterator[Text]:
    if isinstance(value, str):
        yield Text(file, entry or "(fichier)", where or "(texte)", value)
    elif isinstance(value, dict):
        ident = value.get("id") or value.get("term")
        if isinstance(ident, str):
            entry, where = ident, ""
        for key, item in value.items():
            holds_entries = isinstance(item, list) and any(isinstance(i, dict) for i in item)
            if str(key) in _NOT_TEXT and not holds_entries:
                continue
            yield from _walk(file, item, entry, f"{where}.{key}" if where else str(key))
            if file.startswith("lexicon") and isinstance(key, str):
                yield Text(file, entry or "(fichier)", "synonyms", key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            label = where if isinstance(item, dict) else f"{where}[{index + 1}]"
            yield from _walk(file, item, entry, label)


def _field_name(where: str) -> str:
    """``questions[3]`` → ``questions``; ``not_covered.triggers[2]`` → ``triggers``."""
    return re.sub(r"\[\d+\]$", "", where).rsplit(".", 1)[-1]


# --------------------------------------------------------------------------- the document


@dataclass(frozen=True, slots=True)
class Source:
    numbers: frozenset[str]
    words: frozenset[str]  # casefolded, apostrophes split
    stems: frozenset[str]  # stems of the normalised words
    runs: frozenset[tuple[str, ...]]  # every COPY_RUN-word run, normalised

    @classmethod
    def read(cls, path: Path) -> Source:
        text = Path(path).read_text(encoding="utf-8")
        words = normalise(text).split()
        return cls(
            numbers=frozenset(_numbers(text)),
            words=frozenset(w.casefold() for w in _WORD.findall(_apostrophes(text))),
            stems=frozenset(stem(w) for w in words),
            runs=frozenset(tuple(words[i : i + COPY_RUN]) for i in range(len(words) - COPY_RUN + 1)),
        )

    def knows(self, name: str) -> bool:
        key = name.casefold()
        return key in self.words or stem(normalise(name)) in self.stems


def _apostrophes(text: str) -> str:
    return re.sub(r"['’`´]", " ", text)


def _numbers(text: str) -> list[str]:
    return [re.sub(r"\s", "", n).replace(",", ".") for n in _NUMBER.findall(text)]


def _proper_nouns(text: str) -> Iterator[str]:
    """Capitalised words that are not merely the first word of a sentence, and acronyms."""
    text = _apostrophes(text)
    for match in _WORD.finditer(text):
        word = match.group()
        if len(word) < 2 or not any(c.isupper() for c in word):
            continue
        inner_capital = any(c.isupper() for c in word[1:])
        if word[0].isupper() and not inner_capital:
            before = text[: match.start()].rstrip(" \u00a0\t*«»\"")
            if not before or before.endswith(_SENTENCE_END):
                continue
        yield word


# --------------------------------------------------------------------------- the checks


def check_against(
    data_dir: Path, source_path: Path, exceptions: Exceptions | None = None, *, promises: bool = True
) -> Report:
    """All the checks; ``promises=False`` leaves out the heuristic on typed questions (mutation test)."""
    data_dir = Path(data_dir)
    source = Source.read(source_path)
    if exceptions is None:
        exceptions = load_exceptions(data_dir / EXCEPTIONS_FILE)
    findings: list[Finding] = []
    texts = list(knowledge_texts(data_dir))
    for item in texts:
        findings.extend(_facts(item, source, exceptions))
        if _field_name(item.field) not in _TYPED:
            findings.extend(_copies(item, source, exceptions))
    findings.extend(_citations(data_dir, source_path, exceptions))
    if promises:
        findings.extend(_promises(data_dir, source, exceptions))
    return Report(findings, exceptions.unused(), len(texts))


def _citations(data_dir: Path, source_path: Path, exceptions: Exceptions) -> Iterator[Finding]:
    from knowledge.document_pages import NoRunningHeaders, PageMapError
    from knowledge.fact_check import check_citations, read_paged

    used: set[str] = set()
    try:
        paged = read_paged(source_path, data_dir)
    except NoRunningHeaders:
        return  # a text without pages (an excerpt): only the checks above apply
    except PageMapError as error:
        yield Finding("citation", Text("document.yaml", "unheaded_pages", "pages", ""), f"découpage en pages : {error}")
        return
    found = check_citations(data_dir, paged, exceptions.citations, used)
    exceptions.used.update(f"c:{key}" for key in used)
    for finding in found:
        s = finding.statement
        yield Finding("citation", Text(s.file, s.entry, s.field, s.text), finding.describe())


def _facts(item: Text, source: Source, exceptions: Exceptions) -> Iterator[Finding]:
    seen: set[str] = set()
    values = [n for n in _numbers(item.text) if n not in source.numbers]
    values += [w for w in _proper_nouns(item.text) if not source.knows(w)]
    for value in values:
        key = value.casefold()
        if key in seen:
            continue
        seen.add(key)
        if key in exceptions.values:
            exceptions.used.add(f"v:{key}")
            continue
        yield Finding("valeur", item, value)


def _copies(item: Text, source: Source, exceptions: Exceptions) -> Iterator[Finding]:
    text = normalise(item.text)
    for passage in exceptions.passages:
        if passage in text:
            exceptions.used.add(f"p:{passage}")
            text = text.replace(passage, " | ")
    words = text.split()
    index = 0
    while index <= len(words) - COPY_RUN:
        if tuple(words[index : index + COPY_RUN]) in source.runs:
            end = index + COPY_RUN
            while end < len(words) and tuple(words[end - COPY_RUN + 1 : end + 1]) in source.runs:
                end += 1
            yield Finding("copie", item, " ".join(words[index:end]))
            index = end
        else:
            index += 1


def _promises(data_dir: Path, source: Source, exceptions: Exceptions) -> Iterator[Finding]:
    from knowledge.gaps import Gaps
    from knowledge.loader import load_knowledge

    kb = load_knowledge(data_dir, with_flows=False)
    words = _Words(kb.lexicon)
    lexicon = {stem(w) for pair in kb.lexicon.synonyms.items() for phrase in pair for w in phrase.split()}
    everyday = _everyday_stems()
    gaps_of = Gaps(kb, kb.conversation.fact_kinds)
    for topic in kb.topics.values():
        own = {stem(w) for w in words(_answer(topic))}
        triggers = {normalise(trigger): gap.about for gap in topic.not_covered for trigger in gap.triggers}
        declared = {w for trigger in triggers for w in trigger.split()}
        precise = gaps_of.by_topic.get(topic.id, ())
        for name, typed in (("questions", topic.questions), ("keywords", topic.keywords)):
            for index, text in enumerate(typed):
                where = Text("topics.yaml", topic.id, f"{name}[{index + 1}]", text)
                plain = f" {normalise(text)} "
                # A gap fires on its topic's kind of fact and its words (knowledge.gaps), not on a word alone.
                gaps = [gap.about for gap in precise if gap.fits(plain.strip())]
                if name == "questions" and gaps:
                    # The topic itself says the document does not cover this: the example misleads the matcher.
                    yield Finding("non couvert", where, gaps[0])
                    continue
                for word in words(text):
                    if (
                        len(word) < 4
                        or word.isdigit()
                        or word in _ELISION_STUMPS
                        or word in declared
                        or stem(word) in everyday
                        or {stem(word)} & (source.stems | own | lexicon)
                        or _is_typo(word)
                    ):
                        continue
                    if word in exceptions.words:
                        exceptions.used.add(f"w:{word}")
                        continue
                    yield Finding("promesse", where, word)


class _Words:
    """The words of a question as the knowledge sees them: normalised, lexicon synonyms rewritten, no stopwords."""

    def __init__(self, lexicon) -> None:
        from knowledge.text import BASE_STOPWORDS

        self._synonyms = dict(lexicon.synonyms)
        self._stopwords = BASE_STOPWORDS | lexicon.stopwords
        variants = sorted(self._synonyms, key=len, reverse=True)
        self._pattern = re.compile(r"\b(" + "|".join(map(re.escape, variants)) + r")\b") if variants else None

    def __call__(self, text: str) -> list[str]:
        text = normalise(text)
        if self._pattern is not None:
            text = self._pattern.sub(lambda m: self._synonyms[m.group(1)], text)
        return [word for word in text.split() if word not in self._stopwords]


#: What remains of « quelqu’un », « aujourd’hui »… once the apostrophe is cut.
_ELISION_STUMPS = frozenset({"quelqu", "aujourd", "presqu"})


def _is_typo(word: str) -> bool:
    """A deliberate misspelling in an example question (« vienent », « inovation »), not a new notion."""
    import difflib

    dictionary = _dictionary()
    if word in dictionary:
        return False
    near = [w for w in dictionary.get_prefix(word[:2]) if abs(len(w) - len(word)) <= 2]
    return bool(difflib.get_close_matches(word, near, n=1, cutoff=0.85))


class _Dictionary(frozenset):
    """Accent-free French words, with a lookup by their first two letters."""

    def get_prefix(self, prefix: str) -> list[str]:
        return self._by_prefix.get(prefix, [])  # type: ignore[attr-defined]


@cache
def _dictionary() -> _Dictionary:
    words = {normalise(word) for word in _frequencies()}
    dictionary = _Dictionary(w for w in words if w and " " not in w)
    by_prefix: dict[str, list[str]] = {}
    for word in dictionary:
        by_prefix.setdefault(word[:2], []).append(word)
    object.__setattr__(dictionary, "_by_prefix", by_prefix)
    return dictionary


@cache
def _frequencies() -> dict[str, int]:
    from spellchecker import SpellChecker

    return dict(SpellChecker(language="fr", distance=1).word_frequency.dictionary)


def _answer(topic) -> str:
    return " ".join((topic.title, topic.short, topic.details, *topic.vigilance))


@cache
def everyday_stems(rank: int = EVERYDAY_RANK) -> frozenset[str]:
    """Stems of the ``rank`` most frequent French words (pyspellchecker's frequency list)."""
    ranked = sorted(_frequencies().items(), key=lambda item: -item[1])[:rank]
    return frozenset(stem(normalise(word)) for word, _ in ranked)


def _everyday_stems() -> frozenset[str]:
    return everyday_stems(EVERYDAY_RANK)
