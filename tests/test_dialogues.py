"""The dialogue corpus: every script of tests/data/dialogues must behave as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialogue.corpus import load_scripts, play

CORPUS = Path(__file__).parent / "data" / "dialogues"
SCRIPTS = load_scripts(CORPUS)


def test_corpus_is_large_enough():
    assert len(SCRIPTS) >= 180


@pytest.mark.parametrize("category,script", SCRIPTS, ids=[f"{c}:{s['name']}" for c, s in SCRIPTS])
def test_dialogue(engine, category, script):
    result = play(engine, category, script, "dialogue")
    if script.get("owner") and not result.passed:
        # Known to wait for another area's work (named in the script); reported, not hidden.
        pytest.xfail(f"en attente : {script['owner']} — " + "; ".join(result.failures))
    assert result.passed, "\n".join(result.failures)
