"""Small talk with extra words: « super merci, à plus », « ok parfait », « d'accord je vois », « pff ».

A message is cut into small-talk phrases (the intents' own phrases of ``conversation.yaml`` and
its ``small_talk_words`` fillers) at its start and at its end; what remains in the middle is
the content. A message with no content is small talk (the intent of its most telling phrase);
a message with content is a question, whatever courtesy surrounds it.
"""

from __future__ import annotations

from dataclasses import dataclass

from knowledge.conversation import Conversation

#: When a message holds several small-talk phrases, the one that says most decides the reply.
PRIORITY = ("frustration", "goodbye", "thanks", "agreement", "greeting")
#: Intents whose phrases may be cut off a question (« quoi », « help » of the confusion would eat questions).
_CUT = PRIORITY


@dataclass(frozen=True, slots=True)
class SmallTalk:
    """The small-talk intent of a message (None when it has none), and its content words."""

    intent: str | None
    content: str
    phrases: tuple[tuple[str, str], ...] = ()  # (intent or « filler », phrase) cut off


def split(plain: str, phrases: dict[str, str]) -> SmallTalk:
    """Cut small-talk phrases (from :func:`phrases`) off both ends of ``plain`` (normalised)."""
    words = plain.split()
    longest = max((len(p.split()) for p in phrases), default=0)
    cut: list[tuple[str, str]] = []
    start, end = 0, len(words)
    changed = True
    while changed and start < end:
        changed = False
        for size in range(min(longest, end - start), 0, -1):
            head = " ".join(words[start : start + size])
            if head in phrases:
                cut.append((phrases[head], head))
                start += size
                changed = True
                break
        if changed or start >= end:
            continue
        for size in range(min(longest, end - start), 0, -1):
            tail = " ".join(words[end - size : end])
            if tail in phrases:
                cut.append((phrases[tail], tail))
                end -= size
                changed = True
                break
    content = " ".join(words[start:end])
    intents = [intent for intent, _ in cut if intent != "filler"]
    if content or not intents:
        return SmallTalk(None, content or plain, tuple(cut))
    return SmallTalk(telling(intents), "", tuple(cut))


def telling(intents: list[str]) -> str:
    """The intent that says most among those of a message's small-talk phrases."""
    return min(intents, key=lambda i: PRIORITY.index(i) if i in PRIORITY else len(PRIORITY))


def phrases(talk: Conversation) -> dict[str, str]:
    """Normalised phrase → intent (or « filler ») of everything that may surround a question."""
    found: dict[str, str] = {word: "filler" for word in talk.words.get("small_talk_words", ())}
    for intent in reversed(_CUT):
        if intent in talk.intents:
            found.update({phrase: intent for phrase in talk.intents[intent].phrases})
    return found
