"""The group view of a collective as a PDF and a picture (« Recevoir la vue de groupe (PDF) »).

The PDF is read back with pypdf: what a coordinator would print for the next
meeting — counts, spreads per item, the anonymity threshold, debate points with
their chapter and page, the group synthesis — and nothing that tells who answered what.
"""

from __future__ import annotations

import argparse
import io
import re
from datetime import date

import pytest
from PIL import Image
from pypdf import PdfReader

from bot.terminal import run_chat
from dialogue.engine import Engine
from dialogue.features.collective.requests import GroupReportRequest
from dialogue.storage.progress import ProgressStore
from dialogue.types import MAX_PAYLOAD_BYTES, Reply, Say
from report import build_report
from report.profile import FIGURE_SIZE, PNG_DPI
from tests.test_collective import FIVE, answer_orientation, create_collective, join
from tests.test_telegram import no_wait  # noqa: F401  (a fixture)

PDF_BUTTON = "Recevoir la vue de groupe (PDF)"


def flat(text: str) -> str:
    """Extracted text with French no-break spaces and line breaks read as plain spaces."""
    return re.sub(r"\s+", " ", text.replace("\u202f", " ").replace("\u00a0", " "))


def pdf_text(pdf: bytes) -> str:
    return flat(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages))


def five_members(engine: Engine, coordinator_user: str = "coord"):
    coordinator, code = create_collective(engine, coordinator_user)
    members = {}
    for user, answers in FIVE.items():
        members[user] = join(engine, user, code, sign="Anne" if user == "m2" else None)
        answer_orientation(members[user], answers)
    return coordinator, members


def request_of(chat) -> GroupReportRequest:
    (attachment,) = [reply.attachment for reply in chat.replies if reply.attachment is not None]
    assert isinstance(attachment, GroupReportRequest)
    return attachment


@pytest.fixture
def group(engine: Engine):
    return five_members(engine)


def test_the_coordinator_gets_the_group_view_as_pdf_and_picture(group, kb):
    coordinator, _ = group
    coordinator.send("/collectif")
    button = coordinator.button(PDF_BUTTON)
    assert len(button.payload.encode()) <= MAX_PAYLOAD_BYTES
    coordinator.press(PDF_BUTTON)
    assert "Je prépare la vue de groupe de « PTCE Vallée de l’Oise » en PDF" in coordinator.text
    request = request_of(coordinator)
    files = build_report(kb, request)
    assert re.fullmatch(rf"vue-de-groupe-{date.today().isoformat()}-\d{{6}}-[0-9a-f]{{4}}\.pdf", files.pdf_name)
    reader = PdfReader(io.BytesIO(files.pdf))
    assert 2 <= len(reader.pages) <= 8
    text = pdf_text(files.pdf)
    first = flat(reader.pages[0].extract_text())
    assert "Vue de groupe — PTCE Vallée de l’Oise" in first
    assert "Institut Godin" in first and "Établie le" in first
    assert "Ont ouvert l’invitation : 5" in first and "Membres (coordination comprise) : 6" in first
    assert "Ont commencé le parcours : 5" in first and "L’ont terminé : 5" in first
    assert "Mesure de l’accord" in first
    # the picture: the spread per item, and no bar below three answers
    assert "PTCE de territoire — 4/5" in text and "Coordination — 5/5" in text and "Animation — 3/5" in text
    picture = flat(reader.pages[1].extract_text())
    assert "Pression de financeurs" in picture and "moins de 3 réponses" in picture
    assert not re.search(r"Pression de financeurs — \d", picture)  # two answers: no count at all
    # agreement / divergence, most divergent first
    divergent = text.split("Où vos avis divergent")[1].split("Où vous êtes d’accord")[0]
    assert divergent.index("Vos membres partagent-ils la volonté") < divergent.index("Comment jugez-vous la solidité")
    assert "accord 40 %" in divergent and "Oui, largement : 2 · Seulement certains : 1 · Non : 2" in divergent
    # the sparse question: named, never its two answers
    sparse = text.split("Questions qui ont moins de 3 réponses")[1].split("Points à mettre en débat")[0]
    assert "Des financeurs ou des collectivités vous poussent-ils à créer une structure ? — moins de 3 réponses" in sparse
    assert "Des financeurs ou des collectivités vous poussent-ils à créer une structure ?** — accord" not in text
    debate = text.split("Points à mettre en débat")[1].split("Synthèse du groupe")[0]
    assert "Une volonté partagée de formaliser — chap. 07 — Gouvernance et formalisation, p. 17" in debate
    assert "Ce que dit le document" in debate and "À discuter ensemble" in debate
    synthesis = text.split("Synthèse du groupe")[1]
    assert "Piste qui ressort des réponses majoritaires" in synthesis
    assert "⚖ Piste fragile : vos avis divergent sur « Vos membres partagent-ils la volonté" in synthesis
    # nobody's identity next to anything: only the one who chose to sign, in the list of signatures
    assert "Ont choisi de signer : Anne." in text and text.count("Anne") == 1
    for user in FIVE:
        assert not re.search(rf"\b{user}\b", text)
    assert "Page 1/" in text and "ne remplace pas un accompagnement" in text
    image = Image.open(io.BytesIO(files.png))
    assert image.size == (round(FIGURE_SIZE[0] * PNG_DPI), round(FIGURE_SIZE[1] * PNG_DPI))
    assert len(set(image.convert("L").tobytes())) > 8  # not blank: bars, text, greys


def test_a_member_without_permission_is_refused_and_allowed_once_opened(group, engine: Engine):
    coordinator, members = group
    member = members["m1"]
    member.send("/collectif")
    assert PDF_BUTTON not in member.labels
    cid = next(b.payload for b in member.buttons if b.payload.startswith("k:leave:")).split(":")[2]
    member.choose(f"k:pdf:{cid}")  # a forged button
    assert "réservée à la personne qui coordonne" in member.text
    assert all(reply.attachment is None for reply in member.replies)
    outsider = type(member)(engine, "outsider")
    outsider.choose(f"k:pdf:{cid}")
    assert "Vous ne faites pas partie de ce collectif" in outsider.text
    assert all(reply.attachment is None for reply in outsider.replies)

    coordinator.send("/collectif")
    coordinator.press("Montrer la vue aux membres")
    member.send("/collectif")
    member.press(PDF_BUTTON)
    assert request_of(member).profile.participation.finished == 5


def test_a_closed_collective_still_gives_its_pdf_and_a_deleted_one_says_so(group, kb):
    coordinator, _ = group
    coordinator.send("/collectif")
    cid = coordinator.button(PDF_BUTTON).payload.split(":")[2]
    coordinator.press("Clore le collectif")
    coordinator.press("Oui, clore")
    coordinator.send("/collectif")
    coordinator.press(PDF_BUTTON)
    request = request_of(coordinator)
    assert request.closed
    assert "Collectif clos" in pdf_text(build_report(kb, request).pdf)

    coordinator.press("Voir le collectif")
    coordinator.press("Supprimer le collectif")
    coordinator.press("Oui, supprimer")
    coordinator.choose(f"k:pdf:{cid}")  # the button of an older message
    assert "Ce collectif n’existe plus" in coordinator.text
    assert all(reply.attachment is None for reply in coordinator.replies)


def test_terminal_writes_the_group_files(tmp_path, kb):
    db = tmp_path / "base.db"
    engine = Engine(kb, ProgressStore.open(db))
    five_members(engine, coordinator_user="cli:marie")
    engine.close()
    out = tmp_path / "out"
    stdout = io.StringIO()
    args = argparse.Namespace(user="marie", db=db, data=None, out=out)
    assert run_chat(args, stdin=io.StringIO("/collectif\n1\n"), stdout=stdout) == 0
    printed = stdout.getvalue()
    pdfs, pngs = list(out.glob("vue-de-groupe-*.pdf")), list(out.glob("vue-de-groupe-*.png"))
    assert len(pdfs) == 1 and len(pngs) == 1
    assert f"Document PDF : {pdfs[0]}" in printed and f"Image de la vue de groupe : {pngs[0]}" in printed
    assert "Vue de groupe — PTCE Vallée de l’Oise" in pdf_text(pdfs[0].read_bytes())
    assert pngs[0].read_bytes().startswith(b"\x89PNG")


# --------------------------------------------------------------------------- Telegram (offline seam)


@pytest.fixture
def group_request(engine: Engine) -> GroupReportRequest:
    coordinator, _ = five_members(engine)
    coordinator.send("/collectif")
    coordinator.press(PDF_BUTTON)
    return request_of(coordinator)


@pytest.fixture
async def telegram(no_wait, kb, group_request):
    from bot.telegram.app import build_application
    from tests.test_telegram import TOKEN, FakeEngine, error_recorder, make_api, offline, recording_timing

    fake = FakeEngine(kb)
    fake.script[Say("groupe")] = [Reply("Je prépare la vue de groupe.", attachment=group_request)]
    request = make_api()
    app = build_application(fake, TOKEN, timing=recording_timing(no_wait), rate_limit=False, **offline(request))
    errors: list[BaseException] = []
    app.add_error_handler(error_recorder(errors))
    async with app:
        request.reset_calls()
        yield app, request
    assert errors == [], errors


async def test_telegram_sends_the_group_pdf_and_picture(telegram):
    from bot.telegram.app import drain
    from tests.test_report_telegram import uploads
    from tests.test_telegram import USER_ID, text_update

    app, request = telegram
    await app.process_update(text_update(app, "groupe"))
    await drain(app)
    assert request.methods() == ["sendMessage", "sendChatAction", "sendDocument", "sendPhoto"]
    (doc_method, doc_name, pdf, doc_params), (photo_method, photo_name, png, photo_params) = uploads(request)
    assert doc_method == "sendDocument"
    assert re.fullmatch(rf"vue-de-groupe-{date.today().isoformat()}-\d{{6}}-[0-9a-f]{{4}}\.pdf", doc_name)
    assert doc_params["caption"] == "La vue de groupe de votre collectif (PDF)"
    assert "Vue de groupe — PTCE Vallée de l’Oise" in pdf_text(pdf)
    assert photo_method == "sendPhoto" and photo_name.endswith(".png") and png.startswith(b"\x89PNG\r\n\x1a\n")
    assert "\n" not in photo_params["caption"] and "pas un score" in photo_params["caption"]
    assert int(doc_params["chat_id"]) == int(photo_params["chat_id"]) == USER_ID
