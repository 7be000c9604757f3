from __future__ import annotations

import os
import tempfile

import pytest
from hypothesis import settings
from sqlite_utils import Database

from dialogue.engine import Engine
from dialogue.storage.progress import ProgressStore
from knowledge.loader import load_knowledge
from tests.conversation import Chat
from tests.support.launcher import launcher  # noqa: F401  (the Telegram end-to-end fixture)

# The matcher index cache of the test run: never the user's own cache directory. One
# directory per run (shared by the xdist workers, which build one index per knowledge base).
os.environ.setdefault("PTCE_CACHE_DIR", os.path.join(tempfile.gettempdir(), f"ptce-test-cache-{os.getuid()}"))

# Hypothesis: « ci » keeps the example counts the tests declare (the default); « dev » is a
# quick pass while editing (HYPOTHESIS_PROFILE=dev). A test's own @settings(max_examples=…)
# takes precedence over both.
settings.register_profile("ci")
settings.register_profile("dev", max_examples=10, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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
