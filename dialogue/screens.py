"""Fixed screens (welcome, menu, help, source) and the memory of what is on screen.

What was shown is remembered so that a label or a number typed later acts as the
button (« 2 », « valider », « oui »), whichever channel the user types in.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from dialogue import payloads as p
from dialogue.buttons import HELP_BUTTON, MENU_BUTTON, button_key, edit_distance_at_most_one, label, numbered
from dialogue.compiled import FORMES, ORIENTATION, CompiledKnowledge
from dialogue.flows import machine as m
from dialogue.flows.results import EDIT_LABEL, REPORT_BUTTON, opened_flows
from dialogue.flows.runner import FlowRunner
from dialogue.storage.progress import UserRecord
from dialogue.turn import Turn
from dialogue.types import Button, Reply
from knowledge.text import normalise

#: How many buttons the engine remembers as « on screen » for typed labels.
MAX_VISIBLE = 40
_CONFIRMATIONS = (m.CONFIRM_FORGET, m.CONFIRM_RESTART)
_CONFIRMING_PAYLOADS = frozenset({p.RESUME, p.RESTART_CONFIRMED, p.FORGET_CONFIRMED})

HELP_TITLE = "**Comment m’utiliser**"
HELP_LINES = (
    "- Posez votre question en quelques mots (par exemple « faut-il créer une association ? »).",
    "- /menu : les grandes questions sur les PTCE.",
    "- /orientation : faire le point sur votre PTCE, pas à pas, puis /synthese.",
    "- /formes : choisir une forme juridique (aucune, association, SCIC).",
    "- /reprendre, /progression, /recommencer : votre parcours ; /modifier : changer une réponse.",
)
HELP_LAST_LINES = (
    "- /glossaire, /source : le vocabulaire et le document de référence.",
    "- /oublier : effacer vos données.",
    "- « Je veux parler à quelqu’un » : transmettre votre question à l’équipe.",
)
HELP_CLOSING = "Toutes les réponses viennent du document de l’Institut Godin et citent leur chapitre."


class Screens:
    def __init__(
        self, knowledge: CompiledKnowledge, runner: FlowRunner, help_lines: Callable[[], list[str]], help_sections: Callable[[], list[str]]
    ) -> None:
        self.knowledge = knowledge
        self.kb = knowledge.kb
        self.runner = runner
        self._help_lines = help_lines
        self._help_sections = help_sections

    def welcome(self, turn: Turn, *, absent: bool) -> list[Reply]:
        turn.conversation.show_menu()
        if not turn.record.is_new and self.runner.unfinished_flow(turn.record):
            return self.welcome_back(turn, absent=absent)
        if not turn.record.is_new and self.runner.answered_any(turn.record):
            return [self.welcome_done(turn.record, absent=absent)]
        if absent:
            return [Reply("Bon retour ! Posez votre question, ou choisissez dans le menu."), self.menu_reply()]
        intro = (
            "Bonjour ! Je suis le conseiller PTCE. Je vous aide à comprendre et à construire un "
            "**Pôle territorial de coopération économique**, à partir du document « "
            f"{self.kb.document.title} » ({self.kb.document.publisher}).\n\n"
            "Choisissez une question dans le menu, faites le point pas à pas avec l’orientation, "
            "ou posez directement votre question."
        )
        return [Reply(intro), self.menu_reply()]

    def welcome_back(self, turn: Turn, *, absent: bool = True) -> list[Reply]:
        flow = self.knowledge.flows[turn.record.flow or ""]
        turn.pending = True
        greeting = "Bon retour ! Vous aviez commencé" if absent else "Vous avez commencé"
        return [
            Reply(
                f"{greeting} le « {flow.title} ». Voulez-vous le reprendre à la première question sans réponse, ou recommencer ?",
                ((Button("Reprendre", p.RESUME), Button("Recommencer", p.RESTART)), (MENU_BUTTON,)),
            )
        ]

    def welcome_done(self, record: UserRecord, *, absent: bool) -> Reply:
        """A user whose last flow is finished: what they did, and what they can do next."""
        flows = self.knowledge.flows
        opened = opened_flows(self.knowledge, record)
        finished = [f for f in opened if self.runner.first_unanswered(record, f) is None]
        started = [f for f in opened if f not in finished]
        lines = ["Bon retour !"] if absent else []
        if finished:
            lines.append("Vous avez terminé le " + " et le ".join(f"« {flows[f].title} »" for f in finished) + " : vos réponses sont gardées.")
        else:
            lines.append("Vos réponses sont gardées.")
        if started:
            lines.append(" ".join(f"Le « {flows[f].title} » est en cours." for f in started))
        lines.append("Vous pouvez revoir votre synthèse, changer une réponse, recevoir le document en PDF, ou simplement poser une question.")
        rows: list[tuple[Button, ...]] = [(Button("Voir ma synthèse", p.SYNTHESIS),), (Button(EDIT_LABEL, p.edit()),)]
        rows.extend((Button(label(f"Reprendre : {flows[f].title}"), p.flow(f)),) for f in started)
        if FORMES not in opened:
            rows.append((Button("Guide des formes juridiques", p.flow(FORMES)),))
        elif ORIENTATION not in opened:
            rows.append((Button("Orientation pas à pas", p.flow(ORIENTATION)),))
        rows.append((REPORT_BUTTON,))
        rows.append((MENU_BUTTON,))
        return Reply(" ".join(lines), tuple(rows))

    def returning_notice(self, record: UserRecord) -> Reply | None:
        """After a long absence, one line above the answer: the user's results are still there."""
        if self.runner.unfinished_flow(record) or not self.runner.answered_any(record):
            return None
        return Reply("Bon retour ! Vos réponses sont gardées : /synthese pour revoir votre synthèse, /modifier pour changer une réponse.")

    def menu(self, turn: Turn) -> list[Reply]:
        turn.conversation.show_menu()
        return [self.menu_reply()]

    def menu_reply(self) -> Reply:
        rows: list[tuple[Button, ...]] = [(Button(q.label, p.intro(q.id)),) for q in self.kb.document.intro_questions]
        rows.append((Button("Orientation pas à pas", p.flow(ORIENTATION)),))
        rows.append((Button("Formes juridiques", p.flow(FORMES)),))
        rows.append((Button("Glossaire", p.GLOSSARY), HELP_BUTTON))
        return Reply("**Menu** — que voulez-vous savoir ?", tuple(rows))

    def help(self) -> Reply:
        lines = "\n".join([*HELP_LINES, *self._help_lines(), *HELP_LAST_LINES])
        return Reply("\n\n".join([HELP_TITLE, lines, HELP_CLOSING, *self._help_sections()]), ((MENU_BUTTON,),))

    def source(self) -> Reply:
        doc = self.kb.document
        chapters = "\n".join(f"- {c.number} — {c.title} (p. {c.page})" for c in doc.chapters.values())
        topic = self.kb.topics.get("source.document")
        about = f"{topic.short}\n\n" if topic else ""
        return Reply(
            f"**Document de référence** : « {doc.title} », {doc.publisher}.\n\n{about}Chapitres :\n{chapters}",
            ((MENU_BUTTON,),),
        )

    # ------------------------------------------------------------------ what is on screen

    @staticmethod
    def remember(turn: Turn, replies: list[Reply]) -> None:
        shown = [(b.label, b.payload) for b in numbered(replies)]
        context = turn.record.context
        if shown:
            context.buttons = shown[:MAX_VISIBLE]
            context.pending = turn.pending
        elif turn.forget:
            context.buttons = []

    @staticmethod
    def pending_buttons(record: UserRecord) -> tuple[tuple[Button, ...], ...]:
        if not record.context.pending:
            return ()
        return tuple((Button(text, payload),) for text, payload in record.context.buttons)

    def typed_button(self, record: UserRecord, plain: str, state: str) -> str | None:
        """The payload of the visible button whose label the user typed (or a yes/no at a confirmation)."""
        shown = record.context.buttons
        if not shown or not plain:
            return None
        if plain.isdigit():
            # One numbering per screen (buttons.numbered), as channels print it: the step's own options first.
            number = int(plain)
            return shown[number - 1][1] if 1 <= number <= len(shown) else None
        names = [(button_key(text), payload) for text, payload in shown]
        exact = [payload for name, payload in names if name == plain]
        if exact:
            return exact[0]
        words = self.knowledge.talk.words
        yes, no = _with_elisions(words["yes_words"]), _with_elisions(words["no_words"])
        if plain in no and any(payload == p.NOT_THIS for _, payload in names):  # « non » after a hedged answer
            return p.NOT_THIS
        if record.context.pending or state in _CONFIRMATIONS:
            first_word = plain.split()[0]
            if len(names) >= 2 and (plain in yes or plain in no or first_word in {"oui", "non"}):
                if state in _CONFIRMATIONS or names[0][1] in _CONFIRMING_PAYLOADS:
                    return names[0][1] if (plain in yes or first_word == "oui") else names[1][1]
        if len(plain) >= 4:
            prefixed = {payload for name, payload in names if name.startswith(plain)}
            if len(prefixed) == 1:
                return prefixed.pop()
        if len(plain) >= 5:
            close = {payload for name, payload in names if edit_distance_at_most_one(name, plain)}
            if len(close) == 1:
                return close.pop()
        return None


_SPELT_APART = re.compile(r"\b(qu|[cdjlmnst]) (?=[a-z])")


@lru_cache(maxsize=8)
def _with_elisions(words: frozenset[str]) -> frozenset[str]:
    """A word list as typed text reads once normalised: « d accord » is also « accord » (« d’accord »
    loses its elision in :func:`~knowledge.text.normalise`)."""
    return words | {normalise(_SPELT_APART.sub(lambda m: m.group(1) + "'", word)) for word in words}
