"""The dialogue engine: one entry point, ``Engine.handle(user_id, event)``.

Channel-agnostic: it receives ``Command``/``Choose``/``Say`` events and
returns ``Reply`` objects. The state machine decides where the user goes;
the engine renders what they read and persists everything in one
transaction per event.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass, replace
from functools import lru_cache
from datetime import datetime, timedelta, timezone
from pathlib import Path

from dialogue.flows import machine as m
from dialogue.features.collective.flow import CollectiveFlow
from dialogue.features.collective.store import CollectiveStore
from dialogue.commands import COMMANDS
from dialogue.features import report_request as report
from dialogue.storage.progress import AnswerValue, ProgressStore, UserRecord
from dialogue.flows.synthesis import DETAIL_BUTTON, build_synthesis, render_full, render_legal_guide, render_short
from dialogue.features.team.handovers import HandoverStore
from dialogue.features.team.question_log import QuestionLog
from dialogue.features.team.flow import TeamFlow, TeamServices, privacy_help
from dialogue.texts import OFF_TOPIC, source_line, topic_answer, typeset
from dialogue.types import MAX_PAYLOAD_BYTES, Button, ChannelSettings, Choose, Command, Event, Reply, Say
from knowledge.conversation import has_phrase, pick
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

_LEGAL_TOPICS = frozenset(
    {"formalisation.pourquoi", "formalisation.sans_structure", "formalisation.association", "formalisation.scic"}
)
#: The topic being discussed is forgotten after this silence: a follow-up then starts afresh.
CONTEXT_TTL = timedelta(minutes=30)
#: How many buttons the engine remembers as « on screen » for typed labels.
MAX_VISIBLE = 40
_DIGITS = re.compile(r"^\d+(?:\s*(?:,|;|et|\s)\s*\d+)+$")
_BUTTON_MARKS = re.compile(r"^[\s→●✅▫️\ufe0f]+")


def _label(text: str, limit: int = 40) -> str:
    """A button label that fits: cut at a word boundary, never inside a « … » pair."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:–—-«")
    if cut.count("«") > cut.count("»"):
        cut = cut[: cut.rindex("«")].rstrip()
    return cut + "…"


@lru_cache(maxsize=4096)
def _button_key(label: str) -> str:
    """A button label as typed text is compared with it (labels are few: cached)."""
    return normalise(_BUTTON_MARKS.sub("", label))


def _edit_distance_at_most_one(a: str, b: str) -> bool:
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = j = edits = 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            i += 1
            j += 1
            continue
        edits += 1
        if edits > 1:
            return False
        if len(a) == len(b):
            i += 1
        j += 1
    return edits + (len(b) - j) + (len(a) - i) <= 1


@dataclass
class _Turn:
    """What one event changes: kept in memory, written once at the end."""

    record: UserRecord
    changed: dict[str, AnswerValue]
    removed: list[str]
    forget: bool = False
    #: The reply offers choices the user is expected to pick from (kept alive after a fallback).
    pending: bool = False
    #: Nothing in the document answered the message.
    missed: bool = False


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
        self.talk = kb.conversation
        # Longest prefixes first: « c'est quoi une » before « c'est quoi ».
        self._glossary_prefix = re.compile("|".join(re.escape(p) for p in self.talk.glossary_prefixes))
        #: Topics opened first from the menu: a question naming them gets the page, not the glossary line.
        self._main_topics = {q.topics[0] for q in kb.document.intro_questions}
        # Every not-covered trigger in one pattern: one regex search per message, whatever the YAML grows to.
        self._gap_of: dict[str, list[tuple[str, object]]] = {}
        for topic in kb.topics.values():
            for gap in topic.not_covered:
                for trigger in gap.triggers:
                    self._gap_of.setdefault(normalise(trigger), []).append((topic.id, gap))
        alternatives = "|".join(re.escape(t) for t in sorted(self._gap_of, key=len, reverse=True))
        self._gap_pattern = re.compile(rf"(?:^| )({alternatives})(?= |$)") if self._gap_of else None
        self._glossary_names = {
            normalise(name): term for term in kb.glossary for name in (term.term, *term.aliases)
        }
        self._check_payloads()
        self.collective = CollectiveFlow(kb, CollectiveStore(store.db), load_debate(kb.document, answer_keys(kb.flows)))
        # Compile the phrase lists now rather than inside a user's first message.
        for phrases in (self.talk.orientation_intents, *self.talk.followups.values(), *(f.words for f in self.talk.forms)):
            has_phrase("", phrases)

    # ------------------------------------------------------------------ entry point

    def handle(self, user_id: str, event: Event) -> list[Reply]:
        """Process one event for one user and return the replies to show."""
        if isinstance(event, Command) and event.group_chat is not None:
            # A command typed in a group chat concerns the group, not the sender's own progress.
            replies = self.collective.in_group(user_id, event.group_chat, event.argument.strip(), command=event.name)
            return [replace(reply, text=typeset(reply.text)) for reply in replies]
        record = self.store.load(user_id)
        notices: list[Reply] = []
        if record is None:
            record = UserRecord(id=user_id, state=m.MENU, knowledge_version=self.kb.version, is_new=True)
        else:
            notices.extend(self._repair(record))
        notices.extend(self.team.pending_answers(user_id))
        turn = _Turn(record, {}, [])
        absent = self._absent_too_long(record)
        self._expire_context(record)
        record.last_seen = self._now_iso()
        record.active = True
        conversation = self.fsm.acquire(user_id, record.state)
        try:
            if absent and not isinstance(event, Command) and self._unfinished_flow(record):
                replies = self._welcome_back(turn, absent=True)
            else:
                replies = self._dispatch(turn, conversation, event)
            record.state = conversation.state
            self._remember_buttons(turn, replies)
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

    @property
    def handovers(self) -> HandoverStore:
        """The team's hand-over queue, for a channel that relays it to a team chat."""
        return self.team_services.handovers

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
            name, argument = event.name.lower().lstrip("/").strip(), event.argument.strip().lower()
            if not name and argument:  # « / menu »: a space after the slash
                name, _, argument = argument.partition(" ")
            return self._command(turn, conv, name, argument.strip())
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
        if name in {"aide", "help"}:
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
            turn.pending = True
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
            turn.pending = True
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
            self._set_topic(record, rest)
            if conv.state in self.fsm.positions:
                # A topic picked in the middle of a flow: read it, then the pending question again.
                return [Reply(topic_answer(self.kb, self.kb.topics[rest])), self._question(record, conv.state)]
            conv.read_topic()
            return [self._topic_page(record, self.kb.topics[rest])]
        if kind == "more" and rest in self.kb.topics:
            conv.read_topic()
            self._set_topic(record, rest, "more")
            return [self._details(record, self.kb.topics[rest])]
        if kind == "vig" and rest in self.kb.topics and self.kb.topics[rest].vigilance:
            conv.read_topic()
            self._set_topic(record, rest, "vig")
            return [self._vigilance(record, self.kb.topics[rest])]
        if kind == "i":
            intro = next((q for q in self.kb.document.intro_questions if q.id == rest), None)
            if intro:
                conv.read_topic()
                self._set_topic(record, intro.topics[0])
                return [self._topic_page(record, self.kb.topics[intro.topics[0]])]
        if kind == "no" and not rest:
            return [self._decline(record)]
        if kind == "human" and not rest:
            return self._contacts(record, pick(self.talk.intents["human"].replies, self._count(record, "human")))
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
        record = turn.record
        plain = normalise(text)
        flow_state = conv.state
        position = self.fsm.positions.get(flow_state)
        words = self.talk.words
        # A visible button typed by name acts as the button, wherever the user is.
        payload = self._typed_button(record, plain, conv.state)
        if payload is not None:
            team = self.team.on_choose(record, payload)
            return team if team is not None else self._choose(turn, conv, payload)
        if plain in words["menu_words"]:
            return self._menu(conv)
        if plain in words["help_words"]:
            return [self._help()] + ([self._question(record, flow_state)] if position is not None else [])
        if position is not None:
            handled = self._answer_by_text(turn, conv, position, text)
            if handled is not None:
                return handled
        if report.wants_report(plain):
            return self._report(turn, conv)
        small_talk = self._small_talk(turn, text, plain)
        if small_talk is not None:
            replies = small_talk
        elif position is None and has_phrase(plain, self.talk.orientation_intents):
            return self._start_flow(turn, conv, ORIENTATION)
        else:
            replies = self._understand(turn, conv, text, plain, in_flow=position is not None)
        if position is not None:
            if conv.state != flow_state:  # a follow-up read inside a flow: the user stays on the question
                conv.trigger(m.goto_trigger(flow_state))
            replies.append(self._question(record, conv.state))
        elif turn.missed and self._pending_buttons(record):
            # The user was choosing: keep those choices on screen rather than only a Menu button.
            replies = [Reply(pick(self.talk.texts["not_understood_choice"], self._count(record, "nc")), self._pending_buttons(record))]
            turn.pending = True
        return replies

    def _understand(self, turn: _Turn, conv: m.Conversation, text: str, plain: str, *, in_flow: bool) -> list[Reply]:
        record = turn.record
        match = self.matcher.match(text)
        # « et combien coûte une SCIC ? » asks for what the document lacks: say so before any follow-up.
        gap = self._not_covered(record, plain, match)
        followup = None if gap is not None else self._followup(turn, conv, plain)
        if followup is not None:
            return followup
        term = self._glossary_term(plain)
        if term is not None and term.topic in self._main_topics and has_phrase(
            normalise(self.kb.topics[term.topic].label), (normalise(term.term),)
        ):
            # « c'est quoi un PTCE » deserves the full page, not the one-line definition.
            conv.read_topic()
            self._set_topic(record, term.topic)
            return [self._topic_page(record, self.kb.topics[term.topic])]
        glossary = self._glossary_lookup(plain)
        if glossary is not None:
            self.team.log_glossary(record, text, **self._place(conv))
            if term is not None and term.topic:
                self._set_topic(record, term.topic, "gloss")
            record.context["misses"] = 0
            return [glossary]
        if gap is not None:
            self.team.log_question(record, text, match, tier="not_covered", **self._place(conv))
            if not in_flow:
                conv.read_topic()
            return [gap]
        return self._free_answer(turn, conv, text, in_flow=in_flow, match=match)

    def _place(self, conv: m.Conversation) -> dict[str, str | None]:
        """Where in a flow a question was asked, for the question log."""
        position = self.fsm.positions.get(conv.state)
        return {"flow": position.flow_id if position else None, "step": position.question_id if position else None}

    # ------------------------------------------------------------------ conversation

    def _count(self, record: UserRecord, key: str) -> int:
        """A per-user counter used to vary wordings."""
        counters = record.context.setdefault("said", {})
        counters[key] = counters.get(key, -1) + 1
        return counters[key]

    def _remember_buttons(self, turn: _Turn, replies: list[Reply]) -> None:
        shown = [[b.label, b.payload] for reply in replies for b in reply.all_buttons()]
        context = turn.record.context
        if shown:
            context["buttons"] = shown[:MAX_VISIBLE]
            context["pending"] = turn.pending
        elif turn.forget:
            context.pop("buttons", None)

    def _pending_buttons(self, record: UserRecord) -> tuple[tuple[Button, ...], ...]:
        if not record.context.get("pending"):
            return ()
        return tuple((Button(label, payload),) for label, payload in record.context.get("buttons", []))

    def _typed_button(self, record: UserRecord, plain: str, state: str) -> str | None:
        """The payload of the visible button whose label the user typed (or a yes/no at a confirmation)."""
        shown = record.context.get("buttons") or []
        if not shown or not plain:
            return None
        if plain.isdigit():
            # One numbering per screen, as the terminal prints it: a digit is the n-th choice shown.
            number = int(plain)
            return shown[number - 1][1] if 1 <= number <= len(shown) else None
        names = [(_button_key(label), payload) for label, payload in shown]
        exact = [p for name, p in names if name == plain]
        if exact:
            return exact[0]
        yes, no = self.talk.words["yes_words"], self.talk.words["no_words"]
        if plain in no and any(p == "no" for _, p in names):  # « non » after a hedged answer
            return "no"
        if record.context.get("pending") or state in (m.CONFIRM_FORGET, m.CONFIRM_RESTART):
            first_word = plain.split()[0]
            if len(names) >= 2 and (plain in yes or plain in no or first_word in {"oui", "non"}):
                if state in (m.CONFIRM_FORGET, m.CONFIRM_RESTART) or names[0][1] in {"r", "rr!", "forget!"}:
                    return names[0][1] if (plain in yes or first_word == "oui") else names[1][1]
        if len(plain) >= 4:
            prefixed = {p for name, p in names if name.startswith(plain)}
            if len(prefixed) == 1:
                return prefixed.pop()
        if len(plain) >= 5:
            close = {p for name, p in names if _edit_distance_at_most_one(name, plain)}
            if len(close) == 1:
                return close.pop()
        return None

    def _small_talk(self, turn: _Turn, text: str, plain: str) -> list[Reply] | None:
        intent = self._intent(text, plain)
        if intent is None:
            return None
        record = turn.record
        reply = pick(self.talk.intents[intent].replies, self._count(record, intent))
        if intent == "human":
            return self._contacts(record, reply)
        if intent == "frustration":
            record.context["misses"] = 0
            return [Reply(reply, ((Button("Aide", "help"), MENU_BUTTON),))]
        if intent in {"english", "other_language", "confusion"}:
            return [Reply(reply, ((Button("Qu’est-ce qu’un PTCE ?", "t:ptce.definition"),), (Button("Aide", "help"), MENU_BUTTON)))]
        return [Reply(reply, ((MENU_BUTTON,),))]

    def _intent(self, text: str, plain: str) -> str | None:
        intents = self.talk.intents
        letters = [c for c in text if c.isalpha()]
        if letters and sum(1 for c in letters if ord(c) > 0x24F) * 2 > len(letters):
            return "other_language"
        if not plain:
            stripped = "".join(text.split())
            for intent in intents.values():
                if intent.symbols and stripped and self._made_of(stripped, intent.symbols):
                    return intent.id
            return "confusion"
        for intent in intents.values():
            if plain in intent.phrases:
                return intent.id
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

    @staticmethod
    def _made_of(text: str, symbols: frozenset[str]) -> bool:
        rest = text
        for symbol in sorted(symbols, key=len, reverse=True):
            rest = rest.replace(symbol, "")
        return not rest.replace("\ufe0f", "")

    def _contacts(self, record: UserRecord, intro: str) -> list[Reply]:
        record.context["misses"] = 0
        topic = self.kb.topics.get(self.talk.contact_topic)
        if topic is not None:
            self._set_topic(record, topic.id)
            return [Reply(f"{intro}\n\n{topic_answer(self.kb, topic)}", self._topic_buttons(record, topic))]
        return [Reply(f"{intro}\n\n{self.talk.contacts}\n\nSource : {self.kb.document.title} "
                      f"({self.kb.document.publisher}), {self.talk.contacts_source}", ((MENU_BUTTON,),))]

    # ------------------------------------------------------------------ context

    def _set_topic(self, record: UserRecord, topic_id: str, part: str = "short") -> None:
        context = record.context
        if context.get("topic") != topic_id:
            if context.get("topic"):
                context["previous"] = context["topic"]
            context["topic"] = topic_id
        context["part"] = part
        context["misses"] = 0

    def _current_topic(self, record: UserRecord) -> str | None:
        context = record.context
        topic = context.get("topic")
        return topic if topic in self.kb.topics else None

    def _expire_context(self, record: UserRecord) -> None:
        """After a long silence the conversation starts afresh: follow-ups no longer refer to the old topic."""
        if record.is_new or not record.context:
            return
        try:
            silent = self._clock() - datetime.fromisoformat(record.last_seen)
        except (TypeError, ValueError):
            silent = CONTEXT_TTL * 2
        if silent > CONTEXT_TTL:
            for key in ("topic", "previous", "part", "misses"):
                record.context.pop(key, None)

    def _followup(self, turn: _Turn, conv: m.Conversation, plain: str) -> list[Reply] | None:
        record = turn.record
        current = self._current_topic(record)
        if current is None:
            return None
        tokens = plain.split()
        if len(tokens) > 9:
            return None
        followups = self.talk.followups
        topic = self.kb.topics[current]
        stripped = plain[3:] if plain.startswith("et ") else plain
        if has_phrase(plain, followups["difference"]):
            other = self._other_form(plain, current) or record.context.get("previous")
            if other in self.kb.topics and other != current:
                return [self._side_by_side(record, topic, self.kb.topics[other])]
        form = self._other_form(plain, current)
        if form and current in _LEGAL_TOPICS and len(tokens) <= 7:
            conv.read_topic()
            self._set_topic(record, form)
            return [self._topic_page(record, self.kb.topics[form])]
        if has_phrase(plain, followups["vigilance"]) and len(tokens) <= 7:
            conv.read_topic()
            if topic.vigilance:
                self._set_topic(record, current, "vig")
                return [self._vigilance(record, topic)]
            return [Reply(f"Le document ne donne pas de point de vigilance particulier pour « {topic.title} ». "
                          "Voici ce qu’il en dit en détail.")] + [self._details(record, topic)]
        if has_phrase(plain, followups["example"]) and len(tokens) <= 6:
            conv.read_topic()
            self._set_topic(record, current, "more")
            return [Reply(f"Le document ne donne pas d’exemple nommé pour « {topic.title} » : il décrit des "
                          "tendances observées sur plusieurs PTCE. Voici le détail de ce qu’il en dit."), self._details(record, topic)]
        if has_phrase(plain, followups["repeat"]) and len(tokens) <= 8:
            return [self._next_part(record, conv, topic)]
        if (stripped in followups["details"] or (len(tokens) <= 4 and has_phrase(plain, followups["details"]))):
            conv.read_topic()
            if record.context.get("part") == "more":
                return [self._next_part(record, conv, topic)]
            self._set_topic(record, current, "more")
            return [self._details(record, topic)]
        return None

    def _other_form(self, plain: str, current: str) -> str | None:
        for form in self.talk.forms:
            if form.topic != current and has_phrase(plain, form.words):
                return form.topic
        return None

    def _next_part(self, record: UserRecord, conv: m.Conversation, topic: Topic) -> Reply:
        """Something new about the topic: details, then vigilance, then the next related topic."""
        conv.read_topic()
        part = record.context.get("part", "short")
        if part == "short":
            self._set_topic(record, topic.id, "more")
            return self._details(record, topic)
        if part == "more" and topic.vigilance:
            self._set_topic(record, topic.id, "vig")
            return self._vigilance(record, topic)
        nxt = next((t for t in topic.related if t != record.context.get("previous")), topic.related[0] if topic.related else None)
        if nxt is None:
            return Reply("Je vous ai montré tout ce que le document dit de ce sujet.", ((MENU_BUTTON,),))
        self._set_topic(record, nxt)
        page = self._topic_page(record, self.kb.topics[nxt])
        return replace(page, text="Sur un sujet voisin :\n\n" + page.text)

    def _side_by_side(self, record: UserRecord, left: Topic, right: Topic) -> Reply:
        text = (f"**{left.title}**\n{left.short}\n({self.kb.cite(left)})\n\n"
                f"**{right.title}**\n{right.short}\n({self.kb.cite(right)})")
        rows: list[tuple[Button, ...]] = [(Button("→ " + left.label, f"t:{left.id}"), Button("→ " + right.label, f"t:{right.id}"))]
        if left.id in _LEGAL_TOPICS or right.id in _LEGAL_TOPICS:
            rows.append((Button("Guide des formes juridiques", f"f:{FORMES}"),))
        rows.append((MENU_BUTTON,))
        return Reply("**Comparaison**\n\n" + text, tuple(rows))

    def _not_covered(self, record: UserRecord, plain: str, match) -> Reply | None:
        """« Le document ne précise pas … » when the question asks for what the document does not say.

        A single trigger word counts only for a topic the question is about (the one being read, or
        one of the matcher's first three) when the matcher is sure of its topic: « combien coûte une
        SCIC ? » is not about the coordinator's salary. A trigger phrase of several words counts anyway.
        """
        if self._gap_pattern is None:
            return None
        current = self._current_topic(record)
        about = {current, match.topic, *(c.topic for c in match.alternatives[:2])} - {None}
        sure = match.tier in ("confident", "hedged")
        found = [
            hit
            for m in self._gap_pattern.finditer(plain)
            for hit in self._gap_of[m.group(1)]
            if hit[0] in about or not sure or " " in m.group(1)
        ]
        if not found:
            return None
        order = {topic_id: rank for rank, topic_id in enumerate(self.kb.topics)}
        hits: dict[int, int] = {}
        for hit in found:
            hits[id(hit[1])] = hits.get(id(hit[1]), 0) + 1
        # The topic being read first, then the gap most triggers point to, then the YAML order.
        topic_id, gap = max(found, key=lambda f: (f[0] == current, hits[id(f[1])], -order[f[0]]))
        topic = self.kb.topics[topic_id]
        self._set_topic(record, topic.id)
        return Reply(
            f"Le document ne précise pas {gap.about}.\n\nCe qu’il dit de plus proche :\n\n{topic_answer(self.kb, topic)}",
            self._topic_buttons(record, topic),
        )

    # ------------------------------------------------------------------ pages

    def _welcome(self, turn: _Turn, conv: m.Conversation) -> list[Reply]:
        conv.show_menu()
        if not turn.record.is_new and self._unfinished_flow(turn.record):
            return self._welcome_back(turn, absent=self._absent_too_long(turn.record))
        intro = (
            "Bonjour ! Je suis le conseiller PTCE. Je vous aide à comprendre et à construire un "
            "**Pôle territorial de coopération économique**, à partir du document « "
            f"{self.kb.document.title} » ({self.kb.document.publisher}).\n\n"
            "Choisissez une question dans le menu, faites le point pas à pas avec l’orientation, "
            "ou posez directement votre question."
        )
        return [Reply(intro), self._menu_reply()]

    def _welcome_back(self, turn: _Turn, *, absent: bool = True) -> list[Reply]:
        flow = self.flows[turn.record.flow]
        turn.pending = True
        greeting = "Bon retour ! Vous aviez commencé" if absent else "Vous avez commencé"
        return [
            Reply(
                f"{greeting} le « {flow.title} ». Voulez-vous le reprendre à la première question sans réponse, ou recommencer ?",
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
            rows.append((Button("→ " + self.kb.topics[related].label, f"t:{related}"),))
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

    def _free_answer(self, turn: _Turn, conv: m.Conversation, text: str, *, in_flow: bool, match=None) -> list[Reply]:
        record = turn.record
        match = match or self.matcher.match(text)
        self.team.log_question(record, text, match, **self._place(conv))
        tier = match.tier
        menu = () if in_flow else ((MENU_BUTTON,),)
        if tier == "declined":
            turn.missed = True
            if in_flow:
                return [Reply(pick(self.talk.texts["not_understood_in_step"], self._count(record, "nis")))]
            decline = self._decline(record, [c.topic for c in match.alternatives[:3]])
            offer = self.team.after_decline(record)
            if offer:
                # One reply after two misses: help, the contacts and the team offer side by side, not two offers.
                decline = replace(decline, buttons=(*decline.buttons[:-1], *offer[0].buttons[:1], *decline.buttons[-1:]))
            return [decline]
        if tier == "suggest":
            options = [match.topic] + [c.topic for c in match.alternatives[:2]]
            rows = tuple((Button("→ " + self.kb.topics[t].label, f"t:{t}"),) for t in options)
            turn.pending = True
            record.context["misses"] = 0
            return [Reply(pick(self.talk.texts["suggest"], self._count(record, "sug")), rows + menu)]
        topic = self.kb.topics[match.topic]
        if in_flow:
            # The pending question is re-asked just below: its choices are the only ones on this
            # screen, so a digit typed next picks the option printed next to it, never a 👍/👎.
            return [Reply(topic_answer(self.kb, topic))]
        conv.read_topic()
        if topic.id == self._current_topic(record) and record.context.get("part") == "short":
            # Never the same page twice in a row: move on to what the user has not read yet.
            return [self._next_part(record, conv, topic)]
        self._set_topic(record, topic.id)
        if tier == "hedged":
            others = [c.topic for c in match.alternatives[:2]]
            rows = [(Button("→ " + self.kb.topics[t].label, f"t:{t}"),) for t in others]
            rows.append((Button("Ce n’est pas ça", "no"),))
            rows.append((MENU_BUTTON,))
            intro = pick(self.talk.texts["hedged"], self._count(record, "hed"))
            turn.pending = True
            return [Reply(f"{intro}\n\n{topic_answer(self.kb, topic)}", tuple(rows))]
        page = self._topic_page(record, topic)
        return [replace(page, buttons=(*page.buttons[:-1], self.team.feedback_row(record), *page.buttons[-1:]))]

    def _decline(self, record: UserRecord, closest: list[str] | None = None) -> Reply:
        misses = record.context.get("misses", 0) + 1
        record.context["misses"] = misses
        if misses >= 2:
            text = pick(self.talk.texts["declined_again"], self._count(record, "dec2"))
            return Reply(text, ((Button("Aide", "help"), Button("Contacter une personne", "human")), (MENU_BUTTON,)))
        text = pick(self.talk.texts["declined"], self._count(record, "dec"))
        closest = [t for t in closest or () if t in self.kb.topics]
        if len(closest) == 3:  # the topics nearest to the question, in case it was only badly put
            rows = [(Button("→ " + self.kb.topics[t].label, f"t:{t}"),) for t in closest]
        else:
            intro = self.kb.document.intro_questions
            start = self._count(record, "sugg") % len(intro)
            chosen = [intro[(start + i) % len(intro)] for i in range(min(3, len(intro)))]
            rows = [(Button(q.label, f"i:{q.id}"),) for q in chosen]
        rows.append((Button("Orientation pas à pas", f"f:{ORIENTATION}"),))
        rows.append((MENU_BUTTON,))
        return Reply(text, tuple(rows))

    def _glossary_term(self, plain: str):
        term = self._glossary_names.get(plain)
        if term is None:
            prefix = self._glossary_prefix.match(plain)
            if prefix:
                term = self._glossary_names.get(plain[prefix.end():].strip())
        return term

    def _glossary_lookup(self, plain: str) -> Reply | None:
        term = self._glossary_term(plain)
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
        replies = [Reply(flow.intro)] if started else [Reply(f"On reprend le « {flow.title} » à la première question sans réponse.")]
        replies.extend(self._question_replies(record, target))
        return replies

    def _resume(self, turn: _Turn, conv: m.Conversation) -> list[Reply]:
        record = turn.record
        if conv.state in self.fsm.positions:
            return self._question_replies(record, conv.state)
        unfinished = [f for f in self.flows if self._first_unanswered(record, f) is not None
                      and any(self.fsm.positions[s].question_id in record.answers for s in self.fsm.order[f])]
        if len(unfinished) > 1:
            turn.pending = True
            rows = tuple((Button(self.flows[f].title, f"f:{f}"),) for f in unfinished)
            return [Reply("Vous avez deux parcours en cours. Lequel voulez-vous reprendre ?", rows + ((MENU_BUTTON,),))]
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
        if len(step.questions) > 1:
            rank = next(i for i, q in enumerate(step.questions) if q.id == question.id) + 1
            header += f" · question {rank}/{len(step.questions)}"
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
        jumped = 0
        # Questions already answered (e.g. shared with the other flow) are not asked twice.
        while conv.state in self.fsm.positions and self.fsm.positions[conv.state].question_id in record.answers:
            conv.next()
            jumped += 1
        if conv.state in self.fsm.positions:
            replies = self._question_replies(record, conv.state)
            if jumped:
                notice = (f"Les {jumped} questions suivantes avaient déjà une réponse : je les passe (/progression pour les revoir)."
                          if jumped > 1 else "La question suivante avait déjà une réponse : je la passe (/progression pour la revoir).")
                replies.insert(0, Reply(notice))
            return replies
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
            skip_words=self.talk.words["skip_words"],
            menu=None if conv.state in self.fsm.positions else MENU_BUTTON,
        )
        if conv.state in self.fsm.positions and report.PENDING_KEY not in turn.record.context:
            replies.append(self._question(turn.record, conv.state))  # back to the step in progress
        return replies

    def _answer_by_text(self, turn: _Turn, conv: m.Conversation, position: m.FlowPosition, text: str) -> list[Reply] | None:
        plain = normalise(text)
        _, question = self._lookup(conv.state)
        words = self.talk.words
        if plain in words["skip_words"]:
            return self._store_and_advance(turn, conv, question.id, None)
        if plain in words["back_words"]:
            if not position.question_index:
                return [Reply("C’est la première question du parcours : pas de question précédente. "
                              "Répondez par un numéro ou le nom d’un choix, « passer », ou posez votre question."),
                        self._question(turn.record, conv.state)]
            conv.back()
            return self._question_replies(turn.record, conv.state)
        if question.kind == "multiple" and plain in words["validate_words"]:
            return self._store_and_advance(turn, conv, question.id, self._selection(turn.record, question.id))
        chosen = [option for option in question.options if self._option_matches(option, plain)]
        if plain.isdigit():
            if not 1 <= int(plain) <= len(question.options):
                return [Reply(f"Répondez par un numéro entre 1 et {len(question.options)}, ou posez votre question."),
                        self._question(turn.record, conv.state)]
            chosen = [question.options[int(plain) - 1]]
        elif _DIGITS.match(plain) and question.kind == "single":
            return [Reply("Une seule réponse ici : tapez un seul numéro, ou posez votre question."),
                    self._question(turn.record, conv.state)]
        elif _DIGITS.match(plain) and question.kind == "multiple":
            numbers = [int(n) for n in re.findall(r"\d+", plain)]
            if not all(1 <= n <= len(question.options) for n in numbers):
                return [Reply(f"Les numéros vont de 1 à {len(question.options)}. Réessayez, par exemple « 1, 3 »."),
                        self._question(turn.record, conv.state)]
            chosen = [question.options[n - 1] for n in dict.fromkeys(numbers)]
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
