"""The question log: every free-text question, pseudonymised, for the team that keeps the knowledge.

Users appear only as a salted hash of their id; the salt lives in the
database (created at first start), so the log can be shared with experts
without names or Telegram ids while ``/oublier`` can still find a person's rows.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from dialogue.clock import iso, utc_now
from dialogue.features.team.schema import ensure_team_tables

if TYPE_CHECKING:  # annotations only: ``ptce-bot ask`` must not pay for importing sqlite-utils
    from sqlite_utils import Database

DEFAULT_LOG_DAYS = 180
#: Tiers as stored: the matcher's four plus « not_covered » (topic found, the document is silent).
TIERS = ("confident", "hedged", "suggest", "declined", "not_covered")
MAX_LOGGED_TEXT = 500
MAX_COMMENT = 1000


def salt_of(db: Database) -> str:
    """The database's salt, created on first use."""
    row = db.execute("SELECT value FROM team_settings WHERE key = 'salt'").fetchone()
    if row:
        return row[0]
    with db.atomic():
        db.execute("INSERT OR IGNORE INTO team_settings (key, value) VALUES ('salt', ?)", [secrets.token_hex(16)])
    return db.execute("SELECT value FROM team_settings WHERE key = 'salt'").fetchone()[0]


def hash_user(salt: str, user_id: str) -> str:
    return hashlib.sha256(f"{salt}:{user_id}".encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class LoggedQuestion:
    text: str
    topic: str | None
    runner_up: str | None
    score: float
    tier: str
    flow: str | None = None
    step: str | None = None


def retry_locked(action: Callable[[], object], *, attempts: int = 20, pause: float = 0.1):
    """Run a write, retrying while another process holds the database lock."""
    for attempt in range(attempts):
        try:
            return action()
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) and "busy" not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(pause)
    return None


class QuestionLog:
    """Writes and purges the pseudonymised question log. Shares the progress store's database handle."""

    def __init__(
        self,
        db: Database,
        *,
        enabled: bool = True,
        retention_days: int = DEFAULT_LOG_DAYS,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.db = db
        self.enabled = enabled
        self.retention_days = retention_days
        self._clock = clock
        self._last_purge: datetime | None = None
        try:
            ensure_team_tables(db)
            self._salt = salt_of(db)
            self.purge()
        except sqlite3.DatabaseError as error:
            from dialogue.storage.errors import StorageError, describe

            raise StorageError(describe(error)) from error

    def user_hash(self, user_id: str) -> str:
        return hash_user(self._salt, user_id)

    def log(self, user_id: str, entry: LoggedQuestion) -> int | None:
        """Record one question; returns its row id (None when logging is off)."""
        if not self.enabled:
            return None
        self._purge_daily()
        # A savepoint inside the turn's transaction when there is one (the Telegram channel's
        # exactly-once turns), its own short transaction otherwise.
        with self.db.atomic():
            cursor = self.db.execute(
                "INSERT INTO question_log (at, user_hash, text, topic, runner_up, score, tier, flow, step) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    iso(self._clock()),
                    self.user_hash(user_id),
                    entry.text[:MAX_LOGGED_TEXT],
                    entry.topic,
                    entry.runner_up,
                    round(entry.score, 4),
                    entry.tier,
                    entry.flow,
                    entry.step,
                ],
            )
        return cursor.lastrowid

    def feedback(self, user_id: str, value: int, topic: str | None = None) -> bool:
        """Attach 👍 (1) / 👎 (-1) to this user's latest question (answered by ``topic`` when given)."""
        if not self.enabled:
            return False
        user = self.user_hash(user_id)
        latest = "SELECT MAX(id) FROM question_log WHERE user_hash = ?" + (" AND topic = ?" if topic else "")
        with self.db.atomic():
            cursor = self.db.execute(
                f"UPDATE question_log SET feedback = ? WHERE id = ({latest})", [value, user, *([topic] if topic else [])]
            )
        return cursor.rowcount == 1

    def comment(self, user_id: str, text: str) -> bool:
        """The answer to « Qu’est-ce qui manquait ? », on the user's latest 👎 question."""
        if not self.enabled:
            return False
        user = self.user_hash(user_id)
        with self.db.atomic():
            cursor = self.db.execute(
                "UPDATE question_log SET comment = ? WHERE id = "
                "(SELECT MAX(id) FROM question_log WHERE user_hash = ? AND feedback = -1)",
                [text[:MAX_COMMENT], user],
            )
        return cursor.rowcount == 1

    def forget(self, user_id: str) -> None:
        """Delete a person's questions (called inside the store's forget transaction)."""
        self.db.execute("DELETE FROM question_log WHERE user_hash = ?", [self.user_hash(user_id)])

    def purge(self) -> int:
        """Delete questions older than the retention period; returns how many."""
        self._last_purge = self._clock()
        limit = iso(self._clock() - timedelta(days=self.retention_days))
        with self.db.atomic():
            cursor = self.db.execute("DELETE FROM question_log WHERE at < ?", [limit])
        return cursor.rowcount

    def _purge_daily(self) -> None:
        if self._last_purge is None or self._clock() - self._last_purge >= timedelta(days=1):
            self.purge()


def forget_user_rows(db: Database, user_id: str) -> None:
    """Erase what the team tables hold about a person: their logged questions and hand-overs."""
    if "team_settings" not in db.table_names():
        return
    db.execute("DELETE FROM question_log WHERE user_hash = ?", [hash_user(salt_of(db), user_id)])
    # The copies posted in the team chat go too (the channel deletes them: see ``team_deletions``).
    db.execute(
        "INSERT OR IGNORE INTO team_deletions (chat_id, message_id) SELECT team_chat_id, team_message_id FROM handovers "
        "WHERE user_id = ? AND team_chat_id IS NOT NULL AND team_message_id > 0", [user_id])
    db.execute("DELETE FROM handovers WHERE user_id = ?", [user_id])
