"""« Votre synthèse » and the legal-form guide, checked on user profiles.

Every rule of synthesis.yaml is matched by at least one profile below
(`test_every_rule_is_matched_by_some_profile`); the named profiles also check
what the user actually reads.
"""

from __future__ import annotations


import pytest

from dialogue.synthesis import (
    MAX_MESSAGE,
    build_synthesis,
    evaluate,
    pack_messages,
    render_legal_guide,
    render_synthesis,
)
from knowledge.flows import Condition, answer_keys, load_flows, load_synthesis
from tests.test_flows import DATA, chapters, topic_ids

NBSP = "\u00a0"


@pytest.fixture(scope="module")
def flows():
    return load_flows(DATA / "flows", topic_ids(), chapters())


@pytest.fixture(scope="module")
def questions(flows):
    return answer_keys(flows)


@pytest.fixture(scope="module")
def rules(questions):
    return load_synthesis(DATA / "synthesis.yaml", questions, chapters())


@pytest.fixture(scope="module")
def comparison(flows):
    return flows["formes"].comparison


# --------------------------------------------------------------------------- profiles

EMERGING_RURAL = {
    "typologie": "territoire",
    "logiques": ["reseau"],
    "marqueurs": ["besoins"],
    "echelle": "epci",
    "disparites": ["rural_urbain"],
    "diagnostic": "aucun",
    "noyau_dur": "en_cours",
    "diversite": "faible",
    "espaces": ["aucun"],
    "forme_actuelle": "aucune",
    "besoins_formalisation": ["aucun"],
    "volonte_commune": "partielle",
    "pression_financeurs": "non",
    "solidite_collectif": "fragile",
    "fonctions": ["aucune"],
    "financements": ["aucun"],
    "projet_emblematique": "non",
    "lieu": "aucun",
    "innovation_sociale": "non",
}

MATURE_SCIC = {
    "typologie": "territoire",
    "logiques": ["reseau", "accompagnement", "ingenierie"],
    "marqueurs": ["besoins", "pluralite", "structuration", "implication", "projets", "essaimage"],
    "echelle": "plusieurs_epci",
    "disparites": ["epci_differents"],
    "diagnostic": "partage",
    "noyau_dur": "oui",
    "diversite": "forte",
    "espaces": ["noyau_dur", "pilotage", "thematiques", "projets"],
    "forme_actuelle": "scic",
    "besoins_formalisation": ["economique"],
    "volonte_commune": "oui",
    "pression_financeurs": "non",
    "solidite_collectif": "solide",
    "fonctions": ["coordination", "animation", "ingenierie"],
    "financements": ["region", "recettes"],
    "projet_emblematique": "oui",
    "lieu": "tiers_lieu",
    "innovation_sociale": "oui",
}

PUSHED_BY_FUNDER = {  # the legal-form guide only
    "forme_actuelle": "membre",
    "besoins_formalisation": ["lisibilite"],
    "capital_commercial": "non",
    "volonte_commune": "non",
    "solidite_collectif": "en_construction",
    "pression_financeurs": "oui",
    "collectivites_membres": "a_discuter",
}

ASSOCIATION_COORDINATOR = {
    "forme_actuelle": "membre",
    "besoins_formalisation": ["lisibilite", "coordination"],
    "capital_commercial": "non",
    "volonte_commune": "oui",
    "solidite_collectif": "en_construction",
    "pression_financeurs": "non",
    "collectivites_membres": "non",
}

FILIERE_CAPITAL = {
    "typologie": "filiere",
    "logiques": ["accompagnement", "ingenierie"],
    "marqueurs": ["besoins", "pluralite", "projets"],
    "forme_actuelle": "aucune",
    "besoins_formalisation": ["economique"],
    "capital_commercial": "oui",
    "volonte_commune": "oui",
    "solidite_collectif": "solide",
    "pression_financeurs": "non",
    "collectivites_membres": "oui",
}

EXISTING_UNDEFINED = {
    "typologie": "indefini",
    "logiques": ["accompagnement"],
    "marqueurs": ["besoins", "pluralite"],
    "echelle": "departement",
    "disparites": ["conflits", "clans"],
    "diagnostic": "en_cours",
    "noyau_dur": "non",
    "diversite": "moyenne",
    "espaces": ["noyau_dur"],
    "forme_actuelle": "association",
    "besoins_formalisation": ["economique"],
    "volonte_commune": "oui",
    "pression_financeurs": "oui",
    "solidite_collectif": "en_construction",
    "fonctions": ["coordination"],
    "financements": ["ami"],
    "projet_emblematique": "en_cours",
    "lieu": "partage",
    "innovation_sociale": "en_cours",
}

DEVELOPING = {
    "logiques": ["aucune"],
    "echelle": "commune",
    "disparites": ["aucune"],
    "diagnostic": "minimum",
    "espaces": ["noyau_dur", "thematiques"],
    "fonctions": ["animation", "ingenierie"],
    "financements": ["departement", "appels_projets", "cotisations"],
    "lieu": "collectivite",
}

ALL_KEYS = (
    "typologie", "logiques", "marqueurs", "echelle", "disparites", "diagnostic", "noyau_dur", "diversite",
    "espaces", "forme_actuelle", "besoins_formalisation", "volonte_commune", "pression_financeurs",
    "solidite_collectif", "fonctions", "financements", "projet_emblematique", "lieu", "innovation_sociale",
    "capital_commercial", "collectivites_membres",
)  # fmt: skip
ALL_SKIPPED = {key: None for key in ALL_KEYS}

PARTIAL = {  # stopped in the middle of the territory step, after passing one question
    "typologie": "territoire",
    "logiques": None,
    "marqueurs": ["besoins", "pluralite"],
    "echelle": "commune",
    "disparites": None,
}

#: Legal-form guide answers (formes flow) reaching the other formalisation rules.
FORMES_PROFILES = {
    "sans_volonte": {"forme_actuelle": "aucune", "besoins_formalisation": ["lisibilite"], "volonte_commune": "non",
                     "pression_financeurs": "non", "solidite_collectif": "solide"},
    "scic_collectivites": {"forme_actuelle": "membre", "besoins_formalisation": ["lisibilite"], "volonte_commune": "oui",
                           "pression_financeurs": "non", "solidite_collectif": "solide", "capital_commercial": "non",
                           "collectivites_membres": "oui"},
    "economique_fragile": {"forme_actuelle": "aucune", "besoins_formalisation": ["economique"], "volonte_commune": "oui",
                           "pression_financeurs": "non", "solidite_collectif": "fragile", "capital_commercial": "oui"},
    "collectif_fragile": {"forme_actuelle": "aucune", "besoins_formalisation": ["lisibilite"], "volonte_commune": "oui",
                          "pression_financeurs": "non", "solidite_collectif": "fragile"},
    "volonte_partielle": {"forme_actuelle": "membre", "besoins_formalisation": ["transfert"],
                          "volonte_commune": "partielle", "pression_financeurs": "non", "solidite_collectif": "solide"},
    "seulement_la_forme": {"forme_actuelle": "membre"},
}  # fmt: skip

#: One or two answers each: the matching next step comes first.
NEXT_STEP_PROFILES = {
    "sans_fonction": {"fonctions": ["aucune"]},
    "sans_ingenierie": {"fonctions": ["coordination", "animation"]},
    "sans_financement": {"financements": ["aucun"]},
    "sans_projet": {"projet_emblematique": "non"},
    "sans_pilotage": {"espaces": ["noyau_dur"]},
    "une_logique": {"logiques": ["reseau"]},
    "conflits": {"disparites": ["conflits"]},
    "sans_lieu": {"lieu": "aucun"},
    "sans_innovation": {"innovation_sociale": "non"},
    "a_modeliser": {"marqueurs": ["besoins", "pluralite", "projets"]},
    "essaimage": {"marqueurs": ["essaimage"]},
    "rien_a_signaler": {"lieu": "partage"},
}

PROFILES = {
    "emerging_rural": EMERGING_RURAL,
    "mature_scic": MATURE_SCIC,
    "pushed_by_funder": PUSHED_BY_FUNDER,
    "association_coordinator": ASSOCIATION_COORDINATOR,
    "filiere_capital": FILIERE_CAPITAL,
    "existing_undefined": EXISTING_UNDEFINED,
    "developing": DEVELOPING,
    "all_skipped": ALL_SKIPPED,
    "partial": PARTIAL,
    **{f"formes_{name}": answers for name, answers in FORMES_PROFILES.items()},
    **{f"next_{name}": answers for name, answers in NEXT_STEP_PROFILES.items()},
}


def text_of(messages: list[str]) -> str:
    return "\n\n".join(messages).replace(NBSP, " ")


# --------------------------------------------------------------------------- all profiles


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_profiles_use_real_answer_keys_and_options(name, questions):
    for key, value in PROFILES[name].items():
        question = questions[key]
        if value is None:
            continue
        if question.kind == "single":
            assert value in question.option_ids, (key, value)
        else:
            assert isinstance(value, list) and set(value) <= set(question.option_ids), (key, value)


def test_all_keys_are_every_answer_key(questions):
    assert set(ALL_KEYS) == set(questions)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_rendering_fits_in_chat_messages(name, rules, comparison):
    synthesis = build_synthesis(rules, PROFILES[name])
    for messages in (render_synthesis(synthesis), render_legal_guide(synthesis, comparison)):
        assert messages and all(0 < len(message) <= MAX_MESSAGE for message in messages)
        assert "None" not in "".join(messages)
    assert render_synthesis(synthesis)[0].startswith("**Votre synthèse**")


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_next_steps_keep_three_unless_skipped(name, rules):
    section = build_synthesis(rules, PROFILES[name]).section("prochaines_etapes")
    assert section.skipped or len(section.lines) == 3


def matched_rules(rules) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for name, answers in PROFILES.items():
        for rule_id in build_synthesis(rules, answers).rule_ids:
            found.setdefault(rule_id, set()).add(name)
    return found


def test_every_rule_is_matched_by_some_profile(rules):
    matched = matched_rules(rules)
    never = [rule.id for rule in rules.rules() if rule.id not in matched]
    assert not never, f"règles jamais déclenchées par un profil de test : {never}"


def test_matching_is_deterministic(rules):
    assert matched_rules(rules) == matched_rules(rules)


# --------------------------------------------------------------------------- named profiles


def test_emerging_rural_ptce_without_structure(rules, comparison):
    synthesis = build_synthesis(rules, EMERGING_RURAL)
    assert synthesis.section("maturite").rule_ids == ("mat_emergent",)
    assert synthesis.recommendation == "portage_existant"
    assert synthesis.section("formalisation").rule_ids == ("form_aucun_besoin",)
    assert not any(section.skipped for section in synthesis.sections)
    text = text_of(render_synthesis(synthesis))
    assert "**Votre synthèse**" in text
    assert "PTCE « émergent »" in text
    assert "ruraux et urbains" in text  # rural-urban vigilance
    assert "au minimum de dégager les grandes tendances" in text  # diagnosis minimum (05)
    assert "Garder le portage actuel" in text
    assert "moins identifiable" in text  # vigilance of the first level (07)
    assert "condition indispensable" in text  # no technical function (08)
    assert "Étape passée" not in text
    next_steps = synthesis.section("prochaines_etapes").rule_ids
    assert next_steps == ("next_diagnostic", "next_noyau", "next_fonctions")
    assert "(chapitre 05)." in text
    guide = text_of(render_legal_guide(synthesis, comparison))
    assert "Piste qui ressort de vos réponses : **Garder le portage actuel" in guide
    assert "- 👉 **Structure existante ou sans forme** :" in guide


def test_mature_scic_historique(rules, comparison):
    synthesis = build_synthesis(rules, MATURE_SCIC)
    assert synthesis.section("maturite").rule_ids == ("mat_historique",)
    assert synthesis.recommendation == "scic"
    assert synthesis.section("formalisation").rule_ids == ("form_deja_scic",)
    assert set(synthesis.section("logiques").rule_ids) == {"log_trois"}
    assert set(synthesis.section("fonctions_techniques").rule_ids) == {"fonc_trois"}
    text = text_of(render_synthesis(synthesis))
    assert "PTCE « historique »" in text
    assert "complémentarité" in text
    assert "La SCIC (société coopérative d’intérêt collectif)" in text
    assert "formalisme et les obligations" in text.casefold()
    assert "confusion entre PTCE et tiers-lieu" in text
    assert synthesis.section("prochaines_etapes").rule_ids == (
        "next_disparites",
        "next_essaimer",
        "next_diagnostic_continu",
    )
    guide = text_of(render_legal_guide(synthesis, comparison))
    assert "- 👉 **SCIC** :" in guide


def test_collective_pushed_by_its_funder_without_shared_will(rules, comparison):
    synthesis = build_synthesis(rules, PUSHED_BY_FUNDER)
    assert synthesis.recommendation == "pas_encore"
    assert synthesis.section("formalisation").rule_ids == ("form_pression_imposee",)
    guide = text_of(render_legal_guide(synthesis, comparison))
    assert "**Ne pas formaliser pour l’instant**" in guide
    assert "contre-productive" in guide and "tensions" in guide
    assert "👉" not in guide  # « pas encore » is not a column of the comparison
    for criterion, _ in comparison.rows:
        assert f"**{criterion}**" in guide
    # the orientation steps were not done: nothing is concluded about them
    synthesis_text = text_of(render_synthesis(synthesis))
    assert synthesis_text.count("Étape non renseignée") == 9
    assert synthesis.section("prochaines_etapes").rule_ids[0] == "next_formalisation"


def test_association_for_readability_and_a_coordinator(rules, comparison):
    synthesis = build_synthesis(rules, ASSOCIATION_COORDINATOR)
    assert synthesis.recommendation == "association"
    assert synthesis.section("formalisation").rule_ids == ("form_association",)
    guide = render_legal_guide(synthesis, comparison)
    text = text_of(guide)
    assert "**L’association**" in text
    assert "conventionner directement" in text
    assert "coordinateur" in text
    assert "trésorerie" in text.split("**Les trois niveaux de formalisation**")[0]  # vigilance with the reasons
    assert text.index("**Pourquoi**") < text.index("**Les trois niveaux de formalisation**")
    association_lines = [line for line in text.splitlines() if line.startswith("- 👉 ")]
    assert len(association_lines) == len(comparison.rows)
    assert all("**Association**" in line for line in association_lines)


def test_filiere_ptce_needing_capital(rules, comparison):
    synthesis = build_synthesis(rules, FILIERE_CAPITAL)
    assert synthesis.recommendation == "scic"
    assert synthesis.section("formalisation").rule_ids == ("form_scic",)
    assert synthesis.section("typologie").rule_ids == ("typo_filiere",)
    assert synthesis.section("maturite").rule_ids == ("mat_existant",)
    text = text_of(render_synthesis(synthesis))
    assert "PTCE « filière »" in text and "expertise" in text
    assert "capitalisation" in text
    assert "collectif solide" in text
    guide = text_of(render_legal_guide(synthesis, comparison))
    assert "**La SCIC (société coopérative d’intérêt collectif)**" in guide


def test_every_step_skipped_concludes_nothing(rules, comparison):
    synthesis = build_synthesis(rules, ALL_SKIPPED)
    assert all(section.skipped and not section.lines for section in synthesis.sections)
    assert all(section.explicitly_skipped for section in synthesis.sections)
    assert synthesis.recommendation is None
    assert synthesis.rule_ids == ()
    text = text_of(render_synthesis(synthesis))
    assert text.count("Étape passée") == len(synthesis.sections)
    assert "Piste" not in text and "**Points de vigilance**" not in text
    guide = text_of(render_legal_guide(synthesis, comparison))
    assert "aucune piste" in guide and "👉" not in guide


def test_nothing_answered_is_not_called_skipped(rules):
    synthesis = build_synthesis(rules, {})
    assert all(section.skipped and not section.explicitly_skipped for section in synthesis.sections)
    assert "Étape non renseignée" in text_of(render_synthesis(synthesis))


def test_partial_answers(rules):
    synthesis = build_synthesis(rules, PARTIAL)
    assert synthesis.section("typologie").rule_ids == ("typo_territoire",)
    logiques = synthesis.section("logiques")
    assert logiques.skipped and logiques.explicitly_skipped
    assert synthesis.section("maturite").rule_ids == ("mat_emergent_avance",)
    territoire = synthesis.section("territoire")
    assert not territoire.skipped and territoire.partial
    assert territoire.rule_ids == ("terr_echelle_resserree",)  # nothing about disparities or diagnosis
    assert territoire.skipped_keys == ("disparites",) and territoire.missing_keys == ("diagnostic",)
    for later in ("collectif", "formalisation", "fonctions_techniques", "financement", "lieu", "innovation_sociale"):
        section = synthesis.section(later)
        assert section.skipped and not section.explicitly_skipped and not section.lines
    assert synthesis.recommendation is None
    text = text_of(render_synthesis(synthesis))
    assert "Étape passée : Logiques d’action" in text
    assert "Étape non renseignée : Le collectif" in text
    assert "Certaines questions de cette étape sont restées sans réponse" in text
    # prochaines étapes read the answered markers: fallbacks only
    assert synthesis.section("prochaines_etapes").rule_ids == (
        "next_diagnostic_continu",
        "next_concretiser",
        "next_socle_commun",
    )


def test_formalisation_recommendations_by_profile(rules):
    expected = {
        "sans_volonte": ("form_sans_volonte", "pas_encore"),
        "scic_collectivites": ("form_scic_collectivites", "scic"),
        "economique_fragile": ("form_eco_pas_pret", "pas_encore"),
        "collectif_fragile": ("form_collectif_fragile", "pas_encore"),
        "volonte_partielle": ("form_volonte_partielle", "pas_encore"),
        "seulement_la_forme": ("form_repli", "portage_existant"),
    }
    for name, (rule_id, recommendation) in expected.items():
        synthesis = build_synthesis(rules, FORMES_PROFILES[name])
        assert synthesis.section("formalisation").rule_ids == (rule_id,), name
        assert synthesis.recommendation == recommendation, name
    existing = build_synthesis(rules, EXISTING_UNDEFINED)
    assert existing.section("formalisation").rule_ids == ("form_deja_association",)


def test_existing_scic_is_kept_even_under_pressure(rules):
    answers = {**PUSHED_BY_FUNDER, "forme_actuelle": "scic"}
    assert build_synthesis(rules, answers).recommendation == "scic"


def test_vigilance_is_deduplicated(rules):
    section = build_synthesis(rules, MATURE_SCIC).section("territoire")
    assert len(section.vigilance) == len(set(section.vigilance)) >= 2


def test_chapters_of_other_sections_are_cited(rules):
    text = text_of(render_synthesis(build_synthesis(rules, EMERGING_RURAL)))
    assert "**4. Territoire et diagnostic** — chapitre 05" in text
    assert "**Prochaines étapes**" in text


# --------------------------------------------------------------------------- evaluation and packing


@pytest.mark.parametrize(
    ("condition", "answers", "expected"),
    [
        (Condition("is", "q", ("a",)), {"q": "a"}, True),
        (Condition("is", "q", ("a",)), {"q": None}, False),
        (Condition("is", "q", ("a",)), {}, False),
        (Condition("in", "q", ("a", "b")), {"q": "b"}, True),
        (Condition("has", "m", ("a",)), {"m": ["a", "b"]}, True),
        (Condition("has", "m", ("a",)), {"m": None}, False),
        (Condition("lacks", "m", ("a",)), {"m": ["b"]}, True),
        (Condition("lacks", "m", ("a",)), {"m": []}, True),
        (Condition("lacks", "m", ("a",)), {}, False),
        (Condition("lacks", "m", ("a",)), {"m": None}, False),
        (Condition("count_at_least", "m", number=2), {"m": ["a", "b"]}, True),
        (Condition("count_at_most", "m", number=0), {"m": []}, True),
        (Condition("count_at_most", "m", number=0), {}, False),
        (Condition("answered", "q"), {"q": "a"}, True),
        (Condition("answered", "q"), {"q": None}, False),
        (Condition("skipped", "q"), {"q": None}, True),
        (Condition("skipped", "q"), {}, False),
        (Condition("not", children=(Condition("is", "q", ("a",)),)), {"q": "b"}, True),
        (Condition("all", children=(Condition("always"), Condition("answered", "q"))), {}, False),
        (Condition("any", children=(Condition("answered", "q"), Condition("always"))), {}, True),
    ],
)
def test_evaluate(condition, answers, expected):
    assert evaluate(condition, answers) is expected


def test_long_blocks_are_split_at_line_breaks():
    block = "\n".join(f"- ligne {index} " + "x" * 300 for index in range(30))
    messages = pack_messages(["**Titre**", block, "fin"], limit=1000)
    assert all(len(message) <= 1000 for message in messages)
    assert "".join(messages).replace("\n", "") == ("**Titre**" + block + "fin").replace("\n", "")
    assert pack_messages(["y" * 2500], limit=1000) == ["y" * 1000] * 2 + ["y" * 500]
