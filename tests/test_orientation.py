"""The orientation, the legal-form guide and the synthesis, as conversations."""

from __future__ import annotations

import pytest

from dialogue.engine import Engine
from dialogue.storage.progress import ProgressStore
from tests.conversation import Chat


def current_question(chat: Chat) -> str | None:
    """Answer key of the question shown in the last replies, from its buttons' payloads."""
    for button in reversed(chat.buttons):
        if button.payload.startswith(("s:", "ok:")):
            return button.payload.split(":")[1]
    return None


def answer_current(chat: Chat, choice: int | list[int] = 0) -> str:
    """Answer the question on screen: option index for single, indexes for multiple."""
    question = current_question(chat)
    assert question, chat.text
    singles = [b for b in chat.buttons if b.payload.startswith(f"a:{question}:")]
    if singles:
        chat.choose(singles[choice if isinstance(choice, int) else choice[0]].payload)
        return question
    toggles = [b for b in chat.buttons if b.payload.startswith(f"x:{question}:")]
    for index in choice if isinstance(choice, list) else [choice]:
        chat.choose(toggles[index].payload)
        assert chat.replies[-1].edit
    chat.press("Valider")
    return question


def answer_flow(chat: Chat, picks: dict[str, int | list[int] | None], default: int | list[int] = 0) -> list[str]:
    """Answer every question until the flow ends; None in picks means « Passer »."""
    asked = []
    while (question := current_question(chat)) is not None:
        asked.append(question)
        pick = picks.get(question, default)
        if pick is None:
            chat.press("Passer")
        else:
            answer_current(chat, pick)
        assert len(asked) < 40
    return asked


def test_whole_orientation_ends_with_the_synthesis(engine, kb):
    chat = Chat(engine)
    chat.send("/orientation")
    assert "Étape 1/11" in chat.text
    asked = answer_flow(chat, {})
    flow = kb.flows["orientation"]
    assert asked == [q.id for _, q in flow.questions()]
    short = chat.replies[-1]
    assert short.text.startswith("**Votre synthèse en bref**") and len(short.text) <= 1200
    assert "Prochaines étapes" in short.text and "Voir le détail" in chat.labels
    assert engine.store.load("tester").state == "orientation__fin"
    assert set(engine.store.load("tester").answers) == set(asked)
    chat.press("Voir le détail")
    assert chat.replies[0].text.startswith("**Votre synthèse**") and "(Page 1/" in chat.text
    # One page per turn, « Suite » to the next, the page number shown; nothing printed twice.
    pages = [chat.text]
    while any(label.startswith("Suite") for label in chat.labels):
        assert len(chat.replies) == 1
        chat.press("Suite")
        assert chat.text not in pages
        pages.append(chat.text)
    assert len(pages) >= 2 and f"(Page {len(pages)}/{len(pages)})" in pages[-1]
    for title in ("Typologie", "Maturité", "formalisation", "Prochaines étapes"):
        assert title in "\n".join(pages)
    assert all(len(page) <= 3600 for page in pages)
    assert "Voir le détail" not in chat.labels and "Menu" in chat.labels
    chat.send("/synthese")
    assert chat.replies[-1].text == short.text and "Voir le détail" in chat.labels


def test_every_step_shows_progress_and_navigation(engine):
    chat = Chat(engine)
    chat.send("/orientation")
    assert "Passer" in chat.labels and "Retour" not in chat.labels
    answer_current(chat)
    assert "Étape 2/11" in chat.text
    assert {"Passer", "Retour", "Valider", "Menu"} <= set(chat.labels)


def test_going_back_shows_previous_answer(engine):
    chat = Chat(engine)
    chat.send("/orientation")
    answer_current(chat, 1)  # filière
    chat.press("Retour")
    assert "Étape 1/11" in chat.text
    assert any(label.startswith("● ") and "filière" in label.lower() for label in chat.labels)
    answer_current(chat, 0)
    assert engine.store.load("tester").answers["typologie"] == "territoire"


def test_skipping_is_stored_and_reported_not_guessed(engine):
    chat = Chat(engine)
    chat.send("/orientation")
    chat.press("Passer")
    assert engine.store.load("tester").answers["typologie"] is None
    answer_flow(chat, {}, default=0)
    assert "passée" in chat.text.lower()
    chat.send("/progression")
    assert "1 question(s) passée(s)" in chat.text


def test_multiple_choice_toggles_and_exclusive_none(engine):
    chat = Chat(engine)
    chat.send("/orientation")
    answer_current(chat)
    chat.press("Interconnaissance")
    assert chat.replies[-1].edit and "✅ Interconnaissance" in " ".join(chat.labels)
    chat.press("Ingénierie")
    chat.press("Aucune")
    labels = " ".join(chat.labels)
    assert "✅ Aucune" in labels and "✅ Interconnaissance" not in labels
    chat.press("Interconnaissance")
    labels = " ".join(chat.labels)
    assert "✅ Interconnaissance" in labels and "✅ Aucune" not in labels
    chat.press("Valider")
    assert engine.store.load("tester").answers["logiques"] == ["reseau"]


def test_free_question_in_the_middle_then_the_step_again(engine, kb):
    chat = Chat(engine)
    chat.send("/orientation")
    answer_current(chat)
    question = kb.flows["orientation"].steps[1].questions[0].text
    assert question in chat.replies[-1].text
    assert kb.topics["ptce.logiques_action"].short in chat.replies[-1].text  # the step's explanation
    buttons = chat.replies[-1].buttons
    chat.send("qu'est-ce qu'une logique d'incubation dans un ptce ?")
    assert kb.topics["ptce.logiques_action"].short in chat.replies[0].text
    assert question in chat.replies[-1].text and chat.replies[-1].buttons == buttons
    chat.send("quel temps fait-il à Lille ?")
    assert "Répondez par un numéro" in chat.replies[0].text
    assert question in chat.replies[-1].text and chat.replies[-1].buttons == buttons


def test_typed_option_and_number_answer_the_step(engine):
    chat = Chat(engine)
    chat.send("/orientation")
    chat.send("2")
    assert engine.store.load("tester").answers["typologie"] == "filiere"
    chat.send("passer")
    assert engine.store.load("tester").answers["logiques"] is None


def test_free_text_intent_opens_the_orientation(chat):
    chat.send("je veux faire le point sur mon PTCE")
    assert "Étape 1/11" in chat.text


def test_deep_link_start_orientation(chat):
    chat.send("/start orientation")
    assert "Étape 1/11" in chat.text


def test_stale_answer_button_is_refused_and_step_shown_again(engine):
    chat = Chat(engine)
    chat.send("/orientation")
    old = [b.payload for b in chat.buttons if b.payload.startswith("a:")][0]
    answer_current(chat)
    chat.choose(old)
    assert "plus valable" in chat.replies[0].text
    assert "Étape 2/11" in chat.replies[-1].text
    assert engine.store.load("tester").answers["typologie"] == "territoire"


def test_restart_in_the_middle_resumes_at_first_unanswered_step(tmp_path, kb):
    path = tmp_path / "p.db"
    chat = Chat(Engine(kb, ProgressStore.open(path)), "dana")
    chat.send("/orientation")
    answer_current(chat)
    answer_current(chat, [0, 2])
    expected = chat.replies[-1].text
    chat.engine.close()
    chat = Chat(Engine(kb, ProgressStore.open(path)), "dana")
    chat.send("/reprendre")
    assert chat.replies[-1].text == expected
    assert chat.engine.store.load("dana").answers == {"typologie": "territoire", "logiques": ["reseau", "ingenierie"]}
    chat.send("/menu")
    chat.send("/orientation")
    assert chat.replies[-1].text == expected


def test_legal_guide_from_menu_and_command(chat):
    chat.send("/menu")
    chat.press("Formes juridiques")
    assert "Étape 1/" in chat.text
    chat.send("/menu")
    chat.send("/formes")
    assert "Étape 1/" in chat.text


FORMES_PROFILES = {
    # name: (answers by question id as option ids, expected recommendation words)
    "scic": ({"forme_actuelle": "aucune", "employeur_coordination": "personne", "besoins_formalisation": ["economique"],
              "volonte_commune": "oui", "solidite_collectif": "solide", "pression_financeurs": "non"}, "SCIC"),
    "association": ({"forme_actuelle": "membre", "employeur_coordination": "membre",
                     "besoins_formalisation": ["lisibilite", "coordination"], "volonte_commune": "oui",
                     "solidite_collectif": "solide", "pression_financeurs": "non"}, "association"),
    "pas_encore": ({"forme_actuelle": "aucune", "employeur_coordination": "personne",
                    "besoins_formalisation": ["lisibilite"], "volonte_commune": "non",
                    "solidite_collectif": "en_construction", "pression_financeurs": "non"}, "pas"),
    "pression": ({"forme_actuelle": "aucune", "employeur_coordination": "membre", "besoins_formalisation": ["lisibilite"],
                  "volonte_commune": "non", "solidite_collectif": "en_construction", "pression_financeurs": "oui"},
                 "ne pas formaliser"),  # pushed, members unwilling: no structure route (chap. 07, p. 17)
    "portage_existant": ({"forme_actuelle": "membre", "employeur_coordination": "autre",
                          "besoins_formalisation": ["aucun"], "volonte_commune": "partielle",
                          "solidite_collectif": "solide", "pression_financeurs": "non"}, "structure"),
}


@pytest.mark.parametrize("profile", sorted(FORMES_PROFILES))
def test_legal_guide_recommendation_for_each_profile(engine, kb, profile):
    answers, word = FORMES_PROFILES[profile]
    flow = kb.flows["formes"]
    picks = {}
    for _, question in flow.questions():
        ids = [o.id for o in question.options]
        value = answers[question.id]
        picks[question.id] = [ids.index(v) for v in value] if isinstance(value, list) else ids.index(value)
    chat = Chat(engine)
    chat.send("/formes")
    answer_flow(chat, picks)
    assert engine.store.load("tester").answers == answers
    assert "Piste qui ressort de vos réponses" in chat.text
    recommendation = chat.text.split("Piste qui ressort de vos réponses", 1)[1].split("\n", 1)[0]
    assert word.lower() in recommendation.lower(), recommendation
    assert "Points de vigilance" in chat.text or profile == "portage_existant"
    assert "Les trois niveaux de formalisation" in chat.text
    for column in ("Association", "SCIC"):
        assert f"**{column}**" in chat.text


def test_legal_guide_reuses_orientation_answers_and_feeds_the_synthesis(engine):
    chat = Chat(engine)
    chat.send("/orientation")
    answer_flow(chat, {})
    chat.send("/formes")
    assert "déjà répondu" in chat.text  # every question of the guide was asked by the orientation
    assert "Piste qui ressort de vos réponses" in chat.text and "Les trois niveaux de formalisation" in chat.text
    chat.send("/synthese")
    assert "piste de formalisation" in chat.text
    assert "Gouvernance et formalisation" in chat.read_all("Voir le détail")


def test_synthesis_before_any_answer_invites_to_start(chat):
    chat.send("/synthese")
    assert "aucune question" in chat.text
    assert "Commencer l’orientation" in chat.labels


def test_orientation_already_complete_shows_result(engine):
    chat = Chat(engine)
    chat.send("/orientation")
    answer_flow(chat, {})
    chat.send("/orientation")
    assert "déjà répondu" in chat.text and "Votre synthèse en bref" in chat.text


OLD_ANSWERS = {  # stored by an earlier version of the flows
    "lieu": "tiers_lieu",  # single choice then, multiple choice now
    "capital_commercial": "oui",  # merged into besoins_formalisation
    "collectivites_membres": "oui",  # removed
    "typologie": "territoire",
    "besoins_formalisation": ["lisibilite"],
}


def _store_old_answers(engine, user: str = "tester") -> None:
    chat = Chat(engine, user)
    chat.send("/start")
    record = engine.store.load(user)
    record.answers.update(OLD_ANSWERS)
    engine.store.save(record, dict(OLD_ANSWERS))


def test_answers_of_older_flows_break_nothing(engine):
    _store_old_answers(engine)
    chat = Chat(engine)
    chat.send("/synthese")
    assert "Votre synthèse en bref" in chat.text and "PTCE de territoire" in chat.text
    assert "tiers-lieu, comme environ deux tiers" in chat.read_all("Voir le détail")  # the old single answer still counts
    chat.send("/progression")
    assert "Votre progression" in chat.text
    chat.send("/orientation")
    assert "On reprend" in chat.text and "Étape 2/11" in chat.text  # typology kept, next question asked
    chat.send("/formes")
    assert "Étape 1/" in chat.text
    answer_flow(chat, {})
    assert "Les trois niveaux de formalisation" in chat.text
    assert engine.store.load("tester").answers["lieu"] == "tiers_lieu"  # nothing rewritten behind the user's back


def test_old_single_venue_answer_can_be_changed_as_a_multiple_choice(engine):
    _store_old_answers(engine)
    chat = Chat(engine)
    chat.send("/orientation")
    while current_question(chat) != "innovation_sociale":
        answer_current(chat)
    chat.press("Retour")
    assert current_question(chat) == "lieu"
    assert "✅ Un tiers-lieu" in chat.labels  # the old single answer shown ticked
    chat.press("Prêté ou loué")
    chat.press("Valider")
    assert engine.store.load("tester").answers["lieu"] == ["tiers_lieu", "collectivite"]
