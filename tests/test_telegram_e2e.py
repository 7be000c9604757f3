"""End to end: ``ptce-bot telegram`` as a subprocess against a loopback fake Bot API.

Long polling: a user walks through /start, the menu, a topic, a free-text question and two
orientation steps (buttons pressed by their label, as found in the recorded
keyboards); the bot is stopped with SIGTERM and started again on the same database,
and /reprendre must bring the user back to the third question.
Webhook mode: the webhook is registered with its secret, which incoming calls must carry.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_bot_api import FAKE_TOKEN, FakeBotApi, SentMessage


def _cli_importable() -> bool:
    try:
        import bot.cli  # noqa: F401
    except Exception:
        return False
    return True


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not _cli_importable(), reason="bot.cli not importable"),
]

ROOT = Path(__file__).resolve().parent.parent
USER = {"id": 31337, "is_bot": False, "first_name": "Camille", "language_code": "fr"}
CHAT_ID = USER["id"]
STARTUP_TIMEOUT = 60.0
STEP_TIMEOUT = 15.0


class BotProcess:
    """``python -m bot.cli telegram`` pointed at the fake API, output kept in files."""

    def __init__(
        self, api: FakeBotApi, tmp_path: Path, db: Path, run: int, extra_args: list[str] | None = None
    ) -> None:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.upper().endswith("_PROXY") and not key.startswith("TELEGRAM_")
        }
        env |= {
            "TELEGRAM_BOT_TOKEN": FAKE_TOKEN,
            "TELEGRAM_BASE_URL": api.base_url,
            "PTCE_DB": str(db),
            "NO_PROXY": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        }
        self.stdout_path = tmp_path / f"bot-{run}.out"
        self.stderr_path = tmp_path / f"bot-{run}.err"
        self._stdout = self.stdout_path.open("wb")
        self._stderr = self.stderr_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "telegram", *(extra_args or [])],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=self._stderr,
        )

    def output(self) -> str:
        for handle in (self._stdout, self._stderr):
            if not handle.closed:
                handle.flush()
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM, then wait (bounded); returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        """Make sure the process is gone (idempotent)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._stdout.close()
        self._stderr.close()


@pytest.fixture
def api() -> Iterator[FakeBotApi]:
    with FakeBotApi() as server:
        yield server


def _start_bot(api: FakeBotApi, tmp_path: Path, db: Path, run: int) -> BotProcess:
    bot = BotProcess(api, tmp_path, db, run)
    after = len(api.calls)
    try:
        api.wait_until(
            lambda: bot.process.poll() is not None
            or any(c.method == "getUpdates" for c in api.calls[after:]),
            timeout=STARTUP_TIMEOUT,
        )
    except TimeoutError:
        bot.kill()
        raise
    if bot.process.poll() is not None:
        output = bot.output()
        bot.kill()
        pytest.fail(f"le bot s’est arrêté au démarrage :\n{output}")
    return bot


def _exchange(api: FakeBotApi, action) -> list[SentMessage]:
    """Run ``action`` (queueing one update) and return the messages sent or edited in reply."""
    after = len(api.calls)
    action()
    calls = api.wait_idle(after=after, timeout=STEP_TIMEOUT)
    touched: list[SentMessage] = []
    for call in calls:
        if call.method in {"sendMessage", "editMessageText"}:
            assert int(call.params["chat_id"]) == CHAT_ID
            assert call.params.get("parse_mode") in {"HTML", None}
    messages = api.chat_messages(CHAT_ID)
    ids = {
        int(c.params.get("message_id", 0)) for c in calls if c.method == "editMessageText"
    }
    sent_count = sum(1 for c in calls if c.method == "sendMessage")
    touched = [m for m in messages if m.message_id in ids]
    if sent_count:
        touched += messages[-sent_count:]
    assert touched, f"aucune réponse visible ; appels : {[c.method for c in calls]}"
    for call in calls:
        if call.method == "answerCallbackQuery":
            assert len(call.params.get("text", "")) <= 200
    return touched


def _with_buttons(messages: list[SentMessage]) -> SentMessage:
    return next(m for m in reversed(messages) if m.buttons())


def _question(messages: list[SentMessage]) -> SentMessage:
    return next(m for m in reversed(messages) if "Étape" in m.text and m.buttons())


def _header(message: SentMessage) -> str:
    return next(line for line in message.text.splitlines() if "Étape" in line)


def _answer_first_option(api: FakeBotApi, question: SentMessage) -> list[SentMessage]:
    """Press the question's first option; for a multiple choice, then « Valider »."""
    label, data = question.buttons()[0]
    assert label not in {"Passer", "Retour", "Menu"}
    replies = _exchange(api, lambda: api.press(USER, question, data))
    if not any("Étape" in m.text and m is not question for m in replies):
        edited = _question(replies)  # the toggle edited the question in place
        _, validate = edited.button(lambda text: "Valider" in text)
        replies = _exchange(api, lambda: api.press(USER, edited, validate))
    return replies


def test_walkthrough_survives_restart(api: FakeBotApi, tmp_path: Path) -> None:
    db = tmp_path / "e2e.db"
    bots: list[BotProcess] = []
    try:
        bot = _start_bot(api, tmp_path, db, run=1)
        bots.append(bot)
        commands = api.wait_for_call("setMyCommands", timeout=STEP_TIMEOUT)
        assert {c["command"] for c in commands.params["commands"]} >= {"start", "menu", "reprendre"}

        welcome = _exchange(api, lambda: api.send_text(USER, "/start"))
        assert any(m.buttons() for m in welcome)

        menu = _with_buttons(_exchange(api, lambda: api.send_text(USER, "/menu")))
        topic_label, topic_data = menu.buttons()[0]
        topic = _exchange(api, lambda: api.press(USER, menu, topic_data))
        assert any(len(m.text) > 40 for m in topic), topic_label

        answer = _exchange(api, lambda: api.send_text(USER, "c’est quoi un PTCE ?"))
        assert any("PTCE" in m.text for m in answer)

        _, orientation = menu.button(lambda text: "Orientation" in text)
        first = _question(_exchange(api, lambda: api.press(USER, menu, orientation)))
        second = _question(_answer_first_option(api, first))
        third = _question(_answer_first_option(api, second))
        assert _header(first) != _header(third) or first.text != third.text
        expected_header = _header(third)
        expected_labels = [label for label, _ in third.buttons()]

        assert bot.terminate() == 0, bot.output()

        bot = _start_bot(api, tmp_path, db, run=2)
        bots.append(bot)
        resumed = _question(_exchange(api, lambda: api.send_text(USER, "/reprendre")))
        assert _header(resumed) == expected_header
        assert third.text.split("\n\n", 1)[-1] in resumed.text
        assert [label for label, _ in resumed.buttons()] == expected_labels

        assert bot.terminate() == 0, bot.output()
        for run in bots:
            output = run.output()
            assert FAKE_TOKEN not in output and FAKE_TOKEN.split(":")[1] not in output
            assert "Traceback" not in output, output
        assert api.unknown_token_calls == 0
    finally:
        for run in bots:
            run.kill()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_webhook_mode_checks_secret(api: FakeBotApi, tmp_path: Path) -> None:
    """--webhook-url registers the webhook with its secret; updates without it are refused."""
    port = _free_port()
    secret = "e2e_webhook_secret-123"
    bot = BotProcess(api, tmp_path, tmp_path / "hook.db", run=3, extra_args=[
        "--webhook-url", f"http://127.0.0.1:{port}/hook", "--port", str(port),
        "--webhook-secret", secret,
    ])
    try:
        registered = api.wait_for_call("setWebhook", timeout=STARTUP_TIMEOUT)
        assert registered.params["url"] == f"http://127.0.0.1:{port}/hook"
        assert registered.params["secret_token"] == secret

        def post(headers: dict[str, str]) -> int:
            update = {"update_id": 1, "message": {
                "message_id": 1, "date": int(time.time()), "from": USER,
                "chat": {"id": CHAT_ID, "type": "private"}, "text": "/start",
                "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}}
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/hook", data=json.dumps(update).encode(),
                headers={"Content-Type": "application/json", **headers}, method="POST")
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while True:  # the web server may still be starting
                try:
                    with urllib.request.urlopen(request, timeout=5) as response:
                        return response.status
                except urllib.error.HTTPError as exc:
                    return exc.code
                except (ConnectionError, urllib.error.URLError):
                    if time.monotonic() > deadline or bot.process.poll() is not None:
                        raise
                    time.sleep(0.2)

        assert post({}) == 403
        assert post({"X-Telegram-Bot-Api-Secret-Token": secret}) == 200
        sent = api.wait_for_call("sendMessage", timeout=STEP_TIMEOUT)
        assert int(sent.params["chat_id"]) == CHAT_ID
        assert bot.terminate() == 0, bot.output()
        output = bot.output()
        assert FAKE_TOKEN not in output and secret not in output
    finally:
        bot.kill()
