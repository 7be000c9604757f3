"""Where an engine is put together: knowledge, progress store, features."""

from __future__ import annotations

import os
from pathlib import Path

from dialogue.engine import Engine
from dialogue.features.registry import standard_features
from dialogue.features.team.flow import TeamServices
from dialogue.features.team.handovers import HandoverStore
from dialogue.features.team.question_log import QuestionLog
from dialogue.storage.progress import ProgressStore
from knowledge.analyzer import french_words
from knowledge.loader import load_knowledge


def open_store(db_path: str | os.PathLike[str] | None = None, **options: int) -> ProgressStore:
    """The progress database with every feature's tables (for tools that read them without an engine)."""
    store = ProgressStore.open(db_path, **options)
    for feature in standard_features():
        feature.migrate(store.db)
    return store


def create_engine(
    db_path: str | os.PathLike[str] | None = None,
    data_dir: Path | None = None,
    *,
    log_questions: bool = True,
    log_days: int = 180,
    team_chat: bool = False,
    operator_contact: str = "",
) -> Engine:
    """Load the knowledge and open the progress database (``PTCE_DB`` or ``ptce.db`` by default)."""
    kb = load_knowledge(data_dir)
    # The spelling dictionary (about 0.5 s) is loaded now, before any user waits for it,
    # rather than inside a first question or alongside the first events (a higher memory peak).
    french_words()
    store = open_store(db_path)
    log = QuestionLog(store.db, enabled=log_questions, retention_days=log_days)
    team = TeamServices(log, HandoverStore(store.db), team_chat=team_chat, operator_contact=operator_contact)
    return Engine(kb, store, features=standard_features(team=team))
