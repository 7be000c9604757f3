"""The PDF report on Telegram: offline through PTB's ``BaseRequest`` seam, then end to end.

Offline, the channel gets a reply carrying a report request and must send the text,
then a real PDF (``sendDocument``) and a real PNG (``sendPhoto``), building them in a
worker thread: a second user is answered while the first one's report is still being
built. End to end, ``ptce-bot telegram`` runs against the loopback fake Bot API.
"""

from __future__ import annotations

import asyncio
import io
import threading
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

import bot.telegram as tg
import bot.telegram_report as tg_report
from dialogue.types import ReportRequest, Reply, Say
from tests.test_telegram import (  # noqa: F401  (no_wait is a fixture)
    OTHER,
    TOKEN,
    USER_ID,
    FakeEngine,
    RecordingRequest,
    _recorder,
    no_wait,
    text_update,
)

DAY = date(2026, 5, 1)
REQUEST = ReportRequest("synthesis", {"typologie": "territoire", "logiques": ["reseau"]}, DAY, "Pôle Test")


class MediaRecordingRequest(RecordingRequest):
    """Also answers sendDocument/sendPhoto like Telegram and keeps the uploaded bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.uploads: list[tuple[str, str, bytes, dict[str, Any]]] = []  # method, filename, bytes, params

    async def do_request(self, url, method, request_data=None, *args, **kwargs):
        endpoint = url.rsplit("/", 1)[-1]
        if endpoint in {"sendDocument", "sendPhoto"} and request_data is not None:
            for _, (filename, content, _mime) in request_data.multipart_data.items():
                data = content if isinstance(content, bytes) else content.read()
                self.uploads.append((endpoint, filename, data, dict(request_data.parameters)))
        return await super().do_request(url, method, request_data, *args, **kwargs)

    def _result(self, endpoint: str, params: dict[str, Any]) -> Any:
        if endpoint in {"sendDocument", "sendPhoto"}:
            message = self._message({"chat_id": params["chat_id"]})
            message.pop("text")
            return message
        return super()._result(endpoint, params)


@pytest.fixture
async def channel(no_wait, kb):
    engine = FakeEngine()
    engine.kb = kb
    engine.script[Say("pdf")] = [Reply("Voici votre synthèse en PDF.", attachment=REQUEST)]
    request = MediaRecordingRequest()
    app = tg.build_application(engine, TOKEN, request=request, get_updates_request=RecordingRequest(), rate_limit=False)
    errors: list[BaseException] = []
    app.add_error_handler(_recorder(errors))
    async with app:
        request.calls.clear()
        yield app, request
    assert errors == [], errors


async def test_pdf_and_picture_are_sent_after_the_text(channel):
    app, request = channel
    await app.process_update(text_update(app, "pdf"))
    await tg.drain(app)
    assert request.methods() == ["sendMessage", "sendChatAction", "sendDocument", "sendPhoto"]
    assert "Voici votre synthèse" in request.sent()[0]["text"]
    (doc_method, doc_name, pdf, doc_params), (photo_method, photo_name, png, photo_params) = request.uploads
    assert doc_method == "sendDocument" and doc_name == "synthese-ptce-2026-05-01.pdf"
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
    real_build = tg_report._build

    def slow_build(kb, report_request):
        building.set()
        assert release.wait(20), "the test never released the build"
        return real_build(kb, report_request)

    monkeypatch.setattr(tg_report, "_build", slow_build)
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
        await asyncio.wait_for(tg.channel_of(app).sender.join(), timeout=10)
        answered = [p for p in request.sent() if int(p["chat_id"]) == OTHER["id"]]
        assert answered and "bonjour" in answered[0]["text"]
        assert "sendDocument" not in request.methods()
    finally:
        release.set()
        await asyncio.wait_for(tg.drain(app), timeout=30)
    assert request.methods()[-2:] == ["sendDocument", "sendPhoto"]


async def test_a_failed_build_apologises_without_breaking_the_conversation(channel, monkeypatch):
    app, request = channel

    def broken(kb, report_request):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(tg_report, "_build", broken)
    await app.process_update(text_update(app, "pdf"))
    await tg.drain(app)
    assert request.methods() == ["sendMessage", "sendChatAction", "sendMessage"]
    assert "n’a pas pu être préparé" in request.sent()[-1]["text"]


async def test_nothing_answered_gets_a_clear_message(channel):
    app, request = channel
    engine = app.bot_data[tg._STATE_KEY].engine
    empty = ReportRequest("synthesis", {"typologie": None}, DAY)
    engine.script[Say("vide")] = [Reply("Voici.", attachment=empty)]
    await app.process_update(text_update(app, "vide"))
    await tg.drain(app)
    assert request.methods() == ["sendMessage", "sendChatAction", "sendMessage"]
    assert "aucune question" in request.sent()[-1]["text"]


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_end_to_end_document_and_photo_while_another_user_is_served(tmp_path: Path) -> None:
    from tests.fake_bot_api_media import MediaFakeBotApi
    from tests.test_telegram_e2e import STEP_TIMEOUT, _start_bot

    user = {"id": 31337, "is_bot": False, "first_name": "Camille", "language_code": "fr"}
    other = {"id": 42424, "is_bot": False, "first_name": "Dominique", "language_code": "fr"}
    with MediaFakeBotApi() as api:
        bot = _start_bot(api, tmp_path, tmp_path / "e2e.db", run=1)
        try:
            after = len(api.calls)
            api.send_text(user, "/orientation")
            question = api.wait_until(
                lambda: next((m for m in api.chat_messages(user["id"]) if "Étape 1/" in m.text and m.buttons()), None),
                STEP_TIMEOUT,
            )
            _, territory = question.button(lambda label: "territoire" in label.lower())
            api.press(user, question, territory)
            api.wait_until(lambda: any("Étape 2/" in m.text for m in api.chat_messages(user["id"])), STEP_TIMEOUT)
            api.send_text(user, "envoie-moi le document")
            api.wait_until(lambda: any("Quel nom donner" in m.text for m in api.chat_messages(user["id"])), STEP_TIMEOUT)
            api.send_text(user, "Pôle « Les Coopérants »")
            api.send_text(other, "/start")
            api.wait_until(lambda: len(api.files) == 2, 60)
            document, photo = api.files
            assert document.method == "sendDocument" and document.filename.startswith("synthese-ptce-")
            assert document.filename.endswith(".pdf") and document.content.startswith(b"%PDF-")
            assert "Coopérants" in PdfReader(io.BytesIO(document.content)).pages[0].extract_text()
            assert photo.method == "sendPhoto" and photo.content.startswith(b"\x89PNG")
            assert "pas un score" in photo.caption
            calls = api.calls[after:]
            first_other = next(i for i, c in enumerate(calls) if c.method == "sendMessage" and int(c.params["chat_id"]) == other["id"])
            upload = next(i for i, c in enumerate(calls) if c.method == "sendDocument")
            assert first_other < upload  # the other user did not wait for the report
            assert bot.terminate() == 0, bot.output()
            assert "Traceback" not in bot.output()
        finally:
            bot.kill()
