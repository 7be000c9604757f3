"""« Votre synthèse » and the legal-form guide, checked on user profiles.

Every rule of synthesis.yaml is matched by at least one profile below
(`test_every_rule_is_matched_by_some_profile`); the named profiles also check
what the user actually reads.
"""

from __future__ import annotations

import pytest

from dialogue.flows.synthesis import build_synthesis, evaluate, normalise_answers
from dialogue.flows.synthesis_text import MAX_MESSAGE, SHORT_MAX, pack_messages, render_full, render_legal_guide, render_short
from knowledge.flows import Condition, answer_keys
from knowledge.flows_loader import load_flows
from knowledge.synthesis_loader import load_synthesis
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
    "lieu": ["aucun"],
    "innovation_sociale": "non",
    "relation_collectivite": "aucune",
    "employeur_coordination": "personne",
    "region": "autre",
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
    "lieu": ["tiers_lieu", "collectivite"],
    "innovation_sociale": "oui",
    "relation_collectivite": "etroite",
    "employeur_coordination": "dediee",
    "region": "hauts_de_france",
}

PUSHED_BY_FUNDER = {  # the legal-form guide only
    "forme_actuelle": "membre",
    "besoins_formalisation": ["lisibilite"],
    "volonte_commune": "non",
    "solidite_collectif": "en_construction",
    "pression_financeurs": "oui",
    "employeur_coordination": "membre",
}

ASSOCIATION_COORDINATOR = {
    "forme_actuelle": "membre",
    "besoins_formalisation": ["lisibilite", "coordination"],
    "volonte_commune": "oui",
    "solidite_collectif": "en_construction",
    "pression_financeurs": "non",
    "employeur_coordination": "membre",
}

FILIERE_CAPITAL = {
    "typologie": "filiere",
    "logiques": ["accompagnement", "ingenierie"],
    "marqueurs": ["besoins", "pluralite", "projets"],
    "forme_actuelle": "aucune",
    "besoins_formalisation": ["economique"],
    "volonte_commune": "oui",
    "solidite_collectif": "solide",
    "pression_financeurs": "non",
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
    "lieu": ["partage"],
    "innovation_sociale": "en_cours",
    "relation_collectivite": "difficile",
    "region": "autre",
}

DEVELOPING = {
    "logiques": ["aucune"],
    "echelle": "commune",
    "disparites": ["aucune"],
    "diagnostic": "minimum",
    "espaces": ["noyau_dur", "thematiques"],
    "fonctions": ["animation", "ingenierie"],
    "financements": ["departement", "appels_projets", "cotisations"],
    "lieu": ["collectivite"],
    "relation_collectivite": "ponctuelle",
    "employeur_coordination": "autre",
}

ALL_KEYS = (
    "typologie", "logiques", "marqueurs", "echelle", "disparites", "diagnostic", "noyau_dur", "diversite",
    "espaces", "forme_actuelle", "besoins_formalisation", "volonte_commune", "pression_financeurs",
    "solidite_collectif", "fonctions", "financements", "projet_emblematique", "lieu", "innovation_sociale",
    "relation_collectivite", "employeur_coordination", "region",
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
    "lisibilite_sans_capital": {"forme_actuelle": "membre", "besoins_formalisation": ["lisibilite"],
                                "volonte_commune": "oui", "pression_financeurs": "non", "solidite_collectif": "solide"},
    "economique_fragile": {"forme_actuelle": "aucune", "besoins_formalisation": ["economique"], "volonte_commune": "oui",
                           "pression_financeurs": "non", "solidite_collectif": "fragile"},
    "pression_eco": {"forme_actuelle": "aucune", "besoins_formalisation": ["economique", "lisibilite"],
                     "volonte_commune": "partielle", "pression_financeurs": "oui", "solidite_collectif": "solide"},
    "pression_sans_besoin": {"forme_actuelle": "membre", "besoins_formalisation": ["aucun"],
                             "volonte_commune": "non", "pression_financeurs": "oui"},
    "collectif_fragile": {"forme_actuelle": "aucune", "besoins_formalisation": ["lisibilite"], "volonte_commune": "oui",
                          "pression_financeurs": "non", "solidite_collectif": "fragile"},
    "volonte_partielle": {"forme_actuelle": "membre", "besoins_formalisation": ["transfert"],
                          "volonte_commune": "partielle", "pression_financeurs": "non", "solidite_collectif": "solide"},
    "seulement_la_forme": {"forme_actuelle": "membre"},
    "eco_en_construction": {"forme_actuelle": "aucune", "besoins_formalisation": ["economique"],
                            "volonte_commune": "oui", "pression_financeurs": "non",
                            "solidite_collectif": "en_construction"},
}  # fmt: skip

#: One or two answers each: the matching next step comes first.
NEXT_STEP_PROFILES = {
    "sans_fonction": {"fonctions": ["aucune"]},
    "sans_ingenierie": {"fonctions": ["coordination", "animation"]},
    "sans_financement": {"financements": ["aucun"]},
    "sans_financement_hdf": {"financements": ["aucun"], "region": "hauts_de_france"},
    "hdf_region": {"financements": ["region"], "region": "hauts_de_france"},
    "employe_membre": {"employeur_coordination": "membre"},
    "territoire_seul": {"typologie": "territoire", "relation_collectivite": "difficile"},
    "ingenierie_sans_projet": {"fonctions": ["coordination"], "logiques": ["reseau"], "marqueurs": ["besoins"]},
    "trois_sans_ingenieur": {"logiques": ["reseau", "accompagnement", "ingenierie"], "fonctions": ["coordination"],
                             "marqueurs": ["projets", "structuration"]},
    "sans_projet": {"projet_emblematique": "non"},
    "sans_pilotage": {"espaces": ["noyau_dur"]},
    "une_logique": {"logiques": ["reseau"]},
    "conflits": {"disparites": ["conflits"]},
    "sans_lieu": {"lieu": ["aucun"]},
    "sans_innovation": {"innovation_sociale": "non"},
    "a_modeliser": {"marqueurs": ["besoins", "pluralite", "projets"]},
    "essaimage": {"marqueurs": ["essaimage"]},
    "aucun_marqueur": {"marqueurs": ["aucun"]},
    "rien_a_signaler": {"lieu": ["partage"]},
    "sans_noyau": {"noyau_dur": "non"},
    "presque_existant": {"marqueurs": ["besoins", "pluralite", "structuration", "implication", "essaimage"]},
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
    for messages in (render_full(synthesis), render_legal_guide(synthesis, comparison)):
        assert messages and all(0 < len(message) <= MAX_MESSAGE for message in messages)
        assert "None" not in "".join(messages)
    assert render_full(synthesis)[0].startswith("**Votre synthèse**")


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
    assert synthesis.section("maturite").rule_ids == ("mat_emergent_avance",)
    assert synthesis.recommendation == "portage_existant"
    assert synthesis.section("formalisation").rule_ids == ("form_aucun_besoin",)
    assert not any(section.skipped for section in synthesis.sections)
    text = text_of(render_full(synthesis))
    assert "**Votre synthèse**" in text
    assert "PTCE « émergents »" in text
    assert "entre les parties rurales et urbaines" in text  # rural-urban, as the document puts it
    assert "au moins de dégager les grandes tendances" in text  # diagnosis minimum (05)
    assert "garder le portage actuel" in text
    assert "moins identifiable" in text  # vigilance of the first level (07)
    assert "condition indispensable" in text  # no technical function (08)
    assert "Étape passée" not in text
    next_steps = synthesis.section("prochaines_etapes").rule_ids
    # the document's first advice to emerging PTCE comes first (chap. 01, p. 6)
    assert next_steps == ("next_tiers_emergent", "next_noyau", "next_diagnostic")
    assert "(chapitre 05, p. 12)." in text
    guide = text_of(render_legal_guide(synthesis, comparison))
    assert "Piste qui ressort de vos réponses : **garder le portage actuel" in guide
    assert "- 👉 **Structure existante ou sans forme** :" in guide


def test_mature_scic_historique(rules, comparison):
    synthesis = build_synthesis(rules, MATURE_SCIC)
    assert synthesis.section("maturite").rule_ids == ("mat_historique",)
    assert synthesis.recommendation == "scic"
    assert synthesis.section("formalisation").rule_ids == ("form_deja_scic",)
    assert set(synthesis.section("logiques").rule_ids) == {"log_trois"}
    assert set(synthesis.section("fonctions_techniques").rule_ids) == {"fonc_trois", "fonc_employe_dediee"}
    text = text_of(render_full(synthesis))
    assert "PTCE « historiques »" in text
    assert "complémentarité" in text
    assert "la SCIC (société coopérative d’intérêt collectif)" in text
    assert "formalisme et les obligations" in text.casefold()
    assert "confusion entre PTCE et tiers-lieu" in text
    assert set(synthesis.section("lieu").rule_ids) == {"lieu_tiers_lieu", "lieu_collectivite", "lieu_ouvert"}
    assert synthesis.section("prochaines_etapes").rule_ids == ("next_disparites", "next_essaimer", "next_accompagnement")
    guide = text_of(render_legal_guide(synthesis, comparison))
    assert "- 👉 **SCIC** :" in guide


def test_collective_pushed_by_its_funder_is_sent_to_no_structure(rules, comparison):
    synthesis = build_synthesis(rules, PUSHED_BY_FUNDER)
    assert synthesis.section("formalisation").rule_ids == ("form_pression_besoins",)
    assert synthesis.recommendation == "pas_encore"
    guide = text_of(render_legal_guide(synthesis, comparison))
    assert "Piste qui ressort de vos réponses : **ne pas formaliser pour l’instant**" in guide
    assert "Ne formalisez pas seulement sous la pression" in guide
    assert "**l’association**" not in guide and "association dédiée" not in guide.split("**Les trois niveaux")[0]
    assert "👉" not in guide  # no column of the comparison is pointed at
    assert "contre-productive" in guide and "tensions" in guide
    for criterion, _ in comparison.rows:
        assert f"**{criterion}**" in guide
    # the orientation steps were not done: nothing is concluded about them
    synthesis_text = text_of(render_full(synthesis))
    assert synthesis_text.count("Étape non renseignée") == 9
    assert synthesis.section("prochaines_etapes").rule_ids[0] == "next_formalisation"


def test_pressure_with_an_economic_need_recommends_no_structure_anywhere(rules, comparison):
    """Pushed by a funder, members unwilling: no SCIC, no association, in any rendering (chap. 07, p. 17–18)."""
    unwilling_fragile = {"forme_actuelle": "aucune", "besoins_formalisation": ["economique"], "volonte_commune": "non",
                         "pression_financeurs": "oui", "solidite_collectif": "fragile"}  # fmt: skip
    for answers in (FORMES_PROFILES["pression_eco"], unwilling_fragile):
        synthesis = build_synthesis(rules, answers)
        assert synthesis.section("formalisation").rule_ids == ("form_pression_besoins",)
        assert synthesis.recommendation == "pas_encore"
        text = text_of(render_full(synthesis))
        short = text_of([render_short(synthesis)])
        guide = text_of(render_legal_guide(synthesis, comparison))
        assert "Ne formalisez pas seulement sous la pression" in text and "contre-productive" in text
        assert "piste de formalisation : ne pas formaliser pour l’instant" in short
        for rendering in (text, short, guide.split("**Les trois niveaux")[0]):
            assert "SCIC" not in rendering and "l’association" not in rendering
        assert "👉" not in guide


def test_pressure_without_needs_keeps_the_current_level_and_says_why_funders_push(rules):
    synthesis = build_synthesis(rules, FORMES_PROFILES["pression_sans_besoin"])
    assert synthesis.section("formalisation").rule_ids == ("form_pression_aucun",)
    assert synthesis.recommendation == "portage_existant"
    section = synthesis.section("formalisation")
    assert any("moins identifiable" in point and "financeurs" in point for point in section.vigilance)


def test_association_for_readability_and_a_coordinator(rules, comparison):
    synthesis = build_synthesis(rules, ASSOCIATION_COORDINATOR)
    assert synthesis.recommendation == "association"
    assert synthesis.section("formalisation").rule_ids == ("form_association",)
    guide = render_legal_guide(synthesis, comparison)
    text = text_of(guide)
    assert "**l’association**" in text
    assert "conventionner directement" in text
    assert "personne chargée de la coordination" in text
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
    text = text_of(render_full(synthesis))
    assert "PTCE « filière »" in text and "expertise" in text
    assert "capitalisation" in text
    assert "collectif solide" in text
    guide = text_of(render_legal_guide(synthesis, comparison))
    assert "**la SCIC (société coopérative d’intérêt collectif)**" in guide


def test_scic_is_never_recommended_without_an_economic_need(rules):
    for name, answers in PROFILES.items():
        synthesis = build_synthesis(rules, answers)
        needs = answers.get("besoins_formalisation") or []
        if synthesis.recommendation == "scic" and answers.get("forme_actuelle") != "scic":
            assert "economique" in needs, name
    synthesis = build_synthesis(rules, FORMES_PROFILES["lisibilite_sans_capital"])
    assert synthesis.recommendation == "association"


def test_every_step_skipped_concludes_nothing(rules, comparison):
    synthesis = build_synthesis(rules, ALL_SKIPPED)
    assert all(section.skipped and not section.lines for section in synthesis.sections)
    assert all(section.explicitly_skipped for section in synthesis.sections)
    assert synthesis.recommendation is None
    assert synthesis.rule_ids == ()
    text = text_of(render_full(synthesis))
    assert text.count("Étape passée") == len(synthesis.sections)
    assert "Piste" not in text and "**Points de vigilance**" not in text
    guide = text_of(render_legal_guide(synthesis, comparison))
    assert "aucune piste" in guide and "👉" not in guide
    short = text_of([render_short(synthesis)])
    assert "aucune question" in short and "Prochaines étapes" not in short


def test_nothing_answered_is_not_called_skipped(rules):
    synthesis = build_synthesis(rules, {})
    assert all(section.skipped and not section.explicitly_skipped for section in synthesis.sections)
    assert "Étape non renseignée" in text_of(render_full(synthesis))


def test_partial_answers(rules):
    synthesis = build_synthesis(rules, PARTIAL)
    assert synthesis.section("typologie").rule_ids == ("typo_territoire",)
    logiques = synthesis.section("logiques")
    assert logiques.skipped and logiques.explicitly_skipped
    assert synthesis.section("maturite").rule_ids == ("mat_emergent_avance",)
    territoire = synthesis.section("territoire")
    assert not territoire.skipped and territoire.partial
    assert territoire.rule_ids == ("terr_echelle_locale",)  # nothing about disparities or diagnosis
    assert territoire.skipped_keys == ("disparites",) and territoire.missing_keys == ("diagnostic",)
    for later in ("collectif", "formalisation", "fonctions_techniques", "financement", "lieu", "innovation_sociale"):
        section = synthesis.section(later)
        assert section.skipped and not section.explicitly_skipped and not section.lines
    assert synthesis.recommendation is None
    text = text_of(render_full(synthesis))
    assert "Étape passée : Logiques d’action" in text
    assert "Étape non renseignée : Le collectif" in text
    assert "Certaines questions de cette étape sont restées sans réponse" in text
    # no answer calls for a next step: only the fallbacks, which assume nothing
    # two markers of six: an emerging PTCE, whose first need is a third party's accompaniment (chap. 01)
    assert synthesis.section("prochaines_etapes").rule_ids == ("next_tiers_emergent", "next_pairs", "next_socle_commun")


def test_formalisation_recommendations_by_profile(rules):
    expected = {
        "sans_volonte": ("form_sans_volonte", "pas_encore"),
        "lisibilite_sans_capital": ("form_association", "association"),
        "economique_fragile": ("form_collectif_fragile", "pas_encore"),
        "eco_en_construction": ("form_eco_pas_pret", "pas_encore"),
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
    section = build_synthesis(rules, EXISTING_UNDEFINED).section("territoire")
    assert len(section.vigilance) == len(set(section.vigilance)) >= 2


def test_chapters_and_pages_are_cited(rules):
    text = text_of(render_full(build_synthesis(rules, EMERGING_RURAL)))
    assert "**4. Territoire et diagnostic** — chapitre 05" in text
    assert "(p. 11)" in text  # same chapter as the section: the page alone
    assert "(chapitre 02, p. 7)" in text  # the collectivité section cites chapter 02 for the PTCE de territoire
    assert "**Prochaines étapes**" in text
    body = text.split("**Prochaines étapes**")[1]
    assert body.count("(chapitre ") == 3


# --------------------------------------------------------------------------- each sentence follows from the answers


def test_maturity_is_indicative_and_lists_markers_present_and_absent(rules):
    synthesis = build_synthesis(rules, {"marqueurs": ["besoins", "projets"]})
    section = synthesis.section("maturite")
    assert section.checklist.present == ("Besoins du territoire identifiés", "Projets concrétisés")
    assert "Collectif structuré" in section.checklist.absent and len(section.checklist.absent) == 4
    text = text_of(render_full(synthesis))
    assert "À titre indicatif" in text and "pas de grille de notation" in text
    assert "Établis selon vous : Besoins du territoire identifiés, Projets concrétisés." in text
    assert "Pas encore établis : " in text


def test_territory_scale_is_not_called_vast_and_no_difficulty_is_not_a_boast(rules):
    synthesis = build_synthesis(rules, {"echelle": "plusieurs_epci", "disparites": ["aucune"]})
    text = text_of(render_full(synthesis)).casefold()
    assert "vaste" not in text
    assert "atout" not in text
    assert "ne fixe aucune taille" in text


def test_no_before_creating_a_structure_for_an_association(rules):
    answers = {"forme_actuelle": "association", "pression_financeurs": "oui", "volonte_commune": "partielle"}
    synthesis = build_synthesis(rules, answers)
    assert "next_formalisation" not in synthesis.section("prochaines_etapes").rule_ids
    assert "Avant de créer une structure" not in text_of(render_full(synthesis))
    assert synthesis.section("formalisation").rule_ids == ("form_deja_association",)
    informal = build_synthesis(rules, {**answers, "forme_actuelle": "aucune"})
    assert informal.section("prochaines_etapes").rule_ids[0] == "next_formalisation"


def test_next_steps_never_come_from_skipped_steps(rules):
    answers = {key: None for key in ALL_KEYS} | {"typologie": "territoire", "diagnostic": "partage"}
    steps = build_synthesis(rules, answers).section("prochaines_etapes")
    assert steps.rule_ids == ("next_accompagnement", "next_pairs", "next_socle_commun")
    fallbacks = {rule.id for rule in rules.section("prochaines_etapes").rules if rule.when.op == "always"}
    for name, profile in PROFILES.items():
        for rule_id in build_synthesis(rules, profile).section("prochaines_etapes").rule_ids:
            if rule_id in fallbacks:
                continue
            rule = next(r for r in rules.rules() if r.id == rule_id)
            assert all(profile.get(key) is not None for key in rule.when.keys() if key in _required_keys(rule.when)), (name, rule_id)


def _required_keys(condition) -> set[str]:
    """Keys a condition needs answered to hold (a « not » or « any » branch needs none for sure)."""
    if condition.op == "all":
        return set().union(*(_required_keys(child) for child in condition.children))
    if condition.op in ("any", "not", "always"):
        return set()
    return {condition.key} if condition.key else set()


def test_employee_warning_only_when_a_member_employs_someone(rules, comparison):
    for employer in ("personne", "dediee", "autre", None):
        answers = {**EMERGING_RURAL, "employeur_coordination": employer}
        text = text_of(render_full(build_synthesis(rules, answers)) + render_legal_guide(build_synthesis(rules, answers), None))
        assert "personne salariée peut avoir du mal" not in text, employer
    answers = {**EMERGING_RURAL, "fonctions": ["coordination", "animation"], "employeur_coordination": "membre"}
    text = text_of(render_full(build_synthesis(rules, answers)))
    assert "la personne salariée peut avoir du mal" in text
    assert "salarié embauché" not in text


def test_three_logics_are_not_claimed_next_to_missing_engineering(rules):
    synthesis = build_synthesis(rules, NEXT_STEP_PROFILES["trois_sans_ingenieur"])
    assert synthesis.section("logiques").rule_ids == ("log_trois_sans_ingenie",)
    text = text_of(render_full(synthesis))
    assert "Vous dites mettre en œuvre les **trois logiques" not in text
    assert "personne n’est chargé de l’ingénierie" in text
    with_engineer = build_synthesis(rules, {**NEXT_STEP_PROFILES["trois_sans_ingenieur"], "fonctions": ["ingenierie"]})
    assert with_engineer.section("logiques").rule_ids == ("log_trois",)


def test_engineering_is_not_pushed_on_a_collective_without_projects(rules):
    synthesis = build_synthesis(rules, NEXT_STEP_PROFILES["ingenierie_sans_projet"])
    assert "log_manque_ingenierie" not in synthesis.rule_ids
    assert "log_ingenierie_plus_tard" in synthesis.section("logiques").rule_ids
    assert "fonc_ingenierie_ensuite" in synthesis.section("fonctions_techniques").rule_ids
    assert "next_ingenierie" not in synthesis.section("prochaines_etapes").rule_ids
    text = text_of(render_full(synthesis))
    assert "présence et la complémentarité des trois logiques" in text
    assert "rien n’oblige" not in text and "pas la première urgence" not in text  # beyond the document
    with_projects = build_synthesis(rules, {**NEXT_STEP_PROFILES["ingenierie_sans_projet"], "marqueurs": ["projets"]})
    assert "next_ingenierie" in with_projects.section("prochaines_etapes").rule_ids
    assert "log_manque_ingenierie" in with_projects.rule_ids


def test_funding_examples_are_said_to_come_from_hauts_de_france(rules):
    elsewhere = text_of(render_full(build_synthesis(rules, {"financements": ["aucun"], "region": "autre"})))
    assert "viennent tous des Hauts-de-France" in elsewhere
    assert "depuis 2017" not in elsewhere
    local = text_of(render_full(build_synthesis(rules, {"financements": ["aucun"], "region": "hauts_de_france"})))
    assert "En Hauts-de-France" in local and "depuis 2017" in local
    assert "viennent tous" not in local


def test_a_territorial_ptce_without_relation_with_the_authority_is_warned(rules):
    synthesis = build_synthesis(rules, NEXT_STEP_PROFILES["territoire_seul"])
    assert "collec_territoire_sans" in synthesis.section("collectivite").rule_ids
    assert synthesis.section("prochaines_etapes").rule_ids[0] == "next_collectivite"
    filiere = build_synthesis(rules, {"typologie": "filiere", "relation_collectivite": "difficile"})
    assert "collec_territoire_sans" not in filiere.rule_ids


# --------------------------------------------------------------------------- answers stored by older flows


OLD_ANSWERS = {  # stored before the venue became multiple-choice and two questions left the legal-form guide
    "lieu": "tiers_lieu",
    "capital_commercial": "oui",
    "collectivites_membres": "oui",
    "besoins_formalisation": ["lisibilite"],
    "volonte_commune": "oui",
    "solidite_collectif": "solide",
    "logiques": "reseau",  # a single value where a list is expected
    "typologie": ["territoire"],  # a list where a single value is expected
    "echelle": "galaxie",  # an option that no longer exists
}


def test_answers_of_older_flows_are_read_safely(rules, comparison):
    normalised = normalise_answers(rules.questions, OLD_ANSWERS)
    assert normalised["lieu"] == ["tiers_lieu"]
    assert normalised["besoins_formalisation"] == ["lisibilite", "economique"]  # capital merged into the need
    assert "capital_commercial" not in normalised and "collectivites_membres" not in normalised
    assert normalised["logiques"] == ["reseau"] and normalised["typologie"] == "territoire"
    assert "echelle" not in normalised
    synthesis = build_synthesis(rules, OLD_ANSWERS)
    assert "lieu_tiers_lieu" in synthesis.rule_ids
    assert synthesis.recommendation == "scic"  # economic need, solid collective, shared will
    assert render_full(synthesis) and render_short(synthesis) and render_legal_guide(synthesis, comparison)
    assert OLD_ANSWERS["lieu"] == "tiers_lieu"  # the stored answers are not modified


def test_merged_capital_answer_does_not_override_an_explicit_none(rules):
    normalised = normalise_answers(rules.questions, {"capital_commercial": "oui", "besoins_formalisation": ["aucun"]})
    assert normalised["besoins_formalisation"] == ["aucun"]
    alone = normalise_answers(rules.questions, {"capital_commercial": "oui"})
    assert alone["besoins_formalisation"] == ["economique"]
    assert "besoins_formalisation" not in normalise_answers(rules.questions, {"capital_commercial": "non"})


# --------------------------------------------------------------------------- the short synthesis


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_short_synthesis_fits_and_keeps_the_essentials(name, rules):
    synthesis = build_synthesis(rules, PROFILES[name])
    short = render_short(synthesis)
    assert len(short) <= SHORT_MAX
    assert short.startswith("**Votre synthèse en bref**")
    if not synthesis.all_skipped:
        assert "**Votre profil**" in short and "Voir le détail" in short
        for line in synthesis.section("prochaines_etapes").lines:
            assert line.text[:40] in short


def test_short_synthesis_of_an_emerging_ptce(rules):
    synthesis = build_synthesis(rules, EMERGING_RURAL)
    short = text_of([render_short(synthesis)])
    assert "**Votre profil**\nPTCE de territoire ; maturité indicative « émergent » ; piste de formalisation : garder" in short
    assert short.count("\n- ") == 4  # three next steps and one vigilance point
    assert "**Un point de vigilance**" in short and "relation privilégiée avec la collectivité" in short
    assert len(short) < sum(len(message) for message in render_full(synthesis)) / 4


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
