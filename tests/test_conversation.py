"""Conversation behaviours of issue 9: tiers as rendered, context, typed labels, everyday words, terminal."""

from __future__ import annotations

import argparse
import io
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from dialogue.engine import Engine
from dialogue.storage.progress import ProgressStore
from knowledge.conversation import load_conversation
from knowledge.errors import KnowledgeErrors
from knowledge.loader import DATA_DIR
from knowledge.matcher import Candidate
from tests.conversation import Chat


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


def fake_match(topic: str, tier: str, *others: str):
    """A match as the matcher will return it, with the tier forced (the provisional matcher never hedges)."""
    return SimpleNamespace(
        topic=topic if tier != "declined" else None,
        score=0.4,
        alternatives=tuple(Candidate(t, 0.3) for t in others),
        ambiguous=tier == "suggest",
        tier=tier,
    )


def test_hedged_answer_shows_the_topic_two_next_topics_and_not_this(engine, monkeypatch):
    chat = Chat(engine)
    match = fake_match("formalisation.scic", "hedged", "formalisation.association", "financement.modele_economique")
    monkeypatch.setattr(engine.matcher, "match", lambda text: match)
    chat.send("structure coopérative avec la mairie dedans")
    assert chat.text.startswith("Je pense que votre question porte sur")
    assert "La SCIC" in chat.text and "Source" in chat.text
    assert chat.labels[:3] == ["→ Porter par une association", "→ Le modèle économique", "Ce n’est pas ça"]
    chat.send("ce n'est pas ça")  # typed, not pressed
    assert "Orientation pas à pas" in chat.labels
    assert len(chat.labels) == 5  # three suggestions, the orientation, the menu


def test_plain_no_after_a_hedged_answer_means_not_this(engine, monkeypatch):
    chat = Chat(engine)
    monkeypatch.setattr(engine.matcher, "match", lambda text: fake_match("formalisation.scic", "hedged", "lieu.role"))
    chat.send("structure coopérative")
    chat.send("non")
    assert "Orientation pas à pas" in chat.labels and "La SCIC" not in chat.text


def test_hedged_wording_varies(engine, monkeypatch):
    chat = Chat(engine)
    monkeypatch.setattr(engine.matcher, "match", lambda text: fake_match("ptce.definition", "hedged", "ptce.typologie"))
    first_lines = set()
    for question in ("truc ptce un", "machin ptce deux", "chose ptce trois"):
        chat.send("/menu")
        chat.send(question)
        first_lines.add(chat.replies[0].text.split("\n")[0])
    assert len(first_lines) == 3


def test_suggest_offers_three_choices(engine, monkeypatch):
    chat = Chat(engine)
    monkeypatch.setattr(engine.matcher, "match", lambda text: fake_match("lieu.role", "suggest", "lieu.tiers_lieu", "financement.modele_economique"))
    chat.send("lieu financement")
    assert "Vouliez-vous dire" in chat.text
    assert chat.labels == ["→ Le rôle d’un lieu", "→ PTCE et tiers-lieu", "→ Le modèle économique", "Menu"]
    chat.send("ptce et tiers")  # an unambiguous prefix of a visible button's label
    assert "PTCE et tiers-lieu : ne pas confondre" in chat.text.replace("\u00a0", " ") and "Source" in chat.text


def test_two_misses_in_a_row_offer_help_and_contacts(chat):
    chat.send("quel temps fera-t-il demain à Lille ?")
    assert "Orientation pas à pas" in chat.labels
    chat.send("donne-moi une recette de crêpes")
    # One reply: help, the contacts and the team offer together (not a second offer below).
    assert len(chat.replies) == 1
    assert chat.labels == ["Aide", "Contacter une personne", "Transmettre ma question à l’équipe", "Menu"]
    chat.send("contacter une personne")
    assert "03 22 72 49 53" in chat.text or "accompagn" in chat.text.lower()


def test_declined_wording_never_five_times_the_same(chat):
    seen = []
    for text in ("météo lille", "recette crêpes", "résultat du match", "horaires du train", "prix de l'essence"):
        chat.send(text)
        seen.append(chat.replies[0].text)
        chat.send("/menu")  # a success in between: misses do not pile up
    assert len(set(seen)) >= 3


def test_context_survives_a_restart_and_follow_up_reads_it(kb, tmp_path):
    db = tmp_path / "p.db"
    first = Engine(kb, ProgressStore.open(db))
    Chat(first, "u").send("faut-il créer une association pour porter notre ptce ?")
    first.close()
    second = Engine(kb, ProgressStore.open(db))
    chat = Chat(second, "u")
    chat.send("et les points de vigilance ?")
    assert "Points de vigilance — Créer une association" in chat.text
    chat.send("et pour une scic ?")
    assert "La SCIC" in chat.text
    chat.send("c'est quoi la différence ?")
    assert "Comparaison" in chat.text and "association" in chat.text and "SCIC" in chat.text
    second.close()


def test_context_expires_after_a_long_silence(kb, store):
    clock = Clock()
    chat = Chat(Engine(kb, store, clock=clock))
    chat.send("faut-il créer une association pour porter notre ptce ?")
    clock.now += timedelta(hours=3)
    chat.send("et les points de vigilance ?")
    assert "Points de vigilance — Créer une association" not in chat.text


def test_same_page_never_twice_in_a_row(chat, kb):
    chat.send("comment choisir le territoire de notre ptce ?")
    assert kb.topics["territoire.perimetre"].short in chat.text
    chat.send("comment choisir le territoire de notre ptce ?")
    assert "en savoir plus" in chat.text
    assert kb.topics["territoire.perimetre"].short not in chat.text


def test_not_covered_says_so_then_what_the_document_says_with_source(chat, kb):
    chat.send("combien coûte une part sociale de SCIC ?")
    assert chat.text.startswith("Le document ne précise pas")
    assert kb.topics["formalisation.scic"].short in chat.text and "chap." in chat.text


def test_visible_buttons_survive_a_restart_for_typed_labels(kb, tmp_path):
    db = tmp_path / "p.db"
    first = Engine(kb, ProgressStore.open(db))
    Chat(first, "u").send("/oublier")
    first.close()
    second = Engine(kb, ProgressStore.open(db))
    chat = Chat(second, "u")
    chat.send("Non, annuler")
    assert "Menu" in chat.text and "effacées" not in chat.text
    second.close()


def test_fallback_keeps_the_pending_choices(chat):
    chat.send("/oublier")
    chat.send("zzzz blabla")
    assert "Oui, tout effacer" in chat.labels and "Non, annuler" in chat.labels
    chat.send("2")
    assert "effacées" not in chat.text and "Menu" in chat.text


def test_welcome_back_after_absence_understands_typed_reprendre(kb, store):
    clock = Clock()
    chat = Chat(Engine(kb, store, clock=clock))
    chat.send("/orientation")
    chat.send("1")
    clock.now += timedelta(days=10)
    chat.send("bonjour")
    assert "Bon retour" in chat.text
    chat.send("reprendre")
    assert "Étape 2/" in chat.text


def test_start_mid_session_does_not_say_welcome_back(chat):
    chat.send("/orientation")
    chat.send("1")
    chat.send("/start")
    assert "Bon retour" not in chat.text and "Vous avez commencé" in chat.text
    chat.send("oui")
    assert "Étape 2/" in chat.text


def test_digit_after_suggestions_in_a_flow_never_records_an_unseen_answer(engine, monkeypatch):
    chat = Chat(engine)
    chat.send("/formes")
    monkeypatch.setattr(engine.matcher, "match", lambda text: fake_match(
        "formalisation.association", "suggest", "formalisation.sans_structure", "ressources.fonctions_techniques"))
    chat.send("par notre asso (on porte le poste de coordo)")
    assert chat.labels[0].startswith("→ ")
    # The step's own options keep numbers 1, 2… under the suggestions: « 1 » is the first option,
    # and the answer recorded is said back (never recorded unseen).
    chat.send("1")
    assert engine.store.load("tester").answers["forme_actuelle"] == "aucune"
    assert "Noté" in chat.text and "Étape 1/" in chat.text


def test_multiple_choice_accepts_several_numbers(chat):
    chat.send("/orientation")
    chat.send("1")
    chat.send("1 et 3")
    assert sum(label.startswith("✅") for label in chat.labels) == 2
    chat.send("valider")
    assert chat.engine.store.load("tester").answers["logiques"] == ["reseau", "ingenierie"]


def test_question_rank_inside_a_step_and_jump_notice(chat, kb):
    chat.send("/formes")
    for _ in range(6):
        chat.send("passer")
    chat.send("/orientation")
    for _ in range(3):
        chat.send("passer")
    assert "Étape 4/11" in chat.text and "question 1/3" in chat.text
    chat.send("passer")
    assert "question 2/3" in chat.text
    for _ in range(5):  # question 3/3, the local authority (step 5), then the collective's three questions
        chat.send("passer")
    assert "Étape 6/11" in chat.text and "question 3/3" in chat.text
    chat.send("passer")  # step 7 only asks questions shared with the legal-form guide, already answered
    assert "déjà une réponse" in chat.text and "Étape 8/11" in chat.text


def test_back_on_first_question_explains_how_to_answer(chat):
    chat.send("/orientation")
    chat.send("retour")
    assert "première question" in chat.text and "pas trouvé" not in chat.text


def test_resume_asks_which_flow_when_both_are_unfinished(chat):
    chat.send("/orientation")
    chat.send("1")
    chat.send("/formes")
    chat.send("1")
    chat.send("/menu")
    chat.send("/reprendre")
    assert "Lequel" in chat.text
    chat.press("guide")
    assert "Étape" in chat.text


@pytest.mark.parametrize("words", ["aide", "Aide", "menu", "MENU", "/help", "/ menu"])
def test_help_and_menu_as_words_and_commands(chat, words):
    chat.send(words)
    assert "Comment m’utiliser" in chat.text or "**Menu**" in chat.text


def test_conversation_yaml_errors_name_file_entry_and_field(tmp_path):
    text = (DATA_DIR / "conversation.yaml").read_text(encoding="utf-8")
    broken = text.replace("  - id: goodbye\n", "  - id: goodbye\n    colour: blue\n").replace("yes_words:", "yes_wordz:")
    path = tmp_path / "conversation.yaml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(KnowledgeErrors) as caught:
        load_conversation(path)
    message = str(caught.value)
    assert "conversation.yaml" in message and "goodbye" in message and "colour" in message and "yes_words" in message


def _chat_args(tmp_path: Path) -> argparse.Namespace:
    return argparse.Namespace(user="t", db=tmp_path / "t.db", data=None)


def test_terminal_numbers_one_screen_once_and_echoes_piped_input(tmp_path):
    from bot.terminal import run_chat

    out = io.StringIO()
    run_chat(_chat_args(tmp_path), io.StringIO("99\n/oublier\n"), out)
    text = out.getvalue()
    assert "> 99\nChoisissez un numéro" in text
    assert text.rstrip().endswith("À bientôt !")
    screen = text.split("> /oublier")[1]
    assert "  1. Oui, tout effacer" in screen and "  2. Non, annuler" in screen


def test_terminal_single_numbering_across_replies(tmp_path):
    from bot.terminal import render_replies
    from dialogue.types import Button, Reply

    out = io.StringIO()
    buttons = render_replies([Reply("a", ((Button("x", "1"),),)), Reply("b", ((Button("y", "2"), Button("z", "3")),))], out, colour=False)
    # The last reply's buttons are the screen's choice: numbered first, the page's buttons after.
    assert [b.payload for b in buttons] == ["2", "3", "1"]
    assert "  2. z" in out.getvalue() and "  3. x" in out.getvalue() and out.getvalue().count("  1. ") == 1
