"""No answer set makes the synthesis contradict the user or itself (issue #20).

The contradictions are declared in ``synthesis.yaml``; hypothesis explores the answer space
here (a few hundred sets, fast), ``make bench`` scans at least 100,000 random ones.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialogue.flows.synthesis import build_synthesis, contradictions
from dialogue.flows.synthesis_scan import EXCLUSIVE, scan
from dialogue.flows.synthesis_text import render_full, render_legal_guide, render_short
from knowledge.loader import load_knowledge
from tests.test_flows import DATA

KB = load_knowledge(DATA)
RULES = KB.synthesis
NOT_REACHED = object()


def _answer(question) -> st.SearchStrategy:
    ids = list(question.option_ids)
    if question.kind == "single":
        given_answer: st.SearchStrategy = st.sampled_from(ids)
    else:
        others = [option for option in ids if option not in EXCLUSIVE]
        alone = [[option] for option in ids if option in EXCLUSIVE]
        given_answer = st.one_of(
            st.lists(st.sampled_from(others), unique=True).map(lambda chosen: sorted(chosen, key=ids.index)),
            *(st.just(choice) for choice in alone),
        )
    return st.one_of(st.just(NOT_REACHED), st.none(), given_answer)


ANSWER_SETS = st.fixed_dictionaries({key: _answer(question) for key, question in RULES.questions.items()}).map(
    lambda drawn: {key: value for key, value in drawn.items() if value is not NOT_REACHED}
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANSWER_SETS)
def test_no_answer_set_shows_a_declared_contradiction(answers):
    synthesis = build_synthesis(RULES, answers)
    assert [found.id for found in contradictions(RULES, synthesis, answers)] == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANSWER_SETS)
def test_pushed_and_unwilling_never_read_a_structure_route(answers):
    """Synthesis, short version and legal-form guide alike (chap. 07, p. 17)."""
    pushed = answers.get("pression_financeurs") == "oui" and answers.get("volonte_commune") in ("non", "partielle")
    if not pushed or answers.get("forme_actuelle") in ("association", "scic"):
        return
    synthesis = build_synthesis(RULES, answers)
    assert synthesis.recommendation in ("pas_encore", "portage_existant")
    texts = [render_short(synthesis), *render_full(synthesis), render_legal_guide(synthesis, None)[0]]
    for text in texts:
        assert "Piste qui ressort de vos réponses\u00a0: **la SCIC" not in text
        assert "piste de formalisation\u00a0: l’association" not in text
        assert "piste de formalisation\u00a0: la SCIC" not in text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANSWER_SETS)
def test_contradicting_answers_are_pointed_out_with_their_questions(answers):
    synthesis = build_synthesis(RULES, answers)
    shown = {conflict.id for conflict in synthesis.conflicts}
    for conflict in RULES.conflicts:
        from dialogue.flows.synthesis import evaluate, normalise_answers

        assert (conflict.id in shown) == evaluate(conflict.when, normalise_answers(RULES.questions, answers))
    if synthesis.conflicts:
        text = render_full(synthesis)[0]
        assert "se contredisent" in text
        assert synthesis.conflicts[0].text.split()[0] in text


def test_the_declared_contradictions_would_be_caught():
    """Each declared contradiction can really occur without the presuppositions: the check is not empty."""
    assert len(RULES.contradictions) >= 15
    from dataclasses import replace

    from knowledge.flows import SynthesisRules

    naive_sections = tuple(
        replace(section, rules=tuple(replace(rule, assumes=None) for rule in section.rules))
        for section in RULES.sections
    )
    naive = SynthesisRules(**{**{f: getattr(RULES, f) for f in RULES.__dataclass_fields__}, "sections": naive_sections})
    caught = scan(naive, 1500, seed=11)
    # Without the presuppositions, several contradictions of the issue come back.
    assert {"aucune_fonction_employe", "employe_sans_structure", "pas_de_structure_dediee"} <= set(caught.found)


def test_a_random_scan_finds_no_contradiction():
    result = scan(RULES, 2000, seed=1)
    assert result.answer_sets == 2000
    assert dict(result.found) == {}, result.examples
