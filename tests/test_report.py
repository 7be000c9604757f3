"""The PDF report and the profile picture, read back as a reader would see them.

The PDF is opened with pypdf and its text layer checked: title, answers, synthesis
sentences, chapter citations, page numbers, French characters. The picture is opened
with Pillow (installed with matplotlib). The engine's side (button, intent, name asked
once), the terminal chat and ``ptce-bot export`` are checked here too.
"""

from __future__ import annotations

import io
import re
from datetime import date

import pytest
from PIL import Image
from pypdf import PdfReader

from bot.cli import main as cli_main
from bot.terminal import run_chat
from dialogue.engine import Engine
from dialogue.flows.synthesis import build_synthesis
from dialogue.storage.progress import ProgressStore
from dialogue.types import Command, ReportRequest
from knowledge.flows import NEXT_STEPS_SECTION
from report import EmptyReport, build_report, file_names
from report.content import NNBSP, french_spacing
from report.profile import FIGURE_SIZE, PNG_DPI, Status, check_profile, layout, load_profile, profile_rows
from tests.conversation import Chat
from tests.test_synthesis import MATURE_SCIC, PUSHED_BY_FUNDER

DAY = date(2026, 3, 1)
NAME = "Pôle « Cœur de Val » d’Œuvre"

#: Three contrasting users, as the issue describes them.
NASCENT_TERRITORIAL = {
    "typologie": "territoire",
    "logiques": ["reseau"],
    "marqueurs": ["aucun"],
    "echelle": "epci",
    "disparites": ["aucune"],
    "diagnostic": "aucun",
    "noyau_dur": "en_cours",
    "diversite": "faible",
    "espaces": ["aucun"],
    "forme_actuelle": "aucune",
    "besoins_formalisation": ["aucun"],
    "volonte_commune": None,
    "pression_financeurs": "non",
    "solidite_collectif": "fragile",
    "fonctions": ["aucune"],
    "financements": ["aucun"],
    "projet_emblematique": "non",
    "lieu": ["aucun"],
    "innovation_sociale": None,
}
MATURE_FILIERE_SCIC = {
    **MATURE_SCIC,
    "typologie": "filiere",
    "forme_actuelle": "scic",
    "financements": ["region", "cotisations", "recettes"],
}
FUNDERS_PRESSURE = {**PUSHED_BY_FUNDER, "typologie": "indefini", "fonctions": ["coordination"]}


def flat(text: str) -> str:
    """Text layer with line breaks and runs of ordinary spaces collapsed (no-break spaces kept)."""
    return re.sub(r"[ \n]+", " ", text)


def strip_markup(text: str) -> str:
    return flat(text.replace("**", ""))


def report(kb, answers, *, kind="synthesis", name=NAME):
    return build_report(kb, ReportRequest(kind, answers, DAY, name))


def pages_text(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


@pytest.fixture(scope="module")
def mature(kb):
    return report(kb, MATURE_FILIERE_SCIC, kind="formes")


# --------------------------------------------------------------------------- the PDF


def test_pdf_is_a4_with_two_to_five_pages_and_a_numbered_footer(mature):
    reader = PdfReader(io.BytesIO(mature.pdf))
    assert 2 <= len(reader.pages) <= 5
    total = len(reader.pages)
    for number, page in enumerate(reader.pages, start=1):
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        assert (round(width), round(height)) == (595, 842)  # A4 in points
        text = flat(page.extract_text())
        assert f"Page {number}/{total}" in text
        assert "(Institut Godin) — ne remplace pas un accompagnement." in text
    assert len(mature.pdf) <= 300_000


def test_title_page_has_name_date_and_reference(mature):
    first = flat(pages_text(mature.pdf)[0])
    assert f"Synthèse d’orientation — Pôle «{NNBSP}Cœur de Val{NNBSP}» d’Œuvre" in first
    assert "Établie le 1er mars 2026" in first
    assert f"Institut Godin, «{NNBSP}PTCE — Analyse des récurrences & ingénierie{NNBSP}»" in first
    assert "L’essentiel" in first


def test_pdf_holds_the_synthesis_sentences_with_chapters_and_pages(kb, mature):
    text = flat(" ".join(pages_text(mature.pdf)))
    synthesis = build_synthesis(kb.synthesis, MATURE_FILIERE_SCIC)
    for section in synthesis.sections:
        if section.skipped:
            continue
        if section.id != NEXT_STEPS_SECTION:
            chapter = kb.document.chapters[section.chapter]
            assert f"chap. {chapter.number} — {chapter.title}" in text
        for line in section.lines:
            sentence = french_spacing(strip_markup(line.text)).split(". ")[0]
            assert sentence[:80] in text, sentence
    # next steps are numbered and cite their chapter
    steps = synthesis.section(NEXT_STEPS_SECTION).lines
    assert steps
    first_step = french_spacing(strip_markup(steps[0].text))[:50]
    assert f"1. {first_step}" in text
    assert "Prochaines étapes" in text and "Points de vigilance" in text


def test_pdf_lists_every_answer_question_by_question(kb, mature):
    text = flat(" ".join(pages_text(mature.pdf)))
    assert "Vos réponses, question par question" in text
    assert "Votre dynamique est plutôt un PTCE… → De filière" in text
    assert "→ Région, Contributions des membres, Recettes propres" in text
    assert "→ Par une SCIC" in text
    assert "besoin de capital ou d’une activité commerciale" not in text  # merged into the needs question


def test_only_what_the_user_answered_is_shown(kb):
    """A user who only did the legal-form guide reads no list of unanswered steps and questions."""
    guide_only = {"forme_actuelle": "membre", "employeur_coordination": "membre", "besoins_formalisation": ["lisibilite"],
                  "volonte_commune": "oui", "solidite_collectif": "solide", "pression_financeurs": "non"}  # fmt: skip
    text = flat(" ".join(pages_text(report(kb, guide_only).pdf)))
    assert "Pas encore de réponse" not in text and "Étape non renseignée" not in text
    assert "Typologie" not in text.split("Synthèse détaillée")[1].split("Prochaines étapes")[0]
    assert "Gouvernance et formalisation" in text and "Fonctions techniques" in text


def test_skipped_questions_are_marked(kb):
    text = flat(" ".join(pages_text(report(kb, NASCENT_TERRITORIAL).pdf)))
    assert "→ Question passée" in text
    # innovation sociale: its only question was skipped, so nothing is concluded about it
    assert f"Étape passée{NNBSP}: sans réponse à ses questions, nous n’en tirons aucune conclusion." in text
    assert "Vos membres partagent-ils la volonté de formaliser juridiquement la démarche" in text


def test_legal_guide_report_has_the_comparison_table(kb, mature):
    text = flat(" ".join(pages_text(mature.pdf)))
    assert "Les trois niveaux de formalisation" in text
    for column in ("Structure existante ou sans forme", "Association", "SCIC (votre piste)"):
        assert column in text
    for criterion in ("Ce que cela permet", "Finances et capital", "Formalisme"):
        assert criterion in text
    assert "Les modalités de création sont rapides." in text


def test_french_characters_survive(mature):
    text = " ".join(pages_text(mature.pdf))
    for needle in ("«", "»", "œ", "Œ", "’", NNBSP, "é", "è", "à", "É", "—", "…"):
        assert needle in text, needle
    # a no-break space never lets a line start with French high punctuation
    assert not re.search(r"\n[:;!?»]", text)


def test_nothing_answered_is_refused_with_a_clear_message(kb):
    with pytest.raises(EmptyReport, match="aucune question"):
        report(kb, {})
    with pytest.raises(EmptyReport):
        report(kb, {"typologie": None, "logiques": None})


def test_report_without_a_name_and_with_one_answer(kb):
    files = report(kb, {"typologie": "territoire"}, name="")
    pages = pages_text(files.pdf)
    assert 2 <= len(pages) <= 5
    assert flat(pages[0]).startswith("Synthèse d’orientation Établie le")
    assert re.fullmatch(r"synthese-ptce-2026-03-01-\d{6}-[0-9a-f]{4}\.pdf", files.pdf_name)
    assert files.png_name == files.pdf_name.replace("synthese-", "profil-").replace(".pdf", ".png")
    assert file_names(DAY)[0] != file_names(DAY)[0]  # two reports of one day never share a name


def test_a_finding_cites_the_same_page_on_every_page_of_the_report(kb):
    """The short version (page 1) and the detail cite each next step with one page (issue #20)."""
    synthesis = build_synthesis(kb.synthesis, NASCENT_TERRITORIAL)
    text = flat(" ".join(pages_text(report(kb, NASCENT_TERRITORIAL).pdf))).replace(NNBSP, " ")
    for line in synthesis.section(NEXT_STEPS_SECTION).lines:
        page = line.page
        assert f"chapitre {line.chapter}, p. {page}" in text  # page 1, as in the chat
        assert f"chap. {line.chapter}, p. {page}" in text  # the next steps further on
        first_chapter_page = kb.document.chapters[line.chapter].page
        if first_chapter_page != page:
            assert f"chap. {line.chapter}, p. {first_chapter_page})" not in text


def test_written_reports_never_overwrite_each_other(kb, tmp_path):
    from dialogue.types import ReportRequest
    from report import write_report

    request = ReportRequest("synthesis", {"typologie": "territoire"}, DAY)
    first = write_report(kb, request, tmp_path)
    second = write_report(kb, request, tmp_path)
    assert first[0] != second[0] and first[0].exists() and second[0].exists()


# --------------------------------------------------------------------------- the picture


def test_png_has_the_expected_size_and_is_not_blank(mature):
    image = Image.open(io.BytesIO(mature.png))
    assert image.format == "PNG"
    assert image.size == (round(FIGURE_SIZE[0] * PNG_DPI), round(FIGURE_SIZE[1] * PNG_DPI))
    grey = image.convert("L")
    dark = sum(1 for value in grey.get_flattened_data() if value < 128)
    assert dark > 0.01 * image.size[0] * image.size[1]  # text and filled squares
    assert grey.getextrema() == (0, 255) or grey.getextrema()[0] < 60


def test_profile_file_matches_the_flows(kb):
    assert check_profile(load_profile(), kb.flows, kb.document.chapters) == []


def test_profile_lists_what_the_document_lists():
    spec = load_profile()
    sizes = {theme.title: len(theme.items) for theme in spec.themes}
    assert sizes["Six marqueurs de maturité"] == 6
    assert sizes["Trois logiques d’action"] == 3
    assert sizes["Trois fonctions techniques"] == 3
    assert "score" in spec.caption


def _statuses(answers):
    return {row.label: row.status for row in profile_rows(load_profile(), answers)}


def test_three_contrasting_profiles_give_different_pictures(kb):
    profiles = (NASCENT_TERRITORIAL, MATURE_FILIERE_SCIC, FUNDERS_PRESSURE)
    statuses = [_statuses(p) for p in profiles]
    nascent, mature, pressured = statuses
    assert nascent["Structure existante ou sans forme"] is Status.PRESENT
    assert nascent["SCIC"] is Status.ABSENT
    assert nascent["Volonté commune de formaliser"] is Status.UNANSWERED  # skipped, not guessed
    assert nascent["Noyau dur d’acteurs"] is Status.PARTLY
    assert mature["SCIC"] is Status.PRESENT and mature["PTCE « filière »"] is Status.PRESENT
    assert all(mature[label] is Status.PRESENT for label in ("Coordination", "Animation", "Ingénierie"))
    assert pressured["Pression de financeurs"] is Status.PRESENT
    assert nascent["Pression de financeurs"] is mature["Pression de financeurs"] is Status.ABSENT
    assert pressured["Besoins du territoire"] is Status.UNANSWERED  # the legal guide does not ask it
    pictures = [report(kb, p).png for p in profiles]
    assert len({png for png in pictures}) == 3
    reference = Image.open(io.BytesIO(pictures[0])).convert("L")
    for other in pictures[1:]:
        pixels = Image.open(io.BytesIO(other)).convert("L")
        changed = sum(1 for a, b in zip(reference.get_flattened_data(), pixels.get_flattened_data()) if abs(a - b) > 100)
        assert changed > 500  # whole squares differ, not a few anti-aliased pixels


def test_labels_fit_in_their_column():
    """No label runs into the next column or off the picture (measured with the PDF's font)."""
    from fpdf import FPDF

    from report.pdf import FONT, font_files
    from report.profile import Label

    pdf = FPDF(unit="in")
    for style, path in font_files().items():
        pdf.add_font(FONT, style, str(path))
    width = FIGURE_SIZE[0]
    column_sizes = (8.6, 7.8)  # theme titles and item labels; the rest spans the whole width
    for shape in layout(load_profile(), MATURE_SCIC, "Votre profil au regard des listes du document"):
        if not isinstance(shape, Label):
            continue
        pdf.set_font(FONT, "B" if shape.bold else "", shape.size)
        right = shape.x + pdf.get_string_width(shape.text)
        limit = width / 2 if shape.size in column_sizes and shape.x < width / 2 else width
        assert right <= limit - 0.1, shape.text


def test_picture_is_drawn_as_text_in_the_pdf(mature):
    """The PDF's picture is vector: its labels are text a reader can search."""
    text = flat(" ".join(pages_text(mature.pdf)))
    assert "Votre profil au regard des listes du document" in text
    assert "Six marqueurs de maturité (chap." in text and "Ce n’est ni une note ni un score" in text


# --------------------------------------------------------------------------- the engine


def _answer_typology(chat: Chat) -> None:
    chat.send("/orientation")
    chat.press("De territoire")


def test_end_of_orientation_offers_the_document(engine, kb):
    chat = Chat(engine)
    chat.send("/orientation")
    for _ in range(30):
        if "Recevoir le document (PDF)" in chat.labels:
            break
        chat.press("Passer")
    else:
        pytest.fail("no document button at the end of the orientation")
    chat.press("Recevoir le document (PDF)")
    # everything skipped: nothing to put in a document
    assert "rien à mettre dans le document" in chat.text
    assert all(reply.attachment is None for reply in chat.replies)


def test_document_button_asks_the_name_once_then_requests_the_report(engine):
    chat = Chat(engine)
    _answer_typology(chat)
    chat.send("/synthese")
    chat.press("Recevoir le document (PDF)")
    assert "Quel nom donner à votre PTCE sur le document" in chat.text
    assert chat.labels == ["Passer"]
    chat.send("  Pôle   des Coopérations  ")
    assert "«\u00a0Pôle des Coopérations\u00a0» figurera sur le document" in chat.text
    request = next(reply.attachment for reply in chat.replies if reply.attachment)
    assert request.ptce_name == "Pôle des Coopérations"
    assert request.answers == {"typologie": "territoire"}
    assert engine.store.load("tester").context.feature("report")["name"] == "Pôle des Coopérations"
    # asked once: the next request goes straight to the document
    chat.send("/synthese")
    chat.press("Recevoir le document (PDF)")
    assert "Quel nom" not in chat.text
    assert chat.replies[0].attachment.ptce_name == "Pôle des Coopérations"


def test_name_can_be_skipped_and_forgotten(engine):
    chat = Chat(engine)
    _answer_typology(chat)
    chat.send("envoie-moi le document")
    chat.press("Passer")
    assert "ne portera pas de nom" in chat.text
    assert next(r.attachment for r in chat.replies if r.attachment).ptce_name == ""
    chat.send("/oublier")
    chat.press("Oui, tout effacer")
    assert engine.store.load("tester") is None


@pytest.mark.parametrize(
    "text",
    ["je veux la synthèse en PDF", "envoie-moi le document", "Pouvez-vous m’envoyer la synthèse par mail ?",
     "la synthèse en PDF ou par mail pour la partager avec mon CA"],
)
def test_free_text_asks_for_the_document(engine, text):
    chat = Chat(engine)
    _answer_typology(chat)
    chat.send(text)
    assert "Quel nom donner à votre PTCE" in chat.text


@pytest.mark.parametrize(
    "text", ["Que dit le document sur le lieu ?", "Où télécharger le document de référence de l’Institut Godin ?"]
)
def test_other_questions_about_documents_are_not_taken_for_a_request(engine, text):
    chat = Chat(engine)
    _answer_typology(chat)
    chat.send(text)
    assert "Quel nom" not in chat.text and all(reply.attachment is None for reply in chat.replies)


def test_request_in_the_middle_of_the_orientation_comes_back_to_the_step(engine):
    chat = Chat(engine)
    _answer_typology(chat)
    chat.send("envoie-moi le document")
    chat.send("Mon PTCE")
    assert any(reply.attachment for reply in chat.replies)
    assert "Étape 2/11" in chat.replies[-1].text
    assert "Valider" in chat.labels


def test_name_too_long_is_asked_again_and_nothing_is_lost(engine):
    chat = Chat(engine)
    _answer_typology(chat)
    chat.send("pdf")
    chat.send("x" * 120)
    assert "un peu long" in chat.text and chat.labels == ["Passer"]
    chat.send("Court")
    assert any(reply.attachment for reply in chat.replies)
    assert engine.store.load("tester").answers == {"typologie": "territoire"}


def test_the_name_question_is_cancelled_by_another_action(engine):
    chat = Chat(engine)
    _answer_typology(chat)
    chat.send("pdf")
    chat.send("/menu")
    chat.send("c’est quoi un PTCE ?")
    assert "figurera sur le document" not in chat.text
    assert "name" not in engine.store.load("tester").context.features.get("report", {})


def test_legal_guide_end_offers_the_document_with_its_table(engine):
    chat = Chat(engine)
    chat.send("/formes")
    for _ in range(10):
        if "Recevoir le document (PDF)" in chat.labels:
            break
        chat.choose(chat.buttons[0].payload)
        if "Valider" in chat.labels:
            chat.press("Valider")
    chat.press("Recevoir le document (PDF)")
    chat.press("Passer")
    request = next(reply.attachment for reply in chat.replies if reply.attachment)
    assert request.kind == "formes"


# --------------------------------------------------------------------------- terminal and CLI


def test_terminal_chat_writes_pdf_and_png_and_prints_their_paths(tmp_path):
    import argparse

    db = tmp_path / "chat.db"
    out = tmp_path / "docs"
    script = "/orientation\n1\nje veux la synthèse en PDF\nPôle Test\n"
    stdout = io.StringIO()
    args = argparse.Namespace(user="alex", db=db, data=None, out=out)
    assert run_chat(args, stdin=io.StringIO(script), stdout=stdout) == 0
    text = stdout.getvalue()
    pdfs = list(out.glob("synthese-ptce-*.pdf"))
    pngs = list(out.glob("profil-ptce-*.png"))
    assert len(pdfs) == 1 and len(pngs) == 1
    assert f"Document PDF : {pdfs[0]}" in text and f"Image du profil : {pngs[0]}" in text
    assert pdfs[0].read_bytes().startswith(b"%PDF-") and pngs[0].read_bytes().startswith(b"\x89PNG")
    assert "Pôle Test" in flat(pages_text(pdfs[0].read_bytes())[0])


def test_export_command_writes_next_to_the_database_or_into_out(tmp_path, kb, capsys):
    db = tmp_path / "base.db"
    store = ProgressStore.open(db)
    engine = Engine(kb, store)
    chat = Chat(engine, user="cli:sam")
    chat.send("/orientation")
    chat.press("De filière")
    engine.close()

    assert cli_main(["export", "--user", "sam", "--db", str(db)]) == 0
    printed = capsys.readouterr().out
    assert list(tmp_path.glob("synthese-ptce-*.pdf")) and list(tmp_path.glob("profil-ptce-*.png"))
    assert str(tmp_path) in printed

    out = tmp_path / "out"
    assert cli_main(["export", "--user", "sam", "--db", str(db), "--out", str(out)]) == 0
    assert len(list(out.iterdir())) == 2

    assert cli_main(["export", "--user", "nobody", "--db", str(db)]) == 2
    assert "Aucun utilisateur « nobody »" in capsys.readouterr().err


def test_export_of_a_user_without_answers_explains_and_writes_nothing(tmp_path, kb, capsys):
    db = tmp_path / "base.db"
    store = ProgressStore.open(db)
    engine = Engine(kb, store)
    engine.handle("cli:lou", Command("start"))
    engine.close()
    out = tmp_path / "out"
    assert cli_main(["export", "--user", "lou", "--db", str(db), "--out", str(out)]) == 2
    assert "aucune question" in capsys.readouterr().out
    assert not out.exists() or not list(out.iterdir())


# --------------------------------------------------------------------------- the short synthesis


def test_derived_short_synthesis_is_short_and_comes_first(kb, mature):
    from report.content import SHORT_MAX, short_synthesis

    lines = short_synthesis(build_synthesis(kb.synthesis, MATURE_FILIERE_SCIC))
    assert lines and sum(len(line) for line in lines) <= SHORT_MAX
    first = flat(pages_text(mature.pdf)[0])
    assert first.index("L’essentiel") < first.index("Synthèse détaillée")
    assert "piste de formalisation" in first.lower()


def test_the_first_page_holds_the_chat_short_synthesis(kb):
    """The report follows the same statements as the chat: profile, next steps with their pages."""
    first = flat(pages_text(report(kb, MATURE_FILIERE_SCIC).pdf)[0])
    synthesis = build_synthesis(kb.synthesis, MATURE_FILIERE_SCIC)
    assert "Votre profil" in first and "Voir le détail" not in first
    for line in synthesis.section(NEXT_STEPS_SECTION).lines:
        assert french_spacing(strip_markup(line.text))[:40] in first
        assert f"chapitre {line.chapter}, p. {line.page}" in first.replace(NNBSP, " ")


def test_terminal_explains_when_the_folder_cannot_be_written_and_goes_on(tmp_path):
    import argparse

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    stdout = io.StringIO()
    script = "/orientation\n1\npdf\n1\n/progression\n"
    args = argparse.Namespace(user="alex", db=tmp_path / "chat.db", data=None, out=blocked)
    assert run_chat(args, stdin=io.StringIO(script), stdout=stdout) == 0
    text = stdout.getvalue()
    assert f"Impossible d’écrire le document dans {blocked}" in text
    assert "Votre progression" in text  # the chat went on


def test_the_picture_tells_difficulties_from_strengths():
    """« Disparité : EPCI différents » ticked is drawn as a cross, never as a filled square (issue #20)."""
    from report.profile import Label, Mark, layout, load_profile

    answers = {"disparites": ["epci_differents"], "fonctions": ["coordination"], "pression_financeurs": "oui"}
    shapes = layout(load_profile(), answers, "Profil")
    labels = [(shape, shapes[index + 1]) for index, shape in enumerate(shapes[:-1]) if isinstance(shape, Mark)]
    by_label = {label.text.replace("\u202f", " "): mark for mark, label in labels if isinstance(label, Label)}
    assert by_label["Disparité : EPCI différents"].difficulty and by_label["Pression de financeurs"].difficulty
    assert not by_label["Coordination"].difficulty
    assert by_label["Coordination"].status is by_label["Disparité : EPCI différents"].status is Status.PRESENT
    assert "difficulté signalée" in by_label  # the legend says what the cross means
    assert "Besoins du territoire" not in by_label  # a theme without any answer is left out
