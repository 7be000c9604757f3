"""The dialogue engine: one entry point, ``Engine.handle(user_id, event)``.

Channel-agnostic: it receives ``Command``/``Choose``/``Say`` events and returns
``Reply`` objects, with no I/O but the progress store. One turn is:
load → repair → feature hooks → route → remember → save. The rooms it routes to
(screens, flows, topics, glossary, understanding) are built once per knowledge base;
features plug in through :class:`dialogue.feature.Feature`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from dialogue.buttons import MENU_BUTTON
from dialogue.clock import Clock, iso, utc_now
from dialogue.commands import with_features
from dialogue.compiled import compiled
from dialogue.core import Core
from dialogue.feature import Feature
from dialogue.flows import machine as m
from dialogue.flows.runner import FlowRunner
from dialogue.glossary import Glossary
from dialogue.pages import fit
from dialogue.routing import MAX_TEXT, Router
from dialogue.screens import Screens
from dialogue.storage.progress import ProgressStore, UserRecord
from dialogue.texts import typeset
from dialogue.topics import Topics
from dialogue.turn import Turn
from dialogue.types import ChannelSettings, Choose, Command, Event, Reply, Say
from dialogue.understanding.answers import Understanding
from knowledge.loader import KnowledgeBase

if TYPE_CHECKING:
    from dialogue.features.team.handovers import HandoverStore

F = TypeVar("F")

LONG_ABSENCE = timedelta(days=7)
#: The topic being discussed is forgotten after this silence: a follow-up then starts afresh.
CONTEXT_TTL = timedelta(minutes=30)
class Engine:
    """Turns user events into replies. Build once per process; ``handle`` per event."""

    def __init__(
        self,
        kb: KnowledgeBase,
        store: ProgressStore,
        *,
        clock: Clock | None = None,
        features: Sequence[Feature] | None = None,
    ) -> None:
        if features is None:
            from dialogue.features.registry import standard_features  # the default set, when none is given

            features = standard_features()
        self.kb = kb
        self.store = store
        self.features: tuple[Feature, ...] = tuple(features)
        self.settings = ChannelSettings()
        self._clock: Clock = clock or utc_now
        knowledge = compiled(kb)
        self.knowledge = knowledge
        self.matcher = knowledge.matcher
        self.fsm = knowledge.fsm
        self.flows = knowledge.flows
        runner = FlowRunner(knowledge)
        screens = Screens(knowledge, runner, self._help_lines, self._help_sections)
        topics = Topics(knowledge, runner)
        glossary = Glossary(knowledge)
        understanding = Understanding(knowledge, runner, topics, glossary)
        self.router = Router(
            knowledge, screens, runner, topics, glossary, understanding, self.command_names, lambda turn: turn.absent
        )
        self.runner, self.screens = runner, screens
        self.core = Core(knowledge, store, runner, screens, topics, self._clock)
        for feature in self.features:
            feature.migrate(store.db)
            store.add_forget_hook(feature.forget)
            feature.bind(self.core, self.settings)

    # ------------------------------------------------------------------ public API for channels

    def handle(self, user_id: str, event: Event) -> list[Reply]:
        """Process one event for one user and return the replies to show."""
        if isinstance(event, Command) and event.group_chat is not None:
            return self._in_group(user_id, event)
        record = self.store.load(user_id)
        notices: list[Reply] = []
        if record is None:
            record = UserRecord(id=user_id, state=m.MENU, knowledge_version=self.kb.version, is_new=True)
        else:
            notices.extend(self._repair(record))
        absent = self._absent_too_long(record)
        self._expire_context(record)
        now = self._clock()
        record.last_seen = iso(now)
        record.active = True
        conversation = self.fsm.acquire(user_id, record.state)
        turn = Turn(record, conversation, now, absent=absent)
        try:
            for feature in self.features:
                notices.extend(feature.before_turn(turn))
            if absent and not isinstance(event, Command) and self.runner.unfinished_flow(record):
                replies = self.screens.welcome_back(turn, absent=True)
            else:
                if absent and not isinstance(event, Command) and (notice := self.screens.returning_notice(record)):
                    notices.append(notice)
                replies = self._dispatch(turn, _normalised(event))
            for feature in self.features:
                replies = feature.after_turn(turn, replies)
            record.state = conversation.state
            self.screens.remember(turn, replies)
        finally:
            self.fsm.release(conversation)
        if turn.forget:
            self.store.forget(user_id)
        else:
            record.knowledge_version = self.kb.version
            self.store.save(record, turn.changed, turn.removed)
        return fit([replace(reply, text=typeset(reply.text)) for reply in notices + replies])

    def use_channel(self, settings: ChannelSettings) -> None:
        """The channel describes itself (e.g. the Telegram bot's username, for invitation links)."""
        self.settings.bot_username = settings.bot_username
        self.settings.invitation_base = settings.invitation_base

    def command_names(self) -> list[str]:
        """Every command, the core's and the features', in the order shown to users."""
        return [name for name, _ in self.commands]

    @property
    def commands(self) -> list[tuple[str, str]]:
        return with_features([command for feature in self.features for command in feature.commands])

    @property
    def help_sections(self) -> list[str]:
        """The features' sections of /aide (« Vos données »…), for a channel to show elsewhere too."""
        return self._help_sections()

    @property
    def handovers(self) -> HandoverStore:
        """The team's hand-over queue, for a channel that relays it to a team chat."""
        from dialogue.features.team.handovers import HandoverStore

        return HandoverStore(self.store.db)

    def feature(self, kind: type[F]) -> F:
        """The hosted feature of that class (for tools and benchmarks); ``LookupError`` if absent."""
        for feature in self.features:
            if isinstance(feature, kind):
                return feature
        raise LookupError(kind.__name__)

    def mark_inactive(self, user_id: str) -> None:
        """The user blocked the bot: keep their progress, stop counting them as active."""
        self.store.mark_inactive(user_id)

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------------ one turn

    def _dispatch(self, turn: Turn, event: Event) -> list[Reply]:
        if isinstance(event, Say) and not event.text:
            return [Reply("Je n’ai reçu aucun texte. Posez votre question ou choisissez dans le menu.", ((MENU_BUTTON,),))]
        for feature in self.features:
            replies = feature.on_event(turn, event)
            if replies is not None:
                return replies
        if isinstance(event, Command):
            return self.router.command(turn, event.name, event.argument)
        if isinstance(event, Choose):
            return self.router.choose(turn, event.payload)
        if isinstance(event, Say):
            return self.router.say(turn, event.text, self._typed_choice)
        return [Reply("Je n’ai pas compris ce message.", ((MENU_BUTTON,),))]

    def _typed_choice(self, turn: Turn, payload: str) -> list[Reply]:
        """A button's label typed: the features see it as the button, then the core."""
        event = Choose(payload)
        turn.typed = True
        for feature in self.features:
            replies = feature.on_event(turn, event)
            if replies is not None:
                return replies
        return self.router.choose(turn, payload)

    def _in_group(self, user_id: str, event: Command) -> list[Reply]:
        """A command typed in a group chat: a feature may answer it for the group (the collective
        links the group); any other command is answered for the sender, as in a private chat."""
        name = event.name.lower().lstrip("/").strip()
        group_chat = event.group_chat or ""
        for feature in self.features:
            replies = feature.on_group(user_id, group_chat, name, event.argument.strip())
            if replies is not None:
                return fit([replace(reply, text=typeset(reply.text)) for reply in replies])
        return self.handle(user_id, replace(event, group_chat=None))

    def _help_lines(self) -> list[str]:
        return [line for feature in self.features for line in feature.help_lines()]

    def _help_sections(self) -> list[str]:
        return [section for feature in self.features if (section := feature.help_section())]

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
            record.state = self.runner.first_unanswered(record, flow_id) or m.done_state(flow_id)
            return [
                Reply(
                    "Le parcours a été mis à jour depuis votre dernière visite : vous reprenez à la première question "
                    "sans réponse. Vos réponses sont conservées."
                )
            ]
        if record.state not in self.fsm.state_set:
            record.state = m.MENU
            return [Reply("Le contenu a été mis à jour depuis votre dernière visite : retour au menu. Vos réponses sont conservées.")]
        return []

    def _silence(self, record: UserRecord) -> timedelta | None:
        try:
            return self._clock() - datetime.fromisoformat(record.last_seen)
        except (TypeError, ValueError):
            return None

    def _absent_too_long(self, record: UserRecord) -> bool:
        if record.is_new:
            return False
        silence = self._silence(record)
        return silence is not None and silence > LONG_ABSENCE

    def _expire_context(self, record: UserRecord) -> None:
        """After a long silence the conversation starts afresh: follow-ups no longer refer to the old topic."""
        if record.is_new:
            return
        silence = self._silence(record)
        if silence is None or silence > CONTEXT_TTL:
            record.context.forget_topic()


def _normalised(event: Event) -> Event:
    """« /Menu », « / menu » and over-long texts, made plain once for every room and feature."""
    if isinstance(event, Command):
        name, argument = event.name.lower().lstrip("/").strip(), event.argument.strip().lower()
        if not name and argument:  # « / menu »: a space after the slash
            name, _, argument = argument.partition(" ")
        return Command(name, argument.strip())
    if isinstance(event, Say):
        return Say((event.text or "").strip()[:MAX_TEXT])
    return event
