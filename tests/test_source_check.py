"""``ptce-bot kb check --against``: the knowledge stays faithful to the reference document."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from bot.cli import main
from knowledge.errors import KnowledgeErrors
from knowledge.loader import DATA_DIR
from knowledge.source_check import COPY_RUN, EXCEPTIONS_FILE, check_against

ROOT = Path(__file__).resolve().parent.parent
#: In CI the shared folder sits next to the repository: ../shared/source/ from the repo root.
REFERENCE = ROOT.parent / "shared" / "source" / "000_fae4ab4579966dab.txt"
needs_reference = pytest.mark.skipif(
    not REFERENCE.is_file(),
    reason=f"document de référence absent ({REFERENCE}) : la comparaison avec le document n’est pas faite",
)

#: A stand-in for the document, enough for the checks' own behaviour.
SOURCE = """Les PTCE de la région Hauts-de-France existent depuis 2014.
Le Labo de l'ESS a mené une enquête en 2020 auprès des dynamiques PTCE.
Le statut de Société Coopérative d'Intérêt Collectif est souvent privilégié car il permet d'associer des parties prenantes de toute nature.
"""


@pytest.fixture
def data(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    return target


def _edit(data: Path, name: str, change) -> None:
    path = data / name
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(raw)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _topic(raw: dict, topic_id: str) -> dict:
    return next(topic for topic in raw["topics"] if topic["id"] == topic_id)


@needs_reference
def test_the_knowledge_base_is_faithful_to_the_reference_document(capsys):
    assert main(["kb", "check", "--against", str(REFERENCE)]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "0 problème(s)" in out


@needs_reference
def test_invented_facts_copies_and_promises_are_reported(data):
    text = REFERENCE.read_text(encoding="utf-8")
    copied = " ".join(text.split("Le territoire constitue le point de départ")[1].split()[: COPY_RUN + 3])

    def change(raw):
        topic = _topic(raw, "territoire.perimetre")
        topic["short"] += " Depuis 2019, la Bretagne finance 40 % des PTCE."
        topic["details"] += " Le territoire constitue le point de départ " + copied
        # Asks what the topic itself declares not covered (collèges): flagged as such.
        _topic(raw, "formalisation.scic")["questions"].append("comment répartir les collèges de vote et la pondération ?")
        # A word the document never uses, in a topic that declares no such gap: a promise to review.
        _topic(raw, "gouvernance.instances")["questions"].append("comment calculer la pondération des voix ?")

    _edit(data, "topics.yaml", change)
    report = check_against(data, REFERENCE)
    found = {(f.kind, f.value) for f in report.findings}
    assert {("valeur", "2019"), ("valeur", "Bretagne"), ("valeur", "40%")} <= found
    assert any(kind == "copie" for kind, _ in found)
    assert ("promesse", "ponderation") in found
    assert any(f.kind == "non couvert" and "collèges de vote et la pondération" in f.where.text for f in report.findings)


@needs_reference
def test_cli_prints_where_and_what_to_do(data, capsys):
    _edit(data, "glossary.yaml", lambda raw: raw["terms"][0].update(definition="Créé en 1999 par Jean Dupont."))
    assert main(["--data", str(data), "kb", "check", "--against", str(REFERENCE)]) == 1
    out = capsys.readouterr().out
    assert "glossary.yaml, entrée « PTCE », champ « definition » : « 1999 » n’apparaît pas dans le document" in out
    assert "« Dupont »" in out and "source_exceptions.yaml" in out


def test_missing_reference_file_is_a_usage_error(tmp_path, capsys):
    assert main(["kb", "check", "--against", str(tmp_path / "absent.txt")]) == 2
    assert "introuvable" in capsys.readouterr().err


# ----------------------------------------------------------------- on a stand-in document


def _source(tmp_path: Path) -> Path:
    path = tmp_path / "source.txt"
    path.write_text(SOURCE, encoding="utf-8")
    return path


def _report(data: Path, source: Path, kind: str):
    return [f for f in check_against(data, source).findings if f.kind == kind and f.where.file == "topics.yaml"
            and f.where.entry == "ptce.definition"]


def test_sentence_initial_words_are_not_proper_nouns_but_acronyms_and_inner_capitals_are(data, tmp_path):
    source = _source(tmp_path)
    _edit(data, "topics.yaml", lambda raw: _topic(raw, "ptce.definition").update(
        short="Chaque pôle vit. Autre phrase : Ensuite, vu à Lyon avec le CNRS et KatalyZe ; le Labo de l’ESS aussi."))
    values = {f.value for f in _report(data, source, "valeur") if f.where.field == "short"}
    assert values == {"Lyon", "CNRS", "KatalyZe"}


def test_exceptions_need_a_reason_and_are_applied(data, tmp_path):
    source = _source(tmp_path)
    _edit(data, "topics.yaml", lambda raw: _topic(raw, "ptce.definition").update(short="Vu à Lyon en 1999."))
    (data / EXCEPTIONS_FILE).write_text('values:\n  - values: ["Lyon", "1999"]\n    reason: "Exemple accepté."\n', encoding="utf-8")
    assert not [f for f in _report(data, source, "valeur") if f.where.field == "short"]
    (data / EXCEPTIONS_FILE).write_text('values:\n  - values: ["Lyon"]\n', encoding="utf-8")
    with pytest.raises(KnowledgeErrors) as caught:
        check_against(data, source)
    assert "source_exceptions.yaml, entrée « values[1] », champ « reason » : champ obligatoire manquant" in str(caught.value)


def test_an_example_asking_what_the_topic_declares_not_covered_is_reported(data, tmp_path):
    source = _source(tmp_path)

    def change(raw):
        topic = _topic(raw, "ptce.definition")
        topic["not_covered"] = [{"about": "le texte exact de la loi", "triggers": ["article de loi"]}]
        topic["questions"].append("quel article de loi définit le PTCE ?")

    _edit(data, "topics.yaml", change)
    found = _report(data, source, "non couvert")
    assert [f.where.text for f in found] == ["quel article de loi définit le PTCE ?"]
    assert "le texte exact de la loi" in found[0].describe()


def test_long_quotations_are_reported_unless_accepted(data, tmp_path):
    source = _source(tmp_path)
    quote = "il permet d’associer des parties prenantes de toute nature, et le statut de Société Coopérative d’Intérêt Collectif est souvent privilégié"
    _edit(data, "topics.yaml", lambda raw: _topic(raw, "ptce.definition").update(details=quote))
    assert not _report(data, source, "copie")  # two short runs, none of 12 words
    quote = "Le statut de Société Coopérative d’Intérêt Collectif est souvent privilégié car il permet d’associer des parties"
    _edit(data, "topics.yaml", lambda raw: _topic(raw, "ptce.definition").update(details=quote))
    assert len(_report(data, source, "copie")) == 1
    (data / EXCEPTIONS_FILE).write_text(
        "passages:\n  - passages: [\"" + quote + "\"]\n    reason: \"Citation voulue.\"\n", encoding="utf-8")
    assert not _report(data, source, "copie")
