"""What a user sees of the flows' screens: stable numbers, typed choices said back."""

from __future__ import annotations

import io

from bot.terminal import render_replies
from dialogue.buttons import numbered


def seen(chat) -> str:
    """The replies' text as read (typography's non-breaking spaces as plain spaces)."""
    return chat.text.replace("\u00a0", " ")


def _step_two_ticked(chat):
    chat.send("/orientation")
    chat.send("1")  # typologie: territoire
    chat.send("1")  # tick « Interconnaissance et réseau »
    assert "Coché : « Interconnaissance et réseau »" in seen(chat)


def test_step_options_keep_their_numbers_after_a_question(chat):
    _step_two_ticked(chat)
    chat.send("qu'est-ce qu'une SCIC ?")
    assert len(chat.replies) == 2 and chat.replies[0].buttons, "the answer carries its own buttons"
    order = [b.label for b in numbered(chat.replies)]
    assert order[:5] == ["▫️ Interconnaissance et réseau".replace("▫️", "✅"), "▫️ Accompagnement ou incubation",
                         "▫️ Ingénierie et développement de projets", "▫️ Aucune ne se dégage encore", "Valider"]
    out = io.StringIO()
    render_replies(chat.replies, out, colour=False)
    assert "  5. Valider" in out.getvalue() and "  1. ✅ Interconnaissance et réseau" in out.getvalue()
    chat.send("5")  # « Valider » on the previous screen and on this one
    assert chat.engine.store.load("tester").answers["logiques"] == ["reseau"]
    assert "Étape 3/11" in seen(chat)


def test_typed_number_that_clears_other_ticks_says_so(chat):
    _step_two_ticked(chat)
    chat.send("4")  # « Aucune ne se dégage encore » replaces the tick
    assert "Coché : « Aucune ne se dégage encore »" in seen(chat)
    assert "Décoché : « Interconnaissance et réseau »" in seen(chat)
    chat.send("valider")
    assert chat.engine.store.load("tester").answers["logiques"] == ["aucune"]


def test_typed_list_of_numbers_is_said_back(chat):
    chat.send("/orientation")
    chat.send("1")
    chat.send("1, 3")
    assert "Coché : « Interconnaissance et réseau », « Ingénierie et développement de projets »" in seen(chat)
    chat.send("1 et 4")
    assert "ne se coche pas avec d’autres choix" in seen(chat)


def test_pressed_toggle_edits_the_message_without_a_notice(chat):
    chat.send("/orientation")
    chat.send("1")
    replies = chat.press("Accompagnement")
    assert len(replies) == 1 and replies[0].edit and "Coché" not in replies[0].text
