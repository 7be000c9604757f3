from __future__ import annotations

import pytest
from sqlite_utils import Database

from dialogue.engine import Engine
from dialogue.storage.progress import ProgressStore
from knowledge.loader import load_knowledge
from tests.conversation import Chat
from tests.support.launcher import launcher  # noqa: F401  (the Telegram end-to-end fixture)


@pytest.fixture(scope="session")
def kb():
    return load_knowledge()


@pytest.fixture
def store():
    return ProgressStore(Database(memory=True))


@pytest.fixture
def engine(kb, store):
    return Engine(kb, store)


@pytest.fixture
def chat(engine):
    return Chat(engine)
