"""/modifier: change one answer without starting over.

The answered questions are listed by step (buttons); the chosen question is asked again
with the current answer marked; answering it (or « Garder ma réponse ») returns to the
flow's result, rebuilt from the answers as they are now. A member of a collective changes
their own answers this way: the group view counts them as they are when it is read.

Payloads: ``ed`` (which flow), ``ed:FLOW`` (its steps), ``ed:FLOW:STEP`` (the step's questions),
``ed:FLOW:STEP:QUESTION`` (ask it again), ``ed:FLOW:-`` (keep the answer).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from dialogue import payloads as p
from dialogue.buttons import MENU_BUTTON, label
from dialogue.compiled import FORMES, ORIENTATION, CompiledKnowledge
from dialogue.flows import machine as m
from dialogue.flows.results import EDIT_LABEL, FlowResults, first_unanswered, opened_flows
from dialogue.storage.progress import AnswerValue, UserRecord
from dialogue.turn import Turn
from dialogue.types import Button, Reply
from knowledge.loader import KnowledgeBase
from knowledge.text import normalise, stem

KEEP = "-"
#: « changer ma réponse », « modifier la question 3 », « je me suis trompé à l’étape 2 »…
_REQUEST = re.compile(
    r"\b(?:(?:modifi|chang|corrig|rectifi|revoi|refai|reprend|reven)\w*\b.{0,40}?\b(?:reponse|repondu|choix|question|etape|coche)"
    r"|(?:me suis|je suis|j ai) (?:trompe|gourre|plante)\w*"
    r"|\bj ai mal (?:repondu|coche|choisi)"
    r"|^(?:je|j|on) (?:veux|voudrais|peux|pourrais|souhaite|aimerais) (?:modifier|changer|corriger)(?: quelque chose| qqch| un truc)?$"
    r"|(?:reponse|choix)s? (?:a|sont) (?:changer|modifier|corriger)"
    r"|(?:erreur|faute) (?:dans|sur|a) (?:ma|mes|une|la|l) (?:reponse|etape|question))"
)
_NUMBER = re.compile(r"\b(?:etape|question|n|no|numero)\s*(\d{1,2})\b|\b(\d{1,2})(?:e|eme|ere)?\s*(?:etape|question)\b")
#: Words of a request that say nothing about which answer is meant.
_FILLER = frozenset(
    "modifier changer corriger rectifier revoir refaire reprendre reponse reponses repondu choix question questions etape "
    "etapes coche cochee voudrais voudrai veux peux pourrais faudrait souhaite aimerais trompe trompee gourre plante juste "
    "seulement simplement ma mes mon une des les la le sur pour dans avec celle celui cette concernant niveau partie "
    "merci svp stp bonjour alors enfin finalement plutot autre autres".split()
)


#: « je veux changer la typologie »: a wish to change, naming no answer, only a step.
_WISH = re.compile(
    r"\b(?:je|j|on|nous)\b.{0,25}?\b(?:veux|voudrais|voudrions|peux|pourrais|souhaite|aimerais|dois|vais|veut|voudrait)\b"
    r".{0,15}?\b(?:modifi|chang|corrig|rectifi)\w*"
)


#: « erreur sur l’échelle du territoire »: a slip named with the step it concerns.
_SLIP = re.compile(r"\b(?:erreur|faute|mal repondu|mal coche|pas la bonne reponse|pas le bon choix)\b")


def is_request(plain: str) -> bool:
    """Does this (normalised) text ask to change an answer?"""
    return bool(_REQUEST.search(plain))


class FlowEditor:
    def __init__(self, knowledge: CompiledKnowledge, results: FlowResults, question: Callable[[UserRecord, str], Reply]) -> None:
        self.knowledge = knowledge
        self._question = question
        self.kb = knowledge.kb
        self.fsm = knowledge.fsm
        self.flows = knowledge.flows
        self.results = results
        self._step_words = knowledge.kb.shared(step_words)

    # ------------------------------------------------------------------ entry points

    def command(self, turn: Turn, argument: str) -> list[Reply]:
        """/modifier, /modifier 3, /modifier maturité."""
        plain = normalise(argument)
        if plain.isdigit():  # « /modifier 4 »: the step of that number
            plain = f"etape {plain}"
        return self.request(turn, plain) if plain else self.choose_flow(turn)

    def request(self, turn: Turn, plain: str) -> list[Reply]:
        """A typed request: the step it names (by number or by its words), else the list."""
        flows = self._editable(turn.record)
        if not flows:
            return self._nothing()
        flow_id = self._current_flow(turn, flows)
        if flow_id is None:
            return self.choose_flow(turn)
        step = self._named_step(flow_id, plain)
        if step is None:
            return self.steps(turn, flow_id)
        question = self._named_question(flow_id, step, plain)
        return self.ask(turn, flow_id, question) if question else self.step(turn, flow_id, step)

    def wants(self, turn: Turn, plain: str) -> bool:
        """A request to change an answer: said outright, or a wish to change that names a step answered.

        The second form (« je voudrais changer la typologie ») is only taken when the user has answers
        and the words name a step by its title or its questions, so a question about the document
        (« comment changer de statut ? ») still goes to the document.
        """
        if is_request(plain):
            return True
        if not (_WISH.search(plain) or _SLIP.search(plain)):
            return False
        flow_id = self._current_flow(turn, self._editable(turn.record))
        return flow_id is not None and self._named_step(flow_id, plain, strong=True) is not None

    def on_button(self, turn: Turn, payload: p.Payload) -> list[Reply] | None:
        args = payload.args
        if not args:
            return self.choose_flow(turn)
        flow_id = args[0]
        if flow_id not in self.flows or len(args) > 3:
            return None
        if flow_id not in self._editable(turn.record) and args[1:2] != (KEEP,):
            return self.choose_flow(turn)  # e.g. « Modifier mes réponses » before opening that flow
        if len(args) == 1:
            return self.steps(turn, flow_id)
        if args[1] == KEEP and len(args) == 2:
            editing = turn.record.context.editing
            # « Garder ma réponse » only while that flow's answer is being changed (old buttons are stale).
            return self.keep(turn, flow_id) if editing and m.split_state(editing)[0] == flow_id else None
        if not args[1].isdigit() or not 1 <= int(args[1]) <= len(self.flows[flow_id].steps):
            return None
        step = int(args[1])
        if len(args) == 2:
            return self.step(turn, flow_id, step)
        questions = {q.id for q in self.flows[flow_id].steps[step - 1].questions}
        return self.ask(turn, flow_id, args[2]) if args[2] in questions else None

    # ------------------------------------------------------------------ screens

    def choose_flow(self, turn: Turn) -> list[Reply]:
        flows = self._editable(turn.record)
        if not flows:
            return self._nothing()
        if len(flows) == 1:
            return self.steps(turn, flows[0])
        turn.pending = True
        rows = tuple((Button(self.flows[f].title, p.edit(f)),) for f in flows)
        return [Reply("**Modifier une réponse** — dans quel parcours ?", (*rows, (MENU_BUTTON,)))]

    def steps(self, turn: Turn, flow_id: str) -> list[Reply]:
        """The answered questions, grouped by step; one button per step."""
        record, flow = turn.record, self.flows[flow_id]
        lines, buttons = [], []
        for index, step in enumerate(flow.steps, start=1):
            answered = [q for q in step.questions if q.id in record.answers]
            if not answered:
                continue
            lines.append(f"- **{index}. {step.title}** : " + " · ".join(self.shown(q, record.answers[q.id]) for q in answered))
            buttons.append(Button(label(f"{index}. {step.title}", 32), p.edit(flow_id, str(index))))
        if not buttons:
            return self._nothing()
        turn.pending = True
        rows = tuple(tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2))
        text = f"**Modifier une réponse — {flow.title}**\nQuelle étape voulez-vous revoir ?\n\n" + "\n".join(lines)
        return [Reply(text, (*rows, (MENU_BUTTON,)))]

    def step(self, turn: Turn, flow_id: str, index: int) -> list[Reply]:
        """One step: its question asked again, or a choice among its questions."""
        step = self.flows[flow_id].steps[index - 1]
        record = turn.record
        if len(step.questions) == 1:
            return self.ask(turn, flow_id, step.questions[0].id)
        turn.pending = True
        rows = tuple(
            (Button(label(_short(q.text), 44), p.edit(flow_id, str(index), q.id)),) for q in step.questions
        )
        lines = [f"- {_short(q.text)} : {self.shown(q, record.answers.get(q.id, '…'))}" for q in step.questions]
        text = f"**Étape {index} — {step.title}** : quelle question ?\n\n" + "\n".join(lines)
        return [Reply(text, (*rows, (Button("Autre étape", p.edit(flow_id)),), (MENU_BUTTON,)))]

    def ask(self, turn: Turn, flow_id: str, question_id: str) -> list[Reply]:
        """The question again, its current answer marked: answering it returns to the result."""
        state = m.question_state(flow_id, question_id)
        record = turn.record
        record.context.selection.pop(question_id, None)
        record.context.editing = state
        record.flow = flow_id
        turn.conversation.trigger(m.goto_trigger(state))
        return [self._question(record, state)]

    def keep(self, turn: Turn, flow_id: str) -> list[Reply]:
        record = turn.record
        editing = record.context.editing
        record.context.editing = None
        if editing:
            question_id = m.split_state(editing)[1]
            record.context.selection.pop(question_id or "", None)
        return self.back_to_result(turn, flow_id, "Rien n’a changé : votre réponse est gardée.")

    def back_to_result(self, turn: Turn, flow_id: str, said: str) -> list[Reply]:
        """After a change (or none): the result rebuilt now, or the flow where it was left."""
        record = turn.record
        target = first_unanswered(self.fsm, record, flow_id)
        if target is not None:
            turn.conversation.trigger(m.goto_trigger(target))
            return [Reply(f"{said} On reprend le parcours là où vous en étiez."), self._question(record, target)]
        turn.conversation.trigger(m.goto_trigger(m.done_state(flow_id)))
        replies = self.results.result(turn, flow_id)
        update = "Voici votre synthèse mise à jour." if flow_id == ORIENTATION else "Voici le résultat mis à jour."
        return [replace(replies[0], text=f"{said} {update}\n\n{replies[0].text}"), *replies[1:]]

    # ------------------------------------------------------------------ helpers

    def shown(self, question: Any, value: AnswerValue | str) -> str:
        """An answer as the user chose it (labels, « passée » when skipped)."""
        if value is None:
            return "passée"
        if value == "…":
            return "sans réponse"
        labels = {o.id: o.label for o in question.options}
        values = value if isinstance(value, list) else [value]
        return ", ".join(labels.get(v, v) for v in values) or "aucune case cochée"

    def _editable(self, record: UserRecord) -> list[str]:
        """Flows the user opened and answered something in."""
        return [
            flow_id
            for flow_id in opened_flows(self.knowledge, record)
            if any(q.id in record.answers for _, q in self.flows[flow_id].questions())
        ]

    def _current_flow(self, turn: Turn, flows: list[str]) -> str | None:
        position = self.fsm.positions.get(turn.state)
        flow_id, _ = m.split_state(turn.state)
        for candidate in (position.flow_id if position else None, flow_id, turn.record.flow):
            if candidate in flows:
                return candidate
        return flows[0] if len(flows) == 1 else None

    def _named_step(self, flow_id: str, plain: str, *, strong: bool = False) -> int | None:
        steps = len(self.flows[flow_id].steps)
        number = _NUMBER.search(plain)
        if number:
            value = int(number.group(1) or number.group(2))
            return value if 1 <= value <= steps else None
        words = {stem(w) for w in plain.split() if len(w) >= 4 and w not in _FILLER}
        if not words:
            return None
        scores = {
            index: sum(weight for word, weight in self._step_words[(flow_id, index)].items() if word in words)
            for index in range(1, steps + 1)
        }
        best = max(scores.values())
        winners = [index for index, score in scores.items() if score == best]
        return winners[0] if best >= (2 if strong else 1) and len(winners) == 1 else None

    def _named_question(self, flow_id: str, step: int, plain: str) -> str | None:
        """In a step of several questions, the one whose own words the request uses (if only one does)."""
        questions = self.flows[flow_id].steps[step - 1].questions
        if len(questions) == 1:
            return None
        words = {stem(w) for w in plain.split() if len(w) >= 4 and w not in _FILLER}
        scores = {
            q.id: len(words & {stem(w) for w in normalise(" ".join([q.text, *(o.label for o in q.options)])).split() if len(w) >= 4})
            for q in questions
        }
        best = max(scores.values())
        winners = [q for q, score in scores.items() if score == best]
        return winners[0] if best and len(winners) == 1 else None

    def _nothing(self) -> list[Reply]:
        return [
            Reply(
                "Vous n’avez encore répondu à aucune question : il n’y a rien à modifier. "
                "Commencez par l’orientation ou le guide des formes juridiques.",
                ((Button("Orientation pas à pas", p.flow(ORIENTATION)),), (Button("Formes juridiques", p.flow(FORMES)),), (MENU_BUTTON,)),
            )
        ]


def step_words(kb: KnowledgeBase) -> dict[tuple[str, int], dict[str, int]]:
    """Each step's words (stems) with their weight: its title says most, its questions less, its
    options least. Built once per knowledge base (``kb.shared``)."""
    words: dict[tuple[str, int], dict[str, int]] = {}
    for flow_id, flow in kb.flows.items():
        for index, step in enumerate(flow.steps, start=1):
            weights: dict[str, int] = {}
            for weight, texts in (
                (1, [o.label for q in step.questions for o in q.options]),
                (2, [q.text for q in step.questions]),
                (4, [step.title, step.id]),
            ):
                for word in normalise(" ".join(texts)).split():
                    if len(word) >= 4 and word not in _FILLER:
                        weights[stem(word)] = weight
            words[(flow_id, index)] = weights
    return words


def _short(text: str) -> str:
    """A question without its « (plusieurs choix possibles) » hint."""
    return re.sub(r"\s*\([^)]*\)\s*$", "", " ".join(text.split()))


__all__ = ["EDIT_LABEL", "FlowEditor", "is_request"]
