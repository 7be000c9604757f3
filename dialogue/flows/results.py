"""What a flow gives back: its result (paged), the synthesis, the progress, and « Non, garder ».

Long results are shown one page per turn (:mod:`dialogue.pages`): nothing is printed twice
unless the user asks for it again.
"""

from __future__ import annotations

from dialogue import payloads as p
from dialogue.buttons import MENU_BUTTON
from dialogue.compiled import FORMES, ORIENTATION, CompiledKnowledge
from dialogue.flows import machine as m
from dialogue.flows.synthesis import Synthesis, build_synthesis
from dialogue.flows.synthesis_text import (
    DETAIL_BUTTON,
    render_full,
    render_legal_guide,
    render_short,
    revisit_label,
    revisit_questions,
)
from dialogue.pages import page, page_number
from dialogue.storage.progress import UserRecord
from dialogue.turn import Turn
from dialogue.types import Button, Reply

#: « Recevoir le document (PDF) »: offered with every result; the report feature answers it.
REPORT_PAYLOAD = "pdf"
REPORT_BUTTON = Button("Recevoir le document (PDF)", REPORT_PAYLOAD)
EDIT_LABEL = "Modifier une réponse"


def first_unanswered(fsm: m.FlowMachine, record: UserRecord, flow_id: str) -> str | None:
    for state in fsm.order[flow_id]:
        if fsm.positions[state].question_id not in record.answers:
            return state
    return None


def opened_flows(knowledge: CompiledKnowledge, record: UserRecord) -> list[str]:
    """The flows the user has opened, in the order of the knowledge base.

    Recorded when a flow starts; for a record older than that, the last flow and any flow with
    an answer to a question of its own (a question shared with another flow proves nothing).
    """
    opened = set(record.context.opened)
    if record.flow:
        opened.add(record.flow)
    for flow_id, questions in _own_questions(knowledge).items():
        if any(q in record.answers for q in questions):
            opened.add(flow_id)
    return [flow_id for flow_id in knowledge.flows if flow_id in opened]


def _own_questions(knowledge: CompiledKnowledge) -> dict[str, set[str]]:
    ids = {flow_id: {q.id for _, q in flow.questions()} for flow_id, flow in knowledge.flows.items()}
    return {flow_id: own - set().union(*(o for f, o in ids.items() if f != flow_id)) for flow_id, own in ids.items()}


class FlowResults:
    def __init__(self, knowledge: CompiledKnowledge) -> None:
        self.knowledge = knowledge
        self.kb = knowledge.kb
        self.fsm = knowledge.fsm
        self.flows = knowledge.flows

    def answered_any(self, record: UserRecord) -> bool:
        return any(q in record.answers for q in self.knowledge.question_flow)

    def unfinished(self, record: UserRecord) -> bool:
        return record.flow in self.flows and first_unanswered(self.fsm, record, record.flow or "") is not None

    # ------------------------------------------------------------------ a flow's result

    def closing(self, flow_id: str, synthesis: Synthesis | None = None) -> tuple[tuple[Button, ...], ...]:
        revisit = self.revisit_rows(synthesis, flow_id) if synthesis is not None else []
        return (
            *revisit,
            (REPORT_BUTTON,),
            (Button(EDIT_LABEL, p.edit(flow_id)),),
            (Button("Recommencer", p.RESTART), MENU_BUTTON),
        )

    def revisit_rows(self, synthesis: Synthesis, flow_hint: str | None = None) -> list[tuple[Button, ...]]:
        """« Revoir : … » for each answer that contradicts another: /modifier's own question screen."""
        rows: list[tuple[Button, ...]] = []
        for key in revisit_questions(synthesis):
            flows = self.knowledge.question_flow.get(key, [])
            flow_id = flow_hint if flow_hint in flows else (flows[0] if flows else None)
            if flow_id is None:
                continue
            flow = self.flows[flow_id]
            step = next(index for index, s in enumerate(flow.steps, start=1) if any(q.id == key for q in s.questions))
            question = next(q for q in flow.steps[step - 1].questions if q.id == key)
            payload = p.edit(flow_id, str(step), key)
            if p.fits(p.EDIT, flow_id, str(step), key):
                rows.append((Button(revisit_label(question), payload),))
        return rows

    def result(self, turn: Turn, flow_id: str, number: int = 1) -> list[Reply]:
        """The orientation's short synthesis, or a page of the legal guide."""
        flow = self.flows[flow_id]
        synthesis = build_synthesis(self.kb.synthesis, turn.record.answers)
        closing = self.closing(flow_id, synthesis)
        if flow.result != FORMES:  # the short synthesis first, the detail on demand
            return [Reply(render_short(synthesis), ((Button(DETAIL_BUTTON, p.synthesis_detail()),), *closing))]
        pages = render_legal_guide(synthesis, flow.comparison)
        return [page(pages, number, lambda n: p.result(flow_id, n), closing)]

    def result_page(self, turn: Turn, payload: p.Payload) -> list[Reply] | None:
        """« Suite » under the legal guide: ``res:FLOW:PAGE``."""
        flow_id, number = payload.arg(0), page_number(payload.arg(1))
        if flow_id not in self.flows or number is None or len(payload.args) != 2:
            return None
        return self.result(turn, flow_id, number)

    # ------------------------------------------------------------------ the synthesis

    def synthesis(self, turn: Turn, *, full: bool = False, number: int = 1) -> list[Reply]:
        if not self.answered_any(turn.record):
            return [
                Reply(
                    "Vous n’avez encore répondu à aucune question : la synthèse se construit à partir du parcours d’orientation.",
                    ((Button("Commencer l’orientation", p.flow(ORIENTATION)),), (MENU_BUTTON,)),
                )
            ]
        synthesis = build_synthesis(self.kb.synthesis, turn.record.answers)
        closing: list[tuple[Button, ...]] = self.revisit_rows(synthesis)
        if not full:
            closing.append((Button(DETAIL_BUTTON, p.synthesis_detail()),))
        closing.append((REPORT_BUTTON,))
        closing.append((Button(EDIT_LABEL, p.edit()),))
        if self.unfinished(turn.record):
            closing.append((Button("Reprendre le parcours", p.RESUME),))
        closing.append((MENU_BUTTON,))
        if not full:
            return [Reply(render_short(synthesis), tuple(closing))]
        pages = render_full(synthesis)
        return [page(pages, number, p.synthesis_detail, tuple(closing))]

    def synthesis_page(self, turn: Turn, payload: p.Payload) -> list[Reply] | None:
        """« Voir le détail » (``synd``) and its « Suite » (``synd:PAGE``)."""
        number = page_number(payload.arg(0))
        if number is None or len(payload.args) > 1:
            return None
        return self.synthesis(turn, full=True, number=number)

    # ------------------------------------------------------------------ « Non, garder »

    def keep(self, turn: Turn) -> list[Reply] | None:
        """The restart declined on a finished flow: a short word, not the result printed again.

        ``None`` when the flow is unfinished: the caller takes the user back to its question.
        """
        record = turn.record
        flow_id = record.flow if record.flow in self.flows else ORIENTATION
        if first_unanswered(self.fsm, record, flow_id) is not None or not self.answered_any(record):
            return None
        turn.conversation.trigger(m.goto_trigger(m.done_state(flow_id)))
        flow = self.flows[flow_id]
        see = Button("Voir ma synthèse", p.SYNTHESIS) if flow.result != FORMES else Button("Voir le résultat", p.result(flow_id, 1))
        return [
            Reply(
                f"C’est noté : vos réponses au « {flow.title} » sont gardées.",
                ((see,), (Button(EDIT_LABEL, p.edit(flow_id)),), (MENU_BUTTON,)),
            )
        ]

    # ------------------------------------------------------------------ /progression

    def progress(self, record: UserRecord) -> Reply:
        lines = []
        opened = opened_flows(self.knowledge, record)
        for flow_id, flow in self.flows.items():
            total = sum(len(s.questions) for s in flow.steps)
            if flow_id not in opened:
                shared = sum(1 for _, q in flow.questions() if q.id in record.answers)
                line = f"**{flow.title}** : pas encore ouvert ({total} questions)."
                if shared:
                    line += f" {shared} de ses questions ont déjà une réponse dans l’autre parcours : elles seront reprises."
                lines.append(line)
                continue
            done = skipped = 0
            step_lines = []
            for step in flow.steps:
                ids = [q.id for q in step.questions]
                answered = [q for q in ids if q in record.answers]
                if len(answered) == len(ids):
                    mark = "⏭️" if all(record.answers[q] is None for q in ids) else "✅"
                else:
                    mark = "▫️"
                done += sum(1 for q in answered if record.answers[q] is not None)
                skipped += sum(1 for q in answered if record.answers[q] is None)
                step_lines.append(f"- {mark} {step.title}")
            lines.append(
                f"**{flow.title}** : {done} réponse(s), {skipped} question(s) passée(s), "
                f"{total - done - skipped} à faire sur {total}.\n" + "\n".join(step_lines)
            )
        buttons: list[tuple[Button, ...]] = []
        if self.unfinished(record):
            buttons.append((Button("Reprendre", p.RESUME),))
        if self.answered_any(record):
            buttons.append((Button(EDIT_LABEL, p.edit()),))
        buttons.append((MENU_BUTTON,))
        return Reply("**Votre progression**\n\n" + "\n\n".join(lines) + "\n\n✅ fait · ⏭️ passé · ▫️ à faire", tuple(buttons))
