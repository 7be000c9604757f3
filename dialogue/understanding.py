"""Free text → what the user meant: small talk, a follow-up, a glossary term, a gap, or a topic.

The order of the checks lives in :meth:`Understanding.answer`; the matcher's tiers
(confident, hedged, suggest, declined) decide how sure the answer sounds.
"""

from __future__ import annotations

from dialogue import payloads as p
from dialogue.buttons import HELP_BUTTON, MENU_BUTTON
from dialogue.compiled import CompiledKnowledge, Gap
from dialogue.flows.runner import FlowRunner
from dialogue.glossary import Glossary
from dialogue.storage.progress import UserRecord
from dialogue.texts import topic_answer
from dialogue.topics import Topics
from dialogue.turn import Asked, Turn
from dialogue.types import Button, Reply
from knowledge.conversation import has_phrase, pick
from knowledge.matcher import Match
from knowledge.text import normalise

_WHAT_IS_A_PTCE = Button("Qu’est-ce qu’un PTCE ?", p.topic("ptce.definition"))


class Understanding:
    def __init__(self, knowledge: CompiledKnowledge, runner: FlowRunner, topics: Topics, glossary: Glossary) -> None:
        self.knowledge = knowledge
        self.kb = knowledge.kb
        self.talk = knowledge.talk
        self.runner = runner
        self.topics = topics
        self.glossary = glossary

    # ------------------------------------------------------------------ small talk

    def small_talk(self, turn: Turn, text: str, plain: str) -> list[Reply] | None:
        intent = self.intent(text, plain)
        if intent is None:
            return None
        reply = pick(self.talk.intents[intent].replies, turn.count(intent))
        if intent == "human":
            return self.topics.contacts(turn, reply)
        if intent == "frustration":
            turn.record.context.misses = 0
            return [Reply(reply, ((HELP_BUTTON, MENU_BUTTON),))]
        if intent in {"english", "other_language", "confusion"}:
            return [Reply(reply, ((_WHAT_IS_A_PTCE,), (HELP_BUTTON, MENU_BUTTON)))]
        return [Reply(reply, ((MENU_BUTTON,),))]

    def intent(self, text: str, plain: str) -> str | None:
        intents = self.talk.intents
        letters = [c for c in text if c.isalpha()]
        if letters and sum(1 for c in letters if ord(c) > 0x24F) * 2 > len(letters):
            return "other_language"
        if not plain:
            stripped = "".join(text.split())
            for intent in intents.values():
                if intent.symbols and stripped and _made_of(stripped, intent.symbols):
                    return str(intent.id)
            return "confusion"
        for intent in intents.values():
            if plain in intent.phrases:
                return str(intent.id)
        for name in ("human", "identity", "frustration"):
            pattern = intents[name].pattern
            if pattern is not None and pattern.search(plain):
                return name
        tokens = plain.split()
        if len(tokens) >= 2 and not any(ord(c) > 0x24F and c.isalpha() for c in text):
            english = sum(1 for t in tokens if t in self.talk.words["english_words"])
            if english >= 2 and english * 3 >= len(tokens) * 2:
                return "english"
        return None

    # ------------------------------------------------------------------ questions

    def answer(self, turn: Turn, text: str, plain: str) -> list[Reply]:
        """The reply to a free question: gap, follow-up, glossary, then the matcher's topic."""
        record, conv = turn.record, turn.conversation
        in_flow = self.runner.in_flow(turn.state)
        match = self.knowledge.matcher.match(text)
        # « et combien coûte une SCIC ? » asks for what the document lacks: say so before any follow-up.
        gap = self.not_covered(record, plain, match)
        followup = None if gap is not None else self.topics.followup(turn, plain)
        if followup is not None:
            return followup
        term = self.glossary.term(plain)
        if term is not None and term.topic in self.knowledge.main_topics and has_phrase(
            normalise(self.kb.topics[term.topic].label), (normalise(term.term),)
        ):
            # « c'est quoi un PTCE » deserves the full page, not the one-line definition.
            return self.topics.show(turn, term.topic)
        if term is not None:
            turn.asked = self._asked(turn, text, match, "glossary", "confident")
            if term.topic:
                record.context.set_topic(term.topic, "gloss")
            record.context.misses = 0
            return [self.glossary.card(term)]
        if gap is not None:
            turn.asked = self._asked(turn, text, match, "not_covered", "not_covered")
            if not in_flow:
                conv.read_topic()
            return [gap]
        return self.free_answer(turn, text, match, in_flow=in_flow)

    def free_answer(self, turn: Turn, text: str, match: Match, *, in_flow: bool) -> list[Reply]:
        record = turn.record
        tier = match.tier
        menu = () if in_flow else ((MENU_BUTTON,),)
        if tier == "declined":
            turn.missed = True
            if in_flow:
                turn.asked = self._asked(turn, text, match, "topic", tier)
                return [Reply(pick(self.talk.texts["not_understood_in_step"], turn.count("nis")))]
            decline = self.topics.decline(turn, [c.topic for c in match.alternatives[:3]])
            turn.asked = self._asked(turn, text, match, "topic", tier, answer=decline)
            return [decline]
        if tier == "suggest":
            turn.asked = self._asked(turn, text, match, "topic", tier)
            options = [match.topic] + [c.topic for c in match.alternatives[:2]]
            rows = tuple((Button("→ " + self.kb.topics[t].label, p.topic(t)),) for t in options if t)
            turn.pending = True
            record.context.misses = 0
            return [Reply(pick(self.talk.texts["suggest"], turn.count("sug")), rows + menu)]
        assert match.topic is not None
        topic = self.kb.topics[match.topic]
        if in_flow:
            # The pending question is re-asked just below: its choices are the only ones on this
            # screen, so a digit typed next picks the option printed next to it, never a 👍/👎.
            turn.asked = self._asked(turn, text, match, "topic", tier)
            return [Reply(topic_answer(self.kb, topic))]
        turn.conversation.read_topic()
        if topic.id == self.topics.current(record) and record.context.part == "short":
            # Never the same page twice in a row: move on to what the user has not read yet.
            turn.asked = self._asked(turn, text, match, "topic", tier)
            return [self.topics.next_part(turn, topic)]
        record.context.set_topic(topic.id)
        if tier == "hedged":
            turn.asked = self._asked(turn, text, match, "topic", tier)
            others = [c.topic for c in match.alternatives[:2]]
            hedged_rows: list[tuple[Button, ...]] = [(Button("→ " + self.kb.topics[t].label, p.topic(t)),) for t in others]
            hedged_rows.append((Button("Ce n’est pas ça", p.NOT_THIS),))
            hedged_rows.append((MENU_BUTTON,))
            intro = pick(self.talk.texts["hedged"], turn.count("hed"))
            turn.pending = True
            return [Reply(f"{intro}\n\n{topic_answer(self.kb, topic)}", tuple(hedged_rows))]
        page = self.topics.page(record, topic)
        turn.asked = self._asked(turn, text, match, "topic", tier, answer=page)
        return [page]

    def not_covered(self, record: UserRecord, plain: str, match: Match) -> Reply | None:
        """« Le document ne précise pas … » when the question asks for what the document does not say.

        A single trigger word counts only for a topic the question is about (the one being read, or
        one of the matcher's first three) when the matcher is sure of its topic: « combien coûte une
        SCIC ? » is not about the coordinator's salary. A trigger phrase of several words counts anyway.
        """
        pattern = self.knowledge.gap_pattern
        if pattern is None:
            return None
        current = self.topics.current(record)
        about = {current, match.topic, *(c.topic for c in match.alternatives[:2])} - {None}
        sure = match.tier in ("confident", "hedged")
        found: list[Gap] = [
            gap
            for hit in pattern.finditer(plain)
            for gap in self.knowledge.gaps[hit.group(1)]
            if gap.topic_id in about or not sure or " " in hit.group(1)
        ]
        if not found:
            return None
        order = {topic_id: rank for rank, topic_id in enumerate(self.kb.topics)}
        hits: dict[Gap, int] = {}
        for gap in found:
            hits[gap] = hits.get(gap, 0) + 1
        # The topic being read first, then the gap most triggers point to, then the YAML order.
        chosen = max(found, key=lambda g: (g.topic_id == current, hits[g], -order[g.topic_id]))
        topic = self.kb.topics[chosen.topic_id]
        record.context.set_topic(topic.id)
        return Reply(
            f"Le document ne précise pas {chosen.about}.\n\nCe qu’il dit de plus proche :\n\n{topic_answer(self.kb, topic)}",
            self.topics.buttons(record, topic),
        )

    def _asked(self, turn: Turn, text: str, match: Match, kind: str, tier: str, *, answer: Reply | None = None) -> Asked:
        position = self.runner.position(turn.state)
        return Asked(
            text=text,
            match=match,
            kind=kind,
            tier=tier,
            in_flow=position is not None,
            flow=position.flow_id if position else None,
            step=position.question_id if position else None,
            answer=answer,
        )


def _made_of(text: str, symbols: frozenset[str]) -> bool:
    rest = text
    for symbol in sorted(symbols, key=len, reverse=True):
        rest = rest.replace(symbol, "")
    return not rest.replace("\ufe0f", "")

