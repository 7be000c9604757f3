"""Topic pages: the short answer, its details and vigilance points, comparisons and follow-ups."""

from __future__ import annotations

from dataclasses import replace

from dialogue import payloads as p
from dialogue.buttons import HELP_BUTTON, MENU_BUTTON, RESUME_FLOW_BUTTON, Rows
from dialogue.compiled import FORMES, LEGAL_TOPICS, ORIENTATION, CompiledKnowledge
from dialogue.flows.runner import FlowRunner
from dialogue.storage.progress import UserRecord
from dialogue.texts import source_line, topic_answer
from dialogue.turn import Turn
from dialogue.types import Button, Reply
from dialogue.understanding.texts import compare_text, examples_in
from knowledge.conversation import has_phrase, pick
from knowledge.loader import Topic

#: Counter (in the context's ``said``) of free questions in a row on the page being read.
AGAIN = "again"


class Topics:
    def __init__(self, knowledge: CompiledKnowledge, runner: FlowRunner) -> None:
        self.knowledge = knowledge
        self.kb = knowledge.kb
        self.talk = knowledge.talk
        self.runner = runner

    def current(self, record: UserRecord) -> str | None:
        topic = record.context.topic
        return topic if topic in self.kb.topics else None

    # ------------------------------------------------------------------ pages

    def buttons(self, record: UserRecord, topic: Topic, *, skip: str = "") -> Rows:
        rows: list[tuple[Button, ...]] = []
        first: list[Button] = []
        if skip != "more":
            first.append(Button("En savoir plus", p.more(topic.id)))
        if topic.vigilance and skip != "vig":
            first.append(Button("Points de vigilance", p.vigilance(topic.id)))
        if first:
            rows.append(tuple(first))
        for related in topic.related[:3]:
            rows.append((Button("→ " + self.kb.topics[related].label, p.topic(related)),))
        if topic.id in LEGAL_TOPICS:
            rows.append((Button("Guide des formes juridiques", p.flow(FORMES)),))
        last = [MENU_BUTTON]
        if self.runner.unfinished_flow(record):
            last.insert(0, RESUME_FLOW_BUTTON)
        rows.append(tuple(last))
        return tuple(rows)

    def page(self, record: UserRecord, topic: Topic) -> Reply:
        return Reply(topic_answer(self.kb, topic), self.buttons(record, topic))

    def details(self, record: UserRecord, topic: Topic) -> Reply:
        text = f"**{topic.title} — en savoir plus**\n\n{topic.details}\n\n{source_line(self.kb, topic)}"
        return Reply(text, self.buttons(record, topic, skip="more"))

    def vigilance(self, record: UserRecord, topic: Topic) -> Reply:
        items = "\n".join(f"- {item}" for item in topic.vigilance)
        text = f"**Points de vigilance — {topic.title}**\n\n{items}\n\n{source_line(self.kb, topic)}"
        return Reply(text, self.buttons(record, topic, skip="vig"))

    def open(self, turn: Turn, topic_id: str, part: str = "short") -> list[Reply]:
        """A topic picked from a button: its page (or, inside a flow, its answer then the question again)."""
        record = turn.record
        topic = self.kb.topics[topic_id]
        record.context.set_topic(topic_id, part)
        # Read on with a button: the next question on this page is a first ask again.
        record.context.said[AGAIN] = -1
        if part == "short" and self.runner.in_flow(turn.state):
            return [Reply(topic_answer(self.kb, topic)), self.runner.question(record, turn.state)]
        turn.conversation.read_topic()
        if part == "more":
            return [self.details(record, topic)]
        if part == "vig":
            return [self.vigilance(record, topic)]
        return [self.page(record, topic)]

    def show(self, turn: Turn, topic_id: str) -> list[Reply]:
        """A topic's page wherever the user is (from the menu's questions)."""
        turn.conversation.read_topic()
        turn.record.context.set_topic(topic_id)
        return [self.page(turn.record, self.kb.topics[topic_id])]

    def next_part(self, turn: Turn, topic: Topic) -> Reply:
        """Something new about the topic: details, then vigilance, then the next related topic."""
        record = turn.record
        turn.conversation.read_topic()
        part = record.context.part
        if part == "short":
            record.context.set_topic(topic.id, "more")
            return self.details(record, topic)
        if part == "more" and topic.vigilance:
            record.context.set_topic(topic.id, "vig")
            return self.vigilance(record, topic)
        nxt = next((t for t in topic.related if t != record.context.previous), topic.related[0] if topic.related else None)
        if nxt is None:
            return Reply("Je vous ai montré tout ce que le document dit de ce sujet.", ((MENU_BUTTON,),))
        record.context.set_topic(nxt)
        page = self.page(record, self.kb.topics[nxt])
        return replace(page, text="Sur un sujet voisin :\n\n" + page.text)

    def side_by_side(self, left: Topic, right: Topic) -> Reply:
        rows: list[tuple[Button, ...]] = [(Button("→ " + left.label, p.topic(left.id)), Button("→ " + right.label, p.topic(right.id)))]
        if left.id in LEGAL_TOPICS or right.id in LEGAL_TOPICS:
            rows.append((Button("Guide des formes juridiques", p.flow(FORMES)),))
        rows.append((MENU_BUTTON,))
        return Reply(compare_text(self.kb, left, right), tuple(rows))

    # ------------------------------------------------------------------ follow-ups

    def followup(self, turn: Turn, plain: str, kind: str) -> list[Reply] | None:
        """« et les points de vigilance ? », « un exemple ? », « et pour une asso ? » about the topic being read.

        ``kind`` is the reading's decision (:mod:`dialogue.understanding.reading`).
        """
        record = turn.record
        current = self.current(record)
        if current is None:
            return None
        topic = self.kb.topics[current]
        if kind == "form":
            form = self.other_form(plain, current)
            if form is None:
                return None
            turn.conversation.read_topic()
            record.context.set_topic(form)
            return [self.page(record, self.kb.topics[form])]
        turn.conversation.read_topic()
        if kind == "vigilance":
            if topic.vigilance:
                record.context.set_topic(current, "vig")
                return [self.vigilance(record, topic)]
            return [
                Reply(f"Le document ne donne pas de point de vigilance particulier pour « {topic.title} ». Voici ce qu’il en dit en détail."),
                self.details(record, topic),
            ]
        if kind == "example":
            return [self.example(record, topic)]
        if kind == "repeat":
            return [self.next_part(turn, topic)]
        if kind == "lean":
            if record.context.part == "short":
                record.context.set_topic(current, "more")
                return [self.details(record, topic)]
            # Everything shown already: the page again, saying which one, rather than a neighbour's.
            page = self.page(record, topic)
            lead = f"D’après ce que le document dit de « {topic.title} » (si votre question porte sur autre chose, nommez le sujet) :"
            return [replace(page, text=f"{lead}\n\n{page.text}")]
        if kind == "details":
            if record.context.part == "more":
                return [self.next_part(turn, topic)]
            record.context.set_topic(current, "more")
            return [self.details(record, topic)]
        return None

    def example(self, record: UserRecord, topic: Topic) -> Reply:
        """The examples the document gives on the topic (or on a related one), else its details."""
        found = examples_in(topic)
        source = topic
        if not found:
            for related in topic.related:
                found = examples_in(self.kb.topics[related])
                if found:
                    source = self.kb.topics[related]
                    break
        if not found:
            record.context.set_topic(topic.id, "more")
            return replace(
                self.details(record, topic),
                text=f"Le document ne donne pas d’exemple nommé pour « {topic.title} » : il décrit des tendances observées "
                f"sur plusieurs PTCE. Voici le détail de ce qu’il en dit.\n\n{self.details(record, topic).text}",
            )
        record.context.set_topic(source.id, "more")
        where = "" if source is topic else f" (à propos de « {source.title} »)"
        items = "\n".join(f"- {line}" for line in found)
        text = f"**Exemples donnés par le document{where}**\n\n{items}\n\n{source_line(self.kb, source)}"
        return Reply(text, self.buttons(record, source))

    def other_form(self, plain: str, current: str) -> str | None:
        for form in self.talk.forms:
            if form.topic != current and has_phrase(plain, form.words):
                return form.topic
        return None

    # ------------------------------------------------------------------ when the document has no answer

    def decline(self, turn: Turn, closest: list[str] | None = None) -> Reply:
        context = turn.record.context
        context.misses += 1
        if context.misses >= 2:
            text = pick(self.talk.texts["declined_again"], turn.count("dec2"))
            return Reply(text, ((HELP_BUTTON, Button("Contacter une personne", p.HUMAN)), (MENU_BUTTON,)))
        text = pick(self.talk.texts["declined"], turn.count("dec"))
        closest = [t for t in closest or () if t in self.kb.topics]
        if len(closest) == 3:  # the topics nearest to the question, in case it was only badly put
            rows = [(Button("→ " + self.kb.topics[t].label, p.topic(t)),) for t in closest]
        else:
            intro = self.kb.document.intro_questions
            start = turn.count("sugg") % len(intro)
            chosen = [intro[(start + i) % len(intro)] for i in range(min(3, len(intro)))]
            rows = [(Button(q.label, p.intro(q.id)),) for q in chosen]
        rows.append((Button("Orientation pas à pas", p.flow(ORIENTATION)),))
        rows.append((MENU_BUTTON,))
        return Reply(text, tuple(rows))

    def contacts(self, turn: Turn, intro: str) -> list[Reply]:
        record = turn.record
        record.context.misses = 0
        topic = self.kb.topics.get(self.talk.contact_topic)
        if topic is not None:
            record.context.set_topic(topic.id)
            return [Reply(f"{intro}\n\n{topic_answer(self.kb, topic)}", self.buttons(record, topic))]
        return [
            Reply(
                f"{intro}\n\n{self.talk.contacts}\n\nSource : {self.kb.document.title} "
                f"({self.kb.document.publisher}), {self.talk.contacts_source}",
                ((MENU_BUTTON,),),
            )
        ]
