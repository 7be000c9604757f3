"""The team's tables: the question log and the hand-over queue, with their own migration set."""

from __future__ import annotations

from dialogue.storage.no_numpy import numpy_hidden
from dialogue.storage.schema import apply_migrations

with numpy_hidden():
    from sqlite_utils import Database
    from sqlite_utils.migrations import Migrations

migrations = Migrations("ptce_team")


def create_team_tables(db: Database) -> None:
    """Schema of the team features; called by the ``m_team_001`` migration of the progress store."""
    db.table("team_settings").create({"key": str, "value": str}, pk="key", if_not_exists=True)
    db.table("question_log").create(
        {
            "id": int,
            "at": str,
            "user_hash": str,
            "text": str,
            "topic": str,
            "runner_up": str,
            "score": float,
            "tier": str,
            "flow": str,
            "step": str,
            "feedback": int,
            "comment": str,
        },
        pk="id",
        if_not_exists=True,
    )
    db.table("question_log").create_index(["at"], if_not_exists=True)
    db.table("question_log").create_index(["user_hash"], if_not_exists=True)
    db.table("handovers").create(
        {
            "ref": int,
            "user_id": str,
            "user_hash": str,
            "created_at": str,
            "question": str,
            "recent": str,
            "status": str,
            "team_chat_id": str,
            "team_message_id": int,
            "answer": str,
            "answered_at": str,
            "delivered_at": str,
        },
        pk="ref",
        if_not_exists=True,
    )
    db.table("handovers").create_index(["user_id", "status"], if_not_exists=True)
    db.table("handovers").create_index(["team_message_id"], if_not_exists=True)
    db.table("team_assignments").create({"text": str, "topic": str, "at": str}, pk="text", if_not_exists=True)


@migrations()
def m_team_001_question_log_and_handovers(db: Database) -> None:
    """Created by the core migration set in earlier versions: only where missing."""
    create_team_tables(db)


@migrations()
def m_team_002_advisors_and_deletions(db: Database) -> None:
    """Who may answer in the team chat, and the team-chat posts to delete after a person's /oublier."""
    db.table("team_advisors").create({"user_id": int, "name": str, "added_at": str}, pk="user_id", if_not_exists=True)
    db.table("team_deletions").create({"chat_id": str, "message_id": int}, pk=("chat_id", "message_id"), if_not_exists=True)
    db.table("handovers").create_index(["created_at"], if_not_exists=True)


def ensure_team_tables(db: Database) -> None:
    apply_migrations(db, migrations)
