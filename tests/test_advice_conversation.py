"""What a user sees of issue #20 in a conversation: contradictions pointed out with a way to
correct them, no structure route under pressure, the document's contacts as its author's."""

from __future__ import annotations

from tests.conversation import Chat
from tests.test_orientation import answer_flow


def _guide(chat: Chat, kb, answers: dict) -> None:
    flow = kb.flows["formes"]
    picks = {}
    for _, question in flow.questions():
        ids = [o.id for o in question.options]
        value = answers[question.id]
        picks[question.id] = [ids.index(v) for v in value] if isinstance(value, list) else ids.index(value)
    chat.send("/formes")
    answer_flow(chat, picks)


def test_contradicting_answers_are_pointed_out_and_the_question_asked_again(engine, kb):
    chat = Chat(engine)
    _guide(chat, kb, {"forme_actuelle": "aucune", "employeur_coordination": "dediee",
                      "besoins_formalisation": ["lisibilite"], "volonte_commune": "oui",
                      "solidite_collectif": "solide", "pression_financeurs": "non"})  # fmt: skip
    text = chat.text.replace("\u00a0", " ")
    assert "Deux de vos réponses se contredisent" in text
    assert "employée par une structure dédiée" in text
    assert any(label.startswith("Revoir") for label in chat.labels)
    chat.press("Revoir\u00a0: Aujourd’hui, comment votre démarche")
    assert "Aujourd’hui, comment votre démarche est-elle portée" in chat.text
    chat.press("Par une association dédiée")
    chat.send("/synthese")
    assert "se contredisent" not in chat.text


def test_the_short_synthesis_under_pressure_names_no_structure(engine, kb):
    chat = Chat(engine)
    _guide(chat, kb, {"forme_actuelle": "aucune", "employeur_coordination": "personne",
                      "besoins_formalisation": ["economique"], "volonte_commune": "non",
                      "solidite_collectif": "fragile", "pression_financeurs": "oui"})  # fmt: skip
    guide = chat.text.replace("\u00a0", " ")
    assert "Piste qui ressort de vos réponses : **ne pas formaliser pour l’instant**" in guide
    assert "👉" not in guide
    chat.send("/synthese")
    short = chat.text.replace("\u00a0", " ")
    assert "piste de formalisation : ne pas formaliser pour l’instant" in short
    assert "SCIC" not in short and "association" not in short
