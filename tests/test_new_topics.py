"""The four themes the document raises but the first knowledge base did not gather (issue 10)."""

from __future__ import annotations

import pytest

from knowledge.matcher import Matcher

NEW_TOPICS = ("accompagnement.se_faire_accompagner", "collectivite.relation", "coordination.portage", "dynamiques.observees")


@pytest.fixture(scope="module")
def matcher(kb):
    return Matcher(kb)


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("qui peut nous accompagner ?", "accompagnement.se_faire_accompagner"),
        ("je veux parler à un humain", "accompagnement.se_faire_accompagner"),
        ("contact", "accompagnement.se_faire_accompagner"),
        ("quelle place pour la collectivité ?", "collectivite.relation"),
        ("qui emploie la coordinatrice tant qu'on n'a pas de structure ?", "coordination.portage"),
        ("quelles dynamiques le document a-t-il observées ?", "dynamiques.observees"),
    ],
)
def test_questions_land_on_the_new_topics(matcher, question, topic):
    assert matcher.match(question).topic == topic


def test_new_topics_are_complete_and_linked(kb):
    for topic_id in NEW_TOPICS:
        topic = kb.topics[topic_id]
        assert topic.label and len(topic.label) <= 32 and topic.not_covered
        assert len(topic.questions) >= 8 and topic.keywords
        linked_from = [t.id for t in kb.topics.values() if topic_id in t.related]
        assert linked_from, f"{topic_id} is linked from no topic"


def test_the_contact_details_are_those_of_the_back_cover(kb, chat):
    chat.send("qui peut nous accompagner ?")
    text = chat.text.replace("\u00a0", " ")
    for detail in ("contact@institutgodin.fr", "03 22 72 49 53", "bouquet de services"):
        assert detail in text
    chat.press("En savoir plus")
    assert "21 rue François Génin, 80000 Amiens" in chat.text.replace("\u00a0", " ")


def test_the_24_dynamics_are_listed_without_inventing_where_they_are(kb):
    topic = kb.topics["dynamiques.observees"]
    listed = topic.details.split("**La liste, dans l’ordre du document**")[1].split("\n\n")[0]
    assert len([name for name in listed.split(", ") if name.strip()]) == 24
    assert "ni leur région" in topic.details


def test_source_document_keeps_the_two_sources_apart(kb):
    short = kb.topics["source.document"].short.replace("\u00a0", " ")
    assert "Hauts-de-France" in short and "échelle nationale" in short
    assert "suivis de près en Hauts-de-France" not in short
