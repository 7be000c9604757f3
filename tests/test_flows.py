"""The flow and synthesis-rule files: the real ones load, broken ones are reported precisely."""

from __future__ import annotations

import functools
import re
import shutil
from pathlib import Path

import pytest
import yaml

from knowledge.errors import KnowledgeErrors
from knowledge.flows import (
    LABEL_MAX,
    RECOMMENDATIONS,
    Flow,
    answer_keys,
)
from knowledge.flows_loader import load_flows
from knowledge.loader import load_knowledge
from knowledge.synthesis_loader import load_synthesis

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "knowledge" / "data"
FIXTURES = Path(__file__).resolve().parent / "data"
BROKEN = FIXTURES / "broken"
VALID = FIXTURES / "valid"

def topic_ids() -> set[str]:
    return set(load_knowledge(with_flows=False).topics)


def chapters() -> set[str]:
    return set(load_knowledge(with_flows=False).document.chapters)


@pytest.fixture(scope="module")
def flows() -> dict[str, Flow]:
    return load_flows(DATA / "flows", topic_ids(), chapters())


@pytest.fixture(scope="module")
def rules(flows):
    return load_synthesis(DATA / "synthesis.yaml", answer_keys(flows), chapters())


# --------------------------------------------------------------------------- the real files

FORMALISATION_KEYS = ("forme_actuelle", "besoins_formalisation", "volonte_commune", "pression_financeurs", "solidite_collectif")


def test_real_flows_load(flows):
    assert set(flows) == {"orientation", "formes"}
    orientation, formes = flows["orientation"], flows["formes"]
    assert orientation.title == "Parcours d’orientation" and orientation.result == "synthesis"
    assert formes.title == "Guide des formes juridiques" and formes.result == "formes"
    assert 9 <= len(orientation.steps) <= 11
    assert len(orientation.questions()) <= 22
    assert 3 <= len(formes.steps) <= 4
    orientation_keys = {question.id for _, question in orientation.questions()}
    formes_keys = {question.id for _, question in formes.questions()}
    assert set(FORMALISATION_KEYS) <= orientation_keys
    assert set(FORMALISATION_KEYS) | {"employeur_coordination"} <= formes_keys
    # merged into the economic need / dropped (no rule of the document used it): never asked again
    assert not {"capital_commercial", "collectivites_membres"} & (orientation_keys | formes_keys)
    assert orientation.question("lieu").kind == "multiple"
    assert {"relation_collectivite", "region", "employeur_coordination"} <= orientation_keys


def test_every_step_is_grounded_in_an_existing_topic(flows):
    known = topic_ids()
    for flow in flows.values():
        for step in flow.steps:
            assert step.topic in known, (flow.id, step.id)


def test_orientation_covers_the_documents_chapters(flows):
    topics = {step.topic.split(".")[0] for step in flows["orientation"].steps}
    assert {"ptce", "territoire", "collectif", "formalisation", "ressources", "financement", "lieu", "innovation_sociale"} <= topics


def test_shared_questions_are_identical(flows):
    orientation, formes = flows["orientation"], flows["formes"]
    for _, question in formes.questions():
        other = orientation.question(question.id)
        if other is not None:
            assert other.kind == question.kind
            assert other.option_ids == question.option_ids
            assert [o.label for o in other.options] == [o.label for o in question.options]


def test_labels_fit_on_a_phone_button(flows):
    for flow in flows.values():
        for _, question in flow.questions():
            for option in question.options:
                assert len(option.label) <= LABEL_MAX, option.label


def test_comparison_sets_the_three_levels_side_by_side(flows):
    comparison = flows["formes"].comparison
    assert comparison is not None and comparison.chapter == "07"
    assert [column for column, _ in comparison.columns] == ["portage_existant", "association", "scic"]
    assert 5 <= len(comparison.rows) <= 7
    for criterion, cells in comparison.rows:
        assert set(cells) == {"portage_existant", "association", "scic"}, criterion
        assert all(text.strip() for text in cells.values()), criterion
    texts = " ".join(text for _, cells in comparison.rows for text in cells.values())
    assert "trésorerie" in texts and "collectivités" in texts and "capitalisation" in texts
    assert "le document ne le précise pas" in texts.casefold()


EXPECTED_SECTIONS = [
    ("typologie", "02"),
    ("logiques", "03"),
    ("maturite", "04"),
    ("territoire", "05"),
    ("collectivite", "12"),
    ("collectif", "06"),
    ("formalisation", "07"),
    ("fonctions_techniques", "08"),
    ("financement", "09"),
    ("lieu", "10"),
    ("innovation_sociale", "11"),
    ("prochaines_etapes", "12"),
]


def test_real_synthesis_loads(rules):
    assert [(section.id, section.chapter) for section in rules.sections] == EXPECTED_SECTIONS
    formalisation = rules.section("formalisation")
    assert formalisation.mode == "first"
    assert {rule.recommend for rule in formalisation.rules} == set(RECOMMENDATIONS)
    assert formalisation.rules[-1].when.op == "always"  # always a recommendation once answered
    assert rules.section("maturite").mode == "first"
    assert set(rules.recommendations) == set(RECOMMENDATIONS)
    next_steps = rules.section("prochaines_etapes")
    assert sum(rule.when.op == "always" for rule in next_steps.rules) >= 3
    for rule in rules.rules():
        assert rule.recommend is None or rule in formalisation.rules


def test_every_rule_cites_a_page_of_its_chapter(rules):
    document = load_knowledge(with_flows=False).document
    for rule in rules.rules():
        first, last = document.pages(rule.chapter)
        assert first <= rule.page <= last, (rule.id, rule.chapter, rule.page)


def test_the_scic_is_recommended_only_for_an_economic_need_or_an_existing_scic(rules):
    for rule in rules.section("formalisation").rules:
        if rule.recommend != "scic":
            continue
        reads = {(c.key, c.values) for c in _leaves(rule.when)}
        assert ("besoins_formalisation", ("economique",)) in reads or ("forme_actuelle", ("scic",)) in reads, rule.id


def _leaves(condition):
    if condition.children:
        for child in condition.children:
            if condition.op != "not":
                yield from _leaves(child)
    else:
        yield condition


def test_page_out_of_its_chapter_is_reported(tmp_path):
    text = (BROKEN / "synthesis_key_outside.yaml").read_text(encoding="utf-8")
    text = text.replace("when: {answer: volonte_commune, is: oui}", "when: {answer: typologie, is: territoire}\n        page: 16")
    path = tmp_path / "synthesis.yaml"
    path.write_text(text, encoding="utf-8")
    pages = {number: load_knowledge(with_flows=False).document.pages(number) for number in chapters()}
    with pytest.raises(KnowledgeErrors) as caught:
        load_synthesis(path, real_keys(), chapters(), pages)
    _find(caught.value, "page", "typo_territoire", "n’est pas dans le chapitre 02")


def _texts(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in ("keywords", "id", "when", "questions", "chapter", "topic", "kind", "mode", "result", "recommend"):
                yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


@pytest.mark.parametrize("name", ["flows/orientation.yaml", "flows/formes.yaml", "synthesis.yaml"])
def test_french_typography(name):
    raw = yaml.safe_load((DATA / name).read_text(encoding="utf-8"))
    for text in _texts(raw):
        assert "'" not in text, f"apostrophe droite : {text!r}"
        assert '"' not in text, f"guillemets droits : {text!r}"
        assert not re.search(r"«(?!\u00a0)|(?<!\u00a0)»", text), f"« » sans espace insécable : {text!r}"
        assert not re.search(r" [:;?!]", text), f"espace ordinaire avant la ponctuation : {text!r}"


def test_rule_texts_are_unique_and_cite_known_chapters(rules):
    known = chapters()
    texts = [rule.text for rule in rules.rules()]
    assert len(texts) == len(set(texts))
    for rule in rules.rules():
        assert rule.chapter in known


# --------------------------------------------------------------------------- broken files


def test_valid_fixtures_load():
    """The base the broken fixtures are derived from is itself valid."""
    load_flows(VALID / "flows", topic_ids(), chapters())
    load_synthesis(VALID / "synthesis_minimal.yaml", real_keys(), chapters())


@functools.cache
def real_keys():
    return answer_keys(load_flows(DATA / "flows", topic_ids(), chapters()))


def _flow_errors(tmp_path: Path, *names: str) -> KnowledgeErrors:
    for name in names:
        shutil.copy(BROKEN / f"{name}.yaml", tmp_path / f"{name}.yaml")
    with pytest.raises(KnowledgeErrors) as caught:
        load_flows(tmp_path, topic_ids(), chapters())
    return caught.value


def _find(errors: KnowledgeErrors, field: str | None, entry: str | None, message: str):
    for error in errors.errors:
        if error.field == field and (entry is None or (error.entry and entry in error.entry)) and message in error.detail:
            return error
    raise AssertionError(f"pas d’erreur {field=} {entry=} {message=} parmi :\n{errors}")


FLOW_CASES = [
    # fixture, entry (substring), field, message (substring)
    ("flow_unknown_field", "etape_a", "titre", "champ inconnu"),
    ("flow_missing_field", "question_a", "kind", "champ obligatoire manquant"),
    ("flow_dup_step", "etape_a", "id", "en double"),
    ("flow_dup_question", "question_a", "id", "en double"),
    ("flow_dup_option", "oui", "id", "en double"),
    ("flow_empty_text", "question_a", "text", "texte vide"),
    ("flow_unknown_topic", "etape_a", "topic", "ptce.inconnu"),
    ("flow_long_label", "non", "label", "trop long"),
    ("flow_bad_option_id", "Non-Merci", "id", "invalide"),
    ("flow_bad_question_id", "question_avec_un_nom_bien_trop_long", "id", "invalide"),
    ("flow_bad_kind", "question_a", "kind", "several"),
    ("flow_bad_result", "flow_bad_result", "result", "rapport"),
    ("flow_one_option", "question_a", "options", "au moins deux"),
    ("flow_ambiguous", "non", "keywords", "ambiguë"),
    ("flow_id_mismatch", "autre_nom", "id", "nom du fichier"),
    ("flow_no_comparison", "flow_no_comparison", "comparison", "comparaison"),
    ("flow_bad_comparison", "comparison", "chapter", "« 13 »"),
    ("flow_bad_comparison", "Capital", "cells", "case manquante pour la colonne « scic »"),
    ("flow_bad_comparison", "Capital", "cells", "colonne « cooperative » inconnue"),
]


@pytest.mark.parametrize(("fixture", "entry", "field", "message"), FLOW_CASES)
def test_broken_flow_is_reported_with_file_entry_and_field(tmp_path, fixture, entry, field, message):
    errors = _flow_errors(tmp_path, fixture)
    error = _find(errors, field, entry, message)
    assert error.file == f"{fixture}.yaml"
    assert f"« {field} »" in str(error) and error.file in str(error)


def test_flow_errors_are_all_collected(tmp_path):
    errors = _flow_errors(tmp_path, "flow_many_errors")
    fields = {error.field for error in errors.errors}
    assert {"kind", "topic", "label"} <= fields


def test_shared_question_must_keep_kind_and_options(tmp_path):
    errors = _flow_errors(tmp_path, "flow_shared_a", "flow_shared_b")
    kind = _find(errors, "kind", "question_a", "flow_shared_a.yaml")
    options = _find(errors, "options", "question_a", "mêmes identifiants d’options")
    assert kind.file == options.file == "flow_shared_b.yaml"


def test_invalid_yaml_names_the_file(tmp_path):
    errors = _flow_errors(tmp_path, "flow_invalid_yaml")
    assert errors.errors[0].file == "flow_invalid_yaml.yaml"
    assert "YAML invalide" in errors.errors[0].detail


def test_errors_of_several_files_are_collected(tmp_path):
    errors = _flow_errors(tmp_path, "flow_bad_kind", "flow_long_label")
    assert {error.file for error in errors.errors} == {"flow_bad_kind.yaml", "flow_long_label.yaml"}


def test_empty_flow_directory_is_an_error(tmp_path):
    with pytest.raises(KnowledgeErrors):
        load_flows(tmp_path, topic_ids(), chapters())


SYNTHESIS_CASES = [
    ("synthesis_unknown_field", "typo_territoire", "texte", "champ inconnu"),
    ("synthesis_missing_field", "typologie", "mode", "champ obligatoire manquant"),
    ("synthesis_dup_rule", "next_a", "id", "en double"),
    ("synthesis_dup_section", "typologie", "id", "en double"),
    ("synthesis_unknown_answer", "typo_territoire", "when", "réponse « couleur » inconnue"),
    ("synthesis_unknown_option", "typo_territoire", "when", "option « galaxie » inconnue"),
    ("synthesis_has_on_single", "typo_territoire", "when", "choix unique"),
    ("synthesis_is_on_multiple", "typo_territoire", "when", "choix multiple"),
    ("synthesis_count_on_single", "typo_territoire", "when", "choix unique"),
    ("synthesis_nested_error", "typo_territoire", "when.all[2].not", "option « magie » inconnue"),
    ("synthesis_unknown_condition", "typo_territoire", "when", "sometimes"),
    ("synthesis_key_outside", "typo_territoire", "when", "absente des questions de la section"),
    ("synthesis_recommend_outside", "typo_territoire", "recommend", "n’est permis que"),
    ("synthesis_recommend_unknown", "form_repli", "recommend", "« cooperative » inconnue"),
    ("synthesis_recommend_missing", "form_repli", "recommend", "doit recommander"),
    ("synthesis_next_steps_short", "prochaines_etapes", "rules", "always: true"),
    ("synthesis_unknown_chapter", "typo_territoire", "chapter", "« 13 »"),
    ("synthesis_empty_text", "typo_territoire", "text", "texte vide"),
    ("synthesis_missing_section", "formalisation", "sections", "obligatoire"),
    ("synthesis_formalisation_all", "formalisation", "mode", "mode first"),
    ("synthesis_labels_missing", "scic", "recommendations", "manquant"),
    ("synthesis_bad_key", "typologie", "questions", "« humeur »"),
    ("synthesis_bad_rule_id", "Typo-Territoire", "id", "invalide"),
    ("synthesis_bad_page", "typo_territoire", "page", "entier"),
    ("synthesis_bad_context", "typologie", "context", "« humeur »"),
    ("synthesis_bad_checklist", "typologie", "checklist", "choix multiple"),
]


@pytest.mark.parametrize(("fixture", "entry", "field", "message"), SYNTHESIS_CASES)
def test_broken_synthesis_is_reported_with_file_entry_and_field(fixture, entry, field, message):
    with pytest.raises(KnowledgeErrors) as caught:
        load_synthesis(BROKEN / f"{fixture}.yaml", real_keys(), chapters())
    error = _find(caught.value, field, entry, message)
    assert error.file == f"{fixture}.yaml"


def test_every_broken_fixture_is_tested():
    tested = {case[0] for case in FLOW_CASES + SYNTHESIS_CASES}
    tested |= {"flow_many_errors", "flow_shared_a", "flow_shared_b", "flow_invalid_yaml"}
    assert {path.stem for path in BROKEN.glob("*.yaml")} == tested


def test_rule_texts_end_with_a_full_stop_before_their_citation(rules):
    # the page is cited inside the sentence, « … (p. 17). »: a question mark would leave it dangling
    for rule in rules.rules():
        assert rule.text.endswith("."), rule.id


def test_graph_command_draws_every_flow_as_mermaid(tmp_path, capsys, kb):
    """`ptce-bot graph` writes the docs' diagrams: one Mermaid state diagram per flow, plus the overview."""
    from bot.cli import main

    target = tmp_path / "flows.md"
    assert main(["graph", "--output", str(target)]) == 0
    text = target.read_text(encoding="utf-8")
    assert text.count("```mermaid") == len(kb.flows) + 1
    assert "stateDiagram-v2" in text and "orientation__typologie" in text and "formes__" in text
    assert "Diagramme écrit" in capsys.readouterr().out
