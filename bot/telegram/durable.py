"""Durable intake and outbox of the Telegram channel, in their own SQLite file.

Telegram forgets an update once the bot asks for the next offset (long polling) or once the
webhook call is answered. Every update is therefore recorded here *before* that
confirmation, processed from here, and marked done in the same transaction that queues its
replies. Replies wait in the outbox until Telegram accepted them, so they survive a restart
and are sent in order per chat.

Why a separate file (``ptce-telegram.db`` beside ``ptce.db``): another program holding the
progress database's write lock (a backup, the team's commands, the sqlite3 shell) must not
stop the bot from taking in updates and delivering replies. A turn that changes a user's
progress is made exactly once through :meth:`dialogue.storage.progress.ProgressStore.once`, whose
marker bridges the two files.

Privacy: an update's payload (which holds the user's text) is erased as soon as the update
is processed; an outbox row is deleted once delivered; done rows keep only the update id
(for duplicates) and are pruned after a day.

Only the event loop's thread uses this connection.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from dialogue.storage.database import open_private_database
from dialogue.storage.errors import StorageError, describe, storage_error

T = TypeVar("T")

migrations = Migrations("ptce_telegram")

#: Done updates are remembered this long (Telegram resends nothing older than 24 h).
DONE_TTL = 24 * 3600.0

NEW, DONE, BAD = "new", "done", "bad"
PENDING, SENDING = "pending", "sending"
#: What became of a keyed row: accepted by Telegram, may have been, refused, or the chat blocked the bot.
SENT, UNCERTAIN, REFUSED, BLOCKED = "sent", "uncertain", "refused", "blocked"
#: Row kinds besides « send » and « edit ».
DOCUMENT, PHOTO, DELETE = "document", "photo", "delete"


@migrations()
def m001_updates_and_outbox(db: Database) -> None:
    db.table("updates").create(
        {"update_id": int, "payload": str, "status": str, "received_at": float, "done_at": float},
        pk="update_id",
        not_null={"status"},
    )
    db.table("updates").create_index(["status"])
    db.table("outbox").create(
        {
            "id": int,
            "update_id": int,
            "chat_id": int,
            "kind": str,  # "send" or "edit"
            "text": str,  # the engine's markup text (rendered to HTML when sent)
            "buttons": str,  # JSON rows of [label, payload]
            "options": str,  # JSON: thread_id, reply_to, message_id, inline_message_id, plain
            "status": str,
            "created_at": float,
        },
        pk="id",
        not_null={"chat_id", "kind", "status"},
    )
    db.table("outbox").create_index(["chat_id", "id"])


@migrations()
def m002_files_keys_and_outcomes(db: Database) -> None:
    """Documents and photos in the outbox (their bytes), keyed rows, and what became of them.

    A keyed row (a team post, a team answer…) is queued once whatever the number of
    tries of its producer (``INSERT OR IGNORE`` on the key), and its outcome (sent with
    the message's id, uncertain, refused, blocked) is kept until the producer read it.
    """
    db.execute("ALTER TABLE outbox ADD COLUMN data BLOB")
    db.execute("ALTER TABLE outbox ADD COLUMN key TEXT")
    db.execute("CREATE UNIQUE INDEX outbox_key ON outbox (key) WHERE key IS NOT NULL")
    db.table("outcomes").create({"key": str, "status": str, "message_id": int, "at": float}, pk="key")


@dataclass(frozen=True, slots=True)
class Action:
    """One message to send (or edit) in a chat."""

    chat_id: int
    text: str
    buttons: tuple[tuple[tuple[str, str], ...], ...] = ()
    kind: str = "send"
    options: dict[str, Any] | None = None
    #: The file of a « document » or « photo » row.
    data: bytes | None = None
    #: Queued once per key; its outcome is kept for the producer (see :meth:`TelegramQueue.outcome`).
    key: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    chat_id: int
    kind: str
    text: str
    buttons: tuple[tuple[tuple[str, str], ...], ...]
    options: dict[str, Any]
    status: str
    data: bytes | None = None
    key: str | None = None

    def but(self, *, kind: str | None = None, options: dict[str, Any] | None = None) -> OutboxRow:
        return OutboxRow(self.id, self.chat_id, kind or self.kind, self.text, self.buttons,
                         self.options if options is None else options, self.status, self.data, self.key)


def queue_path_for(db_path: str | os.PathLike) -> Path:
    """``/var/lib/ptce/ptce.db`` → ``/var/lib/ptce/ptce-telegram.db``."""
    path = Path(db_path)
    return path.with_name(f"{path.stem}-telegram{path.suffix or '.db'}")


class TelegramQueue:
    """The ``updates`` and ``outbox`` tables."""

    def __init__(self, db: Database, path: Path | None) -> None:
        self.db = db
        self.path = path
        self._identity = _identity(path)
        try:
            migrations.apply(db)
        except sqlite3.DatabaseError as error:
            raise storage_error(error) from error

    @classmethod
    def open(cls, path: str | os.PathLike | None) -> TelegramQueue:
        """Open (creating) the queue file; ``None`` keeps it in memory (tests)."""
        if path is None:
            return cls(Database(memory=True), None)
        # Raw updates (texts, names, ids): owner-only; deleted payloads overwritten.
        return cls(open_private_database(Path(path), busy_timeout_ms=200), Path(path))

    def close(self) -> None:
        self.db.close()

    def file_replaced(self) -> bool:
        return self.path is not None and _identity(self.path) != self._identity

    def check_writable(self) -> None:
        if self.path is not None and not os.access(self.path, os.W_OK):
            raise StorageError(f"{self.path} : {describe(sqlite3.OperationalError('readonly'))}")
        self.prune()

    def prune(self) -> None:
        """Forget processed updates older than :data:`DONE_TTL` (Telegram never resends them)."""
        def work() -> None:
            self.db.execute("DELETE FROM updates WHERE status != ? AND done_at < ?", [NEW, time.time() - DONE_TTL])
            self.db.execute("DELETE FROM outcomes WHERE status = 'read' AND at < ?", [time.time() - DONE_TTL])

        self._write(work)

    def _write(self, work: Callable[[], T]) -> T:
        try:
            with self.db.atomic():
                return work()
        except sqlite3.DatabaseError as error:
            raise storage_error(error) from error

    # ------------------------------------------------------------------ intake

    def next_offset(self) -> int | None:
        row = self.db.execute("SELECT MAX(update_id) FROM updates").fetchone()
        return None if row[0] is None else int(row[0]) + 1

    def record(self, items: Sequence[tuple[int, dict[str, Any] | None]]) -> set[int]:
        """Record updates (``None`` payload: unparseable, kept as « bad »); the ids that were new."""

        def work() -> set[int]:
            new: set[int] = set()
            now = time.time()
            for update_id, payload in items:
                if payload is None:
                    cursor = self.db.execute(
                        "INSERT OR IGNORE INTO updates (update_id, payload, status, received_at, done_at) "
                        "VALUES (?, NULL, ?, ?, ?)", [update_id, BAD, now, now])
                else:
                    cursor = self.db.execute(
                        "INSERT OR IGNORE INTO updates (update_id, payload, status, received_at) "
                        "VALUES (?, ?, ?, ?)", [update_id, json.dumps(payload, ensure_ascii=False), NEW, now])
                if cursor.rowcount and payload is not None:
                    new.add(update_id)
            return new

        return self._write(work)

    def pending(self) -> list[tuple[int, dict[str, Any]]]:
        """Recorded updates not processed yet, oldest first."""
        rows = self.db.execute(
            "SELECT update_id, payload FROM updates WHERE status = ? ORDER BY update_id", [NEW]
        ).fetchall()
        return [(int(update_id), json.loads(payload)) for update_id, payload in rows]

    def is_done(self, update_id: int) -> bool:
        row = self.db.execute("SELECT status FROM updates WHERE update_id = ?", [update_id]).fetchone()
        return row is not None and row[0] != NEW

    def complete(self, update_id: int | None, actions: Iterable[Action], *, status: str = DONE) -> None:
        """Queue the replies of an update and mark it done, in one transaction."""

        def work() -> None:
            now = time.time()
            for action in actions:
                if action.key is not None and self._known_key(action.key):
                    continue  # queued or delivered already: once per key
                self.db.execute(
                    "INSERT INTO outbox (update_id, chat_id, kind, text, buttons, options, status, created_at, data, key) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [update_id, action.chat_id, action.kind, action.text,
                     json.dumps(action.buttons, ensure_ascii=False),
                     json.dumps(action.options or {}), PENDING, now, action.data, action.key],
                )
            if update_id is not None:
                self.db.execute(
                    "INSERT INTO updates (update_id, payload, status, received_at, done_at) "
                    "VALUES (?, NULL, ?, ?, ?) ON CONFLICT (update_id) DO UPDATE SET "
                    "payload = NULL, status = excluded.status, done_at = excluded.done_at",
                    [update_id, status, now, now],
                )

        self._write(work)

    def enqueue(self, actions: Iterable[Action]) -> None:
        """Queue messages that answer no update (team chat, documents built later)."""
        self.complete(None, actions)

    def _known_key(self, key: str) -> bool:
        return self.db.execute(
            "SELECT 1 FROM outbox WHERE key = ? UNION ALL SELECT 1 FROM outcomes WHERE key = ?", [key, key]
        ).fetchone() is not None

    def outcomes(self, prefix: str) -> list[tuple[str, str, int | None]]:
        """(key, status, message id) of the keyed rows starting with ``prefix`` that were settled."""
        rows = self.db.execute(
            "SELECT key, status, message_id FROM outcomes WHERE substr(key, 1, ?) = ? AND status != 'read' ORDER BY at",
            [len(prefix), prefix]).fetchall()
        return [(key, status, message_id) for key, status, message_id in rows]

    def forget_outcome(self, key: str) -> None:
        """The producer recorded the outcome: the key may not be queued again before a day has passed."""
        self._write(lambda: self.db.execute("UPDATE outcomes SET status = 'read' WHERE key = ?", [key]))

    def settle(self, row: OutboxRow, status: str, message_id: int | None = None, *, then: Action | None = None) -> None:
        """Remove a row Telegram is done with; a keyed row's outcome (and the note ``then``) in the same transaction."""

        def work() -> None:
            self.db.execute("DELETE FROM outbox WHERE id = ?", [row.id])
            if then is not None:
                self.db.execute(
                    "INSERT INTO outbox (update_id, chat_id, kind, text, buttons, options, status, created_at) "
                    "VALUES (NULL, ?, 'send', ?, '[]', ?, ?, ?)",
                    [then.chat_id, then.text, json.dumps(then.options or {}), PENDING, time.time()])
            if row.key is not None:
                self.db.execute("INSERT OR REPLACE INTO outcomes (key, status, message_id, at) VALUES (?, ?, ?, ?)",
                                [row.key, status, message_id, time.time()])

        self._write(work)

    def finish(self, update_id: int, *, bad: bool = False) -> None:
        """Mark an update done without replies (ignored updates, failed handlers), or « bad »."""
        self.complete(update_id, (), status=BAD if bad else DONE)

    def erase_traces(self) -> bool:
        """After /oublier: the WAL copied into the file and truncated (see ``ProgressStore.erase_traces``)."""
        try:
            row = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.DatabaseError:
            return False
        return row is None or row[0] == 0

    # ------------------------------------------------------------------ outbox

    def pending_chats(self) -> list[int]:
        return [int(r[0]) for r in self.db.execute("SELECT DISTINCT chat_id FROM outbox").fetchall()]

    def count_outbox(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def next_row(self, chat_id: int) -> OutboxRow | None:
        row = self.db.execute(
            "SELECT id, chat_id, kind, text, buttons, options, status, data, key FROM outbox "
            "WHERE chat_id = ? ORDER BY id LIMIT 1", [chat_id]).fetchone()
        if row is None:
            return None
        buttons = tuple(tuple(tuple(b) for b in line) for line in json.loads(row[4] or "[]"))
        return OutboxRow(int(row[0]), int(row[1]), row[2], row[3] or "", buttons, json.loads(row[5] or "{}"), row[6],
                         row[7], row[8])

    def mark_sending(self, row_id: int) -> None:
        """Recorded before the request leaves: after a crash, such a row is never sent again."""
        self._write(lambda: self.db.execute("UPDATE outbox SET status = ? WHERE id = ?", [SENDING, row_id]))

    def mark_pending(self, row_id: int) -> None:
        """The request certainly did not reach Telegram (refused before sending, 429, 5xx)."""
        self._write(lambda: self.db.execute("UPDATE outbox SET status = ? WHERE id = ?", [PENDING, row_id]))

    def update_row(self, row_id: int, *, kind: str, options: dict[str, Any]) -> None:
        self._write(lambda: self.db.execute(
            "UPDATE outbox SET kind = ?, options = ?, status = ? WHERE id = ?",
            [kind, json.dumps(options), PENDING, row_id]))

    def remove(self, row_id: int) -> None:
        self._write(lambda: self.db.execute("DELETE FROM outbox WHERE id = ?", [row_id]))

    def drop_chat(self, chat_id: int) -> int:
        """The chat blocked the bot: its rows are dropped (keyed ones with the outcome « blocked »)."""
        return self._drop("chat_id = ?", [chat_id], BLOCKED)

    def drop_uncertain(self) -> int:
        """At start-up: rows whose request may have reached Telegram are not sent again."""
        return self._drop("status = ?", [SENDING], UNCERTAIN)

    def _drop(self, where: str, params: list[Any], status: str) -> int:
        def work() -> int:
            now = time.time()
            self.db.execute(
                f"INSERT OR REPLACE INTO outcomes (key, status, message_id, at) SELECT key, ?, NULL, ? FROM outbox "
                f"WHERE key IS NOT NULL AND {where}", [status, now, *params])
            return int(self.db.execute(f"DELETE FROM outbox WHERE {where}", params).rowcount)

        return self._write(work)


def _identity(path: Path | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino)
