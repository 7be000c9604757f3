"""Everyday conversation as data: ``knowledge/data/conversation.yaml``.

Greetings, thanks, identity, frustration, requests for a person, other
languages, plus the word lists the engine recognises (orientation, glossary
prefixes, skip/back/validate, yes/no, follow-ups). Validated at load time like
the rest of the knowledge, each error naming the file, the entry and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from knowledge.errors import KnowledgeErrors
from knowledge.text import normalise
from knowledge.validation import StrictCollector, read_yaml

INTENT_IDS = ("greeting", "thanks", "goodbye", "agreement", "identity", "confusion", "frustration", "human", "english", "other_language")
FOLLOWUP_KINDS = ("vigilance", "details", "example", "repeat", "difference", "lean")
_WORD_LISTS = (
    "english_words", "orientation_intents", "skip_words", "back_words", "validate_words",
    "yes_words", "no_words", "menu_words", "help_words", "handover_phrases", "small_talk_words",
    "form_choice", "form_choice_us", "compare_with",
)
#: Word lists a knowledge base may leave out.
_OPTIONAL_LISTS = ("small_talk_words", "form_choice", "form_choice_us", "compare_with")
#: Tools a message may ask for by name.
TOOL_IDS = ("orientation", "formes", "glossaire", "collectif")
_TEXT_LISTS = ("declined", "declined_again", "hedged", "suggest", "not_understood_in_step", "not_understood_choice")


@dataclass(frozen=True, slots=True)
class Intent:
    id: str
    phrases: frozenset[str]  # normalised whole messages
    contains: tuple[str, ...]  # normalised word sequences
    symbols: frozenset[str]
    replies: tuple[str, ...]
    #: One regex over every ``contains`` phrase, whole words only (built once: cheap per message).
    pattern: re.Pattern | None = None
    #: Phrases that also occur inside real questions (« un interlocuteur », « pas du tout »): they
    #: decide the message only when what is left of it names no topic.
    mentions: re.Pattern | None = None


@dataclass(frozen=True, slots=True)
class FormWords:
    topic: str
    words: tuple[str, ...]


@dataclass(slots=True)
class Conversation:
    intents: dict[str, Intent]
    words: dict[str, frozenset[str]]
    orientation_intents: tuple[str, ...]
    glossary_prefixes: tuple[str, ...]
    followups: dict[str, tuple[str, ...]]
    forms: tuple[FormWords, ...]
    contact_topic: str
    contacts: str
    contacts_source: str
    texts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: SMS spelling typed → (words read, normalised ; the same as written, for « J’ai compris : … »).
    sms: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: Tool id → phrases asking for it by name.
    tools: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Kind of fact (count, amount, date…) → phrases asking for it; gaps name the kinds they lack.
    fact_kinds: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Kind of fact → phrases that look like it but do not ask for it (« depuis quand » is not a deadline).
    fact_kinds_not: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Kind of fact → what the whole document never gives (« de montant en euros… »), said about any topic.
    document_gaps: dict[str, str] = field(default_factory=dict)
    #: Places the document does not speak of (normalised), « @lieux » in a gap's triggers.
    places: tuple[str, ...] = ()


def _phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern | None:
    if not phrases:
        return None
    alternatives = "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))
    return re.compile(rf"(?:^| )(?:{alternatives})(?= |$)")


def _normalised(check: StrictCollector, values: tuple[str, ...], entry: str, name: str) -> tuple[str, ...]:
    """Each phrase normalised, and also as a message typed with its apostrophes reads once normalised
    (« c est a dire » written in the data, « c'est-à-dire » typed → « est a dire »), unless that
    leaves a word too short to say anything on its own (« c est » → « est »)."""
    out = []
    for value in values:
        plain = normalise(value)
        if not plain:
            check.add(f"« {value} » ne contient aucun mot (utilisez « symbols » pour les signes)", entry, name)
            continue
        out.append(plain)
        typed = normalise(elided(value))
        if typed and typed != plain and (" " in typed or len(typed) >= 5):
            out.append(typed)
    return tuple(dict.fromkeys(out))


def load_conversation(path: Path, topics: set[str] | None = None) -> Conversation:
    """Read and validate the conversation file."""
    check = StrictCollector(path)
    raw = read_yaml(path)
    required: tuple[str, ...] = ("intents", "orientation_intents", "glossary_prefixes", "followups", "forms", "contact_topic",
                                 "contacts", "contacts_source", *_WORD_LISTS, *_TEXT_LISTS)
    if not isinstance(raw, dict):
        check.fields(raw, None, required)
        raise KnowledgeErrors(check.errors)
    # Go on after a missing or unknown top-level field, so one run reports every problem.
    extra = ("sms", "tools", "fact_kinds", "fact_kinds_not", "document_gaps", "places")
    required = tuple(name for name in required if name not in _OPTIONAL_LISTS)
    check.fields(raw, None, required, ("version", *_OPTIONAL_LISTS, *extra))
    sms = _sms(check, raw.get("sms"))
    tools = _phrase_lists(check, raw.get("tools"), "tools", TOOL_IDS)
    fact_kinds = _phrase_lists(check, raw.get("fact_kinds"), "fact_kinds", None)
    fact_kinds_not = _phrase_lists(check, raw.get("fact_kinds_not"), "fact_kinds_not", tuple(fact_kinds))
    document_gaps = _document_gaps(check, raw.get("document_gaps"), tuple(fact_kinds))
    places = _normalised(check, check.strings(raw, "conversation", "places", optional=True), "conversation", "places") if "places" in raw else ()
    raw = {name: raw.get(name) for name in (*required, *_OPTIONAL_LISTS) if name in raw}
    for name in _OPTIONAL_LISTS:
        raw.setdefault(name, [])
    for name in required:
        raw.setdefault(name, {} if name in ("glossary_prefixes", "followups") else [] if name != "contact_topic" else "")
    intents: dict[str, Intent] = {}
    items = raw["intents"] if isinstance(raw["intents"], list) else []
    if not items:
        check.add("liste d’intentions vide ou absente", None, "intents")
    for index, item in enumerate(items):
        entry = str(item.get("id")) if isinstance(item, dict) and item.get("id") else f"intents[{index + 1}]"
        if not check.fields(item, entry, ("id", "replies"), ("phrases", "contains", "mentions", "symbols")):
            continue
        if entry not in INTENT_IDS:
            check.add(f"intention inconnue (permises : {', '.join(INTENT_IDS)})", entry, "id")
        if entry in intents:
            check.add("intention en double", entry, "id")
        contains = _normalised(check, check.strings(item, entry, "contains", optional=True), entry, "contains")
        intents[entry] = Intent(
            id=entry,
            phrases=frozenset(_normalised(check, check.strings(item, entry, "phrases", optional=True), entry, "phrases")),
            contains=contains,
            symbols=frozenset(check.strings(item, entry, "symbols", optional=True)),
            replies=check.strings(item, entry, "replies", minimum=1),
            pattern=_phrase_pattern(contains),
            mentions=_phrase_pattern(_normalised(check, check.strings(item, entry, "mentions", optional=True), entry, "mentions")),
        )
    for missing in sorted(set(INTENT_IDS) - set(intents)):
        check.add("intention manquante", missing, "intents")

    words = {
        name: frozenset(_normalised(check, check.strings(raw, "conversation", name, minimum=1, optional=not raw[name]), "conversation", name))
        for name in _WORD_LISTS
    }
    orientation = _normalised(check, check.strings(raw, "conversation", "orientation_intents", minimum=1), "conversation", "orientation_intents")

    prefixes: tuple[str, ...] = ()
    gp = raw["glossary_prefixes"]
    if check.fields(gp, "glossary_prefixes", ("questions", "articles")):
        questions = check.strings(gp, "glossary_prefixes", "questions", minimum=1)
        articles = gp.get("articles")
        if not isinstance(articles, list) or not all(isinstance(a, str) for a in articles):
            check.add("liste de textes attendue (le texte vide est permis)", "glossary_prefixes", "articles")
            articles = []
        combined = {normalise(f"{q} {a}") + " " for q in questions for a in articles}
        prefixes = tuple(sorted((p for p in combined if p.strip()), key=len, reverse=True))

    followups: dict[str, tuple[str, ...]] = {}
    fu = raw["followups"]
    if check.fields(fu, "followups", FOLLOWUP_KINDS):
        for kind in FOLLOWUP_KINDS:
            followups[kind] = _normalised(check, check.strings(fu, "followups", kind, minimum=1), "followups", kind)

    forms: list[FormWords] = []
    for index, item in enumerate(raw["forms"] if isinstance(raw["forms"], list) else []):
        entry = f"forms[{index + 1}]"
        if not check.fields(item, entry, ("topic", "words")):
            continue
        topic = check.text(item, entry, "topic")
        if topics is not None and topic not in topics:
            check.add(f"sujet « {topic} » inexistant", entry, "topic")
        forms.append(FormWords(topic, _normalised(check, check.strings(item, entry, "words", minimum=1), entry, "words")))

    texts = {name: check.strings(raw, "conversation", name, minimum=1) for name in _TEXT_LISTS}
    contact_topic = check.text(raw, "conversation", "contact_topic")
    contacts = check.text(raw, "conversation", "contacts")
    contacts_source = check.text(raw, "conversation", "contacts_source")
    if check.errors:
        raise KnowledgeErrors(check.errors)
    return Conversation(
        intents=intents,
        words=words,
        orientation_intents=orientation,
        glossary_prefixes=prefixes,
        followups=followups,
        forms=tuple(forms),
        contact_topic=contact_topic,
        contacts=contacts,
        contacts_source=contacts_source,
        texts=texts,
        sms=sms,
        tools=tools,
        fact_kinds=fact_kinds,
        fact_kinds_not=fact_kinds_not,
        document_gaps=document_gaps,
        places=places,
    )


_UNELIDED = re.compile(r"\b(qu|[ldjmnstc]) (?=[a-z])")


def elided(phrase: str) -> str:
    """``phrase`` as a user's text reads once normalised: « combien d annees » → « combien d'annees »
    (whose elision :func:`~knowledge.text.normalise` removes)."""
    return _UNELIDED.sub(lambda m: m.group(1) + "'", phrase)


def _sms(check: StrictCollector, raw: object) -> dict[str, tuple[str, str]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        check.add("dictionnaire « forme tapée: mots lus » attendu", "conversation", "sms")
        return {}
    found = {}
    for typed, read in raw.items():
        if not isinstance(read, str) or not normalise(str(typed)) or not normalise(read):
            check.add(f"« {typed} » : texte attendu des deux côtés", "conversation", "sms")
            continue
        found[normalise(str(typed))] = (normalise(read), read.strip())
    return found


def _phrase_lists(check: StrictCollector, raw: object, name: str, allowed: tuple[str, ...] | None) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        check.add("dictionnaire « nom: [phrases] » attendu", "conversation", name)
        return {}
    found = {}
    for key in raw:
        if allowed is not None and key not in allowed:
            check.add(f"« {key} » inconnu (permis : {', '.join(allowed)})", name, str(key))
            continue
        phrases = check.strings(raw, name, str(key), minimum=1)
        found[str(key)] = _normalised(check, phrases, name, str(key))
    return found


def _document_gaps(check: StrictCollector, raw: object, kinds: tuple[str, ...]) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        check.add("dictionnaire « sorte de fait: ce que le document ne précise pas » attendu", "conversation", "document_gaps")
        return {}
    found = {}
    for kind, about in raw.items():
        if kind not in kinds:
            check.add(f"« {kind} » inconnu (permis : {', '.join(kinds)})", "document_gaps", str(kind))
        elif not isinstance(about, str) or not about.strip():
            check.add("texte attendu (il complète « Le document ne précise pas … »)", "document_gaps", str(kind))
        else:
            found[str(kind)] = about.strip()
    return found


@lru_cache(maxsize=512)
def _compiled(phrases: tuple[str, ...] | frozenset[str]) -> re.Pattern | None:
    return _phrase_pattern(tuple(phrases))


def phrase_pattern(phrases: tuple[str, ...] | frozenset[str]) -> re.Pattern | None:
    """The compiled pattern of a list of normalised phrases (whole words), shared with :func:`has_phrase`."""
    return _compiled(phrases)


def has_phrase(plain: str, phrases: tuple[str, ...] | frozenset[str]) -> bool:
    """Whether one of the normalised phrases occurs in ``plain`` as whole words (one compiled regex per list)."""
    pattern = _compiled(phrases)
    return pattern is not None and pattern.search(plain) is not None


def pick(options: tuple[str, ...], counter: int) -> str:
    """The wording to use this time: in turn, so the same sentence does not come back every time."""
    return options[counter % len(options)]

