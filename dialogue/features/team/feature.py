"""The team behind the bot, plugged into the engine: question log, 👍/👎, hand-over to a person."""

from __future__ import annotations

from dialogue.buttons import with_row_above_last
from dialogue.core import Core
from dialogue.feature import BaseFeature
from dialogue.features.team.flow import PAYLOAD_KIND, TeamFlow, TeamServices, privacy_help
from dialogue.features.team.handovers import HandoverStore
from dialogue.features.team.question_log import QuestionLog, forget_user_rows
from dialogue.features.team.schema import ensure_team_tables
from dialogue.storage.no_numpy import numpy_hidden
from dialogue.turn import Turn
from dialogue.types import ChannelSettings, Choose, Command, Event, Reply, Say

with numpy_hidden():
    from sqlite_utils import Database

class TeamFeature(BaseFeature):
    name = "team"
    payload_kinds = frozenset({PAYLOAD_KIND})

    def __init__(self, services: TeamServices | None = None) -> None:
        self._services = services
        self._flow: TeamFlow | None = None

    @property
    def flow(self) -> TeamFlow:
        assert self._flow is not None, "the feature is used before the engine bound it"
        return self._flow

    def bind(self, core: Core, settings: ChannelSettings) -> None:
        db = core.store.db
        services = self._services or TeamServices(QuestionLog(db), HandoverStore(db))
        self._flow = TeamFlow(core.knowledge.kb, services)

    def migrate(self, db: Database) -> None:
        ensure_team_tables(db)

    def forget(self, db: Database, user_id: str) -> None:
        forget_user_rows(db, user_id)

    def help_section(self) -> str:
        return privacy_help(self.flow.services.log)

    def before_turn(self, turn: Turn) -> list[Reply]:
        return self.flow.pending_answers(turn.user_id)

    def on_event(self, turn: Turn, event: Event) -> list[Reply] | None:
        record = turn.record
        if isinstance(event, Command):
            self.flow.moved_on(record)
            return None
        if isinstance(event, Choose):
            return self.flow.on_choose(record, event.payload)
        if isinstance(event, Say):
            self.flow.note_message(record, event.text)
            return self.flow.intercept(record, event.text)
        return None

    def after_turn(self, turn: Turn, replies: list[Reply]) -> list[Reply]:
        """Log the free question of the turn; thumbs under a confident page; a person after two misses."""
        asked = turn.asked
        if asked is None:
            return replies
        record = turn.record
        if asked.kind == "glossary":
            self.flow.log_glossary(record, asked.text, flow=asked.flow, step=asked.step)
        elif asked.kind == "not_covered":
            self.flow.log_question(record, asked.text, asked.match, tier="not_covered", flow=asked.flow, step=asked.step)
        else:
            self.flow.log_question(record, asked.text, asked.match, flow=asked.flow, step=asked.step)
        answer = next((reply for reply in replies if reply is asked.answer), None)
        if answer is None or asked.kind != "topic":
            return replies
        if asked.tier == "declined":
            offer = self.flow.after_decline(record)
            if not offer:
                return replies
            # One reply after two misses: help, the contacts and the team offer side by side, not two offers.
            completed = with_row_above_last(answer, offer[0].buttons[0])
        else:
            completed = with_row_above_last(answer, self.flow.feedback_row(record))
        return [completed if reply is answer else reply for reply in replies]
