"""« Regards croisés » plugged into the engine: /collectif, /rejoindre, ``k:`` buttons, group chats."""

from __future__ import annotations

from collections.abc import Sequence

from dialogue.core import Core
from dialogue.feature import BaseFeature
from dialogue.features.collective.flow import CONTEXT_KEY, CollectiveFlow
from dialogue.features.collective.store import CollectiveStore, ensure_collective_tables, forget_person
from dialogue.payloads import SEPARATOR, Payload
from dialogue.storage.no_numpy import numpy_hidden
from dialogue.turn import Turn
from dialogue.types import ChannelSettings, Choose, Command, Event, Reply, Say
from knowledge.debate import DebateRules, load_debate
from knowledge.flows import answer_keys
from knowledge.loader import KnowledgeBase

with numpy_hidden():
    from sqlite_utils import Database

PAYLOAD_KIND = "k"

def _debate_rules(kb: KnowledgeBase) -> DebateRules:
    return load_debate(kb.document, answer_keys(kb.flows))


class CollectiveFeature(BaseFeature):
    name = CONTEXT_KEY
    commands: Sequence[tuple[str, str]] = (
        ("collectif", "Faire l’orientation avec votre collectif"),
        ("rejoindre", "Rejoindre un collectif avec un code"),
    )
    payload_kinds = frozenset({PAYLOAD_KIND})

    def __init__(self) -> None:
        self._flow: CollectiveFlow | None = None
        self._core: Core | None = None

    @property
    def flow(self) -> CollectiveFlow:
        assert self._flow is not None, "the feature is used before the engine bound it"
        return self._flow

    def bind(self, core: Core, settings: ChannelSettings) -> None:
        kb = core.knowledge.kb
        debate = kb.shared(_debate_rules)
        self._core = core
        self._flow = CollectiveFlow(kb, CollectiveStore(core.store.db), debate, settings)

    def help_lines(self) -> Sequence[str]:
        return (
            "- /collectif : faire l’orientation avec votre collectif et voir où vos avis convergent ; "
            "/rejoindre CODE pour rejoindre un collectif.",
        )

    def migrate(self, db: Database) -> None:
        ensure_collective_tables(db)

    def forget(self, db: Database, user_id: str) -> None:
        forget_person(db, user_id)

    def on_event(self, turn: Turn, event: Event) -> list[Reply] | None:
        record = turn.record
        if isinstance(event, Command):
            replies = self.flow.command(record, event.name, event.argument)
            if replies is not None:
                turn.conversation.show_menu()
            return replies
        if isinstance(event, Choose):
            payload = Payload.decode(event.payload)
            if payload.kind != PAYLOAD_KIND:
                self.flow.interrupt(record)
                return None
            chosen = self.flow.choose(record, SEPARATOR.join(payload.args))
            assert self._core is not None
            return chosen or self._core.runner.stale(turn)
        if isinstance(event, Say):
            return self.flow.say(record, event.text)
        return None

    def on_group(self, user_id: str, group_chat: str, command: str, argument: str) -> list[Reply] | None:
        if command not in {"collectif", "rejoindre"}:
            return None
        return self.flow.in_group(user_id, group_chat, argument, command=command)
