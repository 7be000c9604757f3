"""The PDF report on Telegram: offline through PTB's ``BaseRequest`` seam, then end to end.

Offline, the channel gets a reply carrying a report request and must send the text,
then a real PDF (``sendDocument``) and a real PNG (``sendPhoto``), building them in a
worker thread: a second user is answered while the first one's report is still being
built. End to end, the whole bot runs in-process against the fake Bot API core.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import threading
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from bot.telegram import reports
from bot.telegram.app import build_application, drain
from bot.telegram.channel import channel_of
from dialogue.types import Reply, ReportRequest, Say
from tests.support.bot_api import FakeBotApi
from tests.test_telegram import (
    OTHER,
    TOKEN,
    USER_ID,
    FakeEngine,
    error_recorder,
    make_api,
    offline,
    recording_timing,
    text_update,
)

STEP_TIMEOUT = 15.0
DAY = date(2026, 5, 1)
REQUEST = ReportRequest("synthesis", {"typologie": "territoire", "logiques": ["reseau"]}, DAY, "Pôle Test")


def uploads(api: FakeBotApi) -> list[tuple[str, str, bytes, dict[str, Any]]]:
    """(method, file name, bytes, parameters) of every file the bot uploaded, in order."""
    calls = [c.params for c in api.calls if c.method in {"sendDocument", "sendPhoto"} and not c.failed]
    return [(f.method, f.filename, f.content, params) for f, params in zip(api.files, calls)]


@pytest.fixture
def waits() -> list[float]:
    """The channel's waits, recorded instead of waited."""
    return []


@pytest.fixture
async def channel(waits, kb):
    engine = FakeEngine(kb)
    engine.script[Say("pdf")] = [Reply("Voici votre synthèse en PDF.", attachment=REQUEST)]
    api = make_api()
    app = build_application(engine, TOKEN, timing=recording_timing(waits), rate_limit=False, **offline(api))
    errors: list[BaseException] = []
    app.add_error_handler(error_recorder(errors))
    async with app:
        api.reset_calls()
        yield app, api
    assert errors == [], errors


async def test_pdf_and_picture_are_sent_after_the_text(channel):
    app, request = channel
    await app.process_update(text_update(app, "pdf"))
    await drain(app)
    assert request.methods() == ["sendMessage", "sendChatAction", "sendDocument", "sendPhoto"]
    assert "Voici votre synthèse" in request.sent()[0]["text"]
    (doc_method, doc_name, pdf, doc_params), (photo_method, photo_name, png, photo_params) = uploads(request)
    assert doc_method == "sendDocument"
    assert re.fullmatch(r"synthese-ptce-2026-05-01-\d{6}-[0-9a-f]{4}\.pdf", doc_name)  # unique per report
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(pdf))
    assert 2 <= len(reader.pages) <= 5
    assert "Pôle Test" in reader.pages[0].extract_text()
    assert photo_method == "sendPhoto" and png.startswith(b"\x89PNG\r\n\x1a\n")
    caption = photo_params["caption"]
    assert "\n" not in caption and "pas un score" in caption
    assert int(doc_params["chat_id"]) == int(photo_params["chat_id"]) == USER_ID


async def test_another_user_is_answered_while_a_report_is_built(channel, monkeypatch):
    app, request = channel
    building = threading.Event()
    release = threading.Event()
    real_build = reports.build_files

    def slow_build(kb, report_request):
        building.set()
        assert release.wait(20), "the test never released the build"
        return real_build(kb, report_request)

    monkeypatch.setattr(reports, "build_files", slow_build)
    await app.process_update(text_update(app, "pdf"))
    try:
        for _ in range(200):
            if building.is_set():
                break
            await asyncio.sleep(0.02)
        assert building.is_set()
        # The event loop is free: the other user's message is answered at once.
        other = text_update(app, "bonjour", user=OTHER, chat={"id": OTHER["id"], "type": "private"})
        await asyncio.wait_for(app.process_update(other), timeout=10)
        await asyncio.wait_for(channel_of(app).sender.join(), timeout=10)
        answered = [p for p in request.sent() if int(p["chat_id"]) == OTHER["id"]]
        assert answered and "bonjour" in answered[0]["text"]
        assert "sendDocument" not in request.methods()
    finally:
        release.set()
        await asyncio.wait_for(drain(app), timeout=30)
    assert request.methods()[-2:] == ["sendDocument", "sendPhoto"]


async def test_a_failed_build_apologises_without_breaking_the_conversation(channel, monkeypatch):
    app, request = channel

    def broken(kb, report_request):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(reports, "build_files", broken)
    await app.process_update(text_update(app, "pdf"))
    await drain(app)
    assert request.methods() == ["sendMessage", "sendChatAction", "sendMessage"]
    assert "n’a pas pu être préparé" in request.sent()[-1]["text"]


async def test_nothing_answered_gets_a_clear_message(channel):
    app, request = channel
    engine = channel_of(app).engine
    empty = ReportRequest("synthesis", {"typologie": None}, DAY)
    engine.script[Say("vide")] = [Reply("Voici.", attachment=empty)]
    await app.process_update(text_update(app, "vide"))
    await drain(app)
    assert request.methods() == ["sendMessage", "sendChatAction", "sendMessage"]
    assert "aucune question" in request.sent()[-1]["text"]


# --------------------------------------------------------------------------- end to end


async def test_end_to_end_document_and_photo_while_another_user_is_served(launcher, tmp_path: Path, caplog) -> None:
    user = {"id": 31337, "is_bot": False, "first_name": "Camille", "language_code": "fr"}
    other = {"id": 42424, "is_bot": False, "first_name": "Dominique", "language_code": "fr"}
    api = launcher.api
    async with launcher.in_process(tmp_path / "e2e.db", rate_limit=True) as bot:
        after = len(api.calls)
        api.send_text(user, "/orientation")
        question = await api.until(
            lambda: next((m for m in api.chat_messages(user["id"]) if "Étape 1/" in m.text and m.buttons()), None),
            STEP_TIMEOUT,
        )
        _, territory = question.button(lambda label: "territoire" in label.lower())
        api.press(user, question, territory)
        await api.until(lambda: any("Étape 2/" in m.text for m in api.chat_messages(user["id"])), STEP_TIMEOUT)
        api.send_text(user, "envoie-moi le document")
        await api.until(lambda: any("Quel nom donner" in m.text for m in api.chat_messages(user["id"])), STEP_TIMEOUT)
        api.send_text(user, "Pôle « Les Coopérants »")
        api.send_text(other, "/start")
        await api.until(lambda: len(api.files) == 2, 60)
    assert bot.exit_code == 0
    document, photo = api.files
    assert document.method == "sendDocument" and document.filename.startswith("synthese-ptce-")
    assert document.filename.endswith(".pdf") and document.content.startswith(b"%PDF-")
    assert "Coopérants" in PdfReader(io.BytesIO(document.content)).pages[0].extract_text()
    assert photo.method == "sendPhoto" and photo.content.startswith(b"\x89PNG")
    assert "pas un score" in photo.caption
    calls = [c for c in api.calls[after:] if not c.failed]
    first_other = next(i for i, c in enumerate(calls) if c.method == "sendMessage" and int(c.params["chat_id"]) == other["id"])
    upload = next(i for i, c in enumerate(calls) if c.method == "sendDocument")
    assert first_other < upload  # the other user did not wait for the report
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
