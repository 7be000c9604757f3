"""Regards croisés end to end: ``ptce-bot telegram`` against the loopback fake Bot API.

A coordinator creates a collective in private chat and gets a ``t.me`` invitation link,
links a group chat (where the bot posts the link), three members open the link
(``/start <code>``), join and answer a question in private; the bot is restarted on the
same database; the coordinator's group view then counts the three answers, while a
member still sees no distribution.
"""

from __future__ import annotations

import html
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_bot_api import BOT_USERNAME, FAKE_TOKEN, FakeBotApi, SentMessage

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 60.0
STEP_TIMEOUT = 15.0
COORDINATOR = {"id": 4101, "is_bot": False, "first_name": "Marie", "language_code": "fr"}
MEMBERS = [{"id": 4200 + i, "is_bot": False, "first_name": f"Membre {i}", "language_code": "fr"} for i in range(1, 4)]
GROUP = {"id": -1004242, "type": "supergroup", "title": "PTCE Vallée de l’Oise"}
LINK = re.compile(rf"https://t\.me/{BOT_USERNAME}\?start=([A-Za-z0-9_-]+)")


def plain(message: SentMessage) -> str:
    """What the person reads: HTML tags removed, entities decoded, non-breaking spaces as spaces."""
    return html.unescape(re.sub(r"<[^>]+>", "", message.text)).replace("\u00a0", " ")


class Bot:
    def __init__(self, api: FakeBotApi, tmp_path: Path, db: Path, run: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY") and not k.startswith("TELEGRAM_")}
        env |= {
            "TELEGRAM_BOT_TOKEN": FAKE_TOKEN,
            "TELEGRAM_BASE_URL": api.base_url,
            "PTCE_DB": str(db),
            "NO_PROXY": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        }
        self.log = tmp_path / f"collective-bot-{run}.log"
        self._out = self.log.open("wb")
        after = len(api.calls)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "telegram"], cwd=ROOT, env=env,
            stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.STDOUT,
        )
        try:
            api.wait_until(
                lambda: self.process.poll() is not None or any(c.method == "getUpdates" for c in api.calls[after:]),
                timeout=STARTUP_TIMEOUT,
            )
        except TimeoutError:
            self.kill()
            raise
        if self.process.poll() is not None:
            self.kill()
            pytest.fail(f"le bot s’est arrêté au démarrage :\n{self.output()}")

    def output(self) -> str:
        if not self._out.closed:
            self._out.flush()
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._out.close()


@pytest.fixture
def api() -> Iterator[FakeBotApi]:
    with FakeBotApi() as server:
        yield server


def exchange(api: FakeBotApi, chat_id: int, action) -> list[SentMessage]:
    """Run ``action`` (one queued update) and return the messages sent to ``chat_id`` in reply."""
    before = {m.message_id for m in api.chat_messages(chat_id)}
    after = len(api.calls)
    action()
    api.wait_idle(after=after, timeout=STEP_TIMEOUT)
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


def test_coordinator_and_three_members_across_a_restart(api: FakeBotApi, tmp_path: Path) -> None:
    db = tmp_path / "collective.db"
    bots: list[Bot] = []
    try:
        bots.append(Bot(api, tmp_path, db, run=1))
        commands = api.wait_for_call("setMyCommands", timeout=STEP_TIMEOUT)
        assert {"collectif", "rejoindre"} <= {c["command"] for c in commands.params["commands"]}

        coordinator_chat = COORDINATOR["id"]
        home = exchange(api, coordinator_chat, lambda: api.send_text(COORDINATOR, "/collectif"))
        message, create = with_button(home, "Créer un collectif")
        exchange(api, coordinator_chat, lambda: api.press(COORDINATOR, message, create))
        exchange(api, coordinator_chat, lambda: api.send_text(COORDINATOR, "PTCE Vallée de l’Oise"))
        created = exchange(api, coordinator_chat, lambda: api.send_text(COORDINATOR, "Marie, coordinatrice"))
        link = LINK.search(text_of(created))
        assert link, text_of(created)
        code = link.group(1)
        assert len(code) <= 64 and "/rejoindre" not in text_of(created)

        posted = exchange(api, GROUP["id"], lambda: api.send_text(COORDINATOR, "/collectif", chat=GROUP))
        group_text = text_of(posted)
        assert "Ce groupe est maintenant lié au collectif « PTCE Vallée de l’Oise »" in group_text
        assert f"https://t.me/{BOT_USERNAME}?start={code}" in group_text
        assert "en message privé" in group_text
        public = exchange(api, GROUP["id"], lambda: api.send_text(MEMBERS[0], f"/rejoindre {code}", chat=GROUP))
        assert "écrivez-moi en message privé" in text_of(public) and not any(m.buttons() for m in public)

        for member, option in zip(MEMBERS, ["territoire", "territoire", "filiere"]):
            chat = member["id"]
            invitation = exchange(api, chat, lambda m=member: api.send_text(m, f"/start {code}"))
            assert "Marie, coordinatrice vous invite à rejoindre « PTCE Vallée de l’Oise »" in text_of(invitation)
            assert "Ce qui ne le sera pas" in text_of(invitation)
            message, data = with_button(invitation, "Rejoindre")
            welcome = exchange(api, chat, lambda m=member, msg=message, d=data: api.press(m, msg, d))
            assert "Bienvenue dans « PTCE Vallée de l’Oise »" in text_of(welcome)
            message, data = with_button(welcome, "Commencer l’orientation")
            question = exchange(api, chat, lambda m=member, msg=message, d=data: api.press(m, msg, d))
            message, data = with_button(question, "De territoire" if option == "territoire" else "De filière")
            assert data == f"a:typologie:{option}"
            exchange(api, chat, lambda m=member, msg=message, d=data: api.press(m, msg, d))

        assert bots[-1].stop() == 0, bots[-1].output()
        bots.append(Bot(api, tmp_path, db, run=2))

        view = text_of(exchange(api, coordinator_chat, lambda: api.send_text(COORDINATOR, "/collectif")))
        assert "Regards croisés — « PTCE Vallée de l’Oise »" in view
        assert "Ont ouvert l’invitation : 3 · membres (coordination comprise) : 4 · parcours commencé : 3" in view
        assert "Votre dynamique est plutôt un PTCE… — accord 67 %" in view
        assert "De territoire (multithématique) : 2 · De filière : 1" in view

        member_view = text_of(exchange(api, MEMBERS[0]["id"], lambda: api.send_text(MEMBERS[0], "/collectif")))
        assert "La vue de groupe n’est pas ouverte aux membres" in member_view
        assert "accord" not in member_view and "De filière" not in member_view

        assert bots[-1].stop() == 0, bots[-1].output()
        for bot in bots:
            output = bot.output()
            assert "Traceback" not in output and "Erreur pendant le traitement" not in output, output
            assert FAKE_TOKEN.split(":")[1] not in output
    finally:
        for bot in bots:
            bot.kill()
