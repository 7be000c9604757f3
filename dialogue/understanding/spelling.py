"""SMS spelling and typos, corrected against the knowledge base's own vocabulary.

Two passes over the normalised words: the SMS forms of ``conversation.yaml`` (``sms:``,
« cmt » → « comment », « koi » → « quoi »), then each remaining word the knowledge base does
not know is corrected to its closest known word (the matcher's analyzer, which never touches
a French dictionary word). What was changed is kept, so that the reply can say what it
understood when much was corrected.
"""

from __future__ import annotations

from dataclasses import dataclass

from knowledge.analyzer import Analyzer


@dataclass(frozen=True, slots=True)
class Spelling:
    """The words as typed, the words understood, and each (typed, understood) change."""

    typed: str
    text: str
    changes: tuple[tuple[str, str], ...]
    #: The text understood as a person would write it (« c'est » rather than « est »).
    shown: str = ""

    @property
    def much(self) -> bool:
        """Enough changed that the reply should say what it understood."""
        words = len(self.text.split()) or 1
        return len(self.changes) >= 2 and len(self.changes) * 4 >= words


def correct(plain: str, sms: dict[str, tuple[str, str]], analyzer: Analyzer) -> Spelling:
    """``plain`` (normalised) with its SMS forms expanded and its typos corrected."""
    out: list[str] = []
    shown: list[str] = []
    changes: list[tuple[str, str]] = []
    known = analyzer.known_words
    for word in plain.split():
        glued = _unglued(word, known)
        fixed, written = sms.get(word) or ((glued, glued) if glued else (analyzer.correct(word),) * 2)
        if fixed != word:
            changes.append((word, written))
        if fixed:
            out.append(fixed)
        shown.append(written)
    return Spelling(plain, " ".join(out), tuple(changes), " ".join(shown))


def _unglued(word: str, known: frozenset[str]) -> str | None:
    """« lanimation », « lassociation », « quil »: an elision typed without its apostrophe, when the
    rest is a word of the knowledge (the elided letter carries nothing once normalised)."""
    if word in known or len(word) < 5:
        return None
    for size in (2, 1):
        head, rest = word[:size], word[size:]
        if (head == "qu" if size == 2 else head in "ldjmnst") and rest in known:
            return rest
    return None
