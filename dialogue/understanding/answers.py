"""The engine's side of understanding: acts on a :class:`~dialogue.understanding.reading.Reading`.

The reading (shared with ``ptce-bot ask``) decides what the message is; this module turns
the decision into replies with buttons, and updates the conversation's context. The
matcher's tiers (confident, hedged, suggest, declined) decide how sure a topic answer sounds.
"""

from __future__ import annotations

from dialogue import payloads as p
from dialogue.buttons import HELP_BUTTON, MENU_BUTTON
from dialogue.compiled import FORMES, ORIENTATION, CompiledKnowledge
from dialogue.flows.runner import FlowRunner
from dialogue.glossary import Glossary
from dialogue.texts import topic_answer
from dialogue.topics import AGAIN, Topics
from dialogue.turn import Asked, Turn
from dialogue.types import Button, Reply
from dialogue.understanding import texts
from dialogue.understanding.reading import Reader, Reading, ReadingContext
from knowledge.conversation import has_phrase, pick
from knowledge.matcher import Match
from knowledge.text import normalise

_WHAT_IS_A_PTCE = Button("Qu’est-ce qu’un PTCE ?", p.topic("ptce.definition"))
#: Asking for the same page this many times in a row offers the orientation or a person.
_STUCK_AFTER = 3


class Understanding:
    def __init__(self, knowledge: CompiledKnowledge, runner: FlowRunner, topics: Topics, glossary: Glossary) -> None:
        self.knowledge = knowledge
        self.kb = knowledge.kb
        self.talk = knowledge.talk
        self.runner = runner
        self.topics = topics
        self.glossary = glossary
        self.reader = Reader.for_knowledge(self.kb)

    def read(self, turn: Turn, text: str) -> Reading:
        context = turn.record.context
        current = self.topics.current(turn.record)
        previous = context.previous if context.previous in self.kb.topics else None
        return self.reader.read(text, ReadingContext(current, previous, self.runner.in_flow(turn.state)))

    # ------------------------------------------------------------------ small talk

    def small_talk(self, turn: Turn, reading: Reading) -> list[Reply] | None:
        intent = reading.intent
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

    # ------------------------------------------------------------------ tools named

    def tool(self, turn: Turn, reading: Reading, command_names: list[str]) -> list[Reply] | None:
        """A tool asked for by its name: the orientation starts; the guide, the glossary and the group view are offered."""
        tool = reading.tool
        if tool == ORIENTATION:
            return self.runner.start(turn, ORIENTATION)
        if tool == "glossaire":
            return self.glossary.browse(turn, p.Payload(p.GLOSSARY))
        if tool == FORMES:
            rows: list[tuple[Button, ...]] = [(Button("Guide des formes juridiques", p.flow(FORMES)),)]
            compare = [f for f in reading.forms if f in self.kb.topics]
            rows.extend((Button("→ " + self.kb.topics[f].label, p.topic(f)),) for f in compare[:2])
            rows.append((MENU_BUTTON,))
            turn.pending = True
            return [Reply(texts.tool_text(tool), tuple(rows))]
        if tool == "collectif" and "collectif" in command_names:
            return [Reply(texts.tool_text(tool), ((MENU_BUTTON,),))]
        return None

    # ------------------------------------------------------------------ questions

    def answer(self, turn: Turn, reading: Reading) -> list[Reply]:
        """The reply to a free question, following the reading's decision."""
        record, conv = turn.record, turn.conversation
        in_flow = self.runner.in_flow(turn.state)
        match = reading.match
        assert match is not None
        note = [Reply(texts.understood_note(reading))] if reading.spelling.much else []
        if reading.decision == "compare" and reading.compare is not None:
            left, right = (self.kb.topics[t] for t in reading.compare)
            turn.asked = self._asked(turn, reading, "topic", "confident")
            return note + [self.topics.side_by_side(left, right)]
        if reading.decision == "gap" and reading.gap is not None:
            turn.asked = self._asked(turn, reading, "not_covered", "not_covered")
            topic = self.kb.topics[reading.gap.topic_id]
            if not in_flow:
                conv.read_topic()
            record.context.set_topic(topic.id)
            return note + [Reply(texts.gap_text(self.kb, reading.gap), self.topics.buttons(record, topic))]
        if reading.decision == "followup" and reading.followup is not None:
            followup = self.topics.followup(turn, reading.content, reading.followup)
            if followup is not None:
                return note + followup
        term = reading.term
        if term is not None and term.topic in self.knowledge.main_topics and has_phrase(
            normalise(self.kb.topics[term.topic].label), (normalise(term.term),)
        ):
            # « c'est quoi un PTCE » deserves the full page, not the one-line definition.
            return note + self.topics.show(turn, term.topic)
        if term is not None:
            turn.asked = self._asked(turn, reading, "glossary", "confident")
            if term.topic:
                record.context.set_topic(term.topic, "gloss")
            record.context.misses = 0
            return note + [self.glossary.card(term)]
        return note + self.free_answer(turn, reading, match, in_flow=in_flow)

    def free_answer(self, turn: Turn, reading: Reading, match: Match, *, in_flow: bool) -> list[Reply]:
        record = turn.record
        tier = match.tier
        menu = () if in_flow else ((MENU_BUTTON,),)
        if tier == "declined":
            turn.missed = True
            if in_flow:
                turn.asked = self._asked(turn, reading, "topic", tier)
                return [Reply(pick(self.talk.texts["not_understood_in_step"], turn.count("nis")))]
            decline = self.topics.decline(turn, [c.topic for c in match.alternatives[:3]])
            turn.asked = self._asked(turn, reading, "topic", tier, answer=decline)
            return [decline]
        if tier == "suggest":
            turn.asked = self._asked(turn, reading, "topic", tier)
            options = [match.topic] + [c.topic for c in match.alternatives[:2]]
            rows = tuple((Button("→ " + self.kb.topics[t].label, p.topic(t)),) for t in options if t)
            turn.pending = True
            record.context.misses = 0
            record.context.unsettle()
            return [Reply(pick(self.talk.texts["suggest"], turn.count("sug")), rows + menu)]
        assert match.topic is not None
        topic = self.kb.topics[match.topic]
        if in_flow:
            # The pending question is re-asked just below: its choices are the only ones on this
            # screen, so a digit typed next picks the option printed next to it, never a 👍/👎.
            turn.asked = self._asked(turn, reading, "topic", tier)
            return [Reply(topic_answer(self.kb, topic))]
        turn.conversation.read_topic()
        said = record.context.said
        # Free questions in a row landing on the page being read (a button pressed in between
        # starts the count again: the user is reading on, not stuck).
        reading_it = topic.id == self.topics.current(record) and record.context.part != "gloss"
        again = said.get(AGAIN, 0) + 1 if reading_it else 0
        said[AGAIN] = again
        if again >= _STUCK_AFTER - 1:
            # Third time on the same page: reading it again will not help; offer other ways.
            said[AGAIN] = 0
            turn.asked = self._asked(turn, reading, "topic", tier)
            return [self.stuck(topic.title)]
        if again == 1:
            # Never the same page twice in a row: move on to what the user has not read yet.
            turn.asked = self._asked(turn, reading, "topic", tier)
            return [self.topics.next_part(turn, topic)]
        record.context.set_topic(topic.id)
        if tier == "hedged":
            turn.asked = self._asked(turn, reading, "topic", tier)
            others = [c.topic for c in match.alternatives[:2]]
            hedged_rows: list[tuple[Button, ...]] = [(Button("→ " + self.kb.topics[t].label, p.topic(t)),) for t in others]
            hedged_rows.append((Button("Ce n’est pas ça", p.NOT_THIS),))
            hedged_rows.append((MENU_BUTTON,))
            intro = pick(self.talk.texts["hedged"], turn.count("hed"))
            turn.pending = True
            return [Reply(f"{intro}\n\n{topic_answer(self.kb, topic)}", tuple(hedged_rows))]
        page = self.topics.page(record, topic)
        turn.asked = self._asked(turn, reading, "topic", tier, answer=page)
        return [page]

    def stuck(self, title: str) -> Reply:
        text = (
            f"Je vous ai déjà montré ce que le document dit de « {title} », détails compris. "
            "Pour aller plus loin, l’orientation pas à pas situe votre projet, ou une personne peut vous répondre."
        )
        rows = ((Button("Orientation pas à pas", p.flow(ORIENTATION)),), (Button("Contacter une personne", p.HUMAN),), (MENU_BUTTON,))
        return Reply(text, rows)

    def _asked(self, turn: Turn, reading: Reading, kind: str, tier: str, *, answer: Reply | None = None) -> Asked:
        position = self.runner.position(turn.state)
        match = reading.match
        assert match is not None
        return Asked(
            text=reading.text,
            match=match,
            kind=kind,
            tier=tier,
            in_flow=position is not None,
            flow=position.flow_id if position else None,
            step=position.question_id if position else None,
            answer=answer,
        )

