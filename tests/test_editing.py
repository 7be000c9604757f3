"""/modifier and typed requests: change one answer, come back to the result rebuilt."""

from __future__ import annotations

import pytest

from tests.conversation import Chat
from tests.test_collective import answer_orientation, create_collective, join
from tests.test_orientation import answer_flow


def seen(chat: Chat) -> str:
    return chat.text.replace("\u00a0", " ")


def _finished(engine, user: str = "tester") -> Chat:
    chat = Chat(engine, user)
    chat.send("/orientation")
    answer_flow(chat, {})
    assert "Votre synthèse en bref" in chat.text
    return chat


def test_modifier_lists_steps_reasks_one_and_returns_to_the_updated_synthesis(engine):
    chat = _finished(engine)
    before = chat.replies[-1].text
    chat.send("/modifier")
    assert "Modifier une réponse — Parcours d’orientation" in seen(chat)
    assert "**1. Typologie** : De territoire (multithématique)" in seen(chat)
    assert "1. Typologie" in chat.labels and "11. Innovation sociale" in chat.labels
    chat.press("1. Typologie")
    assert "Modifier votre réponse" in chat.text and "Réponse actuelle : De territoire" in seen(chat)
    assert "● De territoire (multithématique)" in chat.labels and "Garder ma réponse" in chat.labels
    assert "Retour" not in chat.labels
    chat.press("De filière")
    assert "C’est modifié : De filière (au lieu de : De territoire (multithématique))" in seen(chat)
    assert "synthèse mise à jour" in chat.text and "PTCE « filière »" in seen(chat) and chat.text != before
    assert engine.store.load("tester").answers["typologie"] == "filiere"
    assert engine.store.load("tester").state == "orientation__fin"
    # nothing else was asked again, and the next typed number does not answer a question
    assert "Étape 2/" not in chat.text


def test_a_step_with_several_questions_lets_the_user_pick_one(engine):
    chat = _finished(engine)
    chat.send("/modifier 4")
    assert "Étape 4 — Territoire et diagnostic" in seen(chat) and "Autre étape" in chat.labels
    chat.press("Où en est")
    assert "Modifier votre réponse" in chat.text
    chat.send("garder ma réponse")
    assert "Rien n’a changé" in seen(chat) and "Votre synthèse en bref" in chat.text


def test_multiple_choice_edit_starts_from_the_stored_ticks(engine):
    chat = _finished(engine)  # answer_flow ticks the first option of each multiple choice
    chat.send("je voudrais changer ma réponse sur les logiques d'action")
    assert "Logiques d’action" in chat.text and "✅ Interconnaissance et réseau" in chat.labels
    chat.send("2")
    assert "Coché : « Accompagnement ou incubation »" in seen(chat)
    chat.send("valider")
    assert engine.store.load("tester").answers["logiques"] == ["reseau", "accompagnement"]
    assert "C’est modifié" in chat.text


def test_typed_requests_name_a_step_by_number_or_by_words(engine):
    chat = _finished(engine)
    chat.send("modifier la question 5")
    assert "La collectivité locale" in chat.text and "Modifier votre réponse" in chat.text
    chat.send("/menu")
    chat.send("je me suis trompé sur le lieu")
    assert "Le lieu" in chat.text and "Modifier votre réponse" in chat.text
    chat.send("/menu")
    chat.send("je veux changer une réponse")
    assert "Quelle étape voulez-vous revoir" in chat.text


def test_in_the_middle_of_a_flow_an_edit_returns_to_the_question_left(engine):
    chat = Chat(engine)
    chat.send("/orientation")
    chat.send("1")
    chat.send("passer")
    chat.send("je me suis trompé à l'étape 1")
    assert "Modifier votre réponse" in chat.text
    chat.send("2")
    assert "On reprend le parcours" in chat.text and "Étape 3/" in chat.text
    assert engine.store.load("tester").answers["typologie"] == "filiere"


def test_legal_guide_edit_returns_to_its_first_page(engine):
    chat = Chat(engine)
    chat.send("/formes")
    answer_flow(chat, {})
    assert "Guide des formes juridiques" in chat.text
    chat.send("/modifier")
    assert "dans quel parcours" not in chat.text  # the orientation was never opened
    chat.press("1. Votre situation")
    assert "quelle question" in chat.text
    chat.choose(chat.buttons[0].payload)  # the step's first question: the current form
    chat.press("Par une SCIC")
    assert "Voici le résultat mis à jour" in chat.text and "(Page 1/" in chat.text
    assert engine.store.load("tester").answers["forme_actuelle"] == "scic"


def test_nothing_to_change_before_any_answer(chat):
    chat.send("/modifier")
    assert "rien à modifier" in chat.text and "Orientation pas à pas" in chat.labels


def test_modifier_is_in_help_and_the_command_list(engine, chat):
    assert ("modifier", "Changer une de vos réponses") in engine.commands
    chat.send("/aide")
    assert "/modifier" in chat.text


def test_a_member_corrects_an_answer_and_the_group_counts_follow(engine):
    coordinator, code = create_collective(engine)
    members = [join(engine, f"m{i}", code) for i in range(3)]
    for member in members:
        answer_orientation(member, {"typologie": "territoire"})
    coordinator.send("/collectif")
    coordinator.press("Montrer la vue aux membres")
    coordinator.send("/collectif")
    assert "Votre dynamique est plutôt un PTCE…** — accord 100 %" in coordinator.read_all()
    member = members[0]
    member.send("/collectif")
    assert "Modifier mes réponses" in member.labels
    member.press("Modifier mes réponses")
    member.press("1. Typologie")
    member.press("De filière")
    assert "C’est modifié" in member.text
    coordinator.send("/collectif")
    view = coordinator.read_all()
    # One correction alone does not move the counts (the coordinator would read it from the change)…
    assert "Votre dynamique est plutôt un PTCE…** — accord 100 %" in view and "De filière : 1" not in view
    # …it is published with the next batch of three members' changes.
    for user in ("m3", "m4"):
        answer_orientation(join(engine, user, code), {"typologie": "territoire"})
    coordinator.send("/collectif")
    view = coordinator.read_all()
    assert "Votre dynamique est plutôt un PTCE…** — accord 80 %" in view and "De filière : 1" in view


def test_a_wish_to_change_a_step_edits_but_a_question_about_changing_goes_to_the_document(engine):
    chat = _finished(engine)
    chat.send("je voudrais changer la typologie")
    assert "Modifier votre réponse" in chat.text and "Typologie" in chat.text
    chat.send("/menu")
    chat.send("comment changer de statut juridique quand on est une association ?")
    assert "Modifier votre réponse" not in chat.text and "Quelle étape" not in chat.text
    fresh = Chat(engine, "fresh")
    fresh.send("je voudrais changer la typologie")  # nothing answered: not an edit
    assert "Modifier votre réponse" not in fresh.text


def test_editing_from_the_synthesis_after_the_guide_only_stays_in_the_guide(engine):
    chat = Chat(engine)
    chat.send("/formes")
    answer_flow(chat, {})
    chat.send("/synthese")
    chat.press("Modifier une réponse")
    assert "Guide des formes juridiques" in chat.text and "Typologie" not in chat.text
    chat.choose("ed:orientation")  # an old or forged button for a flow never opened
    assert "Guide des formes juridiques" in chat.text and "Étape 1/11" not in chat.text


@pytest.mark.parametrize(
    "typed,step",
    [
        ("je veux refaire l'étape 3", "étape 3, Maturité"),
        ("revenir sur la question 2", "étape 2, Logiques d’action"),
        ("je voudrais changer mon choix pour le lieu", "étape 10, Le lieu"),
        ("j'ai mal répondu pour la collectivité", "étape 5, La collectivité locale"),
        ("je souhaite modifier le diagnostic", "Où en est"),
        ("erreur sur l'échelle du territoire", "À quelle échelle"),
    ],
)
def test_typed_requests_reach_the_answer_they_name(engine, typed, step):
    chat = _finished(engine)
    chat.send(typed)
    assert "Modifier votre réponse" in chat.text and step in chat.text


@pytest.mark.parametrize(
    "question", ["comment modifier les statuts de notre association ?", "peut-on changer de forme juridique ?", "qui peut modifier la gouvernance"]
)
def test_questions_about_changing_things_are_not_edits(engine, question):
    chat = _finished(engine)
    chat.send(question)
    assert "Modifier votre réponse" not in chat.text and "Quelle étape voulez-vous revoir" not in chat.text


def test_keep_button_outside_an_edit_is_stale(engine):
    chat = Chat(engine)
    chat.choose("ed:formes:-")
    assert "plus valable" in chat.text and engine.store.load("tester").answers == {}
