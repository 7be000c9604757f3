"""End to end: the whole bot against the fake Bot API (:mod:`tests.support`).

In-process (the real application, queue file, engine and lifecycle in the test's event
loop, fast :class:`~bot.telegram.timing.Timing`): a user walks through /start, the menu, a
topic, a free-text question and two orientation steps (buttons pressed by their label, as
found in the recorded keyboards); the bot is stopped and started again on the same
database, and /reprendre must bring the user back to the third question. Faults (flood
control, server errors, closed port, late answers, locks, unreadable updates) are injected
and every user's messages counted.

As a real ``ptce-bot telegram`` subprocess against the loopback server, where a process is
the point: SIGKILL, SIGTERM, exit codes, a file-size limit, the webhook's web server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.render import split_text, to_html
from bot.telegram.durable import queue_path_for
from tests.support.bot_api import FAKE_TOKEN, FakeBotApi, Late, SentMessage, Status
from tests.support.launcher import TIMEOUT_STOP_SEC, InProcessBot, Launcher, fast_environment

USER = {"id": 31337, "is_bot": False, "first_name": "Camille", "language_code": "fr"}
CHAT_ID = USER["id"]
STARTUP_TIMEOUT = 60.0
STEP_TIMEOUT = 15.0
NO_LIMITER = {"PTCE_TELEGRAM_RATE_LIMIT": "0"}
SCRIPT = ["/start", "/aide", "/source", "c’est quoi un PTCE ?", "/aide", "/menu", "/source",
          "que veut dire coopération ?", "/aide", "/glossaire"]


def _user(number: int) -> dict[str, Any]:
    return {"id": 50_000 + number, "is_bot": False, "first_name": f"U{number}", "language_code": "fr"}


def _bot_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Errors the bot logged (the in-process « Traceback » of a subprocess's output)."""
    return [r.getMessage() for r in caplog.records if r.name.startswith("bot") and r.levelno >= logging.ERROR]


def _expected(kb: Any, plans: dict[int, list[str]]) -> dict[int, list[str]]:
    """The HTML texts each chat must receive, in order, for its plan (replayed on a local engine)."""
    from dialogue.engine import Engine
    from dialogue.storage.progress import ProgressStore
    from dialogue.types import Command, Say

    engine = Engine(kb, ProgressStore.memory())
    out: dict[int, list[str]] = {}
    try:
        for chat_id, texts in plans.items():
            for text in texts:
                if text.startswith("/"):
                    name, _, argument = text[1:].partition(" ")
                    event: Any = Command(name.lower(), argument)
                else:
                    event = Say(text)
                for reply in engine.handle(f"tg:{chat_id}", event):
                    parts = split_text(reply.text) if reply.text.strip() else ["…"]
                    out.setdefault(chat_id, []).extend(to_html(part) for part in parts)
    finally:
        engine.close()
    return out


def _first_difference(api: FakeBotApi, expected: dict[int, list[str]]) -> str:
    for chat_id, texts in expected.items():
        got = api.texts(chat_id)
        if got != texts:
            pair = next((g[:80], t[:80]) for g, t in zip(got + [""] * 99, texts + [""] * 99) if g != t)
            return f"chat {chat_id}: {len(got)} received, {len(texts)} expected; first difference: {pair}"
    return "none"


def _wait_total(api: FakeBotApi, count: int, timeout: float, expected: dict[int, list[str]] | None = None) -> None:
    """Block until ``count`` messages arrived, then until the bot is quiet (anything sent twice would show)."""
    try:
        api.wait_until(lambda: len(api.messages) >= count, timeout=timeout)
    except TimeoutError:
        if expected:
            raise AssertionError(_first_difference(api, expected)) from None
        raise
    api.wait_idle(quiet=0.5, timeout=timeout)


def _burst(api: FakeBotApi, users: int) -> dict[int, list[str]]:
    plans: dict[int, list[str]] = {}
    for text in SCRIPT:
        for number in range(users):
            user = _user(number)
            plans.setdefault(user["id"], []).append(text)
            api.send_text(user, text)
    return plans


def _integrity(db: Path) -> None:
    for path in (db, queue_path_for(db)):
        with sqlite3.connect(path) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok", path


def _updates_done(db: Path) -> Counter[str]:
    with sqlite3.connect(queue_path_for(db)) as connection:
        return Counter(status for (status,) in connection.execute("SELECT status FROM updates"))


# =========================================================================== in-process: the walkthrough


async def _exchange(api: FakeBotApi, bot: InProcessBot, action: Callable[[], object]) -> list[SentMessage]:
    """Run ``action`` (queueing one update) and return the messages sent or edited in reply."""
    after = len(api.calls)
    action()
    await bot.settle(STEP_TIMEOUT)
    calls = [c for c in api.calls[after:] if c.method != "getUpdates" and not c.failed]
    for call in calls:
        if call.method in {"sendMessage", "editMessageText"}:
            assert int(call.params["chat_id"]) == CHAT_ID
            assert call.params.get("parse_mode") in {"HTML", None}
    messages = api.chat_messages(CHAT_ID)
    ids = {int(c.params.get("message_id", 0)) for c in calls if c.method == "editMessageText"}
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


async def _answer_first_option(api: FakeBotApi, bot: InProcessBot, question: SentMessage) -> list[SentMessage]:
    """Press the question's first option; for a multiple choice, then « Valider »."""
    label, data = question.buttons()[0]
    assert label not in {"Passer", "Retour", "Menu"}
    replies = await _exchange(api, bot, lambda: api.press(USER, question, data))
    if not any("Étape" in m.text and m is not question for m in replies):
        edited = _question(replies)  # the toggle edited the question in place
        _, validate = edited.button(lambda text: "Valider" in text)
        replies = await _exchange(api, bot, lambda: api.press(USER, edited, validate))
    return replies


async def test_walkthrough_survives_restart(launcher: Launcher, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    api = launcher.api
    db = tmp_path / "e2e.db"
    async with launcher.in_process(db, rate_limit=True) as bot:
        (commands,) = api.calls_to("setMyCommands")
        assert {c["command"] for c in commands.params["commands"]} >= {"start", "menu", "reprendre"}

        welcome = await _exchange(api, bot, lambda: api.send_text(USER, "/start"))
        assert any(m.buttons() for m in welcome)

        menu = _with_buttons(await _exchange(api, bot, lambda: api.send_text(USER, "/menu")))
        topic_label, topic_data = menu.buttons()[0]
        topic = await _exchange(api, bot, lambda: api.press(USER, menu, topic_data))
        assert any(len(m.text) > 40 for m in topic), topic_label

        answer = await _exchange(api, bot, lambda: api.send_text(USER, "c’est quoi un PTCE ?"))
        assert any("PTCE" in m.text for m in answer)

        _, orientation = menu.button(lambda text: "Orientation" in text)
        first = _question(await _exchange(api, bot, lambda: api.press(USER, menu, orientation)))
        second = _question(await _answer_first_option(api, bot, first))
        third = _question(await _answer_first_option(api, bot, second))
        assert _header(first) != _header(third) or first.text != third.text
        expected_header = _header(third)
        expected_labels = [label for label, _ in third.buttons()]
    assert bot.exit_code == 0

    async with launcher.in_process(db, rate_limit=True) as bot:
        resumed = _question(await _exchange(api, bot, lambda: api.send_text(USER, "/reprendre")))
        assert _header(resumed) == expected_header
        assert third.text.split("\n\n", 1)[-1] in resumed.text
        assert [label for label, _ in resumed.buttons()] == expected_labels
    assert bot.exit_code == 0
    assert FAKE_TOKEN not in caplog.text and FAKE_TOKEN.split(":")[1] not in caplog.text
    assert _bot_errors(caplog) == []
    assert api.unknown_token_calls == 0


# =========================================================================== in-process: faults (issues 14 and 15)


async def test_poison_updates_are_skipped_and_logged_once(launcher: Launcher, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    api = launcher.api
    db = tmp_path / "poison.db"
    caplog.set_level(logging.INFO)
    async with launcher.in_process(db) as bot:
        first, second = _user(1), _user(2)
        api.send_text(first, "/aide")
        secret = "texte-privé-à-ne-pas-journaliser"
        api.push_raw({"update_id": 1000, "message": {"message_id": 1, "date": "pas un entier", "text": secret,
                                                      "chat": {"id": 9, "type": "private"}}})
        api.push_raw({"update_id": 1001, "poll": {"id": "p", "question": secret}})  # required fields missing
        api.send_text(second, "/aide")
        await api.until(lambda: api.texts(second["id"]), STEP_TIMEOUT)
        for n in range(3, 8):  # polling goes on
            api.send_text(_user(n), "/aide")
        await bot.settle(STEP_TIMEOUT)
    assert bot.exit_code == 0
    output = caplog.text
    assert len(output) < 20_000, len(output)  # bounded, not 100 KB/s
    assert output.count("illisible ignorée") == 1, output  # the second one is counted, not logged
    assert secret not in output and _bot_errors(caplog) == []
    assert [len(api.texts(_user(n)["id"])) for n in range(1, 8)] == [1] * 7
    assert _updates_done(db)["bad"] == 2


async def test_late_answer_is_not_sent_twice(launcher: Launcher, tmp_path: Path, kb: Any,
                                             caplog: pytest.LogCaptureFixture) -> None:
    api = launcher.api
    async with launcher.in_process(tmp_path / "late.db", read_timeout=0.2) as bot:
        user = _user(1)
        api.inject("sendMessage", Late(0.5))  # handled at once, answered after the client gave up
        api.send_text(user, "/aide")
        api.send_text(user, "/source")
        expected = _expected(kb, {user["id"]: ["/aide", "/source"]})[user["id"]]
        await api.until(lambda: len(api.texts(user["id"])) >= len(expected), STEP_TIMEOUT)
        await asyncio.sleep(0.5)  # the late answer arrives now: nothing is sent again
        await bot.settle()
        assert api.texts(user["id"]) == expected  # once each, in order
        assert len(api.calls_to("sendMessage")) == len(expected)
    assert bot.exit_code == 0
    assert "pas renvoyé" in caplog.text


async def test_flood_control_server_errors_and_closed_port_lose_nothing(
    launcher: Launcher, tmp_path: Path, kb: Any, caplog: pytest.LogCaptureFixture
) -> None:
    api = launcher.api
    users = [_user(n) for n in range(3)]
    plans: dict[int, list[str]] = {u["id"]: [] for u in users}
    script = iter(SCRIPT * 3)

    def say_all() -> None:
        text = next(script)
        for user in users:
            plans[user["id"]].append(text)
            api.send_text(user, text)

    # With the rate limiter, as in production; Telegram asks for 5 s, the fast timings cap it at 0.2 s.
    async with launcher.in_process(tmp_path / "flood.db", rate_limit=True) as bot:
        api.fail_during("sendMessage", 1.5, Status(429, retry_after=5))
        started = time.monotonic()
        while time.monotonic() - started < 1.4:
            say_all()
            await asyncio.sleep(0.2)
        await asyncio.sleep(max(0.0, 1.55 - (time.monotonic() - started)))
        api.fail_during("sendMessage", 0.4, Status(502))
        api.fail_during("editMessageText", 0.4, Status(500))
        for _ in range(3):
            say_all()
            await asyncio.sleep(0.1)
        api.close_port()
        await asyncio.sleep(0.2)
        api.open_port()
        say_all()
        expected = _expected(kb, plans)
        total = sum(map(len, expected.values()))
        try:
            await api.until(lambda: api.total_messages() >= total, 30)
        except TimeoutError:
            raise AssertionError(_first_difference(api, expected)) from None
        await bot.settle()
        assert {chat: api.texts(chat) for chat in expected} == expected  # all, once, in order
        assert len(api.failed_calls) > 10
    assert bot.exit_code == 0
    assert _bot_errors(caplog) == [] and FAKE_TOKEN.split(":")[1] not in caplog.text


async def test_forged_inputs(launcher: Launcher, tmp_path: Path) -> None:
    api = launcher.api
    async with launcher.in_process(tmp_path / "forged.db") as bot:
        victim, attacker = _user(1), _user(2)
        api.send_text(attacker, "/[x](https://evil.example/p)")
        reply = (await api.until(lambda: api.texts(attacker["id"]), STEP_TIMEOUT))[-1]
        assert "<a " not in reply and "https://" not in reply and "evil.example" not in reply, reply
        assert "/xhttpsevilexamplep" in reply

        api.send_text(victim, "/menu")
        menu = (await api.until(lambda: [m for m in api.chat_messages(victim["id"]) if m.buttons()], STEP_TIMEOUT))[-1]
        await bot.settle()
        before = len(api.calls)
        api.press(attacker, menu, menu.buttons()[0][1])  # the attacker « presses » in the victim's chat
        await api.until(lambda: "answerCallbackQuery" in api.methods()[before:], STEP_TIMEOUT)
        await bot.settle()
        touched = [c for c in api.calls[before:] if c.method in {"sendMessage", "editMessageText"}]
        assert touched == []
    assert bot.exit_code == 0


_HOLD_LOCK = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
"""


class LockHolder:
    """A second process holding the progress database's write lock."""

    def __init__(self, db: Path, seconds: float) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(db), str(seconds)],
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "locked"
        self.until = time.monotonic() + seconds

    def release(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    async def finished(self, timeout: float = 30) -> None:
        await asyncio.to_thread(self.process.wait, timeout)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def test_users_served_while_another_process_holds_the_write_lock(launcher: Launcher, tmp_path: Path, kb: Any) -> None:
    api = launcher.api
    db = tmp_path / "lock.db"
    users = [_user(n) for n in range(20)]
    async with launcher.in_process(db) as bot:
        for user in users:
            api.send_text(user, "/start")
        await bot.settle(STEP_TIMEOUT)
        expected = _expected(kb, {u["id"]: ["/start", "/aide", "/aide", "/aide"] for u in users[1:]}
                             | {users[0]["id"]: ["/start", "/start orientation"]})
        seen = {u["id"]: len(api.texts(u["id"])) for u in users}

        holder = LockHolder(db, 2.0)
        try:
            api.send_text(users[0], "/start orientation")  # needs a write: waits for the lock
            pushed: dict[int, list[float]] = {u["id"]: [] for u in users[1:]}
            for _ in range(3):
                for user in users[1:]:
                    pushed[user["id"]].append(time.monotonic())
                    api.send_text(user, "/aide")  # changes nothing but « last seen »: served now
                await asyncio.sleep(0.3)
            await api.until(lambda: all(len(api.texts(u["id"])) >= seen[u["id"]] + 3 for u in users[1:]), STEP_TIMEOUT)
            served_during_lock = time.monotonic() < holder.until
            assert len(api.texts(users[0]["id"])) == seen[users[0]["id"]]  # not answered yet
        finally:
            await holder.finished()
        assert served_during_lock
        released = time.monotonic()
        await api.until(lambda: len(api.texts(users[0]["id"])) >= len(expected[users[0]["id"]]), STEP_TIMEOUT)
        answered_after = time.monotonic() - released
        latencies = []
        for user in users[1:]:
            sends = [c.at for c in api.calls_to("sendMessage") if int(c.params["chat_id"]) == user["id"]][-3:]
            latencies += [done - start for start, done in zip(pushed[user["id"]], sends)]
        p99 = _percentile(latencies, 0.99)
        print(f"lock held 2 s: 19 users × 3 updates served during the lock, p99 {p99 * 1000:.0f} ms; "
              f"blocked user answered {answered_after:.2f} s after the release")
        assert p99 < 2.0, p99
        await bot.settle()
        assert {chat: api.texts(chat) for chat in expected} == expected  # none lost, none twice
        assert not any("occupée" in t for chat in expected for t in api.texts(chat))

        # A stop while a turn waits for the lock: quick, and the turn is done after the restart.
        holder = LockHolder(db, 60.0)
        try:
            api.send_text(users[1], "/start orientation")
            await api.until(lambda: api.pending_updates() == 0, STEP_TIMEOUT)
            await asyncio.sleep(0.3)
            started = time.monotonic()
            assert await bot.stop() == 0
            assert time.monotonic() - started < 10
        finally:
            holder.release()
    before = len(api.texts(users[1]["id"]))
    async with launcher.in_process(db) as second:
        await api.until(lambda: len(api.texts(users[1]["id"])) > before, STEP_TIMEOUT)
        await second.settle()
        history = ["/start", "/aide", "/aide", "/aide", "/start orientation"]
        question = _expected(kb, {users[1]["id"]: history})[users[1]["id"]][before:]
        assert api.texts(users[1]["id"])[before:] == question
    assert second.exit_code == 0
    _integrity(db)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("chattr"),
                    reason="an open file can be made read-only only with the immutable flag (root)")
async def test_database_read_only_while_running_then_recovery(launcher: Launcher, tmp_path: Path, kb: Any,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    api = launcher.api
    db = tmp_path / "rorun.db"
    files = [db, Path(f"{db}-wal")]
    try:
        async with launcher.in_process(db, unavailable_wait_limit=1.0) as bot:
            user, reader = _user(1), _user(2)
            for someone in (user, reader):
                api.send_text(someone, "/start")
            await bot.settle(STEP_TIMEOUT)
            seen = len(api.texts(user["id"]))
            subprocess.run(["chattr", "+i", *map(str, files)], check=True)
            try:
                api.send_text(user, "/start orientation")  # must be written: waits, then the user is told
                api.send_text(reader, "/aide")  # writes nothing that matters: answered at once
                await api.until(lambda: len(api.texts(reader["id"])) >= 2, STEP_TIMEOUT)
                told = await api.until(lambda: api.texts(user["id"])[seen:], 30)
                assert len(told) == 1 and "momentanément indisponible" in told[0]
            finally:
                subprocess.run(["chattr", "-i", *map(str, files)], check=True)
            api.send_text(user, "/start orientation")
            await api.until(lambda: len(api.texts(user["id"])) > seen + 1, STEP_TIMEOUT)
            await bot.settle()
            question = _expected(kb, {user["id"]: ["/start", "/start orientation"]})[user["id"]][seen:]
            assert api.texts(user["id"])[seen + 1:] == question  # recovered by itself
        assert bot.exit_code == 0
    finally:
        subprocess.run(["chattr", "-i", *map(str, files)], capture_output=True)
    assert caplog.text.count("Base de données indisponible") == 1, caplog.text  # one clear error
    _integrity(db)


# =========================================================================== subprocesses: signals, exit codes



def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_webhook_mode_checks_secret(launcher: Launcher, tmp_path: Path) -> None:
    """--webhook-url registers the webhook with its secret; updates without it are refused."""
    api = launcher.api
    port = _free_port()
    secret = "e2e_webhook_secret-123"
    bot = launcher.subprocess(tmp_path / "hook.db", wait_ready=False, extra_args=[
        "--webhook-url", f"http://127.0.0.1:{port}/hook", "--port", str(port), "--webhook-secret", secret,
    ])
    registered = api.wait_until(lambda: next(iter(api.calls_to("setWebhook")), None), STARTUP_TIMEOUT)
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
                    return int(response.status)
            except urllib.error.HTTPError as exc:
                return exc.code
            except (ConnectionError, urllib.error.URLError):
                if time.monotonic() > deadline or bot.process.poll() is not None:
                    raise
                time.sleep(0.05)

    assert post({}) == 403
    big = urllib.request.Request(
        f"http://127.0.0.1:{port}/hook", data=b"{" + b" " * 3_000_000 + b"}",
        headers={"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret}, method="POST")
    status: int | None
    try:
        with urllib.request.urlopen(big, timeout=10) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (ConnectionError, urllib.error.URLError):
        status = None  # the server closed the connection without reading the body
    assert status != 200  # bodies over 1 MB are refused before being read
    assert post({"X-Telegram-Bot-Api-Secret-Token": secret}) == 200
    sent = api.wait_until(lambda: next(iter(api.calls_to("sendMessage")), None), STEP_TIMEOUT)
    assert int(sent.params["chat_id"]) == CHAT_ID
    assert bot.terminate() == 0, bot.output()
    output = bot.output()
    assert FAKE_TOKEN not in output and secret not in output


def test_webhook_refuses_to_start_without_secret(launcher: Launcher, tmp_path: Path) -> None:
    api = launcher.api
    port = _free_port()
    args = ["--webhook-url", f"http://127.0.0.1:{port}/hook", "--port", str(port)]
    bot = launcher.subprocess(tmp_path / "hook.db", extra_args=args, wait_ready=False)
    assert bot.process.wait(timeout=STARTUP_TIMEOUT) == 2
    assert "--insecure-no-secret" in bot.output()
    assert api.calls_to("setWebhook") == []
    bot = launcher.subprocess(tmp_path / "hook.db", extra_args=[*args, "--insecure-no-secret"], wait_ready=False)
    api.wait_until(lambda: api.calls_to("setWebhook"), STARTUP_TIMEOUT)
    assert "sans secret" in bot.output()
    assert bot.terminate(timeout=TIMEOUT_STOP_SEC) == 0


def test_sigkill_mid_burst_then_restart_processes_every_update_once(launcher: Launcher, tmp_path: Path, kb: Any) -> None:
    api = launcher.api
    db = tmp_path / "burst.db"
    bot = launcher.subprocess(db, extra_env=NO_LIMITER)
    plans = _burst(api, users=60)  # 600 updates
    expected = _expected(kb, plans)
    total = sum(map(len, expected.values()))
    api.wait_until(lambda: len(api.messages) >= 120, timeout=60)
    bot.process.kill()
    bot.process.wait(timeout=10)
    killed_at = api.total_messages()
    assert killed_at < total, "the burst ended before the kill: nothing tested"
    second = launcher.subprocess(db, extra_env=NO_LIMITER)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while "mode long polling" not in second.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    dropped = 0
    for line in second.output().splitlines():
        if "peut-être déjà remise" in line:
            dropped = int(line.split("WARNING bot.telegram: ")[1].split()[0])
    _wait_total(api, total - dropped, timeout=60, expected=expected)
    assert second.terminate(timeout=TIMEOUT_STOP_SEC) == 0
    missing = duplicated = 0
    for chat_id, texts in expected.items():
        got = api.texts(chat_id)
        duplicated += max(0, len(got) - len(texts))
        if got != texts:
            missing += len(texts) - len(got)
            assert Counter(got) <= Counter(texts), chat_id  # never more, never other
    assert duplicated == 0
    # A request in flight at the kill may or may not have reached Telegram: it is never resent.
    assert missing <= dropped <= 8, (missing, dropped)
    print(f"SIGKILL after {killed_at} replies: {dropped} in flight left in doubt, {missing} of them lost")
    assert _updates_done(db) == Counter({"done": 600})
    _integrity(db)


def test_sigterm_with_backlog_stops_in_time_and_loses_nothing(launcher: Launcher, tmp_path: Path, kb: Any) -> None:
    api = launcher.api
    db = tmp_path / "term.db"
    bot = launcher.subprocess(db)  # rate limiter on: a real backlog of replies
    plans = _burst(api, users=120)  # 1,200 updates, ≥ 1,200 replies at 30/s: a long backlog
    expected = _expected(kb, plans)
    total = sum(map(len, expected.values()))
    api.wait_until(lambda: len(api.messages) >= 60, timeout=60)
    started = time.monotonic()
    assert bot.terminate(timeout=TIMEOUT_STOP_SEC) == 0
    stop_time = time.monotonic() - started
    assert stop_time < TIMEOUT_STOP_SEC / 3, stop_time
    assert api.total_messages() < total
    second = launcher.subprocess(db, extra_env=NO_LIMITER)
    _wait_total(api, total, timeout=60, expected=expected)
    assert {chat: api.texts(chat) for chat in expected} == expected
    assert second.terminate(timeout=TIMEOUT_STOP_SEC) == 0
    assert "peut-être déjà remise" not in second.output()  # a clean stop leaves nothing in doubt
    print(f"SIGTERM with a backlog: stopped in {stop_time:.1f} s")


def test_database_deleted_while_running(launcher: Launcher, tmp_path: Path) -> None:
    api = launcher.api
    db = tmp_path / "gone.db"
    bot = launcher.subprocess(db, extra_env=NO_LIMITER | fast_environment())
    user = _user(1)
    api.send_text(user, "/start")
    api.wait_until(lambda: api.texts(user["id"]), timeout=STEP_TIMEOUT)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    api.send_text(user, "c’est quoi un PTCE ?")
    code = bot.process.wait(timeout=20)
    assert code == 3
    output = bot.output()
    assert output.count("supprimé ou remplacé") == 1, output
    last = api.texts(user["id"])[-1]
    assert "momentanément indisponible" in last
    rescued = list(tmp_path.glob("gone.db.rescued-*"))
    assert len(rescued) == 1
    with sqlite3.connect(rescued[0]) as connection:
        assert connection.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 1


def test_read_only_database_at_start_exits_1(launcher: Launcher, tmp_path: Path) -> None:
    from dialogue.storage.progress import ProgressStore
    from tests.test_reliability import _read_only

    db = tmp_path / "ro" / "p.db"
    db.parent.mkdir()
    ProgressStore.open(db).close()
    queue_path_for(db).touch()
    with _read_only([db]):
        bot = launcher.subprocess(db, wait_ready=False)
        code = bot.process.wait(timeout=STARTUP_TIMEOUT)
    assert code == 1
    assert "lecture seule" in bot.output()


def test_disk_full_then_recovery(launcher: Launcher, tmp_path: Path, kb: Any) -> None:
    api = launcher.api
    db = tmp_path / "full.db"
    bot = launcher.subprocess(db, extra_env=NO_LIMITER | fast_environment(unavailable_wait_limit=1.0))
    users = [_user(n) for n in range(3)]
    for user in users:
        api.send_text(user, "/start")
    api.wait_until(lambda: all(api.texts(u["id"]) for u in users), timeout=STEP_TIMEOUT)
    api.wait_idle(quiet=0.3)
    sizes = [p.stat().st_size for p in tmp_path.glob("full*.db*")]
    limit = max(sizes) + 8192
    resource.prlimit(bot.process.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    before = {u["id"]: len(api.texts(u["id"])) for u in users}
    for _ in range(6):
        for user in users:
            api.send_text(user, "c’est quoi un PTCE ?")
        time.sleep(0.3)
    api.wait_until(lambda: all(any("momentanément indisponible" in t for t in api.texts(u["id"])[before[u["id"]]:])
                               for u in users), timeout=40)
    # Told once (not once per message) while nothing can be recorded.
    assert all(sum("momentanément indisponible" in t for t in api.texts(u["id"])) <= 2 for u in users)
    assert bot.process.poll() is None  # still running
    resource.prlimit(bot.process.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    for user in users:
        api.send_text(user, "/source")
    source = _expected(kb, {1: ["/source"]})[1][0]
    api.wait_until(lambda: all(source in api.texts(u["id"]) for u in users), timeout=40)
    assert bot.terminate(timeout=TIMEOUT_STOP_SEC) == 0
    assert "Traceback" not in bot.output()
    _integrity(db)
