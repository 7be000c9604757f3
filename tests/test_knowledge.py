"""Knowledge loading, validation, coverage, the matcher and the CLI around them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.cli import main
from bot.evaluation import evaluate, read_gold
from knowledge.errors import KnowledgeErrors
from knowledge.loader import DATA_DIR, load_knowledge
from knowledge.matcher import Match, Matcher

CONTRACT_IDS = {
    "ptce.definition", "ptce.typologie", "ptce.logiques_action", "ptce.maturite", "ptce.socle_commun",
    "territoire.perimetre", "territoire.diagnostic", "collectif.constitution", "collectif.implication",
    "gouvernance.instances", "formalisation.pourquoi", "formalisation.sans_structure",
    "formalisation.association", "formalisation.scic", "ressources.fonctions_techniques",
    "financement.modele_economique", "financement.dispositifs", "lieu.role", "lieu.tiers_lieu",
    "innovation_sociale", "source.document",
}
DEV_SET = Path(__file__).parent / "data" / "questions.tsv"


@pytest.fixture(scope="module")
def matcher(kb):
    return Matcher.for_knowledge(kb)


def test_contract_topics_are_complete(kb):
    assert CONTRACT_IDS <= set(kb.topics)
    for topic in kb.topics.values():
        assert len(topic.questions) >= 8, topic.id
        assert topic.short and topic.details and topic.keywords and topic.related
        assert len(topic.short) <= 700


def test_every_chapter_is_cited_and_every_intro_question_is_mapped(kb):
    cited = {topic.source.chapter for topic in kb.topics.values()}
    assert cited == {f"{n:02d}" for n in range(1, 13)}
    assert len(kb.document.intro_questions) == 7
    mapped = {q.topics[0] for q in kb.document.intro_questions}
    assert mapped == {
        "ptce.definition", "territoire.perimetre", "collectif.constitution", "formalisation.pourquoi",
        "ressources.fonctions_techniques", "financement.modele_economique", "lieu.role",
    }


def test_glossary_has_the_key_terms(kb):
    terms = {t.term.casefold() for t in kb.glossary}
    for expected in ("ess", "epci", "scic", "ami", "tiers-lieu", "noyau dur", "diagnostic de territoire"):
        assert any(expected in term for term in terms), expected


def test_french_typography_in_user_text(kb):
    for topic in kb.topics.values():
        for text in (topic.title, topic.short, topic.details, *topic.vigilance):
            assert "'" not in text, f"{topic.id}: straight apostrophe in {text[:60]!r}"
            assert '"' not in text, f"{topic.id}: straight quotes"
            assert "« " not in text.replace("«\u00a0", ""), f"{topic.id}: « without non-breaking space"


# ----------------------------------------------------------------- broken files


def _copy_data(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    return target


def _edit_topics(data: Path, change) -> None:
    path = data / "topics.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(raw["topics"])
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda topics: topics[0].update(colour="bleu"), ("topics.yaml", "ptce.definition", "colour", "champ inconnu")),
        (lambda topics: topics[1].pop("short"), ("topics.yaml", "champ « short »", "manquant")),
        (lambda topics: topics[2].update(short="  "), ("topics.yaml", "champ « short »", "vide")),
        (lambda topics: topics.append(dict(topics[0])), ("topics.yaml", "ptce.definition", "double")),
        (lambda topics: topics[0].update(related=["sujet.inexistant"]), ("sujet.inexistant", "related", "inexistant")),
        (lambda topics: topics[0]["source"].update(chapter="42"), ("source.chapter", "42")),
        (lambda topics: topics[0].update(questions=["une seule"]), ("questions", "au moins 8")),
    ],
)
def test_invalid_topics_give_clear_errors(tmp_path, change, expected):
    data = _copy_data(tmp_path)
    _edit_topics(data, change)
    with pytest.raises(KnowledgeErrors) as error:
        load_knowledge(data)
    message = str(error.value)
    for part in expected:
        assert part in message, message


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    data = _copy_data(tmp_path)
    (data / "glossary.yaml").write_text("terms:\n  - term: [oops\n", encoding="utf-8")
    with pytest.raises(KnowledgeErrors) as error:
        load_knowledge(data)
    assert "glossary.yaml" in str(error.value) and "ligne" in str(error.value)


def test_kb_check_exits_non_zero_on_invalid_file(tmp_path, capsys):
    data = _copy_data(tmp_path)
    _edit_topics(data, lambda topics: topics[3].pop("title"))
    assert main(["--data", str(data), "kb", "check"]) == 1
    err = capsys.readouterr().err
    assert "topics.yaml" in err and "title" in err


def test_kb_check_reports_coverage(capsys):
    assert main(["kb", "check"]) == 0
    out = capsys.readouterr().out
    assert "Chapitres cités : 12/12" in out
    assert "Exemples bien aiguillés" in out


# ----------------------------------------------------------------- matcher


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("C'est quoi un PTCE ?", "ptce.definition"),
        ("c est quoi un pole territorial de cooperation economique", "ptce.definition"),
        ("faut il creer une asso ?", "formalisation.association"),
        ("SCIC avantages", "formalisation.scic"),
        ("comment financer le poste de coordinatrice", None),
        ("on a plusieurs interco sur notre territoire, c'est grave ?", "territoire.perimetre"),
        ("l'ingénierie manque souvent, pourquoi ?", "ressources.fonctions_techniques"),
        ("quelle différence entre un tiers-lieu et un PTCE", "lieu.tiers_lieu"),
    ],
)
def test_matcher_routes_what_people_type(matcher, question, topic):
    match = matcher.match(question)
    if topic is None:
        assert match.topic in {"financement.modele_economique", "financement.dispositifs", "ressources.fonctions_techniques", "coordination.portage"}
    else:
        assert topic in {match.topic} | {c.topic for c in match.alternatives[:1]}, (question, match)


def test_matcher_copes_with_case_accents_and_typos(matcher):
    reference = matcher.match("Qu'est-ce qu'une société coopérative d'intérêt collectif ?").topic
    assert reference == "formalisation.scic"
    assert matcher.match("QU'EST CE QU'UNE SOCIETE COOPERATIVE D'INTERET COLLECTIF").topic == reference
    assert matcher.match("c quoi une socité coopérative d'interet colectif").topic == reference


@pytest.mark.parametrize("question", [
    "quel temps fait-il à Lille demain ?", "recette de la pâte à crêpes", "qui a gagné la coupe du monde",
    "comment déclarer mes impôts", "", "!!!",
])
def test_matcher_abstains_off_topic(matcher, question):
    assert matcher.match(question).topic is None


@pytest.mark.parametrize("question", [
    "qui t'a créé", "comment créer une entreprise", "c'est quoi la TVA pour une association",
    "quels sont les points de vigilance", "aide", "projet", "créer",
])
def test_a_match_resting_on_one_generic_word_is_not_confident(matcher, question):
    match = matcher.match(question)
    assert match.tier != "confident", match
    if match.tier != "declined":
        assert len(match.alternatives) == 2, match


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("c'est quoi une scic", "formalisation.scic"),
        ("comment faire un diagnostic de territoire", "territoire.diagnostic"),
        ("quels financements pour lancer un ptce", "financement.dispositifs"),
        ("quelle différence entre un tiers-lieu et un PTCE", "lieu.tiers_lieu"),
        ("comment organiser la gouvernance de notre ptce", "gouvernance.instances"),
        ("faut-il créer une association pour porter le ptce", "formalisation.association"),
        ("c'est quoi un ptce", "ptce.definition"),
    ],
)
def test_a_clear_question_is_answered_with_confidence(matcher, question, topic):
    match = matcher.match(question)
    assert (match.topic, match.tier, match.ambiguous) == (topic, "confident", False), match


def test_a_question_between_two_topics_offers_both(matcher):
    match = matcher.match("financement")
    assert match.tier in {"hedged", "suggest"}
    offered = {match.topic, *(c.topic for c in match.alternatives[:2])}
    assert {"financement.dispositifs", "financement.modele_economique"} <= offered


def test_off_topic_is_declined_with_the_closest_topics_kept(matcher):
    match = matcher.match("c'est quoi la TVA pour une association")
    assert (match.topic, match.tier) == (None, "declined")
    assert match.alternatives and match.alternatives[0].topic == "formalisation.association"


def test_confidence_thresholds_come_from_the_lexicon(tmp_path):
    data = _copy_data(tmp_path)
    path = data / "lexicon.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["confidence"]["answer_from"] = 1.0
    raw["confidence"]["learned_confident"] = 1.0  # the learned model may not make it confident either
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    strict = Matcher(load_knowledge(data, with_flows=False))
    question = "diagnostic de territoire : par quoi commencer ?"
    assert Matcher(load_knowledge(with_flows=False)).match(question).tier == "confident"
    match = strict.match(question)
    assert (match.topic, match.tier) == ("territoire.diagnostic", "hedged")
    # A question written as an example of the topic stays confident whatever the thresholds.
    assert strict.match("c'est quoi un ptce").tier == "confident"


@pytest.mark.parametrize(
    ("confidence", "expected"),
    [
        ({"answer_from": 2}, ("lexicon.yaml", "answer_from", "nombre entre 0 et 1")),
        ({"coverage": "haut"}, ("lexicon.yaml", "coverage", "nombre entre 0 et 1")),
        ({"courage": 0.5}, ("lexicon.yaml", "courage", "champ inconnu")),
    ],
)
def test_invalid_confidence_thresholds_give_clear_errors(tmp_path, confidence, expected):
    data = _copy_data(tmp_path)
    path = data / "lexicon.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["confidence"].update(confidence)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with pytest.raises(KnowledgeErrors) as error:
        load_knowledge(data)
    for part in expected:
        assert part in str(error.value), str(error.value)


def test_a_match_built_without_tier_takes_the_one_its_fields_imply():
    assert Match("ptce.definition", 0.5, (), False).tier == "confident"
    assert Match("ptce.definition", 0.5, (), True).tier == "suggest"
    assert Match("ptce.definition", 0.5, (), False, "hedged").tier == "hedged"
    assert Match(None, 0.0, (), False).tier == "declined"
    with pytest.raises(ValueError):
        Match("ptce.definition", 0.5, (), False, "maybe")


def test_matcher_is_deterministic(matcher):
    first = matcher.match("financement de la coordination")
    assert all(matcher.match("financement de la coordination") == first for _ in range(5))


def test_scores_are_confidences(matcher):
    for question in ("ptce", "scic", "tiers-lieu et ptce", "le diagnostic de territoire"):
        match = matcher.match(question)
        assert 0.0 <= match.score <= 1.0
        assert all(0.0 <= c.score <= match.score for c in match.alternatives)


def test_dev_set_top1_accuracy_is_at_least_90_percent(matcher, kb):
    rows = read_gold(DEV_SET)
    assert len(rows) >= 150
    assert sum(1 for _, gold in rows if not gold) >= 20
    assert {g for _, gold in rows for g in gold} <= set(kb.topics)
    report = evaluate(matcher, rows)
    assert report["top1"] >= 0.90, report["confusions"][:10]
    assert report["abstention_recall"] >= 0.8
    assert report["wrong_confident_rate"] <= 0.02, report["wrong_confident_rows"]


# ----------------------------------------------------------------- CLI


def test_ask_prints_answer_and_source(capsys, kb):
    assert main(["ask", "pourquoi choisir une scic pour porter le ptce ?"]) == 0
    out = capsys.readouterr().out
    assert kb.topics["formalisation.scic"].title in out
    assert "Source\u00a0:" in out and "chap. 07" in out


def test_ask_json_single_and_lines(kb):
    exe = [sys.executable, "-m", "bot.cli"]
    single = subprocess.run(exe + ["ask", "--json", "faut-il formaliser notre PTCE ?"], capture_output=True, text=True, check=True)
    data = json.loads(single.stdout)
    assert set(data) >= {"topic", "score", "alternatives", "answer", "tier"}
    assert data["tier"] in {"confident", "hedged", "suggest"}
    assert data["topic"] in kb.topics
    lines = subprocess.run(exe + ["ask", "--json"], input="c'est quoi un ptce\nrecette de crêpes\n\n", capture_output=True, text=True, check=True)
    rows = [json.loads(line) for line in lines.stdout.splitlines()]
    assert [(r["topic"], r["tier"]) for r in rows] == [("ptce.definition", "confident"), (None, "declined")]
    assert "pas trouvé" in rows[1]["answer"]


def test_eval_prints_metrics(tmp_path, capsys):
    tsv = tmp_path / "gold.tsv"
    tsv.write_text("question\tgold\nc'est quoi un ptce\tptce.definition\nrecette de crêpes\tnone\n", encoding="utf-8")
    assert main(["eval", str(tsv)]) == 0
    out = capsys.readouterr().out
    assert "Exactitude top-1        : 100.0%" in out
    assert "Abstention — rappel     : 100.0%" in out
    assert "Bon sujet dès la 1re réponse (réponse, nuance ou suggestions) : 100.0%" in out
    assert "si un refus propose les 3 sujets les plus proches : 100.0%" in out
    assert "Hors sujet déclinés     : 100.0%" in out
    assert "Réponses sûres fausses  : 0 sur 1 (0.0%)" in out
    assert "Niveaux de confiance    : sûre 1 (50%), nuancée 0 (0%), suggestions 0 (0%), déclinée 1 (50%)" in out


def test_eval_lists_wrong_confident_answers(tmp_path, capsys):
    tsv = tmp_path / "gold.tsv"
    tsv.write_text("question\tgold\nc'est quoi une scic\tlieu.role\n", encoding="utf-8")
    assert main(["eval", str(tsv)]) == 0
    out = capsys.readouterr().out
    assert "Réponses sûres fausses  : 1 sur 1 (100.0%)" in out
    assert "sûre mais fausse : « c'est quoi une scic » (lieu.role → formalisation.scic)" in out


def test_eval_rejects_unknown_gold(tmp_path, capsys):
    tsv = tmp_path / "gold.tsv"
    tsv.write_text("question\tgold\nbonjour\tpas.un.sujet\n", encoding="utf-8")
    assert main(["eval", str(tsv)]) == 2
    assert "pas.un.sujet" in capsys.readouterr().err


def test_version_and_help():
    exe = [sys.executable, "-m", "bot.cli"]
    assert "ptce-bot" in subprocess.run(exe + ["--version"], capture_output=True, text=True).stdout
    assert "chat" in subprocess.run(exe + ["--help"], capture_output=True, text=True).stdout


def test_cross_validation_of_the_examples_routes_unseen_examples(kb):
    from bench.matcher_cv import cross_validate

    report = cross_validate(kb, 4)
    assert report["questions"] == sum(len(t.questions) for t in kb.topics.values())
    # Each example is asked of a matcher built without it: a paraphrase it has never seen.
    assert report["top1"] >= 0.8 and report["first_reply"] >= 0.9, report["confusions"][:10]
    assert report["wrong_confident"] <= 0.01 * report["questions"], report["wrong_confident_rows"]


@pytest.mark.parametrize("question", ["aide", "aide moi", "créer", "qui t'a créé", "what is the capital of France"])
def test_everyday_words_without_a_domain_word_are_declined(matcher, question):
    match = matcher.match(question)
    assert (match.topic, match.tier) == (None, "declined"), match
    assert len(match.alternatives) == 3  # the closest topics are still offered


def test_the_same_everyday_word_with_the_domain_is_answered(matcher):
    match = matcher.match("quelles aides pour financer un ptce ?")
    assert match.tier != "declined" and match.topic == "financement.dispositifs", match


# --------------------------------------------------------------------------- one matcher index, cached on disk


MATCH_PROBES = (
    "c'est quoi un ptce",
    "Bonjour, je suis maire d'une petite commune, un PTCE ça sert à quoi ?",
    "subvantion du coordinnateur",
    "quelle météo demain",
)


def _matches(matcher: Matcher) -> list[Match]:
    return [matcher.match(question) for question in MATCH_PROBES]


def test_one_matcher_per_knowledge_base(kb):
    assert Matcher.for_knowledge(kb) is Matcher.for_knowledge(kb)
    other = load_knowledge(with_flows=False)
    assert Matcher.for_knowledge(other) is not Matcher.for_knowledge(kb)


def test_cached_index_gives_the_same_matches_and_is_private(tmp_path, monkeypatch, kb):
    from knowledge.index_cache import load_index

    monkeypatch.setenv("PTCE_CACHE_DIR", str(tmp_path / "cache"))
    built = Matcher.for_knowledge(load_knowledge(with_flows=False))  # builds and stores
    [stored] = (tmp_path / "cache").glob("matcher-*.bin")
    assert stored.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "cache").stat().st_mode & 0o777 == 0o700
    fresh = load_knowledge(with_flows=False)
    assert load_index(fresh) is not None
    cached = Matcher.for_knowledge(fresh)
    assert cached.index == built.index
    assert _matches(cached) == _matches(built) == _matches(Matcher(kb))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "flip"])
def test_a_damaged_cache_is_ignored_and_rebuilt(tmp_path, monkeypatch, kb, damage):
    from knowledge.index_cache import load_index

    monkeypatch.setenv("PTCE_CACHE_DIR", str(tmp_path))
    Matcher.for_knowledge(load_knowledge(with_flows=False))
    [stored] = tmp_path.glob("matcher-*.bin")
    data = stored.read_bytes()
    stored.write_bytes(
        {"truncate": data[: len(data) // 2], "garbage": b"\x00\xff" * 100, "empty": b"", "flip": data[:-1] + bytes([data[-1] ^ 1])}[damage]
    )
    fresh = load_knowledge(with_flows=False)
    assert load_index(fresh) is None
    assert _matches(Matcher.for_knowledge(fresh)) == _matches(Matcher(kb))
    assert load_index(load_knowledge(with_flows=False)) is not None  # written again


def test_changed_knowledge_uses_another_index(tmp_path, monkeypatch, kb):
    import dataclasses

    from knowledge.index_cache import index_key

    monkeypatch.setenv("PTCE_CACHE_DIR", str(tmp_path))
    topic = next(iter(kb.topics.values()))
    changed = dataclasses.replace(kb, topics={**kb.topics, topic.id: dataclasses.replace(topic, questions=topic.questions[1:])})
    assert index_key(changed) != index_key(kb)
    fresh = load_knowledge(with_flows=False)
    assert Matcher.for_knowledge(changed).index != Matcher.for_knowledge(fresh).index
    assert len(list(tmp_path.glob("matcher-*.bin"))) == 2


def test_unwritable_or_disabled_cache_is_not_fatal(tmp_path, monkeypatch, kb):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("PTCE_CACHE_DIR", str(blocker / "cache"))
    assert _matches(Matcher.for_knowledge(load_knowledge(with_flows=False))) == _matches(Matcher(kb))
    monkeypatch.setenv("PTCE_CACHE_DIR", "")
    assert _matches(Matcher.for_knowledge(load_knowledge(with_flows=False))) == _matches(Matcher(kb))
