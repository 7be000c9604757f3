"""Every send beside the conversation goes through the outbox (issue #21): documents, team posts, team answers.

The bot runs in-process against the fake Bot API core with a team chat. Faults are injected
on the side sends the fault run found fragile: a PDF upload answered late (one PDF, not two),
a flood wait longer than the channel's cap (delivered, not lost), a refused document (the
person is told), a hand-over post answered late (posted once, the advisor's reply to it still
reaches the person), a late answer to the person (once), an edited answer (not delivered
again), a reply from someone who is not an advisor (ignored with a note), the team's
administrators managing the list, the cap on hand-overs per hour, and /oublier deleting the
person's posts in the team chat.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from tests.support.bot_api import ADVISOR, TEAM_CHAT_ID, FakeBotApi, Late, SentMessage, Status, bad_request
from tests.support.launcher import InProcessBot, Launcher

TIMEOUT = 30.0
OTHER_MEMBER = {"id": 4343, "is_bot": False, "first_name": "Sacha"}
ADMIN = {"id": 4444, "is_bot": False, "first_name": "Alix"}


def _user(number: int) -> dict[str, Any]:
    return {"id": 81_000 + number, "is_bot": False, "first_name": f"P{number}", "language_code": "fr"}


def _texts(api: FakeBotApi, user: dict[str, Any]) -> list[str]:
    return [t.replace("\u00a0", " ") for t in api.texts(user["id"])]


def _button(api: FakeBotApi, user: dict[str, Any], part: str) -> tuple[SentMessage, str]:
    for message in reversed(api.chat_messages(user["id"])):
        for label, data in message.buttons():
            if part in label:
                return message, data
    raise LookupError(part)


async def _hand_over(api: FakeBotApi, bot: InProcessBot, user: dict[str, Any], question: str) -> None:
    api.send_text(user, question)
    api.send_text(user, "je veux parler à quelqu’un")
    await bot.settle(TIMEOUT)
    message, data = _button(api, user, "Transmettre ma question")
    api.press(user, message, data)
    await bot.settle(TIMEOUT)
    message, data = _button(api, user, "Seulement la question")
    api.press(user, message, data)
    await bot.settle(TIMEOUT)


def _posts(api: FakeBotApi) -> list[SentMessage]:
    return [m for m in api.team_messages() if m.text.replace("\u00a0", " ").startswith("Question n°")]


async def _reach_report(api: FakeBotApi, bot: InProcessBot, user: dict[str, Any]) -> None:
    api.send_text(user, "/orientation")
    question = await api.until(
        lambda: next((m for m in api.chat_messages(user["id"]) if "Étape 1/" in m.text and m.buttons()), None), TIMEOUT)
    _, territory = question.button(lambda label: "territoire" in label.lower())
    api.press(user, question, territory)
    await bot.settle(TIMEOUT)
    api.send_text(user, "envoie-moi le document")
    await bot.settle(TIMEOUT)
    api.send_text(user, "Pôle Test")


# =========================================================================== documents


async def test_pdf_answered_late_is_uploaded_once_and_the_person_is_told(launcher: Launcher, tmp_path: Path) -> None:
    api = launcher.api
    user = _user(1)
    async with launcher.in_process(tmp_path / "late-pdf.db", read_timeout=1.0) as bot:
        api.inject("sendDocument", Late(1.5))  # Telegram has the PDF; its answer comes after the client gave up
        await _reach_report(api, bot, user)
        await api.until(lambda: any("peut-être mis du temps" in t for t in _texts(api, user)), 60)
        await bot.settle(TIMEOUT)
        await asyncio.sleep(1.0)
        await bot.settle(TIMEOUT)
    documents = [c for c in api.calls if c.method == "sendDocument"]
    assert len(documents) == 1  # never a second PDF
    assert [f.method for f in api.files] == ["sendDocument", "sendPhoto"]


async def test_long_flood_wait_on_the_pdf_is_waited_out_not_lost(launcher: Launcher, tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    api = launcher.api
    user = _user(2)
    async with launcher.in_process(tmp_path / "flood-pdf.db") as bot:
        api.inject("sendDocument", Status(429, retry_after=40))  # longer than the cap of the test timings
        await _reach_report(api, bot, user)
        await api.until(lambda: len(api.files) == 2, 60)
        await bot.settle(TIMEOUT)
    assert [c.failed for c in api.calls if c.method == "sendDocument"] == [True, False]
    assert "Task exception was never retrieved" not in caplog.text


async def test_refused_document_is_explained_to_the_person(launcher: Launcher, tmp_path: Path) -> None:
    api = launcher.api
    user = _user(3)
    async with launcher.in_process(tmp_path / "refused-pdf.db") as bot:
        api.inject("sendDocument", bad_request("file is too big"))
        await _reach_report(api, bot, user)
        await api.until(lambda: any("n’a pas pu être préparé" in t for t in _texts(api, user)), 60)
        await bot.settle(TIMEOUT)
    assert [f.method for f in api.files] == ["sendPhoto"]


# =========================================================================== the team chat


async def test_team_post_answered_late_is_posted_once_and_its_reply_still_delivered(launcher: Launcher, tmp_path: Path) -> None:
    api = launcher.api
    user = _user(4)
    advisors = frozenset({ADVISOR["id"]})
    async with launcher.in_process(tmp_path / "late-post.db", team_chat=TEAM_CHAT_ID, read_timeout=1.0,
                                   advisors=advisors) as bot:
        # The post reaches the team chat, its answer comes after the client gave up.
        api.inject_for_chat("sendMessage", TEAM_CHAT_ID, Late(1.5))
        await _hand_over(api, bot, user, "Comment associer une collectivité ?")
        post = await api.until(lambda: next(iter(_posts(api)), None), TIMEOUT)
        await asyncio.sleep(1.6)
        await bot.settle(TIMEOUT)
        assert len(_posts(api)) == 1
        api.advisor_reply(post, "Commencez par la commission développement économique.")
        await api.until(lambda: any("commission développement" in t for t in _texts(api, user)), TIMEOUT)
        await bot.settle(TIMEOUT)
        assert sum("commission développement" in t for t in _texts(api, user)) == 1
    assert len(_posts(api)) == 1


async def test_late_answer_reaches_the_person_once_and_an_edit_is_not_resent(launcher: Launcher, tmp_path: Path) -> None:
    api = launcher.api
    user = _user(5)
    async with launcher.in_process(tmp_path / "late-answer.db", team_chat=TEAM_CHAT_ID, read_timeout=1.0,
                                   advisors=frozenset({ADVISOR["id"]})) as bot:
        await _hand_over(api, bot, user, "Quel statut pour notre PTCE ?")
        post = await api.until(lambda: next(iter(_posts(api)), None), TIMEOUT)
        api.inject_for_chat("sendMessage", user["id"], Late(1.5))  # the answer's delivery: answered too late
        reply_update = api.advisor_reply(post, "Une SCIC convient souvent.")
        await api.until(lambda: any("SCIC convient" in t for t in _texts(api, user)), TIMEOUT)
        await asyncio.sleep(1.6)
        await bot.settle(TIMEOUT)
        api.advisor_edit(post, reply_update, "Une SCIC convient souvent, voyez le chapitre 7.")
        await api.until(lambda: any("modifications ne sont pas transmises" in m.text for m in api.team_messages()), TIMEOUT)
        await bot.settle(TIMEOUT)
        delivered = [t for t in _texts(api, user) if t.startswith("Réponse de l’équipe")]
    assert len(delivered) == 1 and "chapitre 7" not in delivered[0]


async def test_only_advisors_answer_and_admins_manage_the_list(launcher: Launcher, tmp_path: Path) -> None:
    api = launcher.api
    user = _user(6)
    api.chat_admins.add(ADMIN["id"])
    async with launcher.in_process(tmp_path / "advisors.db", team_chat=TEAM_CHAT_ID,
                                   advisors=frozenset({ADVISOR["id"]})) as bot:
        await _hand_over(api, bot, user, "Comment financer un tiers-lieu ?")
        post = await api.until(lambda: next(iter(_posts(api)), None), TIMEOUT)
        api.advisor_reply(post, "Réponse d’un membre du groupe qui n’est pas conseiller.", advisor=OTHER_MEMBER)
        await api.until(lambda: any("Seuls les conseillers" in m.text for m in api.team_messages()), TIMEOUT)
        await bot.settle(TIMEOUT)
        assert not any(t.startswith("Réponse de l’équipe") for t in _texts(api, user))
        # A member who is not an administrator cannot add themselves.
        chatter = api.advisor_reply(None, "bonjour", advisor=OTHER_MEMBER)
        await bot.settle(TIMEOUT)
        api.send_text(OTHER_MEMBER, "/equipe ajouter", chat={"id": TEAM_CHAT_ID, "type": "supergroup"})
        await api.until(lambda: any("Seuls les administrateurs" in m.text for m in api.team_messages()), TIMEOUT)
        # An administrator adds them by replying to one of their messages.
        their_message = {"message_id": 1, "date": 0, "chat": {"id": TEAM_CHAT_ID, "type": "supergroup"},
                         "from": OTHER_MEMBER, "text": "bonjour"}
        assert chatter
        api.send_text(ADMIN, "/equipe ajouter", chat={"id": TEAM_CHAT_ID, "type": "supergroup"},
                      reply_to_message=their_message)
        await api.until(lambda: any("Sacha peut désormais répondre" in m.text for m in api.team_messages()), TIMEOUT)
        api.advisor_reply(post, "Voyez les fonds de la région.", advisor=OTHER_MEMBER)
        await api.until(lambda: any("fonds de la région" in t for t in _texts(api, user)), TIMEOUT)
        api.send_text(ADMIN, "/equipe", chat={"id": TEAM_CHAT_ID, "type": "supergroup"})
        await api.until(lambda: any("Conseillers qui peuvent répondre" in m.text for m in api.team_messages()), TIMEOUT)


async def test_hand_overs_are_capped_per_hour_for_everyone(launcher: Launcher, tmp_path: Path) -> None:
    api = launcher.api
    async with launcher.in_process(tmp_path / "cap.db", team_chat=TEAM_CHAT_ID, handovers_per_hour=2) as bot:
        for number in (7, 8, 9):
            await _hand_over(api, bot, _user(number), f"Question numéro {number} pour l’équipe ?")
        await api.until(lambda: len(_posts(api)) == 2, TIMEOUT)
        await bot.settle(TIMEOUT)
        assert any("beaucoup de questions dans l’heure" in t for t in _texts(api, _user(9)))
        assert not any("beaucoup de questions" in t for t in _texts(api, _user(7)))
    assert len(_posts(api)) == 2


async def test_forget_deletes_the_persons_posts_in_the_team_chat(launcher: Launcher, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    api = launcher.api
    user, other = _user(10), _user(11)
    caplog.set_level(logging.INFO)
    async with launcher.in_process(tmp_path / "forget-team.db", team_chat=TEAM_CHAT_ID) as bot:
        await _hand_over(api, bot, user, "Ma question très personnelle ?")
        await _hand_over(api, bot, other, "La question de quelqu’un d’autre ?")
        await api.until(lambda: len(_posts(api)) == 2, TIMEOUT)
        mine = next(m for m in _posts(api) if "personnelle" in m.text)
        api.send_text(user, "/oublier")
        await bot.settle(TIMEOUT)
        message, data = _button(api, user, "Oui, tout effacer")
        api.press(user, message, data)
        await api.until(lambda: (TEAM_CHAT_ID, mine.message_id) in api.deleted, TIMEOUT)
        await bot.settle(TIMEOUT)
    assert api.deleted == [(TEAM_CHAT_ID, mine.message_id)]  # the other person's post stays
    assert [m for m in _posts(api) if "personnelle" in m.text] == []
