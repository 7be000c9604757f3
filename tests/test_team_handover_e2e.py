"""Hand-over round trip: the bot with a team chat, against the fake Bot API core.

A user asks to talk to someone and hands over a question; the team chat
receives it with a reference number; the bot restarts; an advisor's chatter
in the team chat is ignored; the advisor's reply reaches the user, attributed
to the team, and the item is recorded as answered. A team chat the bot is not
a member of stops the bot (a real ``ptce-bot telegram`` process) at start-up
with a clear error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.bot_api import ADVISOR, TEAM_CHAT_ID, FakeBotApi, SentMessage
from tests.support.launcher import Launcher

USER = {"id": 55501, "is_bot": False, "first_name": "Camille", "language_code": "fr"}
TIMEOUT = 30.0


def _user_texts(api: FakeBotApi) -> list[str]:
    return api.texts(USER["id"])


def _has_button(api: FakeBotApi, label_part: str) -> bool:
    return any(label_part in label for m in api.chat_messages(USER["id"]) for label, _ in m.buttons())


def _last_with_button(api: FakeBotApi, label_part: str) -> tuple[SentMessage, str]:
    for message in reversed(api.chat_messages(USER["id"])):
        for label, data in message.buttons():
            if label_part in label:
                return message, data
    raise LookupError(label_part)


async def test_hand_over_round_trip_across_a_restart(launcher: Launcher, tmp_path: Path) -> None:
    api = launcher.api
    db = tmp_path / "team.db"
    async with launcher.in_process(db, team_chat=TEAM_CHAT_ID, rate_limit=True):
        assert api.calls_to("getChatMember"), "le groupe de l’équipe n’a pas été vérifié au démarrage"
        api.send_text(USER, "je veux parler à quelqu’un")
        await api.until(lambda: _has_button(api, "Transmettre ma question"), TIMEOUT)
        message, data = _last_with_button(api, "Transmettre ma question")
        api.press(USER, message, data)
        await api.until(lambda: any("Écrivez la question" in t for t in _user_texts(api)), TIMEOUT)
        api.send_text(USER, "Comment trouver des bénévoles pour notre PTCE ?")
        await api.until(lambda: _has_button(api, "Seulement la question"), TIMEOUT)
        message, data = _last_with_button(api, "Seulement la question")
        api.press(USER, message, data)
        await api.until(lambda: any("C’est transmis" in t for t in _user_texts(api)), TIMEOUT)
        post = await api.until(lambda: next((m for m in api.team_messages() if "Question n°" in m.text), None), TIMEOUT)
        assert "bénévoles" in post.text and "Question n° 1" in post.text
        assert str(USER["id"]) not in post.text  # the team sees a code, never the Telegram id

    # Restart in the middle: the queue is in SQLite. The advisor is on the list (TELEGRAM_TEAM_ADVISORS).
    async with launcher.in_process(db, team_chat=TEAM_CHAT_ID, rate_limit=True, advisors=frozenset({ADVISOR["id"]})) as bot:
        before_user, before_team = len(api.chat_messages(USER["id"])), len(api.team_messages())
        api.advisor_reply(None, "Bonjour à tous, réunion demain ?")
        await bot.settle(TIMEOUT)
        assert len(api.chat_messages(USER["id"])) == before_user
        assert len(api.team_messages()) == before_team  # chatter is ignored, not answered

        api.advisor_reply(post, "Adressez-vous au réseau des acteurs de votre territoire.")
        delivered = await api.until(
            lambda: next((t for t in _user_texts(api) if t.startswith("Réponse de l’équipe")), None), TIMEOUT
        )
        assert "réseau des acteurs" in delivered and "n° 1" in delivered
        await api.until(lambda: any("✅" in m.text for m in api.team_messages()), TIMEOUT)

        # A second question, answered from the command line while the bot runs: pushed to the user.
        api.send_text(USER, "Je veux parler à quelqu’un")
        await api.until(lambda: len([t for t in _user_texts(api) if "Rien n’est envoyé" in t]) == 2, TIMEOUT)
        message, data = _last_with_button(api, "Transmettre ma question")
        api.press(USER, message, data)
        await api.until(lambda: len([t for t in _user_texts(api) if "Voici la question" in t]) == 1, TIMEOUT)
        message, data = _last_with_button(api, "Seulement la question")
        api.press(USER, message, data)
        await api.until(lambda: any("Question n° 2" in m.text for m in api.team_messages()), TIMEOUT)
        from bot.cli import main

        assert main(["inbox", "--db", str(db), "answer", "2", "Réponse donnée depuis la ligne de commande."]) == 0
        await api.until(lambda: any("ligne de commande" in t for t in _user_texts(api)), TIMEOUT)

    from sqlite_utils import Database

    rows: list[dict[str, Any]] = list(Database(db).query("SELECT status, answer FROM handovers ORDER BY ref"))
    assert rows == [
        {"status": "delivered", "answer": "Adressez-vous au réseau des acteurs de votre territoire."},
        {"status": "delivered", "answer": "Réponse donnée depuis la ligne de commande."},
    ]


def test_team_chat_without_the_bot_stops_with_a_clear_error(launcher: Launcher, tmp_path: Path) -> None:
    launcher.api.bot_is_member = False
    bot = launcher.subprocess(tmp_path / "t.db", extra_env={"TELEGRAM_TEAM_CHAT_ID": str(TEAM_CHAT_ID)},
                              wait_ready=False)
    bot.process.wait(timeout=TIMEOUT)
    assert bot.process.returncode != 0
    assert "n’est pas membre du groupe de l’équipe" in bot.output()
