"""The dialogue engine: one entry point, ``Engine.handle(user_id, event)``.

Channel-agnostic: it receives ``Command``/``Choose``/``Say`` events and
returns ``Reply`` objects. The state machine decides where the user goes;
the engine renders what they read and persists everything in one
transaction per event.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from dialogue import machine as m
from dialogue.collective_flow import ChannelSettings, CollectiveFlow
from dialogue.collective_store import CollectiveStore
from dialogue.commands import COMMANDS
from dialogue import report_request as report
from dialogue.store import AnswerValue, ProgressStore, UserRecord
from dialogue.synthesis import DETAIL_BUTTON, build_synthesis, render_full, render_legal_guide, render_short
from dialogue.handover_store import HandoverStore
from dialogue.question_log import QuestionLog
from dialogue.team_flow import TeamFlow, TeamServices, privacy_help
from dialogue.texts import OFF_TOPIC, source_line, topic_answer, typeset
from dialogue.types import MAX_PAYLOAD_BYTES, Button, Choose, Command, Event, Reply, Say
from knowledge.debate import load_debate
from knowledge.flows import answer_keys
from knowledge.loader import KnowledgeBase, Topic, initial, load_knowledge, term_key
from knowledge.matcher import Matcher, french_words
from knowledge.text import normalise

log = logging.getLogger(__name__)

ORIENTATION = "orientation"
FORMES = "formes"
LONG_ABSENCE = timedelta(days=7)
MAX_TEXT = 4000
MENU_BUTTON = Button("Menu", "m")
STALE = "Ce choix n’est plus valable."
#: Options meaning « none of these »: selecting one clears the others, and vice versa.
EXCLUSIVE_OPTIONS = frozenset({"aucun", "aucune"})

_ORIENTATION_INTENTS = (
    "faire le point",
    "orientation",
    "parcours",
    "auto diagnostic",
    "autodiagnostic",
    "evaluer mon ptce",
    "evaluer notre ptce",
    "positionner mon ptce",
    "positionner notre ptce",
    "ou en est mon ptce",
    "ou en est notre ptce",
    "bilan de mon ptce",
    "bilan de notre ptce",
)
_LEGAL_TOPICS = frozenset(
    {"formalisation.pourquoi", "formalisation.sans_structure", "formalisation.association", "formalisation.scic"}
)
_GLOSSARY_PREFIXES = tuple(
    sorted(
        {
            normalise(f"{question} {article}") + " "
            for question in ("c'est quoi", "qu'est-ce que", "qu'est-ce qu'", "que veut dire", "que signifie", "définition de", "définition", "c koi")
            for article in ("un", "une", "le", "la", "les", "l'", "")
        },
        key=len,
        reverse=True,
    )
)
_SKIP_WORDS = frozenset({"passer", "je passe", "suivant", "sauter", "skip", "passe"})
_BACK_WORDS = frozenset({"retour", "precedent", "revenir", "back"})
_VALIDATE_WORDS = frozenset({"valider", "ok", "c est bon", "termine", "fini"})


def _label(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass
class _Turn:
    """What one event changes: kept in memory, written once at the end."""

    record: UserRecord
    changed: dict[str, AnswerValue]
    removed: list[str]
    forget: bool = False


class Engine:
    """Turns user events into replies. Build once per process; ``handle`` per event."""

    def __init__(self, kb: KnowledgeBase, store: ProgressStore, *, clock=None, team: TeamServices | None = None) -> None:
        self.kb = kb
        self.store = store
        self.team_services = team or TeamServices(QuestionLog(store.db), HandoverStore(store.db))
        self.team = TeamFlow(kb, self.team_services)
        self.matcher = Matcher(kb)
        # Load the spelling dictionary alongside start-up rather than inside a user's question.
        threading.Thread(target=french_words, name="french-words", daemon=True).start()
        # The orientation comes first wherever flows are listed.
        self.flows = dict(sorted(kb.flows.items(), key=lambda item: item[0] != ORIENTATION))
        self.fsm = m.FlowMachine(kb.flows)
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._question_flow: dict[str, list[str]] = {}
        for flow in self.flows.values():
            for step in flow.steps:
                for question in step.questions:
                    self._question_flow.setdefault(question.id, []).append(flow.id)
        self._glossary_names = {
            normalise(name): term for term in kb.glossary for name in (term.term, *term.aliases)
        }
        self._check_payloads()
        self.collective = CollectiveFlow(kb, CollectiveStore(store.db), load_debate(kb.document, answer_keys(kb.flows)))

    # ------------------------------------------------------------------ entry point

    def handle(self, user_id: str, event: Event) -> list[Reply]:
        """Process one event for one user and return the replies to show."""
        record = self.store.load(user_id)
        notices: list[Reply] = []
        if record is None:
            record = UserRecord(id=user_id, state=m.MENU, knowledge_version=self.kb.version, is_new=True)
        else:
            notices.extend(self._repair(record))
        notices.extend(self.team.pending_answers(user_id))
        turn = _Turn(record, {}, [])
        absent = self._absent_too_long(record)
        record.last_seen = self._now_iso()
        record.active = True
        conversation = self.fsm.acquire(user_id, record.state)
        try:
            if absent and not isinstance(event, Command) and self._unfinished_flow(record):
                replies = self._welcome_back(turn)
            else:
                replies = self._dispatch(turn, conversation, event)
            record.state = conversation.state
        finally:
            self.fsm.release(conversation)
        if turn.forget:
            self.store.forget(user_id)
        else:
            record.knowledge_version = self.kb.version
            self.store.save(record, turn.changed, turn.removed)
        return [replace(reply, text=typeset(reply.text)) for reply in notices + replies]

    def use_channel(self, settings: ChannelSettings) -> None:
        """The channel describes itself (e.g. the Telegram bot's username, for invitation links)."""
        self.collective.settings = settings

    def handle_group(self, user_id: str, group_chat: str, argument: str = "", *, command: str = "collectif") -> list[Reply]:
        """/collectif (or /rejoindre) typed in a group chat: link the group, post the invitation."""
        replies = self.collective.in_group(user_id, group_chat, argument, command=command)
        return [replace(reply, text=typeset(reply.text)) for reply in replies]

    def mark_inactive(self, user_id: str) -> None:
        """The user blocked the bot: keep their progress, stop counting them as active."""
        self.store.mark_inactive(user_id)

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self, turn: _Turn, conv: m.Conversation, event: Event) -> list[Reply]:
        # The PTCE's name for the PDF is the next free text only; anything else cancels the question.
        if turn.record.context.pop(report.PENDING_KEY, None) and isinstance(event, Say):
            return self._report(turn, conv, typed_name=event.text)
        if isinstance(event, Command):
            self.team.moved_on(turn.record)
            return self._command(turn, conv, event.name.lower().lstrip("/"), event.argument.strip().lower())
        if isinstance(event, Choose):
            team = self.team.on_choose(turn.record, event.payload)
            return team if team is not None else self._choose(turn, conv, event.payload)
        if isinstance(event, Say):
            self.team.note_message(turn.record, (event.text or "").strip())
            team = self.team.intercept(turn.record, (event.text or "").strip())
            return team if team is not None else self._say(turn, conv, event.text)
        return [Reply("Je n’ai pas compris ce message.", ((MENU_BUTTON,),))]

    def _command(self, turn: _Turn, conv: m.Conversation, name: str, argument: str) -> list[Reply]:
        collective = self.collective.command(turn.record, name, argument)
        if collective is not None:
            conv.show_menu()
            return collective
        if name == "start":
            if argument in self.flows:
                return self._start_flow(turn, conv, argument)
            return self._welcome(turn, conv)
        if name == "menu":
            return self._menu(conv)
        if name == "aide":
            return [self._help()]
        if name == "orientation":
            return self._start_flow(turn, conv, ORIENTATION)
        if name == "formes":
            return self._start_flow(turn, conv, FORMES)
        if name == "synthese":
            return self._synthesis(turn)
        if name == "reprendre":
            return self._resume(turn, conv)
        if name == "progression":
            return [self._progress(turn.record)]
        if name == "recommencer":
            conv.ask_restart()
            flow = self.flows[self._restart_target(turn.record)]
            return [
                Reply(
                    f"Recommencer le « {flow.title} » depuis le début ? Vos réponses à ce parcours seront effacées.",
                    ((Button("Oui, recommencer", "rr!"), Button("Non, garder", "r")),),
                )
            ]
        if name == "glossaire":
            return self._glossary(conv)
        if name == "source":
            return [self._source()]
        if name == "oublier":
            conv.ask_forget()
            return [
                Reply(
                    "Voulez-vous vraiment effacer tout ce que j’ai enregistré à votre sujet (progression, réponses et questions posées) ? "
                    "Cette action est définitive.",
                    ((Button("Oui, tout effacer", "forget!"), Button("Non, annuler", "m")),),
                )
            ]
        names = ", ".join(f"/{n}" for n, _ in COMMANDS)
        return [Reply(f"Je ne connais pas la commande /{_label(name, 30)}. Commandes disponibles : {names}.", ((MENU_BUTTON,),))]

    def _choose(self, turn: _Turn, conv: m.Conversation, payload: str) -> list[Reply]:
        kind, _, rest = payload.partition(":")
        record = turn.record
        if kind == "k":
            return self.collective.choose(record, rest) or self._stale(turn, conv)
        self.collective.interrupt(record)
        if kind == "m" and not rest:
            return self._menu(conv)
        if kind == "t" and rest in self.kb.topics:
            conv.read_topic()
            record.context["topic"] = rest
            return [self._topic_page(record, self.kb.topics[rest])]
        if kind == "more" and rest in self.kb.topics:
            conv.read_topic()
            return [self._details(record, self.kb.topics[rest])]
        if kind == "vig" and rest in self.kb.topics and self.kb.topics[rest].vigilance:
            conv.read_topic()
            return [self._vigilance(record, self.kb.topics[rest])]
        if kind == "i":
            intro = next((q for q in self.kb.document.intro_questions if q.id == rest), None)
            if intro:
                conv.read_topic()
                return [self._topic_page(record, self.kb.topics[intro.topics[0]])]
        if kind == "f" and rest in self.flows:
            return self._start_flow(turn, conv, rest)
        if kind == "g":
            return self._glossary(conv, rest)
        if kind == "src" and not rest:
            return [self._source()]
        if kind == "help" and not rest:
            return [self._help()]
        if kind == "syn" and not rest:
            return self._synthesis(turn)
        if kind in (report.REPORT_PAYLOAD, report.NO_NAME_PAYLOAD) and not rest:
            return self._report(turn, conv, typed_name="" if kind == report.NO_NAME_PAYLOAD else None)
        if kind == "synd" and not rest:
            return self._synthesis(turn, full=True)
        if kind == "r" and not rest:
            return self._resume(turn, conv)
        if kind == "rr" and not rest:
            return self._command(turn, conv, "recommencer", "")
        if kind == "rr!" and not rest:
            if conv.state != m.CONFIRM_RESTART:
                return self._stale(turn, conv)
            return self._restart(turn, conv)
        if kind == "forget!" and not rest:
            if conv.state != m.CONFIRM_FORGET:
                return self._stale(turn, conv)
            turn.forget = True
            conv.show_menu()
            return [Reply("C’est fait : toutes vos données ont été effacées. Écrivez /start pour recommencer quand vous voulez.")]
        if kind in {"a", "x", "ok", "s", "b"}:
            return self._flow_button(turn, conv, kind, rest)
        return self._stale(turn, conv)

    def _say(self, turn: _Turn, conv: m.Conversation, text: str) -> list[Reply]:
        text = (text or "").strip()
        if not text:
            return [Reply("Je n’ai reçu aucun texte. Posez votre question ou choisissez dans le menu.", ((MENU_BUTTON,),))]
        if len(text) > MAX_TEXT:
            text = text[:MAX_TEXT]
        collective = self.collective.say(turn.record, text)
        if collective is not None:
            return collective
        position = self.fsm.positions.get(conv.state)
        if position is not None:
            handled = self._answer_by_text(turn, conv, position, text)
            if handled is not None:
                return handled
        plain = normalise(text)
        if report.wants_report(plain):
            return self._report(turn, conv)
        if any(intent in plain for intent in _ORIENTATION_INTENTS) and position is None:
            return self._start_flow(turn, conv, ORIENTATION)
        glossary = self._glossary_lookup(plain)
        if glossary is not None:
            self.team.log_glossary(turn.record, text, flow=position.flow_id if position else None, step=position.question_id if position else None)
            replies = [glossary]
        else:
            replies = self._free_answer(turn.record, text, in_flow=position is not None)
        if position is not None:
            replies.append(self._question(turn.record, conv.state))
        return replies

    # ------------------------------------------------------------------ pages

    def _welcome(self, turn: _Turn, conv: m.Conversation) -> list[Reply]:
        conv.show_menu()
        if not turn.record.is_new and self._unfinished_flow(turn.record):
            return self._welcome_back(turn)
        intro = (
            "Bonjour ! Je suis le conseiller PTCE. Je vous aide à comprendre et à construire un "
            "**Pôle territorial de coopération économique**, à partir du document « "
            f"{self.kb.document.title} » ({self.kb.document.publisher}).\n\n"
            "Choisissez une question dans le menu, faites le point pas à pas avec l’orientation, "
            "ou posez directement votre question."
        )
        return [Reply(intro), self._menu_reply()]

    def _welcome_back(self, turn: _Turn) -> list[Reply]:
        flow = self.flows[turn.record.flow]
        return [
            Reply(
                f"Bon retour ! Vous aviez commencé le « {flow.title} ». Voulez-vous reprendre où vous en étiez ou recommencer ?",
                ((Button("Reprendre", "r"), Button("Recommencer", "rr")), (MENU_BUTTON,)),
            )
        ]

    def _menu(self, conv: m.Conversation) -> list[Reply]:
        conv.show_menu()
        return [self._menu_reply()]

    def _menu_reply(self) -> Reply:
        rows = [(Button(q.label, f"i:{q.id}"),) for q in self.kb.document.intro_questions]
        rows.append((Button("Orientation pas à pas", f"f:{ORIENTATION}"),))
        rows.append((Button("Formes juridiques", f"f:{FORMES}"),))
        rows.append((Button("Glossaire", "g"), Button("Aide", "help")))
        return Reply("**Menu** — que voulez-vous savoir ?", tuple(rows))

    def _topic_buttons(self, record: UserRecord, topic: Topic, *, skip: str = "") -> tuple[tuple[Button, ...], ...]:
        rows: list[tuple[Button, ...]] = []
        first: list[Button] = []
        if skip != "more":
            first.append(Button("En savoir plus", f"more:{topic.id}"))
        if topic.vigilance and skip != "vig":
            first.append(Button("Points de vigilance", f"vig:{topic.id}"))
        if first:
            rows.append(tuple(first))
        for related in topic.related[:3]:
            rows.append((Button(_label("→ " + self.kb.topics[related].title), f"t:{related}"),))
        if topic.id in _LEGAL_TOPICS:
            rows.append((Button("Guide des formes juridiques", f"f:{FORMES}"),))
        last = [MENU_BUTTON]
        if self._unfinished_flow(record):
            last.insert(0, Button("Reprendre le parcours", "r"))
        rows.append(tuple(last))
        return tuple(rows)

    def _topic_page(self, record: UserRecord, topic: Topic) -> Reply:
        return Reply(topic_answer(self.kb, topic), self._topic_buttons(record, topic))

    def _details(self, record: UserRecord, topic: Topic) -> Reply:
        text = f"**{topic.title} — en savoir plus**\n\n{topic.details}\n\n{source_line(self.kb, topic)}"
        return Reply(text, self._topic_buttons(record, topic, skip="more"))

    def _vigilance(self, record: UserRecord, topic: Topic) -> Reply:
        items = "\n".join(f"- {item}" for item in topic.vigilance)
        text = f"**Points de vigilance — {topic.title}**\n\n{items}\n\n{source_line(self.kb, topic)}"
        return Reply(text, self._topic_buttons(record, topic, skip="vig"))

    def _free_answer(self, record: UserRecord, text: str, *, in_flow: bool) -> list[Reply]:
        match = self.matcher.match(text)
        position = self.fsm.positions.get(record.state)
        self.team.log_question(
            record, text, match, flow=position.flow_id if position else None, step=position.question_id if position else None
        )
        if match.topic is None:
            return [Reply(OFF_TOPIC, () if in_flow else ((MENU_BUTTON,),)), *self.team.after_decline(record)]
        if match.ambiguous:
            options = [match.topic] + [c.topic for c in match.alternatives[:2]]
            rows = tuple((Button(_label(self.kb.topics[t].title), f"t:{t}"),) for t in options)
            return [Reply("Vouliez-vous dire… ?", rows + (() if in_flow else ((MENU_BUTTON,),)))]
        topic = self.kb.topics[match.topic]
        if in_flow:
            return [Reply(topic_answer(self.kb, topic), (self.team.feedback_row(record),))]
        page = self._topic_page(record, topic)
        return [replace(page, buttons=(*page.buttons[:-1], self.team.feedback_row(record), *page.buttons[-1:]))]

    def _glossary_lookup(self, plain: str) -> Reply | None:
        for prefix in _GLOSSARY_PREFIXES:
            if prefix.strip() and plain.startswith(prefix):
                plain = plain[len(prefix):]
                break
        term = self._glossary_names.get(plain.strip())
        if term is not None:
            return self._glossary_card(term)
        return None

    def _glossary(self, conv: m.Conversation, selection: str = "") -> list[Reply]:
        """The glossary, browsed by theme or by letter: ``g``, ``g:t:THEME``, ``g:l:LETTER``, ``g:e:TERM``."""
        conv.read_glossary()
        kind, _, value = selection.partition(":")
        themes = {theme.id: theme for theme in self.kb.glossary_themes}
        if kind == "t" and value in themes:
            terms = [term for term in self.kb.glossary if term.theme == value]
            return [self._glossary_list(f"**Glossaire — {themes[value].label}**", terms)]
        if kind == "l" and len(value) == 1:
            terms = [term for term in self.kb.glossary if initial(term.term) == value]
            if terms:
                return [self._glossary_list(f"**Glossaire — lettre {value}**", terms)]
        if kind == "e":
            term = next((t for t in self.kb.glossary if term_key(t.term) == value), None)
            if term is not None:
                return [self._glossary_card(term)]
        rows: list[tuple[Button, ...]] = []
        for theme in self.kb.glossary_themes:
            count = sum(term.theme == theme.id for term in self.kb.glossary)
            rows.append((Button(f"{theme.label} ({count})", f"g:t:{theme.id}"),))
        letters = sorted({initial(term.term) for term in self.kb.glossary})
        rows.extend(tuple(Button(letter, f"g:l:{letter}") for letter in letters[i : i + 7]) for i in range(0, len(letters), 7))
        rows.append((MENU_BUTTON,))
        text = (
            f"**Glossaire** — {len(self.kb.glossary)} termes du document, rangés par thème ou par lettre. "
            "Vous pouvez aussi écrire « c’est quoi un EPCI ? »."
        )
        return [Reply(text, tuple(rows))]

    def _glossary_list(self, heading: str, terms: list) -> Reply:
        """One theme or one letter: the terms as buttons, two per row."""
        buttons = [Button(_label(term.term, 32), f"g:e:{term_key(term.term)}") for term in terms]
        rows = [tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2)]
        rows.append((Button("Glossaire", "g"), MENU_BUTTON))
        names = ", ".join(term.term for term in terms)
        return Reply(f"{heading}\n\n{names}.\n\nChoisissez un terme pour lire sa définition.", tuple(rows))

    def _glossary_card(self, term) -> Reply:
        """One term: what the document says, then any general definition, marked as such."""
        text = f"**{term.term}** : {term.definition}"
        if term.general:
            text += f"\n\nDéfinition générale, hors document : {term.general}"
        if term.chapter:
            text += f"\n\n(Glossaire — {self.kb.document.cite(term.chapter)})"
        rows: list[tuple[Button, ...]] = []
        if term.topic:
            rows.append((Button(_label("→ " + self.kb.topics[term.topic].title), f"t:{term.topic}"),))
        theme = next((t for t in self.kb.glossary_themes if t.id == term.theme), None)
        back = [Button(_label("← " + theme.label), f"g:t:{theme.id}")] if theme else []
        rows.append((*back, Button("Glossaire", "g")))
        rows.append((MENU_BUTTON,))
        return Reply(text, tuple(rows))

    def _source(self) -> Reply:
        doc = self.kb.document
        chapters = "\n".join(f"- {c.number} — {c.title} (p. {c.page})" for c in doc.chapters.values())
        topic = self.kb.topics.get("source.document")
        about = f"{topic.short}\n\n" if topic else ""
        return Reply(
            f"**Document de référence** : « {doc.title} », {doc.publisher}.\n\n{about}Chapitres :\n{chapters}",
            ((MENU_BUTTON,),),
        )

    def _help(self) -> Reply:
        return Reply(
            "**Comment m’utiliser**\n\n"
            "- Posez votre question en quelques mots (par exemple « faut-il créer une association ? »).\n"
            "- /menu : les grandes questions sur les PTCE.\n"
            "- /orientation : faire le point sur votre PTCE, pas à pas, puis /synthese.\n"
            "- /formes : choisir une forme juridique (aucune, association, SCIC).\n"
            "- /reprendre, /progression, /recommencer : votre parcours.\n"
            "- /collectif : faire l’orientation avec votre collectif et voir où vos avis convergent ; /rejoindre CODE pour rejoindre un collectif.\n"
            "- /glossaire, /source : le vocabulaire et le document de référence.\n"
            "- /oublier : effacer vos données.\n"
            "- « Je veux parler à quelqu’un » : transmettre votre question à l’équipe.\n\n"
            "Toutes les réponses viennent du document de l’Institut Godin et citent leur chapitre.\n\n"
            + privacy_help(self.team_services.log),
            ((MENU_BUTTON,),),
        )

    def _stale(self, turn: _Turn, conv: m.Conversation) -> list[Reply]:
        position = self.fsm.positions.get(conv.state)
        if position is not None:
            return [Reply(STALE), self._question(turn.record, conv.state)]
        return [Reply(STALE, ((MENU_BUTTON,),))]

    # ------------------------------------------------------------------ flows

    def _unfinished_flow(self, record: UserRecord) -> bool:
        flow_id = record.flow
        if flow_id not in self.flows:
            return False
        return self._first_unanswered(record, flow_id) is not None

    def _first_unanswered(self, record: UserRecord, flow_id: str) -> str | None:
        for state in self.fsm.order[flow_id]:
            if self.fsm.positions[state].question_id not in record.answers:
                return state
        return None

    def _start_flow(self, turn: _Turn, conv: m.Conversation, flow_id: str) -> list[Reply]:
        record = turn.record
        flow = self.flows[flow_id]
        target = self._first_unanswered(record, flow_id)
        record.flow = flow_id
        if target is None:
            conv.trigger(m.goto_trigger(m.done_state(flow_id)))
            return [Reply(f"Vous avez déjà répondu à tout le « {flow.title} ». Voici le résultat.")] + self._flow_result(
                turn, flow_id
            )
        started = target == self.fsm.first_state(flow_id)
        conv.trigger(m.goto_trigger(target))
        replies = [Reply(flow.intro)] if started else [Reply(f"On reprend le « {flow.title} » là où vous vous étiez arrêté.")]
        replies.extend(self._question_replies(record, target))
        return replies

    def _resume(self, turn: _Turn, conv: m.Conversation) -> list[Reply]:
        record = turn.record
        if conv.state in self.fsm.positions:
            return self._question_replies(record, conv.state)
        if record.flow in self.flows:
            return self._start_flow(turn, conv, record.flow)
        return [
            Reply(
                "Vous n’avez pas encore commencé de parcours. Voulez-vous faire le point sur votre PTCE ?",
                ((Button("Orientation pas à pas", f"f:{ORIENTATION}"),), (MENU_BUTTON,)),
            )
        ]

    def _restart_target(self, record: UserRecord) -> str:
        return record.flow if record.flow in self.flows else ORIENTATION

    def _restart(self, turn: _Turn, conv: m.Conversation) -> list[Reply]:
        record = turn.record
        flow_id = self._restart_target(record)
        questions = [self.fsm.positions[s].question_id for s in self.fsm.order[flow_id]]
        turn.removed.extend(q for q in questions if q in record.answers)
        for question in questions:
            record.answers.pop(question, None)
        record.context.pop("selection", None)
        return [Reply("C’est reparti depuis le début.")] + self._start_flow(turn, conv, flow_id)

    def _question_replies(self, record: UserRecord, state: str) -> list[Reply]:
        """The question with its buttons, explained by the step's topic on the step's first question."""
        return [self._question(record, state, explain=self.fsm.positions[state].first_in_step)]

    def _lookup(self, state: str):
        position = self.fsm.positions[state]
        flow = self.flows[position.flow_id]
        step = flow.steps[position.step_index]
        question = next(q for q in step.questions if q.id == position.question_id)
        return step, question

    def _question(self, record: UserRecord, state: str, *, explain: bool = False) -> Reply:
        position = self.fsm.positions[state]
        step, question = self._lookup(state)
        header = f"**Étape {position.step_index + 1}/{position.step_count} — {step.title}**"
        if explain and step.topic:
            topic = self.kb.topics[step.topic]
            header += f"\n\n{topic.short}\n({self.kb.cite(topic)})"
        rows: list[tuple[Button, ...]] = []
        if question.kind == "multiple":
            selected = set(self._selection(record, question.id))
            for option in question.options:
                mark = "✅ " if option.id in selected else "▫️ "
                rows.append((Button(_label(mark + option.label, 44), f"x:{question.id}:{option.id}"),))
            rows.append((Button("Valider", f"ok:{question.id}"),))
            hint = "\n\n(Cochez vos réponses, puis « Valider ».)"
        else:
            current = record.answers.get(question.id)
            for option in question.options:
                mark = "● " if option.id == current else ""
                rows.append((Button(_label(mark + option.label, 44), f"a:{question.id}:{option.id}"),))
            hint = ""
        nav = [Button("Passer", f"s:{question.id}")]
        if position.question_index:
            nav.insert(0, Button("Retour", f"b:{question.id}"))
        rows.append(tuple(nav))
        rows.append((MENU_BUTTON,))
        return Reply(f"{header}\n\n{question.text}{hint}", tuple(rows))

    def _selection(self, record: UserRecord, question_id: str) -> list[str]:
        pending = record.context.get("selection", {})
        if question_id in pending:
            return list(pending[question_id])
        stored = record.answers.get(question_id)
        if isinstance(stored, str):  # stored when the question was single-choice
            return [stored]
        return list(stored) if isinstance(stored, list) else []

    def _flow_button(self, turn: _Turn, conv: m.Conversation, kind: str, rest: str) -> list[Reply]:
        question_id, _, option_id = rest.partition(":")
        position = self.fsm.positions.get(conv.state)
        if position is None or position.question_id != question_id:
            return self._stale(turn, conv)
        _, question = self._lookup(conv.state)
        options = {o.id for o in question.options}
        if kind == "a":
            if question.kind != "single" or option_id not in options:
                return self._stale(turn, conv)
            return self._store_and_advance(turn, conv, question.id, option_id)
        if kind == "x":
            if question.kind != "multiple" or option_id not in options:
                return self._stale(turn, conv)
            selection = self._selection(turn.record, question.id)
            if option_id in selection:
                selection.remove(option_id)
            elif option_id in EXCLUSIVE_OPTIONS:
                selection = [option_id]
            else:
                selection = [o for o in selection if o not in EXCLUSIVE_OPTIONS] + [option_id]
            order = [o.id for o in question.options]
            turn.record.context.setdefault("selection", {})[question.id] = sorted(selection, key=order.index)
            return [replace(self._question(turn.record, conv.state), edit=True)]
        if kind == "ok":
            if question.kind != "multiple" or option_id:
                return self._stale(turn, conv)
            return self._store_and_advance(turn, conv, question.id, self._selection(turn.record, question.id))
        if kind == "s" and not option_id:
            return self._store_and_advance(turn, conv, question.id, None)
        if kind == "b" and not option_id and position.question_index:
            conv.back()
            return self._question_replies(turn.record, conv.state)
        return self._stale(turn, conv)

    def _store_and_advance(self, turn: _Turn, conv: m.Conversation, question_id: str, value: AnswerValue) -> list[Reply]:
        record = turn.record
        record.answers[question_id] = value
        turn.changed[question_id] = value
        selection = record.context.get("selection", {})
        selection.pop(question_id, None)
        if not selection:
            record.context.pop("selection", None)
        flow_id = self.fsm.positions[conv.state].flow_id
        record.flow = flow_id
        conv.next()
        # Questions already answered (e.g. shared with the other flow) are not asked twice.
        while conv.state in self.fsm.positions and self.fsm.positions[conv.state].question_id in record.answers:
            conv.next()
        if conv.state in self.fsm.positions:
            return self._question_replies(record, conv.state)
        flow = self.flows[flow_id]
        return [Reply(flow.outro), *self._flow_result(turn, flow_id)]

    def _flow_result(self, turn: _Turn, flow_id: str) -> list[Reply]:
        flow = self.flows[flow_id]
        synthesis = build_synthesis(self.kb.synthesis, turn.record.answers)
        closing = ((report.REPORT_BUTTON,), (Button("Recommencer", "rr"), MENU_BUTTON))
        if flow.result != "formes":  # the short synthesis first, the rest on demand
            return [Reply(render_short(synthesis), ((Button(DETAIL_BUTTON, "synd"),),) + closing)]
        texts = render_legal_guide(synthesis, flow.comparison)
        return [Reply(text) for text in texts[:-1]] + [Reply(texts[-1], closing)]

    def _synthesis(self, turn: _Turn, *, full: bool = False) -> list[Reply]:
        if not any(q in turn.record.answers for q in self._question_flow):
            return [
                Reply(
                    "Vous n’avez encore répondu à aucune question : la synthèse se construit à partir du parcours d’orientation.",
                    ((Button("Commencer l’orientation", f"f:{ORIENTATION}"),), (MENU_BUTTON,)),
                )
            ]
        synthesis = build_synthesis(self.kb.synthesis, turn.record.answers)
        texts = render_full(synthesis) if full else [render_short(synthesis)]
        closing: list[tuple[Button, ...]] = [] if full else [(Button(DETAIL_BUTTON, "synd"),)]
        closing.append((report.REPORT_BUTTON,))
        if self._unfinished_flow(turn.record):
            closing.append((Button("Reprendre le parcours", "r"),))
        closing.append((MENU_BUTTON,))
        return [Reply(text) for text in texts[:-1]] + [Reply(texts[-1], tuple(closing))]

    def _report(self, turn: _Turn, conv: m.Conversation, typed_name: str | None = None) -> list[Reply]:
        """The « Recevoir le document (PDF) » request: the channel builds the files."""
        replies = report.report_replies(
            turn.record,
            self._question_flow,
            day=self._clock().date(),
            kind=FORMES if turn.record.flow == FORMES else "synthesis",
            typed_name=typed_name,
            skip_words=_SKIP_WORDS,
            menu=None if conv.state in self.fsm.positions else MENU_BUTTON,
        )
        if conv.state in self.fsm.positions and report.PENDING_KEY not in turn.record.context:
            replies.append(self._question(turn.record, conv.state))  # back to the step in progress
        return replies

    def _answer_by_text(self, turn: _Turn, conv: m.Conversation, position: m.FlowPosition, text: str) -> list[Reply] | None:
        plain = normalise(text)
        _, question = self._lookup(conv.state)
        if plain in _SKIP_WORDS:
            return self._store_and_advance(turn, conv, question.id, None)
        if plain in _BACK_WORDS and position.question_index:
            conv.back()
            return self._question_replies(turn.record, conv.state)
        if question.kind == "multiple" and plain in _VALIDATE_WORDS:
            return self._store_and_advance(turn, conv, question.id, self._selection(turn.record, question.id))
        chosen = [option for option in question.options if self._option_matches(option, plain)]
        if plain.isdigit() and 1 <= int(plain) <= len(question.options):
            chosen = [question.options[int(plain) - 1]]
        if not chosen:
            return None
        if question.kind == "single":
            if len(chosen) != 1:
                return None
            return self._store_and_advance(turn, conv, question.id, chosen[0].id)
        order = [o.id for o in question.options]
        selection = set(self._selection(turn.record, question.id)) | {o.id for o in chosen}
        turn.record.context.setdefault("selection", {})[question.id] = sorted(selection, key=order.index)
        return [self._question(turn.record, conv.state)]

    @staticmethod
    def _option_matches(option, plain: str) -> bool:
        names = {normalise(option.label), normalise(option.id.replace("_", " "))}
        names.update(normalise(k) for k in option.keywords)
        return plain in names

    def _progress(self, record: UserRecord) -> Reply:
        lines = []
        for flow in self.flows.values():
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
            total = sum(len(s.questions) for s in flow.steps)
            lines.append(
                f"**{flow.title}** : {done} réponse(s), {skipped} question(s) passée(s), "
                f"{total - done - skipped} à faire sur {total}.\n" + "\n".join(step_lines)
            )
        buttons: list[tuple[Button, ...]] = []
        if self._unfinished_flow(record):
            buttons.append((Button("Reprendre", "r"),))
        buttons.append((MENU_BUTTON,))
        return Reply("**Votre progression**\n\n" + "\n\n".join(lines) + "\n\n✅ fait · ⏭️ passé · ▫️ à faire", tuple(buttons))

    # ------------------------------------------------------------------ robustness

    def _repair(self, record: UserRecord) -> list[Reply]:
        """Move a user whose saved state vanished from the YAML to the nearest valid point."""
        record.is_new = False
        if record.state in self.fsm.state_set and (record.flow is None or record.flow in self.flows):
            return []
        flow_id, _ = m.split_state(record.state)
        if record.flow not in self.flows:
            record.flow = None
        if flow_id in self.flows:
            record.flow = flow_id
            target = self._first_unanswered(record, flow_id) or m.done_state(flow_id)
            record.state = target
            return [Reply("Le parcours a été mis à jour depuis votre dernière visite : vous reprenez à la première question sans réponse. Vos réponses sont conservées.")]
        if record.state not in self.fsm.state_set:
            record.state = m.MENU
            return [Reply("Le contenu a été mis à jour depuis votre dernière visite : retour au menu. Vos réponses sont conservées.")]
        return []

    def _absent_too_long(self, record: UserRecord) -> bool:
        if record.is_new:
            return False
        try:
            last = datetime.fromisoformat(record.last_seen)
        except (TypeError, ValueError):
            return False
        return self._clock() - last > LONG_ABSENCE

    def _now_iso(self) -> str:
        return self._clock().isoformat(timespec="seconds")

    def _check_payloads(self) -> None:
        """Every payload the engine can produce must fit Telegram's 64 bytes."""
        longest = [f"more:{t}" for t in self.kb.topics] + [f"vig:{t}" for t in self.kb.topics]
        for flow in self.flows.values():
            for step in flow.steps:
                for question in step.questions:
                    longest.extend(f"x:{question.id}:{o.id}" for o in question.options)
                    longest.append(f"ok:{question.id}")
        too_long = [p for p in longest if len(p.encode()) > MAX_PAYLOAD_BYTES]
        if too_long:
            raise ValueError(f"payloads over {MAX_PAYLOAD_BYTES} bytes: {too_long}")


def create_engine(
    db_path: str | os.PathLike | None = None,
    data_dir: Path | None = None,
    *,
    log_questions: bool = True,
    log_days: int = 180,
    team_chat: bool = False,
) -> Engine:
    """Load the knowledge and open the progress database (``PTCE_DB`` or ``ptce.db`` by default)."""
    kb = load_knowledge(data_dir)
    store = ProgressStore.open(db_path)
    log = QuestionLog(store.db, enabled=log_questions, retention_days=log_days)
    return Engine(kb, store, team=TeamServices(log, HandoverStore(store.db), team_chat=team_chat))
