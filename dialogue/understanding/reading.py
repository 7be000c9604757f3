"""One reading of a free message, the same for every channel and for ``ptce-bot ask``.

In order: normalise and correct the spelling; split small talk from content; detect what
the user *named* (a tool, legal forms, a glossary term, a comparison, a missing kind of
fact); then the matcher's topic; context (the topic being read) only fills what the
message leaves out. Every stage writes a line to :attr:`Reading.steps`
(``ptce-bot ask --explain``). Pure: no storage, no state machine, nothing imported that
``ptce-bot ask`` would pay for at start-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dialogue.understanding import talk as small_talk
from dialogue.understanding.spelling import Spelling, correct
from knowledge.conversation import Conversation, has_phrase, phrase_pattern
from knowledge.gaps import Gap, Gaps
from knowledge.loader import GlossaryTerm, KnowledgeBase
from knowledge.matcher import Match, Matcher
from knowledge.text import BASE_STOPWORDS, normalise

#: Decisions, in the order they are tried.
DECISIONS = ("small_talk", "tool", "compare", "gap", "followup", "glossary", "topic")
#: Words of a question asking something of its own.
_ASKING = ("comment", "pourquoi", "qui", "quoi", "quel", "quelle", "quels", "quelles", "ou", "est ce", "que", "qu")
#: Tiers at which the matcher's topic is the question's own subject, whatever the context.
_OWN_TIERS = ("confident", "hedged")


@dataclass(frozen=True, slots=True)
class ReadingContext:
    """What the conversation says before this message: the topic being read, the one before, in a flow or not."""

    current: str | None = None
    previous: str | None = None
    in_flow: bool = False


@dataclass(slots=True)
class Reading:
    text: str
    plain: str
    spelling: Spelling
    decision: str = "topic"
    intent: str | None = None  # small talk
    content: str = ""  # the understood words without small talk around them
    tool: str | None = None
    forms: tuple[str, ...] = ()  # topics of the legal forms named
    compare: tuple[str, str] | None = None
    gap: Gap | None = None
    followup: str | None = None
    term: GlossaryTerm | None = None
    match: Match | None = None
    steps: list[str] = field(default_factory=list)

    @property
    def understood(self) -> str:
        return self.spelling.text

    def step(self, line: str) -> None:
        self.steps.append(line)


class Reader:
    """Reads messages against one knowledge base (built once per knowledge base: :meth:`for_knowledge`)."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.talk: Conversation = kb.conversation
        self.matcher = Matcher.for_knowledge(kb)
        self.gaps = Gaps(kb, self.talk.fact_kinds)
        self.phrases = small_talk.phrases(self.talk)
        self.glossary_names = {normalise(name): term for term in kb.glossary for name in (term.term, *term.aliases)}
        self.glossary_prefix = re.compile("|".join(re.escape(p) for p in self.talk.glossary_prefixes) or r"(?!)")
        self.stopwords = BASE_STOPWORDS | kb.lexicon.stopwords
        self._pages: dict[str, frozenset[str]] | None = None  # built on first use (start-up is benchmarked)
        self.main_topics = frozenset(q.topics[0] for q in kb.document.intro_questions)
        #: One-word phrases of the intents that may be mistyped by a letter (long enough not to collide).
        self.single_words = {
            name: tuple(p for p in self.talk.intents[name].phrases if " " not in p and len(p) >= 5)
            for name in small_talk.PRIORITY
            if name in self.talk.intents
        }
        self.subject = tuple(sorted(kb.lexicon.subject_terms | {v for v, c in kb.lexicon.synonyms.items() if c in kb.lexicon.subject_terms}))
        # Compile the phrase lists now rather than inside a user's first message.
        for phrases in (self.talk.orientation_intents, *self.talk.followups.values(), *self.talk.tools.values(), *(f.words for f in self.talk.forms)):
            has_phrase("", phrases)

    @classmethod
    def for_knowledge(cls, kb: KnowledgeBase) -> Reader:
        return kb.shared(cls)

    # ------------------------------------------------------------------ the pipeline

    def read(self, text: str, context: ReadingContext | None = None) -> Reading:
        context = context or ReadingContext()
        plain = normalise(text)
        spelling = correct(plain, self.talk.sms, self.matcher.analyzer)
        reading = Reading(text, plain, spelling)
        reading.step(f"normalisé : « {plain} »")
        if spelling.changes:
            fixed = ", ".join(f"{a} → {b}" for a, b in spelling.changes)
            reading.step(f"orthographe corrigée ({fixed}) : « {spelling.text} »")
        understood = spelling.text
        intent = self.intent(text, understood)
        split = small_talk.split(understood, self.phrases)
        reading.content = split.content if intent is None else ""
        if split.phrases:
            reading.step("politesse écartée : " + ", ".join(f"« {p} » ({i})" for i, p in split.phrases))
        intent = intent or split.intent
        if intent is not None:
            reading.intent, reading.decision = intent, "small_talk"
            reading.step(f"décision : échange courant ({intent})")
            return reading
        content = reading.content
        reading.step(f"contenu : « {content} »")
        if not context.in_flow:
            tool = next((name for name, phrases in self.talk.tools.items() if has_phrase(content, phrases)), None)
            forms = tuple(form.topic for form in self.talk.forms if has_phrase(content, form.words))
            words = self.talk.words
            if tool is None and has_phrase(content, words.get("form_choice", frozenset())) and (
                len(forms) >= 2 or (forms and has_phrase(content, words.get("form_choice_us", frozenset())))
            ):
                tool = "formes"  # « pour nous c'est quoi le mieux, asso ou scic ? »: a choice only the guide can make
                reading.forms = forms
            if tool is not None:
                reading.tool, reading.decision = tool, "tool"
                reading.step(f"décision : outil demandé par son nom ({tool})")
                return reading
        courtesy = any(intent not in ("filler", "greeting") for intent, _ in split.phrases)
        # The matcher reads the message as typed when nothing was corrected or cut but a greeting:
        # it knows openings (« Bonjour, je suis élu, … ») by their punctuation.
        reading.match = match = self.matcher.match(content if spelling.changes or courtesy else text)
        reading.step(_describe(match))
        reading.forms = tuple(form.topic for form in self.talk.forms if has_phrase(content, form.words))
        if reading.forms:
            reading.step("formes juridiques nommées : " + ", ".join(reading.forms))
        if match.tier == "declined" and len(reading.forms) == 1:
            # « quels arguments en faveur de la SCIC ? »: the form named is the subject, said with care.
            reading.match = match = Match(reading.forms[0], match.score, match.alternatives, False, "hedged")
            reading.step(f"sujet nommé sans score suffisant : {reading.forms[0]} (réponse prudente)")
        own = match.topic if match.tier in _OWN_TIERS else None
        if self._compare(reading, context, own):
            return reading
        # The question's own subject first (the matcher's first topic, even unsure: a gap also
        # needs the missing kind of fact); the topic being read only when it names none.
        about = [*reading.forms, *([match.topic] if match.topic else [])]
        # « et le capital ? » while reading about the SCIC (no question of its own: « comment trouver
        # des partenaires » asks what the page says).
        short = own is None and context.current is not None and len(content.split()) <= 4 and not has_phrase(content, _ASKING)
        if own is None and context.current:
            about.append(context.current)
            reading.step(f"sujet pris dans le contexte : {context.current}")
        elif about:
            reading.step("sujet nommé : " + ", ".join(dict.fromkeys(about)))
        reading.gap = self.gaps.find(content, dict.fromkeys(about))
        if reading.gap is None and short and context.current is not None:
            # « et le capital ? » while reading about the SCIC: the topic's own words are enough.
            reading.gap = self.gaps.find(content, [context.current], worded=True, loose=True)
        if reading.gap is None:
            # A gap worded with its topic's own words (« à l'étranger », « combien de PTCE existent »,
            # « où se trouve La Californie ») may still be recognised: the closest topics and the
            # page being read first; any topic when the matcher found no subject of its own, or the
            # message names the subject itself (PTCE).
            ranked = [c.topic for c in match.alternatives] if match.tier != "confident" else []
            if context.current:
                ranked.append(context.current)
            if match.tier in ("suggest", "declined") or has_phrase(content, self.subject):
                ranked += list(self.kb.topics)
            reading.gap = self.gaps.find(content, dict.fromkeys(ranked), worded=True)
        if reading.gap is None and about:
            reading.gap = self.gaps.document_wide(content, about[0])
        if reading.gap is not None:
            reading.decision = "gap"
            reading.step(f"décision : le document ne précise pas ({reading.gap.topic_id} ; demande : {', '.join(reading.gap.kinds) or 'mots'})")
            return reading
        # The matcher's closest subject, even unsure, when it is another page than the one read.
        best = match.alternatives[0] if match.topic is None and match.alternatives else match
        elsewhere = getattr(best, "topic", None) if best.score >= 0.9 else None
        followup = self._followup(content, context, own, elsewhere)
        if followup is not None:
            reading.followup, reading.decision = followup, "followup"
            reading.step(f"décision : suite du sujet en cours {context.current} ({followup})")
            return reading
        reading.term = self.term(content)
        if reading.term is not None:
            reading.decision = "glossary"
            reading.step(f"décision : terme du glossaire « {reading.term.term} »")
            return reading
        courteous = [i for i, _ in split.phrases if i != "filler"]
        # Never a question mark: « ça marche comment concrètement ? » asks something, however unclear;
        # « merci pour votre réponse » is not a question about where the answers come from.
        unsure = "?" not in text and (match.tier in ("declined", "suggest") or (match.tier == "hedged" and len(content.split()) <= 3))
        if courteous and unsure and (match.tier == "declined" or len(content.split()) <= 3 or courteous == ["greeting"]):
            # « Bonjour ! je travaille dans un centre social » introduces the user: greet and listen.
            # « merci pour ces éléments », « ok jvois », « nan je rigole, merci »: courtesy around
            # words that name nothing the document covers is courtesy, not an unknown question.
            reading.intent, reading.decision = small_talk.telling(courteous), "small_talk"
            reading.step(f"décision : échange courant ({reading.intent}), le reste ne nomme aucun sujet")
            return reading
        reading.decision = "topic"
        reading.step(f"décision : sujet du moteur ({match.tier})")
        return reading

    # ------------------------------------------------------------------ stages

    def intent(self, text: str, plain: str) -> str | None:
        """Small talk recognised on the whole message (another script, signs, set phrases)."""
        intents = self.talk.intents
        letters = [c for c in text if c.isalpha()]
        if letters and sum(1 for c in letters if ord(c) > 0x24F) * 2 > len(letters):
            return "other_language"
        stripped = "".join(text.split()).casefold()
        for intent in intents.values():
            # Signs, and words written with signs (« a+ », « @+ »), before normalising drops the signs.
            if intent.symbols and stripped and _made_of(stripped, intent.symbols):
                return str(intent.id)
        if not plain:
            return "confusion"
        for intent in intents.values():
            if plain in intent.phrases:
                return str(intent.id)
        if " " not in plain and len(plain) >= 5:
            # One word mistyped (« bonjours », « mersi »): a letter off a greeting or a thanks.
            near = next((i for i, words in self.single_words.items() if any(_one_edit(plain, w) for w in words)), None)
            if near is not None:
                return near
        for name in ("human", "identity", "frustration"):
            pattern = intents[name].pattern
            if pattern is not None and pattern.search(plain):
                return name
        for name in ("human", "identity", "frustration"):
            mentions = intents[name].mentions
            if mentions is not None and mentions.search(plain) and not self._names_a_topic(mentions.sub(" ", plain)):
                return name
        tokens = plain.split()
        if len(tokens) >= 2 and not any(ord(c) > 0x24F and c.isalpha() for c in text):
            english = sum(1 for t in tokens if t in self.talk.words["english_words"])
            if english >= 2 and english * 3 >= len(tokens) * 2:
                return "english"
        return None

    def _names_a_topic(self, rest: str) -> bool:
        """Whether what is left around a phrase like « un interlocuteur » is a question of its own."""
        words = rest.split()
        return len(words) >= 2 and self.matcher.match(" ".join(words)).tier != "declined"

    def _on_page(self, content: str, topic_id: str) -> bool:
        """Whether ``content`` uses a word only a few pages use, one of them the page ``topic_id``."""
        if self._pages is None:
            self._pages = _distinctive_words(self.kb, self.matcher.analyzer)
        words = {w for w in self.matcher.analyzer.terms(content, correct=False) if len(w) >= 5}
        return bool(words & self._pages.get(topic_id, frozenset()))

    def _rest(self, content: str, phrases: tuple[str, ...]) -> list[str]:
        """The words of ``content`` that say something, once ``phrases`` are taken out."""
        pattern = phrase_pattern(phrases)
        return [w for w in (pattern.sub(" ", content) if pattern else content).split() if w not in self.stopwords]

    def term(self, plain: str) -> GlossaryTerm | None:
        """The glossary term a normalised question names, alone or after « c'est quoi », « que veut dire »…"""
        term = self.glossary_names.get(plain)
        if term is None:
            prefix = self.glossary_prefix.match(plain)
            if prefix:
                term = self.glossary_names.get(plain[prefix.end() :].strip())
        return term

    def _compare(self, reading: Reading, context: ReadingContext, own: str | None) -> bool:
        """« la différence entre X et Y ? »: the two things named, else one named and the one being read, else the last two read."""
        content = reading.content
        if not has_phrase(content, self.talk.followups["difference"]):
            return False
        forms = reading.forms
        pair: tuple[str, str] | None = None
        if len(forms) >= 2:
            # The form the question is mostly about first (« la scic, quelle différence avec une asso »).
            first = own if own in forms else forms[0]
            pair = (first, next(f for f in forms if f != first))
            reading.step("comparaison : les deux formes nommées")
        elif own is not None and context.current and own != context.current and has_phrase(content, self.talk.words.get("compare_with", frozenset())):
            # « quelle différence avec le portage par une structure existante ? »: the page read and the one named.
            pair = (context.current, own)
            reading.step("comparaison : le sujet en cours et celui nommé après « avec »")
        elif own is not None and own not in (context.current, context.previous):
            reading.step(f"comparaison : le sujet nommé {own} passe avant le contexte")
            return False  # the topic named answers the comparison (« PTCE de filière ou de territoire »)
        elif len(forms) == 1 and context.current and context.current != forms[0]:
            pair = (context.current, forms[0])
            reading.step("comparaison : la forme nommée et le sujet en cours")
        elif context.current and context.previous and context.current != context.previous and len(content.split()) <= 9:
            pair = (context.current, context.previous)
            reading.step("comparaison : les deux derniers sujets lus (rien de nommé)")
        if pair is None:
            return False
        reading.compare, reading.decision = pair, "compare"
        reading.step(f"décision : comparaison {pair[0]} / {pair[1]}")
        return True

    def _followup(self, content: str, context: ReadingContext, own: str | None, elsewhere: str | None = None) -> str | None:
        """A short follow-up about the topic being read, when the message names no other subject."""
        current = context.current
        tokens = content.split()
        if current is None or (own is not None and own != current and len(tokens) > 4):
            return None
        followups = self.talk.followups
        if len(tokens) > 9:
            return None
        stripped = content[3:] if content.startswith("et ") else content
        other = next((f.topic for f in self.talk.forms if f.topic != current and has_phrase(content, f.words)), None)
        if other and len(tokens) <= 7 and current in _legal_topics(self.talk):
            return "form"
        if own is None and elsewhere is None and len(tokens) <= 8 and self._on_page(content, current):
            # « genre une étude de faisabilité ? » while reading the technical functions: words of that page.
            return "lean"
        if has_phrase(content, followups["vigilance"]) and len(tokens) <= 7:
            return "vigilance"
        if has_phrase(content, followups["example"]) and len(tokens) <= 6:
            return "example"
        if has_phrase(content, followups["repeat"]) and len(tokens) <= 8:
            return "repeat"
        # Nothing else named (the matcher is unsure): a few more words may still lean on the page read
        # (« qui doit le faire ? », « elles sont cumulables ? »).
        limit = 6 if own is None else 4
        if stripped in followups["details"] or (len(tokens) <= limit and has_phrase(content, followups["details"])):
            return "details"
        if (
            own is None
            and elsewhere in (None, current)
            and len(tokens) <= 8
            and has_phrase(content, followups["lean"])
            and len(self._rest(content, followups["lean"])) <= 3
        ):
            # Only a few words besides the pronoun: « le territoire ça peut être toute l'île ? » names its own subject.
            return "lean"
        return None


def _distinctive_words(kb: KnowledgeBase, analyzer) -> dict[str, frozenset[str]]:
    """Each page's stemmed words (five letters or more) that at most three pages use."""
    pages = {
        t.id: {w for w in analyzer.terms(" ".join((t.title, t.short, t.details, *t.vigilance)), correct=False) if len(w) >= 5}
        for t in kb.topics.values()
    }
    spread: dict[str, int] = {}
    for words in pages.values():
        for word in words:
            spread[word] = spread.get(word, 0) + 1
    return {topic: frozenset(w for w in words if spread[w] <= 3) for topic, words in pages.items()}


def _legal_topics(talk: Conversation) -> frozenset[str]:
    return frozenset(form.topic for form in talk.forms) | frozenset({"formalisation.pourquoi"})


def _describe(match: Match) -> str:
    if match.topic is None:
        closest = ", ".join(f"{c.topic} {c.score:.2f}" for c in match.alternatives[:3])
        return f"moteur : hors sujet (déclinée) ; plus proches : {closest or 'aucun'}"
    others = ", ".join(f"{c.topic} {c.score:.2f}" for c in match.alternatives[:2])
    return f"moteur : {match.topic} {match.score:.2f} ({match.tier}) ; ensuite : {others or 'aucun'}"


def _one_edit(typed: str, word: str) -> bool:
    """Whether ``typed`` is ``word`` with one letter added, missing, changed or two swapped."""
    if typed == word or abs(len(typed) - len(word)) > 1:
        return False
    if len(typed) == len(word):
        diff = [i for i, (a, b) in enumerate(zip(typed, word, strict=True)) if a != b]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and typed[diff[0]] == word[diff[1]] and typed[diff[1]] == word[diff[0]])
    short, long = sorted((typed, word), key=len)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _made_of(text: str, symbols: frozenset[str]) -> bool:
    rest = text
    for symbol in sorted(symbols, key=len, reverse=True):
        rest = rest.replace(symbol, "")
    return not rest.replace("\ufe0f", "")
