"""The matcher's learned model and its guards: what a user notices is the tier of the answer."""

from __future__ import annotations

import math

import pytest

from knowledge.matcher import Matcher
from knowledge.text import stem
from knowledge.topic_model import vectorise


@pytest.fixture(scope="module")
def matcher(kb):
    return Matcher.for_knowledge(kb)


@pytest.mark.parametrize("text", [
    "comment on monte une scic avec la mairie",
    "le coordo le coordo du pole",  # a repeated word: sublinear count
    "zzz qwerty",  # nothing known
    "",
])
def test_remembered_word_scores_are_exactly_the_linear_model(matcher, text):
    model = matcher.model
    assert model is not None
    rewritten = matcher.analyzer.rewrite(text)
    size = len(model.classes)
    expected = list(model.intercept)
    for column, value in vectorise(rewritten, model.vocabulary, model.idf).items():
        for k in range(size):
            expected[k] += value * model.coef[column * size + k]
    for _ in range(2):  # computed, then from the remembered words
        assert model.scores(rewritten) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    probabilities = model.probabilities(rewritten)
    assert math.isclose(sum(probabilities.values()), 1.0)


def test_everyday_words_are_known_but_never_domain_words(matcher):
    everyday = matcher.index.everyday
    assert {stem("devenir"), stem("demain"), stem("maison")} <= everyday
    assert not everyday & matcher.index.domain_stems  # « lieu », « projet » stay domain words


@pytest.mark.parametrize("question", [
    "comment devenir élu",  # « devenir » is everyday French, « élu » a word most topics use
    "devenir président du département",
])
def test_the_learned_model_does_not_make_a_match_on_generic_words_sure(matcher, question):
    found = matcher.match(question)
    assert found.tier != "confident"
    assert matcher.scorer_only().match(question).tier != "confident"


@pytest.mark.parametrize(("question", "topic"), [
    ("avantages de la scic", "formalisation.scic"),
    ("la mairie nous prête une salle pour le pôle, bonne idée ?", "lieu.role"),  # « mairie » and « prêter » are not all
])
def test_specific_questions_stay_sure(matcher, question, topic):
    found = matcher.match(question)
    assert (found.topic, found.tier) == (topic, "confident")


def test_a_match_is_remembered_and_the_scorer_alone_has_its_own(matcher):
    question = "une question posée deux fois sur le financement du pôle"
    assert matcher.match(question) is matcher.match(question)
    alone = matcher.scorer_only()
    assert alone.model is None and alone.learned(question) == {}
