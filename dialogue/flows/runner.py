"""The guided flows (orientation, legal-form guide): questions, answers, results.

The state machine says where the user is; this room renders the question of that
place, stores the answers and moves the user on, and renders a flow's result.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from dialogue import payloads as p
from dialogue.buttons import MENU_BUTTON, STALE, label
from dialogue.compiled import ORIENTATION, CompiledKnowledge
from dialogue.flows import machine as m
from dialogue.flows.editing import KEEP, FlowEditor
from dialogue.flows.results import REPORT_BUTTON as REPORT_BUTTON
from dialogue.flows.results import REPORT_PAYLOAD as REPORT_PAYLOAD
from dialogue.flows.results import FlowResults, first_unanswered
from dialogue.storage.progress import AnswerValue, UserRecord
from dialogue.turn import Turn
from dialogue.types import Button, Reply
from knowledge.text import normalise

#: Options meaning « none of these »: selecting one clears the others, and vice versa.
EXCLUSIVE_OPTIONS = frozenset({"aucun", "aucune"})
_DIGITS = re.compile(r"^\d+(?:\s*(?:,|;|et|\s)\s*\d+)+$")


class FlowRunner:
    def __init__(self, knowledge: CompiledKnowledge) -> None:
        self.knowledge = knowledge
        self.kb = knowledge.kb
        self.fsm = knowledge.fsm
        self.flows = knowledge.flows
        self.results = FlowResults(knowledge)
        self.editor = FlowEditor(knowledge, self.results, self.question)

    # ------------------------------------------------------------------ where the user is

    def in_flow(self, state: str) -> bool:
        return state in self.fsm.positions

    def position(self, state: str) -> m.FlowPosition | None:
        return self.fsm.positions.get(state)

    def unfinished_flow(self, record: UserRecord) -> bool:
        flow_id = record.flow
        if flow_id not in self.flows:
            return False
        return self.first_unanswered(record, flow_id) is not None

    def first_unanswered(self, record: UserRecord, flow_id: str) -> str | None:
        return first_unanswered(self.fsm, record, flow_id)

    def answered_any(self, record: UserRecord) -> bool:
        return self.results.answered_any(record)

    def restart_target(self, record: UserRecord) -> str:
        return record.flow if record.flow in self.flows else ORIENTATION

    # ------------------------------------------------------------------ moving through a flow

    def start(self, turn: Turn, flow_id: str) -> list[Reply]:
        record, conv = turn.record, turn.conversation
        flow = self.flows[flow_id]
        target = self.first_unanswered(record, flow_id)
        record.flow = flow_id
        record.context.editing = None
        if flow_id not in record.context.opened:
            record.context.opened.append(flow_id)
        if target is None:
            conv.trigger(m.goto_trigger(m.done_state(flow_id)))
            return [Reply(f"Vous avez déjà répondu à tout le « {flow.title} ». Voici le résultat.")] + self.result(turn, flow_id)
        started = target == self.fsm.first_state(flow_id)
        conv.trigger(m.goto_trigger(target))
        replies = [Reply(flow.intro)] if started else [Reply(f"On reprend le « {flow.title} » à la première question sans réponse.")]
        replies.extend(self.question_replies(record, target))
        return replies

    def resume(self, turn: Turn) -> list[Reply]:
        record, conv = turn.record, turn.conversation
        if conv.state in self.fsm.positions:
            return self.question_replies(record, conv.state)
        unfinished = [
            f
            for f in self.flows
            if self.first_unanswered(record, f) is not None
            and any(self.fsm.positions[s].question_id in record.answers for s in self.fsm.order[f])
        ]
        if len(unfinished) > 1:
            turn.pending = True
            rows = tuple((Button(self.flows[f].title, p.flow(f)),) for f in unfinished)
            return [Reply("Vous avez deux parcours en cours. Lequel voulez-vous reprendre ?", rows + ((MENU_BUTTON,),))]
        if record.flow in self.flows:
            return self.start(turn, record.flow)
        return [
            Reply(
                "Vous n’avez pas encore commencé de parcours. Voulez-vous faire le point sur votre PTCE ?",
                ((Button("Orientation pas à pas", p.flow(ORIENTATION)),), (MENU_BUTTON,)),
            )
        ]

    def ask_restart(self, turn: Turn) -> list[Reply]:
        turn.pending = True
        turn.conversation.ask_restart()
        flow = self.flows[self.restart_target(turn.record)]
        return [
            Reply(
                f"Recommencer le « {flow.title} » depuis le début ? Vos réponses à ce parcours seront effacées.",
                ((Button("Oui, recommencer", p.RESTART_CONFIRMED), Button("Non, garder", p.KEEP)),),
            )
        ]

    def keep(self, turn: Turn) -> list[Reply]:
        """« Non, garder »: back to the question if the flow is unfinished; never the result printed again."""
        return self.results.keep(turn) or self.resume(turn)

    def restart(self, turn: Turn) -> list[Reply]:
        record = turn.record
        flow_id = self.restart_target(record)
        questions = [self.fsm.positions[s].question_id for s in self.fsm.order[flow_id]]
        turn.removed.extend(q for q in questions if q in record.answers)
        for question in questions:
            record.answers.pop(question, None)
        record.context.selection.clear()
        return [Reply("C’est reparti depuis le début.")] + self.start(turn, flow_id)

    def stale(self, turn: Turn) -> list[Reply]:
        if turn.state in self.fsm.positions:
            return [Reply(STALE), self.question(turn.record, turn.state)]
        return [Reply(STALE, ((MENU_BUTTON,),))]

    # ------------------------------------------------------------------ the question on screen

    def question_replies(self, record: UserRecord, state: str) -> list[Reply]:
        """The question with its buttons, explained by the step's topic on the step's first question."""
        return [self.question(record, state, explain=self.fsm.positions[state].first_in_step)]

    def lookup(self, state: str) -> tuple[Any, Any]:
        position = self.fsm.positions[state]
        step = self.flows[position.flow_id].steps[position.step_index]
        question = next(q for q in step.questions if q.id == position.question_id)
        return step, question

    def question(self, record: UserRecord, state: str, *, explain: bool = False) -> Reply:
        position = self.fsm.positions[state]
        step, question = self.lookup(state)
        header = f"**Étape {position.step_index + 1}/{position.step_count} — {step.title}**"
        if len(step.questions) > 1:
            rank = next(i for i, q in enumerate(step.questions) if q.id == question.id) + 1
            header += f" · question {rank}/{len(step.questions)}"
        if explain and step.topic:
            topic = self.kb.topics[step.topic]
            header += f"\n\n{topic.short}\n({self.kb.cite(topic)})"
        editing = record.context.editing == state
        if editing:
            shown = self.editor.shown(question, record.answers.get(question.id, "…"))
            header = f"**Modifier votre réponse** — étape {position.step_index + 1}, {step.title}\nRéponse actuelle : {shown}."
        rows: list[tuple[Button, ...]] = []
        if question.kind == "multiple":
            selected = set(self.selection(record, question.id))
            for option in question.options:
                mark = "✅ " if option.id in selected else "▫️ "
                rows.append((Button(label(mark + option.label, 44), p.toggle(question.id, option.id)),))
            rows.append((Button("Valider", p.validate(question.id)),))
            hint = "\n\n(Cochez vos réponses, puis « Valider ».)"
        else:
            current = record.answers.get(question.id)
            for option in question.options:
                mark = "● " if option.id == current else ""
                rows.append((Button(label(mark + option.label, 44), p.answer(question.id, option.id)),))
            hint = ""
        nav = [Button("Passer", p.skip(question.id))]
        if editing:
            nav.insert(0, Button("Garder ma réponse", p.edit(position.flow_id, KEEP)))
        elif position.question_index:
            nav.insert(0, Button("Retour", p.back(question.id)))
        rows.append(tuple(nav))
        rows.append((MENU_BUTTON,))
        return Reply(f"{header}\n\n{question.text}{hint}", tuple(rows))

    def selection(self, record: UserRecord, question_id: str) -> list[str]:
        pending = record.context.selection
        if question_id in pending:
            return list(pending[question_id])
        stored = record.answers.get(question_id)
        if isinstance(stored, str):  # stored when the question was single-choice
            return [stored]
        return list(stored) if isinstance(stored, list) else []

    # ------------------------------------------------------------------ answers

    def on_button(self, turn: Turn, payload: p.Payload) -> list[Reply]:
        """``a``, ``x``, ``ok``, ``s`` and ``b`` payloads: only for the question on screen."""
        conv = turn.conversation
        question_id, option_id = payload.arg(0), payload.arg(1)
        position = self.fsm.positions.get(conv.state)
        if position is None or position.question_id != question_id or len(payload.args) > 2:
            return self.stale(turn)
        _, question = self.lookup(conv.state)
        options = {o.id for o in question.options}
        kind = payload.kind
        if kind == p.ANSWER:
            if question.kind != "single" or option_id not in options:
                return self.stale(turn)
            replies = self.store_and_advance(turn, question.id, option_id)
            return _said_first(_noted(question, option_id), replies) if turn.typed else replies
        if kind == p.TOGGLE:
            if question.kind != "multiple" or option_id not in options:
                return self.stale(turn)
            before = self.selection(turn.record, question.id)
            if option_id in before:
                selection = [o for o in before if o != option_id]
            elif option_id in EXCLUSIVE_OPTIONS:
                selection = [option_id]
            else:
                selection = [o for o in before if o not in EXCLUSIVE_OPTIONS] + [option_id]
            order = [o.id for o in question.options]
            turn.record.context.selection[question.id] = sorted(selection, key=order.index)
            if turn.typed:  # a number or a label typed: say what it did, never tick or clear silently
                return _said_first(_toggled(question, before, selection), [self.question(turn.record, conv.state)])
            return [replace(self.question(turn.record, conv.state), edit=True)]
        if kind == p.VALIDATE:
            if question.kind != "multiple" or option_id:
                return self.stale(turn)
            return self.store_and_advance(turn, question.id, self.selection(turn.record, question.id))
        if kind == p.SKIP and not option_id:
            return self.store_and_advance(turn, question.id, None)
        if kind == p.BACK and not option_id and position.question_index:
            conv.back()
            return self.question_replies(turn.record, conv.state)
        return self.stale(turn)

    def store_and_advance(self, turn: Turn, question_id: str, value: AnswerValue) -> list[Reply]:
        record, conv = turn.record, turn.conversation
        previous = record.answers.get(question_id, "…")
        record.answers[question_id] = value
        turn.changed[question_id] = value
        record.context.selection.pop(question_id, None)
        flow_id = self.fsm.positions[conv.state].flow_id
        record.flow = flow_id
        if record.context.editing == conv.state:  # /modifier: back to the result, rebuilt
            record.context.editing = None
            _, question = self.lookup(conv.state)
            said = (
                f"C’est modifié : {self.editor.shown(question, value)} (au lieu de : {self.editor.shown(question, previous)})."
                if value != previous
                else "Votre réponse reste la même."
            )
            return self.editor.back_to_result(turn, flow_id, said)
        conv.next()
        jumped = 0
        # Questions already answered (e.g. shared with the other flow) are not asked twice.
        while conv.state in self.fsm.positions and self.fsm.positions[conv.state].question_id in record.answers:
            conv.next()
            jumped += 1
        if conv.state in self.fsm.positions:
            replies = self.question_replies(record, conv.state)
            if jumped:
                notice = (
                    f"Les {jumped} questions suivantes avaient déjà une réponse : je les passe (/progression pour les revoir)."
                    if jumped > 1
                    else "La question suivante avait déjà une réponse : je la passe (/progression pour la revoir)."
                )
                replies.insert(0, Reply(notice))
            return replies
        return [Reply(self.flows[flow_id].outro), *self.result(turn, flow_id)]

    def answer_by_text(self, turn: Turn, text: str) -> list[Reply] | None:
        """Typed text as an answer to the question on screen (a number, an option's name, « passer »…)."""
        conv = turn.conversation
        position = self.fsm.positions[conv.state]
        plain = normalise(text)
        _, question = self.lookup(conv.state)
        words = self.knowledge.talk.words
        # « c’est tout » reads « est tout » once its elision is dropped; the lists spell « c est tout ».
        said = {plain, normalise(re.sub(r"['’`´]", " ", text))}
        if said & words["skip_words"]:
            return self.store_and_advance(turn, question.id, None)
        if said & words["back_words"]:
            if turn.record.context.editing == conv.state:
                return self.editor.keep(turn, position.flow_id)
            if not position.question_index:
                return [
                    Reply(
                        "C’est la première question du parcours : pas de question précédente. "
                        "Répondez par un numéro ou le nom d’un choix, « passer », ou posez votre question."
                    ),
                    self.question(turn.record, conv.state),
                ]
            conv.back()
            return self.question_replies(turn.record, conv.state)
        if question.kind == "multiple" and said & words["validate_words"]:
            return self.store_and_advance(turn, question.id, self.selection(turn.record, question.id))
        chosen = [option for option in question.options if _option_matches(option, plain)]
        if plain.isdigit():
            if not 1 <= int(plain) <= len(question.options):
                return [
                    Reply(f"Répondez par un numéro entre 1 et {len(question.options)}, ou posez votre question."),
                    self.question(turn.record, conv.state),
                ]
            chosen = [question.options[int(plain) - 1]]
        elif _DIGITS.match(plain) and question.kind == "single":
            return [Reply("Une seule réponse ici : tapez un seul numéro, ou posez votre question."), self.question(turn.record, conv.state)]
        elif _DIGITS.match(plain) and question.kind == "multiple":
            numbers = [int(n) for n in re.findall(r"\d+", plain)]
            if not all(1 <= n <= len(question.options) for n in numbers):
                return [
                    Reply(f"Les numéros vont de 1 à {len(question.options)}. Réessayez, par exemple « 1, 3 »."),
                    self.question(turn.record, conv.state),
                ]
            chosen = [question.options[n - 1] for n in dict.fromkeys(numbers)]
        if not chosen:
            return None
        if question.kind == "single":
            if len(chosen) != 1:
                return None
            return _said_first(_noted(question, chosen[0].id), self.store_and_advance(turn, question.id, chosen[0].id))
        order = [o.id for o in question.options]
        before = self.selection(turn.record, question.id)
        added = {o.id for o in chosen}
        if added & EXCLUSIVE_OPTIONS and len(added) > 1:
            return [
                Reply("« Aucune » ne se coche pas avec d’autres choix : tapez l’un ou les autres."),
                self.question(turn.record, conv.state),
            ]
        kept = [] if added & EXCLUSIVE_OPTIONS else [o for o in before if o not in EXCLUSIVE_OPTIONS]
        selection = sorted(set(kept) | added, key=order.index)
        turn.record.context.selection[question.id] = selection
        return _said_first(_toggled(question, before, selection), [self.question(turn.record, conv.state)])

    # ------------------------------------------------------------------ results

    def result(self, turn: Turn, flow_id: str) -> list[Reply]:
        return self.results.result(turn, flow_id)


def _noted(question: Any, option_id: str) -> str:
    """A typed answer said back, so that a number never records a choice unseen."""
    name = next(o.label for o in question.options if o.id == option_id)
    return f"Noté : « {name} »."


def _said_first(line: str, replies: list[Reply]) -> list[Reply]:
    """``line`` above the first reply (one message, not one more)."""
    return [replace(replies[0], text=f"{line}\n\n{replies[0].text}"), *replies[1:]]


def _toggled(question: Any, before: list[str], after: list[str]) -> str:
    """« Coché : « A ». Décoché : « B ». » — what a typed choice changed in a multiple-choice step."""
    labels = {o.id: o.label for o in question.options}
    ticked = [labels[o] for o in after if o not in before]
    cleared = [labels[o] for o in before if o not in after]
    parts = []
    if ticked:
        parts.append("Coché : " + ", ".join(f"« {name} »" for name in ticked) + ".")
    if cleared:
        parts.append("Décoché : " + ", ".join(f"« {name} »" for name in cleared) + ".")
    return " ".join(parts) or "Déjà coché : " + ", ".join(f"« {labels[o]} »" for o in after) + "."


def _option_matches(option: Any, plain: str) -> bool:
    names = {normalise(option.label), normalise(option.id.replace("_", " "))}
    names.update(normalise(k) for k in option.keywords)
    return plain in names
