"""Pure aggregation of a collective's answers (dialogue/features/collective/aggregation.py) and the debate points file."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialogue.features.collective.aggregation import (
    AGREEMENT_THRESHOLD,
    MIN_ANSWERS,
    QuestionSpec,
    aggregate,
    debate_points,
    group_synthesis,
)
from knowledge.debate import DebatePoint, load_debate
from knowledge.errors import KnowledgeErrors
from knowledge.flows import answer_keys

SINGLE = QuestionSpec("q1", "Question simple ?", "single", (("a", "A"), ("b", "B"), ("c", "C")))
OTHER = QuestionSpec("q2", "Autre question ?", "single", (("oui", "Oui"), ("non", "Non")))
MULTI = QuestionSpec("q3", "Plusieurs choix ? (plusieurs choix possibles)", "multiple", (("x", "X"), ("y", "Y"), ("z", "Z")))


def profile(*answers, invited=0, joined=0):
    return aggregate([SINGLE, OTHER, MULTI], answers, invited=invited, joined=joined)


def test_single_choice_spread_and_majority_share():
    result = profile({"q1": "a"}, {"q1": "a"}, {"q1": "a"}, {"q1": "b"}, {"q1": None})
    spread = result.spread("q1")
    assert spread.answered == 4 and spread.skipped == 1
    assert [(o.id, o.count) for o in spread.options] == [("a", 3), ("b", 1), ("c", 0)]
    assert spread.agreement == pytest.approx(0.75)
    assert spread.agrees and not spread.diverges
    assert spread.majority == "a"


def test_below_threshold_shows_no_distribution_and_no_majority():
    result = profile({"q1": "a"}, {"q1": "b"}, {"q2": "oui"})
    spread = result.spread("q1")
    assert spread.answered == MIN_ANSWERS - 1
    assert spread.options == () and spread.agreement is None
    assert not spread.agrees and not spread.diverges
    assert "q1" not in result.majority_answers()
    assert spread in result.too_few


def test_tie_has_no_majority_but_is_a_divergence():
    result = profile({"q2": "oui"}, {"q2": "oui"}, {"q2": "non"}, {"q2": "non"})
    spread = result.spread("q2")
    assert spread.agreement == pytest.approx(0.5)
    assert spread.diverges
    assert not spread.has_majority and "q2" not in result.majority_answers()


def test_multiple_choice_each_option_is_a_yes_no_question():
    answers = [{"q3": ["x", "y"]}, {"q3": ["x"]}, {"q3": ["x", "y"]}, {"q3": ["x", "z"]}]
    spread = profile(*answers).spread("q3")
    by_id = {o.id: o for o in spread.options}
    assert by_id["x"].count == 4 and by_id["x"].agreement == 1.0
    assert by_id["y"].count == 2 and by_id["y"].agreement == 0.5
    assert by_id["z"].count == 1 and by_id["z"].agreement == 0.75
    assert spread.agreement == pytest.approx((1.0 + 0.5 + 0.75) / 3)
    assert [o.id for o in spread.contested_options] == ["y"]
    # strict majority only: « y » ticked by exactly half is not part of the group's answer
    assert spread.majority == ["x"]


def test_divergences_most_divergent_first():
    answers = [
        {"q1": "a", "q2": "oui", "q3": ["x", "y"]},
        {"q1": "b", "q2": "oui", "q3": ["x"]},
        {"q1": "c", "q2": "non", "q3": ["y"]},
        {"q1": "a", "q2": "non", "q3": ["x", "y", "z"]},
    ]
    result = profile(*answers)
    agreements = {s.question.id: s.agreement for s in result.spreads}
    assert agreements == pytest.approx({"q1": 0.5, "q2": 0.5, "q3": (0.75 + 0.75 + 0.75) / 3})
    assert [s.question.id for s in result.divergences] == ["q1", "q2"]
    assert [s.question.id for s in result.agreements] == ["q3"]


def test_exactly_two_thirds_is_an_agreement():
    result = profile({"q2": "oui"}, {"q2": "oui"}, {"q2": "non"}, {"q1": "a"}, {"q1": "b"}, {"q1": "c"})
    assert result.spread("q2").agreement == pytest.approx(AGREEMENT_THRESHOLD)
    assert result.spread("q2").agrees
    assert result.spread("q1").diverges and result.divergences[0].question.id == "q1"


def test_divergence_ties_keep_question_order():
    answers = [{"q1": "a", "q2": "oui"}, {"q1": "b", "q2": "non"}, {"q1": "a", "q2": "oui"}, {"q1": "b", "q2": "non"}]
    result = profile(*answers)
    assert [s.question.id for s in result.divergences] == ["q1", "q2"]


def test_participation_counts():
    answers = [{"q1": "a", "q2": "oui", "q3": []}, {"q1": None, "q2": None, "q3": None}, {"q1": "a"}, {}]
    participation = profile(*answers, invited=7, joined=5).participation
    assert (participation.invited, participation.joined) == (7, 5)
    assert participation.answering == 3  # the empty mapping has not started
    assert participation.finished == 2  # skipped questions count as done


# --------------------------------------------------------------------------- real knowledge


def orientation_specs(kb):
    flow = kb.flows["orientation"]
    return [QuestionSpec(q.id, q.text, q.kind, tuple((o.id, o.label) for o in q.options), s.title) for s, q in flow.questions()]


def test_group_synthesis_marks_conclusions_resting_on_divergent_questions(kb):
    members = [
        {"volonte_commune": "oui", "solidite_collectif": "solide", "pression_financeurs": "non", "besoins_formalisation": ["lisibilite"], "forme_actuelle": "aucune"},
        {"volonte_commune": "non", "solidite_collectif": "solide", "pression_financeurs": "non", "besoins_formalisation": ["lisibilite"], "forme_actuelle": "aucune"},
        {"volonte_commune": "oui", "solidite_collectif": "solide", "pression_financeurs": "non", "besoins_formalisation": ["lisibilite"], "forme_actuelle": "aucune"},
        {"volonte_commune": "partielle", "solidite_collectif": "solide", "pression_financeurs": "non", "besoins_formalisation": ["lisibilite"], "forme_actuelle": "aucune"},
    ]
    result = aggregate(orientation_specs(kb), members, invited=4, joined=4)
    assert result.majority_answers()["volonte_commune"] == "oui"  # 2 of 4, no tie
    assert result.spread("volonte_commune").diverges
    grouped = group_synthesis(kb.synthesis, result)
    assert "formalisation" in grouped.contested_sections
    assert [s.question.id for s in grouped.contested_sections["formalisation"]] == ["volonte_commune"]
    for rule_id, spreads in grouped.contested_rules.items():
        assert rule_id in grouped.synthesis.rule_ids
        assert all(s.diverges for s in spreads)


def test_debate_points_follow_the_most_divergent_questions(kb):
    debate = load_debate(kb.document, answer_keys(kb.flows))
    members = [
        {"typologie": "territoire", "volonte_commune": "oui", "lieu": ["aucun"]},
        {"typologie": "filiere", "volonte_commune": "non", "lieu": ["tiers_lieu", "collectivite"]},
        {"typologie": "territoire", "volonte_commune": "partielle", "lieu": ["tiers_lieu"]},
        {"typologie": "territoire", "volonte_commune": "oui", "lieu": ["aucun"]},
        {"typologie": "indefini", "volonte_commune": "non", "lieu": ["partage", "collectivite"]},
    ]
    result = aggregate(orientation_specs(kb), members, invited=5, joined=5)
    chosen = debate_points(result, debate.points)
    assert [spread.question.id for _, spread in chosen] == ["volonte_commune", "typologie", "lieu"]
    point = chosen[0][0]
    assert point.chapter == "07" and point.page == 17
    assert all(question.endswith("?") for question in point.ask)


def test_every_orientation_question_has_a_debate_point(kb):
    debate = load_debate(kb.document, answer_keys(kb.flows))
    covered = {key for point in debate.points for key in point.questions}
    assert {q.id for _, q in kb.flows["orientation"].questions()} <= covered


def test_debate_file_errors_name_the_entry_and_field(kb, tmp_path: Path):
    bad = tmp_path / "debate.yaml"
    bad.write_text(
        "trigger_phrases: [\"avec mon collectif\"]\n"
        "points:\n"
        "  - id: essai\n"
        "    questions: [inconnue]\n"
        "    chapter: \"07\"\n"
        "    page: 3\n"
        "    theme: Thème\n"
        "    says: Texte.\n"
        "    why: Raison.\n"
        "    ask: [\"Une affirmation.\"]\n"
        "    extra: 1\n",
        encoding="utf-8",
    )
    with pytest.raises(KnowledgeErrors) as caught:
        load_debate(kb.document, answer_keys(kb.flows), bad)
    messages = [str(error) for error in caught.value.errors]
    assert any("entrée « essai », champ « extra »" in m for m in messages), messages
    caught_fields = {error.field for error in caught.value.errors}
    assert "extra" in caught_fields
    bad.write_text(bad.read_text(encoding="utf-8").replace("    extra: 1\n", ""), encoding="utf-8")
    with pytest.raises(KnowledgeErrors) as caught:
        load_debate(kb.document, answer_keys(kb.flows), bad)
    fields = sorted(error.field for error in caught.value.errors)
    assert fields == ["ask", "page", "questions"]
    assert all(error.file == "debate.yaml" and error.entry == "essai" for error in caught.value.errors)


def test_debate_point_is_plain_data():
    point = DebatePoint("x", ("q1",), "Thème", "Dit.", "Pourquoi.", ("Question ?",), "07", 17)
    assert debate_points(profile({"q1": "a"}, {"q1": "b"}, {"q1": "c"}), [point]) == [
        (point, profile({"q1": "a"}, {"q1": "b"}, {"q1": "c"}).spread("q1"))
    ]


def test_a_contested_option_marks_only_the_conclusions_that_read_it(kb):
    """Fonctions: coordination ticked by 3 of 6 splits the group, animation (1 of 6) does not."""
    ticks = [["coordination", "ingenierie"]] * 3 + [["ingenierie"]] * 2 + [["animation", "ingenierie"]]
    result = aggregate(orientation_specs(kb), [{"fonctions": t} for t in ticks], invited=6, joined=6)
    spread = result.spread("fonctions")
    assert spread.agrees and [o.id for o in spread.contested_options] == ["coordination"]
    grouped = group_synthesis(kb.synthesis, result)
    assert {"fonc_sans_coordination", "fonc_sans_animation"} <= set(grouped.synthesis.rule_ids)
    assert [s.question.id for s in grouped.contested_rules["fonc_sans_coordination"]] == ["fonctions"]
    assert "fonc_sans_animation" not in grouped.contested_rules


def test_answers_stored_by_older_flows_do_not_break_the_group_view(kb):
    """The venue was single-choice, capital_commercial and collectivites_membres were questions of /formes."""
    old = {"lieu": "tiers_lieu", "capital_commercial": "oui", "collectivites_membres": "oui", "typologie": "territoire"}
    members = [old, dict(old), {**old, "lieu": ["tiers_lieu", "collectivite"]}]
    result = aggregate(orientation_specs(kb), members, invited=3, joined=3)
    lieu = result.spread("lieu")
    assert lieu.answered == 3 and [o.count for o in lieu.options if o.id == "tiers_lieu"] == [3]
    grouped = group_synthesis(kb.synthesis, result)
    assert "typo_territoire" in grouped.synthesis.rule_ids
