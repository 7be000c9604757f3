"""Regards croisés end to end: the whole bot in-process against the fake Bot API core.

A coordinator creates a collective in private chat and gets a ``t.me`` invitation link,
links a group chat (where the bot posts the link), three members open the link
(``/start <code>``), join and answer a question in private; the bot is restarted on the
same database; the coordinator's group view then counts the three answers, while a
member still sees no distribution.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.bot_api import BOT_USERNAME, FAKE_TOKEN, FakeBotApi, SentMessage
from tests.support.launcher import InProcessBot, Launcher

STEP_TIMEOUT = 15.0
COORDINATOR = {"id": 4101, "is_bot": False, "first_name": "Marie", "language_code": "fr"}
MEMBERS = [{"id": 4200 + i, "is_bot": False, "first_name": f"Membre {i}", "language_code": "fr"} for i in range(1, 4)]
GROUP = {"id": -1004242, "type": "supergroup", "title": "PTCE Vallée de l’Oise"}
LINK = re.compile(rf"https://t\.me/{BOT_USERNAME}\?start=([A-Za-z0-9_-]+)")


def plain(message: SentMessage) -> str:
    """What the person reads: HTML tags removed, entities decoded, non-breaking spaces as spaces."""
    return html.unescape(re.sub(r"<[^>]+>", "", message.text)).replace("\u00a0", " ")


async def exchange(api: FakeBotApi, bot: InProcessBot, chat_id: int, action: Callable[[], object]) -> list[SentMessage]:
    """Run ``action`` (one queued update) and return the messages sent to ``chat_id`` in reply."""
    before = {m.message_id for m in api.chat_messages(chat_id)}
    action()
    await bot.settle(STEP_TIMEOUT)
    sent = [m for m in api.chat_messages(chat_id) if m.message_id not in before]
    assert sent, f"aucune réponse dans la conversation {chat_id}"
    return sent


def with_button(messages: list[SentMessage], label: str) -> tuple[SentMessage, str]:
    for message in reversed(messages):
        for text, data in message.buttons():
            if label.casefold() in text.casefold():
                return message, data
    raise AssertionError(f"pas de bouton « {label} » dans {[m.buttons() for m in messages]}")


def text_of(messages: list[SentMessage]) -> str:
    return "\n\n".join(plain(m) for m in messages)


async def test_coordinator_and_three_members_across_a_restart(launcher: Launcher, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    api = launcher.api
    db = tmp_path / "collective.db"
    async with launcher.in_process(db, rate_limit=True) as bot:
        (commands,) = api.calls_to("setMyCommands")
        assert {"collectif", "rejoindre"} <= {c["command"] for c in commands.params["commands"]}

        coordinator_chat = COORDINATOR["id"]
        home = await exchange(api, bot, coordinator_chat, lambda: api.send_text(COORDINATOR, "/collectif"))
        message, create = with_button(home, "Créer un collectif")
        await exchange(api, bot, coordinator_chat, lambda: api.press(COORDINATOR, message, create))
        await exchange(api, bot, coordinator_chat, lambda: api.send_text(COORDINATOR, "PTCE Vallée de l’Oise"))
        created = await exchange(api, bot, coordinator_chat, lambda: api.send_text(COORDINATOR, "Marie, coordinatrice"))
        link = LINK.search(text_of(created))
        assert link, text_of(created)
        code = link.group(1)
        assert len(code) <= 64 and "/rejoindre" not in text_of(created)

        posted = await exchange(api, bot, GROUP["id"], lambda: api.send_text(COORDINATOR, "/collectif", chat=GROUP))
        group_text = text_of(posted)
        assert "Ce groupe est maintenant lié au collectif « PTCE Vallée de l’Oise »" in group_text
        assert f"https://t.me/{BOT_USERNAME}?start={code}" in group_text
        assert "en message privé" in group_text
        public = await exchange(api, bot, GROUP["id"], lambda: api.send_text(MEMBERS[0], f"/rejoindre {code}", chat=GROUP))
        assert "écrivez-moi en message privé" in text_of(public) and not any(m.buttons() for m in public)

        for member, option in zip(MEMBERS, ["territoire", "territoire", "filiere"]):
            chat = member["id"]
            invitation = await exchange(api, bot, chat, lambda m=member: api.send_text(m, f"/start {code}"))
            assert "Marie, coordinatrice vous invite à rejoindre « PTCE Vallée de l’Oise »" in text_of(invitation)
            assert "Ce qui ne le sera pas" in text_of(invitation)
            message, data = with_button(invitation, "Rejoindre")
            welcome = await exchange(api, bot, chat, lambda m=member, msg=message, d=data: api.press(m, msg, d))
            assert "Bienvenue dans « PTCE Vallée de l’Oise »" in text_of(welcome)
            message, data = with_button(welcome, "Commencer l’orientation")
            question = await exchange(api, bot, chat, lambda m=member, msg=message, d=data: api.press(m, msg, d))
            message, data = with_button(question, "De territoire" if option == "territoire" else "De filière")
            assert data == f"a:typologie:{option}"
            await exchange(api, bot, chat, lambda m=member, msg=message, d=data: api.press(m, msg, d))
    assert bot.exit_code == 0

    async with launcher.in_process(db, rate_limit=True) as bot:
        view = text_of(await exchange(api, bot, coordinator_chat, lambda: api.send_text(COORDINATOR, "/collectif")))
        assert "Regards croisés — « PTCE Vallée de l’Oise »" in view
        assert "Ont ouvert l’invitation : 3 · membres (coordination comprise) : 4 · parcours commencé : 3" in view
        assert "Votre dynamique est plutôt un PTCE… — accord 67 %" in view
        assert "De territoire (multithématique) : 2 · De filière : 1" in view

        member_view = text_of(await exchange(api, bot, MEMBERS[0]["id"], lambda: api.send_text(MEMBERS[0], "/collectif")))
        assert "La vue de groupe n’est pas ouverte aux membres" in member_view
        assert "accord" not in member_view and "De filière" not in member_view

        # Differencing (issue 21): a fourth member answers; the coordinator looks again and reads nothing new.
        late = {"id": 4299, "is_bot": False, "first_name": "Membre 4", "language_code": "fr"}
        invitation = await exchange(api, bot, late["id"], lambda: api.send_text(late, f"/start {code}"))
        message, data = with_button(invitation, "Rejoindre")
        welcome = await exchange(api, bot, late["id"], lambda: api.press(late, message, data))
        message, data = with_button(welcome, "Commencer l’orientation")
        question = await exchange(api, bot, late["id"], lambda: api.press(late, message, data))
        message, data = with_button(question, "De filière")
        await exchange(api, bot, late["id"], lambda: api.press(late, message, data))
        again = text_of(await exchange(api, bot, coordinator_chat, lambda: api.send_text(COORDINATOR, "/collectif")))
        assert "parcours commencé : 4" in again  # who started is no answer…
        assert "Votre dynamique est plutôt un PTCE… — accord 67 %" in again  # …and the counts did not move
        assert "De territoire (multithématique) : 2 · De filière : 1" in again
    assert bot.exit_code == 0
    errors = [r for r in caplog.records if r.name.startswith("bot") and r.levelno >= logging.ERROR]
    assert errors == [] and "Erreur pendant le traitement" not in caplog.text, caplog.text
    assert FAKE_TOKEN.split(":")[1] not in caplog.text
