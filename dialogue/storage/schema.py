"""The core schema (users, answers, history, turn markers), upgraded with sqlite-utils' ``Migrations``.

Features keep their own tables and migration sets (see :meth:`dialogue.feature.Feature.migrate`).
Earlier versions applied the collectives' and the team's migrations in this set; those
records stay in old databases and are simply not listed here any more.
"""

from __future__ import annotations

import sqlite3

from dialogue.storage.errors import storage_error
from dialogue.storage.no_numpy import numpy_hidden

with numpy_hidden():  # sqlite-utils would import numpy (installed for the PDF report) at start-up
    from sqlite_utils import Database
    from sqlite_utils.migrations import Migrations

migrations = Migrations("ptce_progress")


@migrations()
def m001_users_and_answers(db: Database) -> None:
    db.table("users").create(
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
    db.table("answers").create(
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
    db.table("users").add_column("active", int, not_null_default=1)
    db.table("answer_history").create(
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
    db.table("answer_history").create_index(["user_id", "question"])
    # Answers stored before the history existed become its first entries.
    db.execute(
        "INSERT INTO answer_history (user_id, question, value, skipped, answered_at) "
        "SELECT user_id, question, value, skipped, answered_at FROM answers"
    )


@migrations()
def m003_turn_markers(db: Database) -> None:
    # A channel's turn that changed the progress, with the replies it produced, kept until the
    # channel has queued those replies (then pruned): a turn found here is never applied twice.
    db.table("turn_markers").create(
        {"key": str, "user_id": str, "replies": str, "at": float}, pk="key"
    )
    db.table("turn_markers").create_index(["user_id"])
    db.table("turn_markers").create_index(["at"])


def apply_migrations(db: Database, migration_set: Migrations) -> None:
    """Apply what is pending of one migration set; SQLite's errors become :class:`StorageError`."""
    try:
        if migration_set.pending(db):
            migration_set.apply(db)
    except sqlite3.DatabaseError as error:
        raise storage_error(error) from error
