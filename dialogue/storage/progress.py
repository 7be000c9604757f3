"""Per-user progress in SQLite, through sqlite-utils.

Every event's changes (state, answers, context) are written in one
transaction, so a crash never loses an answer that was acknowledged.
The schema is created and upgraded with sqlite-utils' ``Migrations``.

Concurrency: the bot writes from one worker thread; other programs (the team's
commands, a backup, the sqlite3 shell) may hold the write lock meanwhile. A write
that meets a lock raises :class:`DatabaseBusy` quickly instead of blocking, so the
caller can retry later without holding up other users; a turn whose only change is
its ``last_seen`` stamp does not need the lock at all (the stamp is written when the
lock is free, skipped otherwise). :meth:`ProgressStore.once` runs a channel's turn
exactly once: its changes and the replies it produced commit together, keyed by the
channel's event id.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dialogue.context import ConversationContext
from dialogue.storage.database import open_private_database
from dialogue.storage.errors import DatabaseGone, StorageError, describe, storage_error
from dialogue.storage.files import create_private
from dialogue.storage.no_numpy import numpy_hidden

with numpy_hidden():  # sqlite-utils would import numpy (installed for the PDF report) at start-up
    from sqlite_utils import Database

from dialogue.clock import now_iso
from dialogue.storage.schema import migrations

DEFAULT_DB = "ptce.db"

AnswerValue = str | list[str] | None  # None: explicitly skipped

_UPSERT_USER = (
    "INSERT INTO users (id, state, flow, knowledge_version, first_seen, last_seen, context, active) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state, "
    "flow = excluded.flow, knowledge_version = excluded.knowledge_version, first_seen = excluded.first_seen, "
    "last_seen = excluded.last_seen, context = excluded.context, active = excluded.active"
)
_UPSERT_ANSWER = (
    "INSERT INTO answers (user_id, question, value, skipped, answered_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (user_id, question) DO UPDATE SET value = excluded.value, skipped = excluded.skipped, "
    "answered_at = excluded.answered_at"
)
_INSERT_HISTORY = "INSERT INTO answer_history (user_id, question, value, skipped, answered_at) VALUES (?, ?, ?, ?, ?)"


#: Lock wait inside SQLite for the bot's writes: short, the caller retries off the event loop.
BOT_BUSY_TIMEOUT_MS = 20
#: Lock wait for the command-line tools and the terminal chat: SQLite retries the write
#: until the other program's (short) transaction ends, up to this long (``PTCE_LOCK_WAIT`` s).
DEFAULT_BUSY_TIMEOUT_MS = int(float(os.environ.get("PTCE_LOCK_WAIT") or 60) * 1000)
#: Turn markers older than this are pruned (their replies were queued long ago).
MARKER_TTL = 24 * 3600.0


@dataclass
class UserRecord:
    id: str
    state: str
    flow: str | None = None
    knowledge_version: str = ""
    first_seen: str = field(default_factory=now_iso)
    last_seen: str = field(default_factory=now_iso)
    active: bool = True
    context: ConversationContext = field(default_factory=ConversationContext)
    answers: dict[str, AnswerValue] = field(default_factory=dict)
    answered_at: dict[str, str] = field(default_factory=dict)
    is_new: bool = False
    #: The stored row as loaded (last_seen excluded): a save that changes nothing else may be skipped.
    loaded: tuple | None = field(default=None, repr=False, compare=False)


#: Fields whose change alone does not make a turn worth a write (see ``ProgressStore.save``).
_NOT_ESSENTIAL = frozenset({"last_seen", "answers", "answered_at", "is_new", "loaded"})


def _essential_value(record: UserRecord, name: str) -> Any:
    # The screen memory (buttons shown, whether they await a choice, wording counters) is
    # written best effort like ``last_seen``: a turn that changes nothing else (/aide, the
    # menu) must still be served while another program holds the write lock. Losing it costs
    # at most a typed label matched against the previous screen, or a repeated wording.
    if name == "context":
        return record.context.to_dict(screen=False)
    return getattr(record, name)


def _essentials(record: UserRecord) -> tuple:
    """Every stored field but ``last_seen`` and the screen memory (fields added later are included)."""
    return tuple(
        json.dumps(_essential_value(record, item.name), ensure_ascii=False, sort_keys=True, default=str)
        for item in fields(record)
        if item.name not in _NOT_ESSENTIAL
    )


def default_db_path() -> Path:
    return Path(os.environ.get("PTCE_DB") or DEFAULT_DB)


class ProgressStore:
    """Reads and writes users' progress. One instance per process."""

    def __init__(self, db: Database, path: Path | None = None) -> None:
        self.db = db
        self.path = path
        self._identity = _identity(path) if path else None
        self._wrote = self._forgot = False
        #: Whether the last :meth:`once` turn changed the progress (set in the thread that ran it).
        self.last_turn_wrote = False
        #: Whether the last :meth:`once` turn erased a person (/oublier): the channel erases its own traces too.
        self.last_turn_forgot = False
        #: What features delete about a person on /oublier, inside the same transaction.
        self._forget_hooks: list[Callable[[Database, str], None]] = []
        try:
            migrations.apply(db)
        except sqlite3.DatabaseError as error:
            raise storage_error(error) from error

    @classmethod
    def open(
        cls, path: str | os.PathLike | None = None, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS
    ) -> ProgressStore:
        """Open (creating or upgrading) the database file, in WAL mode.

        The connection may be used from another thread than the one that opened it (the
        Telegram channel runs the engine in one worker thread), never from two at once.
        """
        path = Path(path) if path else default_db_path()
        try:
            if path.parent and not path.parent.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StorageError(f"{path} : {describe(error)}") from error
        db = open_private_database(path, busy_timeout_ms=busy_timeout_ms)
        return cls(db, path)

    @classmethod
    def memory(cls) -> ProgressStore:
        """A throw-away in-memory store usable from a worker thread (tests, benchmarks)."""
        db = Database(sqlite3.connect(":memory:", check_same_thread=False))
        db.execute("PRAGMA secure_delete = ON")
        return cls(db)

    def set_busy_timeout(self, milliseconds: int) -> None:
        self.db.execute(f"PRAGMA busy_timeout = {int(milliseconds)}")

    # ------------------------------------------------------------------ health

    def check_writable(self) -> None:
        """Raise :class:`StorageError` unless a write can be committed now (start-up check)."""
        if self.path is not None and not os.access(self.path, os.W_OK):
            raise StorageError(f"{self.path} : {describe(sqlite3.OperationalError('readonly'))}")
        try:
            with self.db.atomic():
                # A real write (rolled back by nothing: the same value is written back).
                version = self.db.execute("PRAGMA user_version").fetchone()[0]
                self.db.execute(f"PRAGMA user_version = {int(version)}")
                self.db.execute("DELETE FROM turn_markers WHERE at < ?", [time.time() - MARKER_TTL])
        except sqlite3.DatabaseError as error:
            raise StorageError(f"{self.path} : {describe(error)}") from error

    def file_replaced(self) -> bool:
        """True if the database file was deleted, moved away or replaced since it was opened."""
        if self.path is None or self._identity is None:
            return False
        return _identity(self.path) != self._identity

    def rescue_copy(self) -> Path | None:
        """Copy the still-open (deleted or replaced) database beside its old path; the copy's path."""
        if self.path is None:
            return None
        target = self.path.with_name(f"{self.path.name}.rescued-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            create_private(target)  # a full copy of everyone's data
            destination = sqlite3.connect(str(target))
            with destination:
                self.db.conn.backup(destination)
            destination.close()
            create_private(target)
        except (sqlite3.DatabaseError, OSError):
            return None
        return target

    # ------------------------------------------------------------------ exactly-once turns

    def once(
        self,
        key: str,
        user_id: str,
        run: Callable[[], list[Any]],
        encode: Callable[[list[Any]], str],
        decode: Callable[[str], list[Any]],
    ) -> list[Any]:
        """Run one turn (``run`` calls the engine) at most once for ``key``.

        The turn's writes and its encoded replies commit in one transaction; if ``key``
        was already committed, its stored replies are returned and ``run`` is not called.
        A turn that changed nothing (or only its ``last_seen`` stamp) leaves no marker:
        running it again gives the same replies. On any error the whole turn is rolled
        back, so nothing half-written remains.
        """
        if self.file_replaced():
            raise DatabaseGone(describe(sqlite3.OperationalError("disk I/O error")))
        try:
            row = self.db.execute("SELECT replies FROM turn_markers WHERE key = ?", [key]).fetchone()
        except sqlite3.DatabaseError as error:
            raise storage_error(error) from error
        self.last_turn_forgot = False
        if row is not None:
            self.last_turn_wrote = True
            return decode(row[0])
        self._wrote = self._forgot = False
        try:
            self.db.execute("BEGIN")
            replies = run()
            if self._wrote:
                # After /oublier, the marker keeps no link to the person.
                self.db.execute(
                    "INSERT INTO turn_markers (key, user_id, replies, at) VALUES (?, ?, ?, ?)",
                    [key, None if self._forgot else user_id, encode(replies), time.time()],
                )
            try:
                self.db.execute("COMMIT")
            except sqlite3.DatabaseError as error:
                # WAL pages reach the disk at COMMIT: a turn that only stamped « last seen »
                # stays valid when that stamp cannot be written (read-only file, full disk).
                if self._wrote or not storage_error(error).transient:
                    raise
                if self.db.conn.in_transaction:
                    self.db.execute("ROLLBACK")
            self.last_turn_wrote = self._wrote
            self.last_turn_forgot = self._forgot
        except BaseException as error:
            if self.db.conn.in_transaction:
                self.db.execute("ROLLBACK")
            if isinstance(error, sqlite3.DatabaseError):
                raise storage_error(error) from error
            raise
        if self._forgot:
            self.erase_traces()
        return replies

    def erase_traces(self) -> bool:
        """After /oublier: copy the WAL into the file and truncate it, so no old page of the person remains.

        With ``secure_delete`` on, the deleted rows are zeroed in the pages; the WAL still holds
        the earlier versions of those pages until a checkpoint, which this forces
        (``wal_checkpoint(TRUNCATE)``). False when another program's reader kept it from completing
        (then SQLite's next automatic checkpoint finishes the work).
        """
        try:
            row = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.DatabaseError:
            return False
        return row is None or row[0] == 0

    def prune_markers(self, older_than: float = MARKER_TTL) -> None:
        """Drop old turn markers (best effort: skipped while another program holds the lock)."""
        try:
            with self.db.atomic():
                self.db.execute("DELETE FROM turn_markers WHERE at < ?", [time.time() - older_than])
        except sqlite3.DatabaseError:
            pass

    def load(self, user_id: str) -> UserRecord | None:
        rows = list(self.db.query("SELECT * FROM users WHERE id = ?", [user_id]))
        if not rows:
            return None
        row = rows[0]
        record = UserRecord(
            id=row["id"],
            state=row["state"],
            flow=row["flow"],
            knowledge_version=row["knowledge_version"] or "",
            first_seen=row["first_seen"],
            last_seen=row["last_seen"],
            active=bool(row["active"]),
            context=ConversationContext.from_json(row["context"]),
        )
        record.loaded = _essentials(record)
        for answer in self.db.query(
            "SELECT question, value, skipped, answered_at FROM answers WHERE user_id = ?", [user_id]
        ):
            record.answers[answer["question"]] = None if answer["skipped"] else json.loads(answer["value"])
            record.answered_at[answer["question"]] = answer["answered_at"]
        return record

    def save(
        self,
        record: UserRecord,
        changed: dict[str, AnswerValue] | None = None,
        removed: list[str] | None = None,
    ) -> None:
        """Write the user row and the changed answers in one transaction.

        When nothing but ``last_seen`` and the screen memory (buttons, pending, wording counters)
        changed, the write is best effort: skipped (not waited for) while another program
        holds the lock.
        """
        stamp = now_iso()
        touch_only = (
            not record.is_new and not changed and not removed and record.loaded == _essentials(record)
        )
        try:
            with self.db.atomic():
                # Plain SQL: sqlite-utils' upsert()/insert() inspect the schema on every call
                # (about 20 extra statements per event).
                self.db.execute(
                    _UPSERT_USER,
                    [
                        record.id,
                        record.state,
                        record.flow,
                        record.knowledge_version,
                        record.first_seen,
                        record.last_seen,
                        record.context.to_json(),
                        int(record.active),
                    ],
                )
                if removed:
                    self.db.execute(
                        f"DELETE FROM answers WHERE user_id = ? AND question IN ({','.join('?' * len(removed))})",
                        [record.id, *removed],
                    )
                for question, value in (changed or {}).items():
                    row = [
                        record.id,
                        question,
                        json.dumps(value, ensure_ascii=False) if value is not None else None,
                        int(value is None),
                        stamp,
                    ]
                    self.db.execute(_UPSERT_ANSWER, row)
                    self.db.execute(_INSERT_HISTORY, row)
                    record.answered_at[question] = stamp
        except sqlite3.DatabaseError as error:
            failure = storage_error(error)
            if touch_only and failure.transient:
                return  # only the « last seen » stamp is lost; the next real write carries it
            raise failure from error
        if not touch_only:
            self._wrote = True
        record.loaded = _essentials(record)
        record.is_new = False

    def add_forget_hook(self, hook: Callable[[Database, str], None]) -> None:
        """``hook(db, user_id)`` runs inside :meth:`forget`'s transaction (once per hook)."""
        if hook not in self._forget_hooks:
            self._forget_hooks.append(hook)

    def forget(self, user_id: str) -> None:
        """Delete everything stored about a user."""
        try:
            with self.db.atomic():
                for table in ("answer_history", "answers", "turn_markers"):
                    self.db.execute(f"DELETE FROM {table} WHERE user_id = ?", [user_id])
                self.db.execute("DELETE FROM users WHERE id = ?", [user_id])
                for hook in self._forget_hooks:
                    hook(self.db, user_id)
        except sqlite3.DatabaseError as error:
            raise storage_error(error) from error
        self._wrote = self._forgot = True
        if not self.db.conn.in_transaction:  # inside :meth:`once`, after its COMMIT
            self.erase_traces()

    def mark_inactive(self, user_id: str) -> None:
        try:
            with self.db.atomic():
                self.db.execute("UPDATE users SET active = 0 WHERE id = ?", [user_id])
        except sqlite3.DatabaseError as error:
            raise storage_error(error) from error

    def count_users(self) -> int:
        return self.db["users"].count

    def close(self) -> None:
        self.db.close()


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino)
