"""The glossary: definitions faithful to the document, browsable by theme and by letter."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from dialogue.types import MAX_PAYLOAD_BYTES
from knowledge.errors import KnowledgeErrors
from knowledge.loader import DATA_DIR, load_knowledge

#: One Telegram message, with room to spare: the old one-block glossary was 5,800 characters.
MESSAGE_BUDGET = 1500
#: Terms whose usual definition the document does not give: it must be marked, never passed off as the document's.
GENERAL_ONLY = {"ESS", "EPCI", "AMI", "Appel à projets", "Circuits courts", "Labo de l’ESS", "Collectivité territoriale"}
DOCUMENT_TERMS = {
    "PTCE de territoire", "PTCE « filière »", "PTCE émergent", "PTCE existant", "PTCE historique",
    "Marqueurs de maturité", "Logiques d’action", "Cellule de pilotage", "Décloisonnement", "Collectif PTCE",
    "Écosystème territorial", "Veille territoriale", "Mobilisation citoyenne", "Capitalisation", "Trésorerie",
    "Dispositif permanent", "Projet emblématique", "Relance des PTCE", "Neutralité", "Coordination", "Animation",
}


def _plain(text: str) -> str:
    return text.replace("\u00a0", " ")


def test_document_terms_and_general_definitions(kb):
    terms = {_plain(term.term): term for term in kb.glossary}
    assert {_plain(t) for t in DOCUMENT_TERMS} <= set(terms)
    for name in GENERAL_ONLY:
        assert terms[name].general, f"{name}: its general definition must sit in « general »"
    # Coordination and animation are terms of their own, not aliases of « Fonctions techniques ».
    assert not {"coordination", "animation"} & {a.casefold() for a in terms["Fonctions techniques"].aliases}
    assert all(term.chapter and term.theme for term in kb.glossary)


def test_glossary_opens_on_themes_and_letters(chat, kb):
    chat.send("/glossaire")
    assert len(chat.text) <= MESSAGE_BUDGET
    themes = [b for b in chat.buttons if b.payload.startswith("g:t:")]
    letters = [b for b in chat.buttons if b.payload.startswith("g:l:")]
    assert [b.payload[4:] for b in themes] == [t.id for t in kb.glossary_themes]
    assert {b.label for b in letters} >= {"E", "P", "S"}
    assert "Menu" in chat.labels


def test_every_term_is_reachable_by_theme_and_by_letter(chat, kb):
    by_theme, by_letter = set(), set()
    chat.send("/glossaire")
    index = list(chat.buttons)
    for button in index:
        if button.payload.startswith(("g:t:", "g:l:")):
            chat.choose(button.payload)
            assert len(chat.text) <= MESSAGE_BUDGET, button.label
            found = {b.payload for b in chat.buttons if b.payload.startswith("g:e:")}
            (by_theme if button.payload.startswith("g:t:") else by_letter).update(found)
    assert len(by_theme) == len(by_letter) == len(kb.glossary)
    for payload in by_theme:
        assert len(payload.encode()) <= MAX_PAYLOAD_BYTES


def test_a_term_card_cites_the_chapter_and_marks_general_knowledge(chat, kb):
    chat.send("/glossaire")
    chat.press("Territoire et collectif")
    chat.press("EPCI")
    assert chat.text.startswith("**EPCI**")
    assert "Définition générale, hors document : Établissement public" in _plain(chat.text)
    assert "chap. 05" in chat.text
    chat.press("Choisir le territoire")
    assert kb.topics["territoire.perimetre"].title in chat.text


def test_a_document_term_has_no_general_marker(chat):
    chat.send("/glossaire")
    chat.press("Maturité des PTCE")
    chat.press("PTCE historique")
    assert "PTCE historique" in chat.text and "hors document" not in chat.text
    chat.press("← Maturité")
    assert "PTCE émergent" in chat.labels


def test_stale_or_unknown_glossary_button_falls_back_to_the_index(chat):
    chat.choose("g:e:terme-disparu")
    assert "par thème ou par lettre" in chat.text
    chat.choose("g:t:inconnu")
    assert "par thème ou par lettre" in chat.text


# ----------------------------------------------------------------- validation


def _glossary_errors(tmp_path: Path, change) -> str:
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    path = data / "glossary.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(raw)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with pytest.raises(KnowledgeErrors) as caught:
        load_knowledge(data)
    return str(caught.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda raw: raw["terms"][1].update(general=""), ("glossary.yaml", "« ESS »", "« general »", "texte vide")),
        (lambda raw: raw["terms"][1].update(generale="…"), ("« generale »", "champ inconnu", "écrivez plutôt « general »")),
        (lambda raw: raw["terms"][0].update(chapter="13"), ("« chapter »", "inconnu", "→")),
        (lambda raw: raw["terms"][0].update(topic="ptce.definiton"), ("« topic »", "écrivez plutôt « ptce.definition »")),
        (lambda raw: raw["themes"][0]["chapters"].remove("01"), ("chapitre 01 n’appartient à aucun thème",)),
        (lambda raw: raw["terms"][0].update(term="x" * 41), ("« term »", "trop long")),
    ],
)
def test_glossary_errors_say_where_and_what_to_write(tmp_path, change, expected):
    message = _glossary_errors(tmp_path, change)
    for part in expected:
        assert part in message, message


def test_glossary_typography(kb):
    for term in kb.glossary:
        for text in (term.term, term.definition, term.general):
            assert "'" not in text and '"' not in text, f"{term.term}: apostrophe ou guillemet droit"
            assert "« " not in text and " »" not in text, f"{term.term}: « » sans espace insécable"
