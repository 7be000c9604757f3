"""What a user sees of the flows' screens: stable numbers, typed choices said back."""

from __future__ import annotations

import io
from datetime import timedelta

from bot.terminal import render_replies
from dialogue.buttons import numbered
from tests.conversation import Chat
from tests.test_collective import create_collective
from tests.test_conversation import Clock
from tests.test_orientation import answer_flow


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


def test_progression_does_not_show_an_unopened_guide_as_answered(chat):
    chat.send("/orientation")
    answer_flow(chat, {})
    chat.send("/progression")
    text = seen(chat)
    guide = text.split("**Guide des formes juridiques**")[1]
    assert guide.startswith(" : pas encore ouvert") and "elles seront reprises" in guide
    assert "✅" not in guide.split("\n\n")[0]
    chat.send("/formes")
    chat.send("/progression")
    assert "pas encore ouvert" not in seen(chat)


def test_a_user_who_finished_is_greeted_as_returning(kb, store):
    from dialogue.engine import Engine
    clock = Clock()
    chat = Chat(Engine(kb, store, clock=clock))
    chat.send("/orientation")
    answer_flow(chat, {})
    clock.now += timedelta(days=20)
    chat.send("/start")
    assert "Bon retour ! Vous avez terminé le « Parcours d’orientation »" in seen(chat)
    assert "Bonjour ! Je suis le conseiller" not in seen(chat)
    assert {"Voir ma synthèse", "Modifier une réponse", "Guide des formes juridiques", "Menu"} <= set(chat.labels)
    clock.now += timedelta(days=20)
    chat.send("c'est quoi une scic ?")
    assert "Bon retour ! Vos réponses sont gardées" in seen(chat) and "SCIC" in chat.text


def test_someone_who_only_asked_questions_is_welcomed_back_with_the_menu(kb, store):
    from dialogue.engine import Engine
    clock = Clock()
    chat = Chat(Engine(kb, store, clock=clock))
    chat.send("/start")
    chat.send("c'est quoi un PTCE ?")
    clock.now += timedelta(days=9)
    chat.send("/start")
    assert "Bon retour" in chat.text and "Menu" in chat.text and "Je suis le conseiller" not in chat.text


def test_an_invitation_code_pasted_in_a_sentence_is_recognised(engine):
    _, code = create_collective(engine)
    member = Chat(engine, "someone")
    member.send(f"Bonjour, Marie m'a transmis ce code pour le collectif : {code} merci !")
    assert "vous invite à rejoindre" in member.text
    other = Chat(engine, "other")
    other.send(f"https://t.me/conseiller_ptce_bot?start={code}")
    assert "vous invite à rejoindre" in other.text
    third = Chat(engine, "third")
    third.send("/rejoindre")
    third.send(f"voilà : {code.upper()}")
    assert "vous invite à rejoindre" in third.text
    unknown = Chat(engine, "unknown")
    unknown.send("mon code d'invitation est abcde-fghjk-mnpqr-stuvw")
    assert "n’existe pas" in unknown.text


def test_validate_and_skip_words_with_an_elision_are_understood(chat):
    chat.send("/orientation")
    chat.send("1")
    chat.send("2")
    chat.send("c'est tout")
    assert "Étape 3/" in chat.text and chat.engine.store.load("tester").answers["logiques"] == ["accompagnement"]
    chat.send("c’est bon")  # nothing ticked: an empty answer is kept as such
    assert "Étape 4/" in chat.text and chat.engine.store.load("tester").answers["marqueurs"] == []


def test_d_accord_answers_a_confirmation(chat):
    chat.send("/orientation")
    chat.send("1")
    chat.send("/recommencer")
    chat.send("d'accord")
    assert "C’est reparti depuis le début" in chat.text and "typologie" not in chat.engine.store.load("tester").answers
