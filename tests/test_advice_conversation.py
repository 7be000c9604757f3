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


# --------------------------------------------------------------------------- a person, please


def test_asking_for_a_person_reaches_the_operators_team_when_configured(tmp_path):
    import argparse

    from bot.team_cli import engine_options
    from dialogue.assembly import create_engine

    options = engine_options(argparse.Namespace(), {"PTCE_TEAM_CONTACT": "Équipe PTCE du Val, equipe@exemple.org"})
    engine = create_engine(tmp_path / "team.db", **options)
    try:
        for request in ("je veux parler à quelqu'un", "I would like to talk to someone, please", "quiero hablar con alguien"):
            chat = Chat(engine, user=f"u{len(request)}")
            chat.send(request)
            text = chat.text.replace("\u00a0", " ")
            assert "L’équipe qui tient ce service : Équipe PTCE du Val, equipe@exemple.org" in text, request
            assert "Transmettre ma question à l’équipe" in chat.labels
            assert "Coordonnées de l’auteur du document" in chat.labels
            assert "contact@institutgodin.fr" not in text  # the author's address is not this service's line
    finally:
        engine.close()


def test_without_a_team_the_documents_contacts_are_the_authors(engine):
    chat = Chat(engine)
    chat.send("je voudrais parler à quelqu'un")
    text = chat.text.replace("\u00a0", " ")
    assert "contact@institutgodin.fr" in text
    assert "coordonnées de son auteur" in text and "pas une ligne d’aide de ce conseiller" in text
    assert "pour parler à une personne, écrivez à" not in text
    chat.send("quel est votre numéro de téléphone ?")
    text = chat.text.replace("\u00a0", " ")
    assert "Institut Godin" in text and "auteur" in text
    assert "pour parler à une personne, voici les contacts" not in text


def test_the_collectives_group_synthesis_under_pressure_names_no_structure(kb):
    """Members mostly pushed by a funder and unwilling: the group view proposes no structure either."""
    from dialogue.features.collective.aggregation import aggregate, group_synthesis
    from dialogue.features.collective.wording import group_synthesis_blocks
    from tests.test_collective_aggregation import orientation_specs

    pushed = {"forme_actuelle": "aucune", "besoins_formalisation": ["economique"], "volonte_commune": "non",
              "pression_financeurs": "oui", "solidite_collectif": "fragile"}  # fmt: skip
    members = [pushed, pushed, pushed, {**pushed, "volonte_commune": "oui", "solidite_collectif": "solide"}]
    profile = aggregate(orientation_specs(kb), members, invited=4, joined=4)
    assert group_synthesis(kb.synthesis, profile).synthesis.recommendation == "pas_encore"
    text = "\n".join(group_synthesis_blocks(kb, profile)).replace("\u00a0", " ")
    assert "Piste qui ressort des réponses majoritaires : **ne pas formaliser pour l’instant**" in text
    assert "SCIC" not in text and "l’association" not in text
