"""Per-user progress in SQLite, through sqlite-utils.

Every event's changes (state, answers, context) are written in one
transaction, so a crash never loses an answer that was acknowledged.
The schema is created and upgraded with sqlite-utils' ``Migrations``.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

DEFAULT_DB = "ptce.db"

AnswerValue = str | list[str] | None  # None: explicitly skipped

migrations = Migrations("ptce_progress")


@migrations()
def m001_users_and_answers(db: Database) -> None:
    db["users"].create(
        {
            "id": str,
            "state": str,
            "flow": str,
            "knowledge_version": str,
            "first_seen": str,
            "last_seen": str,
            "context": str,
        },
        pk="id",
        not_null={"state"},
    )
    db["answers"].create(
        {
            "user_id": str,
            "question": str,
            "value": str,
            "skipped": int,
            "answered_at": str,
        },
        pk=("user_id", "question"),
        foreign_keys=[("user_id", "users", "id")],
    )


@migrations()
def m002_activity_and_history(db: Database) -> None:
    db["users"].add_column("active", int, not_null_default=1)
    db["answer_history"].create(
        {
            "id": int,
            "user_id": str,
            "question": str,
            "value": str,
            "skipped": int,
            "answered_at": str,
        },
        pk="id",
    )
    db["answer_history"].create_index(["user_id", "question"])
    # Answers stored before the history existed become its first entries.
    db.execute(
        "INSERT INTO answer_history (user_id, question, value, skipped, answered_at) "
        "SELECT user_id, question, value, skipped, answered_at FROM answers"
    )


@migrations()
def m_team_001_question_log_and_handovers(db: Database) -> None:
    from dialogue.question_log import create_team_tables

    create_team_tables(db)


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


class StorageError(RuntimeError):
    """The database cannot be opened or written (read-only file, locked, not SQLite)."""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class UserRecord:
    id: str
    state: str
    flow: str | None = None
    knowledge_version: str = ""
    first_seen: str = field(default_factory=now)
    last_seen: str = field(default_factory=now)
    active: bool = True
    context: dict[str, Any] = field(default_factory=dict)
    answers: dict[str, AnswerValue] = field(default_factory=dict)
    answered_at: dict[str, str] = field(default_factory=dict)
    is_new: bool = False


def default_db_path() -> Path:
    return Path(os.environ.get("PTCE_DB") or DEFAULT_DB)


class ProgressStore:
    """Reads and writes users' progress. One instance per process."""

    def __init__(self, db: Database) -> None:
        self.db = db
        try:
            migrations.apply(db)
        except sqlite3.DatabaseError as error:
            raise StorageError(_describe(error)) from error

    @classmethod
    def open(cls, path: str | os.PathLike | None = None) -> ProgressStore:
        """Open (creating or upgrading) the database file, in WAL mode."""
        path = Path(path) if path else default_db_path()
        try:
            if path.parent and not path.parent.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
            _create_private(path)
            db = Database(path)
            db.execute("PRAGMA busy_timeout = 5000")
            if db.journal_mode != "wal":
                db.enable_wal()
            # WAL + NORMAL: a commit survives the process being killed; only a power cut or an OS crash
            # may roll back the last commits (never corrupting the file). Saves one fsync per event.
            db.execute("PRAGMA synchronous = NORMAL")
            _create_private(path)
        except (sqlite3.DatabaseError, OSError) as error:
            raise StorageError(f"{path} : {_describe(error)}") from error
        return cls(db)

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
            context=_json_object(row["context"]),
        )
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
        """Write the user row and the changed answers in one transaction."""
        stamp = now()
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
                        json.dumps(record.context, ensure_ascii=False),
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
            raise StorageError(_describe(error)) from error

    def forget(self, user_id: str) -> None:
        """Delete everything stored about a user."""
        with self.db.atomic():
            for table in ("answer_history", "answers"):
                self.db.execute(f"DELETE FROM {table} WHERE user_id = ?", [user_id])
            self.db.execute("DELETE FROM users WHERE id = ?", [user_id])
            from dialogue.question_log import forget_user_rows

            forget_user_rows(self.db, user_id)

    def mark_inactive(self, user_id: str) -> None:
        with self.db.atomic():
            self.db.execute("UPDATE users SET active = 0 WHERE id = ?", [user_id])

    def count_users(self) -> int:
        return self.db["users"].count

    def close(self) -> None:
        self.db.close()


def _create_private(path: Path) -> None:
    """The database holds personal data: owner-only (0600) whatever the umask.

    SQLite gives the -wal and -shm files the main file's mode, so creating the
    main file first with 0600 is enough; existing files are tightened too.
    """
    if str(path) == ":memory:":
        return
    try:
        if not path.exists():
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            if candidate.exists() and candidate.stat().st_mode & 0o777 != 0o600:
                os.chmod(candidate, 0o600)
    except OSError:
        pass  # read-only file or folder: SQLite's own error, described in French, follows


def _json_object(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _describe(error: BaseException) -> str:
    message = str(error)
    if "readonly" in message or "read-only" in message:
        return "la base de données est en lecture seule (vérifiez les droits du fichier)."
    if "locked" in message:
        return "la base de données est verrouillée par un autre programme."
    if "unable to open" in message:
        return "impossible d’ouvrir le fichier (dossier en lecture seule, droits insuffisants ou chemin invalide)."
    if "not a database" in message or "file is encrypted" in message:
        return "ce fichier n’est pas une base SQLite valide."
    return f"erreur de base de données : {message}"
