"""The hand-over queue: questions a user asked to pass on to the team, kept in SQLite until answered.

Life of an item: ``open`` (waiting for the team; ``team_message_id`` is set
once posted to the team chat) → ``answered`` (an advisor replied, not yet
shown to the user) → ``delivered``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: ``ptce-bot ask`` must not pay for importing sqlite-utils
    from sqlite_utils import Database

from dialogue.clock import iso, utc_now
from dialogue.features.team.question_log import hash_user, salt_of
from dialogue.features.team.schema import ensure_team_tables

MAX_OPEN_PER_USER = 3
#: Hand-overs accepted per hour from everyone together (a flood of accounts cannot bury the team):
#: ``PTCE_TEAM_HANDOVERS_PER_HOUR`` overrides it.
MAX_PER_HOUR = int(os.environ.get("PTCE_TEAM_HANDOVERS_PER_HOUR") or 30)
MAX_QUESTION = 1000
MAX_RECENT_MESSAGE = 300
MAX_ANSWER = 3500


class HandoverLimit(Exception):
    """The user already has the maximum number of open hand-overs."""


class HandoverBusy(Exception):
    """The team received :data:`MAX_PER_HOUR` hand-overs within the last hour."""


@dataclass(frozen=True, slots=True)
class Handover:
    ref: int
    user_id: str
    created_at: str
    question: str
    recent: tuple[str, ...]
    status: str
    team_chat_id: str | None
    team_message_id: int | None
    answer: str | None
    answered_at: str | None

    @classmethod
    def from_row(cls, row: dict) -> Handover:
        return cls(
            ref=row["ref"],
            user_id=row["user_id"],
            created_at=row["created_at"],
            question=row["question"],
            recent=tuple(json.loads(row["recent"] or "[]")),
            status=row["status"],
            team_chat_id=row["team_chat_id"],
            team_message_id=row["team_message_id"],
            answer=row["answer"],
            answered_at=row["answered_at"],
        )


class HandoverStore:
    """Queue operations; shares the progress store's database handle."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utc_now, per_hour: int | None = None) -> None:
        self.db = db
        self._clock = clock
        self.per_hour = MAX_PER_HOUR if per_hour is None else per_hour
        ensure_team_tables(db)

    def _rows(self, sql: str, params: list | tuple = ()) -> list[Handover]:
        return [Handover.from_row(row) for row in self.db.query(sql, params)]

    def open_count(self, user_id: str) -> int:
        return self.db.execute(
            "SELECT COUNT(*) FROM handovers WHERE user_id = ? AND status = 'open'", [user_id]
        ).fetchone()[0]

    def create(self, user_id: str, question: str, recent: list[str] | tuple[str, ...] = ()) -> Handover:
        """Queue a question; raises ``HandoverLimit`` beyond three open items for this user."""
        with self.db.atomic():
            if self.open_count(user_id) >= MAX_OPEN_PER_USER:
                raise HandoverLimit()
            hour_ago = iso(self._clock() - timedelta(hours=1))
            if self.db.execute("SELECT COUNT(*) FROM handovers WHERE created_at > ?", [hour_ago]).fetchone()[0] >= self.per_hour:
                raise HandoverBusy()
            cursor = self.db.execute(
                "INSERT INTO handovers (user_id, user_hash, created_at, question, recent, status) VALUES (?, ?, ?, ?, ?, 'open')",
                [
                    user_id,
                    hash_user(salt_of(self.db), user_id),
                    iso(self._clock()),
                    question[:MAX_QUESTION],
                    json.dumps([m[:MAX_RECENT_MESSAGE] for m in recent][-3:], ensure_ascii=False),
                ],
            )
        created = self.get(cursor.lastrowid or 0)
        assert created is not None  # just written
        return created

    def get(self, ref: int) -> Handover | None:
        found = self._rows("SELECT * FROM handovers WHERE ref = ?", [ref])
        return found[0] if found else None

    def open_items(self) -> list[Handover]:
        return self._rows("SELECT * FROM handovers WHERE status = 'open' ORDER BY ref")

    def unposted(self) -> list[Handover]:
        """Open items not yet posted to the team chat (e.g. the bot restarted before posting)."""
        return self._rows("SELECT * FROM handovers WHERE status = 'open' AND team_message_id IS NULL ORDER BY ref")

    def mark_posted(self, ref: int, chat_id: str, message_id: int) -> None:
        with self.db.atomic():
            self.db.execute(
                "UPDATE handovers SET team_chat_id = ?, team_message_id = ? WHERE ref = ?", [str(chat_id), message_id, ref]
            )

    def by_team_message(self, chat_id: str, message_id: int) -> Handover | None:
        found = self._rows(
            "SELECT * FROM handovers WHERE team_chat_id = ? AND team_message_id = ?", [str(chat_id), message_id]
        )
        return found[0] if found else None

    def answer(self, ref: int, text: str) -> Handover | None:
        """Record the team's answer (a later answer to the same item replaces an undelivered one)."""
        with self.db.atomic():
            cursor = self.db.execute(
                "UPDATE handovers SET answer = ?, answered_at = ?, status = 'answered', delivered_at = NULL "
                "WHERE ref = ? AND status IN ('open', 'answered', 'delivered')",
                [text.strip()[:MAX_ANSWER], iso(self._clock()), ref],
            )
        return self.get(ref) if cursor.rowcount else None

    def undelivered(self, user_id: str | None = None) -> list[Handover]:
        if user_id is None:
            return self._rows("SELECT * FROM handovers WHERE status = 'answered' ORDER BY ref")
        return self._rows("SELECT * FROM handovers WHERE status = 'answered' AND user_id = ? ORDER BY ref", [user_id])

    def mark_delivered(self, ref: int) -> None:
        with self.db.atomic():
            self.db.execute(
                "UPDATE handovers SET status = 'delivered', delivered_at = ? WHERE ref = ?", [iso(self._clock()), ref]
            )

    # ------------------------------------------------------------------ the team chat (Telegram)

    def user_code(self, ref: int) -> str:
        """The salted code standing for the person in the team chat (never their id)."""
        row = self.db.execute("SELECT user_hash FROM handovers WHERE ref = ?", [ref]).fetchone()
        return (row[0] if row else "") or ""

    def pending_deletions(self) -> list[tuple[str, int]]:
        """Team-chat posts of people who erased themselves, still to delete."""
        return [(str(chat), int(message)) for chat, message in self.db.execute("SELECT chat_id, message_id FROM team_deletions")]

    def deleted(self, chat_id: str, message_id: int) -> None:
        with self.db.atomic():
            self.db.execute("DELETE FROM team_deletions WHERE chat_id = ? AND message_id = ?", [chat_id, message_id])

    def advisors(self) -> list[int]:
        return [int(user_id) for (user_id,) in self.db.execute("SELECT user_id FROM team_advisors")]

    def advisor_names(self) -> list[tuple[int, str]]:
        return [(int(u), str(n)) for u, n in self.db.execute("SELECT user_id, name FROM team_advisors ORDER BY name")]

    def add_advisor(self, user_id: int, name: str) -> None:
        with self.db.atomic():
            self.db.execute("INSERT OR REPLACE INTO team_advisors (user_id, name, added_at) VALUES (?, ?, ?)",
                            [user_id, name[:64], iso(self._clock())])

    def remove_advisor(self, user_id: int) -> None:
        with self.db.atomic():
            self.db.execute("DELETE FROM team_advisors WHERE user_id = ?", [user_id])
