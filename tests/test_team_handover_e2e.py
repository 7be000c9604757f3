"""Hand-over round trip: ``ptce-bot telegram`` as a subprocess, a team chat on the loopback fake Bot API.

A user asks to talk to someone and hands over a question; the team chat
receives it with a reference number; the bot restarts; an advisor's chatter
in the team chat is ignored; the advisor's reply reaches the user, attributed
to the team, and the item is recorded as answered. A team chat the bot is not
a member of stops the bot at start-up with a clear error.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fake_bot_api import FAKE_TOKEN
from tests.fake_team_chat import TEAM_CHAT, TeamFakeBotApi

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
USER = {"id": 55501, "is_bot": False, "first_name": "Camille", "language_code": "fr"}
TIMEOUT = 30.0


def _launch(api: TeamFakeBotApi, tmp_path: Path, db: Path, run: int) -> tuple[subprocess.Popen, Path]:
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY") and not k.startswith("TELEGRAM_")}
    env |= {
        "TELEGRAM_BOT_TOKEN": FAKE_TOKEN,
        "TELEGRAM_BASE_URL": api.base_url,
        "TELEGRAM_TEAM_CHAT_ID": str(TEAM_CHAT["id"]),
        "PTCE_DB": str(db),
        "NO_PROXY": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / f"bot-{run}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "telegram"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )
    return process, log


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _ready(api: TeamFakeBotApi, process: subprocess.Popen, after: int) -> None:
    api.wait_until(lambda: process.poll() is not None or any(c.method == "getUpdates" for c in api.calls[after:]), TIMEOUT)
    assert process.poll() is None, "le bot s’est arrêté au démarrage"


def _user_texts(api: TeamFakeBotApi) -> list[str]:
    return [m.text for m in api.chat_messages(USER["id"])]


def _last_with_button(api: TeamFakeBotApi, label_part: str):
    for message in reversed(api.chat_messages(USER["id"])):
        for label, data in message.buttons():
            if label_part in label:
                return message, data
    raise LookupError(label_part)


def test_hand_over_round_trip_across_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "team.db"
    with TeamFakeBotApi() as api:
        process, log = _launch(api, tmp_path, db, 1)
        try:
            _ready(api, process, 0)
            assert api.calls_to("getChatMember"), "le groupe de l’équipe n’a pas été vérifié au démarrage"
            api.send_text(USER, "je veux parler à quelqu’un")
            api.wait_until(lambda: any("Transmettre ma question" in l for m in api.chat_messages(USER["id"]) for l, _ in m.buttons()), TIMEOUT)
            message, data = _last_with_button(api, "Transmettre ma question")
            api.press(USER, message, data)
            api.wait_until(lambda: any("Écrivez la question" in t for t in _user_texts(api)), TIMEOUT)
            api.send_text(USER, "Comment trouver des bénévoles pour notre PTCE ?")
            api.wait_until(lambda: any("Seulement la question" in l for m in api.chat_messages(USER["id"]) for l, _ in m.buttons()), TIMEOUT)
            message, data = _last_with_button(api, "Seulement la question")
            api.press(USER, message, data)
            api.wait_until(lambda: any("C’est transmis" in t for t in _user_texts(api)), TIMEOUT)
            post = api.wait_until(lambda: next((m for m in api.team_messages() if "Question n°" in m.text), None), TIMEOUT)
            assert "bénévoles" in post.text and "Question n° 1" in post.text
            assert str(USER["id"]) not in post.text  # the team sees a code, never the Telegram id
        finally:
            _stop(process)

        # Restart in the middle: the queue is in SQLite.
        after = len(api.calls)
        process, log = _launch(api, tmp_path, db, 2)
        try:
            _ready(api, process, after)
            before_user, before_team = len(api.chat_messages(USER["id"])), len(api.team_messages())
            api.advisor_reply(None, "Bonjour à tous, réunion demain ?")
            api.wait_idle(after=after, timeout=TIMEOUT)
            assert len(api.chat_messages(USER["id"])) == before_user
            assert len(api.team_messages()) == before_team  # chatter is ignored, not answered

            api.advisor_reply(post, "Adressez-vous au réseau des acteurs de votre territoire.")
            delivered = api.wait_until(
                lambda: next((t for t in _user_texts(api) if t.startswith("Réponse de l’équipe")), None), TIMEOUT
            )
            assert "réseau des acteurs" in delivered and "n° 1" in delivered
            api.wait_until(lambda: any("✅" in m.text for m in api.team_messages()), TIMEOUT)

            # A second question, answered from the command line while the bot runs: pushed to the user.
            api.send_text(USER, "Je veux parler à quelqu’un")
            api.wait_until(lambda: len([t for t in _user_texts(api) if "Rien n’est envoyé" in t]) == 2, TIMEOUT)
            message, data = _last_with_button(api, "Transmettre ma question")
            api.press(USER, message, data)
            api.wait_until(lambda: len([t for t in _user_texts(api) if "Voici la question" in t]) == 1, TIMEOUT)
            message, data = _last_with_button(api, "Seulement la question")
            api.press(USER, message, data)
            api.wait_until(lambda: any("Question n° 2" in m.text for m in api.team_messages()), TIMEOUT)
            from bot.cli import main

            assert main(["inbox", "--db", str(db), "answer", "2", "Réponse donnée depuis la ligne de commande."]) == 0
            api.wait_until(lambda: any("ligne de commande" in t for t in _user_texts(api)), TIMEOUT)
        finally:
            _stop(process)

    from sqlite_utils import Database

    rows = list(Database(db).query("SELECT status, answer FROM handovers ORDER BY ref"))
    assert rows == [
        {"status": "delivered", "answer": "Adressez-vous au réseau des acteurs de votre territoire."},
        {"status": "delivered", "answer": "Réponse donnée depuis la ligne de commande."},
    ]


def test_team_chat_without_the_bot_stops_with_a_clear_error(tmp_path: Path) -> None:
    with TeamFakeBotApi(bot_is_member=False) as api:
        process, log = _launch(api, tmp_path, tmp_path / "t.db", 1)
        try:
            process.wait(timeout=TIMEOUT)
        finally:
            _stop(process)
        output = log.read_text()
        assert process.returncode != 0
        assert "n’est pas membre du groupe de l’équipe" in output
