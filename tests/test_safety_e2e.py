"""Every path as safe as the main one (issue #21): the bot in-process against the fake Bot API core.

One test per failure the fault run found: an update that breaks its own processing, files
readable by other accounts, names turned into links, a storage error read as a network
error, /oublier leaving traces in the WAL files.
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
import re
import sqlite3
import stat
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bot.telegram.durable import queue_path_for
from tests.support.bot_api import FakeBotApi, SentMessage
from tests.support.launcher import InProcessBot, Launcher

STEP_TIMEOUT = 20.0


def _user(number: int, first_name: str | None = None) -> dict[str, Any]:
    return {"id": 70_000 + number, "is_bot": False, "first_name": first_name or f"U{number}", "language_code": "fr"}


def _bot_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("bot") and r.levelno >= logging.ERROR]


def _plain(message: SentMessage) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", message.text)).replace("\u00a0", " ")


async def _exchange(api: FakeBotApi, bot: InProcessBot, chat_id: int, action: Any) -> list[SentMessage]:
    before = {m.message_id for m in api.chat_messages(chat_id)}
    action()
    await bot.settle(STEP_TIMEOUT)
    return [m for m in api.chat_messages(chat_id) if m.message_id not in before]


# =========================================================================== 1. one update never stops the others


async def test_lone_surrogate_is_answered_and_nobody_else_waits(launcher: Launcher, tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    api = launcher.api
    db = tmp_path / "surrogate.db"
    caplog.set_level(logging.INFO)
    users = [_user(n) for n in range(21)]
    async with launcher.in_process(db) as bot:
        api.send_text(users[0], "bonjour \ud800 c’est quoi un PTCE ?")  # valid escaped JSON, not valid UTF-8
        for user in users[1:]:
            api.send_text(user, "/aide")
        await bot.settle(STEP_TIMEOUT)
        assert all(api.texts(u["id"]) for u in users), [len(api.texts(u["id"])) for u in users]
        assert "\ud800" not in "".join(api.texts(users[0]["id"]))
        # The same person goes on; the poller is alive.
        api.send_text(users[0], "/aide")
        await bot.settle(STEP_TIMEOUT)
        assert len(api.texts(users[0]["id"])) >= 2
    assert bot.exit_code == 0
    assert _bot_errors(caplog) == []
    with sqlite3.connect(queue_path_for(db)) as connection:
        statuses = [s for (s,) in connection.execute("SELECT status FROM updates")]
    assert statuses.count("done") == 22 and "new" not in statuses


async def test_an_update_that_breaks_its_processing_is_marked_bad_and_polling_goes_on(
        launcher: Launcher, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any exception while handling one update (here in the dispatcher's bookkeeping) costs that update only."""
    api = launcher.api
    db = tmp_path / "broken.db"
    caplog.set_level(logging.INFO)
    secret = "texte-privé-de-la-personne"
    async with launcher.in_process(db) as bot:
        queue = bot.channel.queue
        original = queue.is_done
        broken: set[int] = set()

        def is_done(update_id: int) -> bool:
            if update_id in broken:
                raise UnicodeEncodeError("utf-8", secret, 0, 1, "surrogates not allowed")
            return original(update_id)

        monkeypatch.setattr(queue, "is_done", is_done)
        broken.add(api.send_text(_user(1), "/aide"))
        for n in range(2, 6):
            api.send_text(_user(n), "/aide")
        await bot.settle(STEP_TIMEOUT)
        api.send_text(_user(1), "/source")  # the same person's next message is handled
        await bot.settle(STEP_TIMEOUT)
        assert [len(api.texts(_user(n)["id"])) >= 1 for n in range(1, 6)] == [True] * 5
        assert len(api.texts(_user(1)["id"])) == 2
        assert bot.channel.dispatcher.failed == 1
    assert bot.exit_code == 0
    assert secret not in caplog.text
    assert caplog.text.count("abandonnée") == 1
    with sqlite3.connect(queue_path_for(db)) as connection:
        assert connection.execute("SELECT status FROM updates WHERE update_id = ?", [min(broken)]).fetchone()[0] == "bad"


async def test_polling_task_restarts_after_a_crash_then_gives_up_with_one_line(
        launcher: Launcher, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.telegram import intake

    api = launcher.api
    caplog.set_level(logging.INFO)
    crashes = {"left": 1}
    original = intake.Poller.accept

    def accept(self: intake.Poller, raw: Any) -> int | None:
        if crashes["left"] > 0:
            crashes["left"] -= 1
            raise RuntimeError("unexpected")
        return original(self, raw)

    monkeypatch.setattr(intake.Poller, "accept", accept)
    async with launcher.in_process(tmp_path / "crash.db") as bot:
        api.send_text(_user(1), "/aide")
        await api.until(lambda: api.texts(_user(1)["id"]), STEP_TIMEOUT)  # after one restart
        assert "reprise dans" in caplog.text
        crashes["left"] = 1000  # now it crashes every time: the bot stops, it does not loop silently
        api.send_text(_user(2), "/aide")
        code = await bot.stopped(STEP_TIMEOUT)
    assert code == 4
    assert caplog.text.count("arrêt du bot (code 4)") == 1


# =========================================================================== 2. private files


def test_every_file_the_project_creates_is_private_whatever_the_umask(tmp_path: Path, kb: Any) -> None:
    from bot.telegram.durable import TelegramQueue
    from dialogue.storage.files import write_private
    from dialogue.storage.progress import ProgressStore
    from dialogue.types import ReportRequest
    from report.build import write_report

    previous = os.umask(0o022)
    try:
        db = tmp_path / "ptce.db"
        store = ProgressStore.open(db)
        store.db.execute("CREATE TABLE IF NOT EXISTS probe (x)")
        store.db.execute("INSERT INTO probe VALUES (1)")
        queue = TelegramQueue.open(queue_path_for(db))
        queue.record([(1, {"update_id": 1, "message": {"text": "x"}})])
        rescued = store.rescue_copy()
        assert rescued is not None
        request = ReportRequest("synthesis", {"typologie": "territoire", "logiques": ["reseau"]}, date(2026, 1, 5))
        reports = write_report(kb, request, tmp_path / "rapports")
        exported = write_private(tmp_path / "export.yaml", "questions: []\n")
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm"), queue_path_for(db), Path(f"{queue_path_for(db)}-wal"),
                 Path(f"{queue_path_for(db)}-shm"), rescued, *reports, exported]
        for file in files:
            assert file.exists(), file
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
        # A file left readable by an older version is tightened before it is written again.
        os.chmod(exported, 0o644)
        write_private(exported, "questions: []\n")
        assert stat.S_IMODE(exported.stat().st_mode) == 0o600
        queue.close()
        store.close()
    finally:
        os.umask(previous)


def test_private_files_under_a_strict_umask_stay_writable(tmp_path: Path) -> None:
    """A umask that removes the owner's own bits must not leave an unwritable database."""
    from dialogue.storage.progress import ProgressStore

    previous = os.umask(0o277)
    try:
        store = ProgressStore.open(tmp_path / "strict.db")
        store.check_writable()
        store.close()
        assert stat.S_IMODE((tmp_path / "strict.db").stat().st_mode) == 0o600
    finally:
        os.umask(previous)


def test_insights_page_is_private(tmp_path: Path, kb: Any) -> None:
    from bot.insights import compute
    from bot.insights_html import write_html
    from dialogue.features.team.schema import ensure_team_tables
    from dialogue.storage.progress import ProgressStore

    previous = os.umask(0o022)
    try:
        store = ProgressStore.open(tmp_path / "ptce.db")
        ensure_team_tables(store.db)
        page = write_html(compute(store.db, kb), kb, tmp_path / "page.html")
        assert stat.S_IMODE(page.stat().st_mode) == 0o600
        store.close()
    finally:
        os.umask(previous)


# =========================================================================== 4. names are not links


async def test_names_typed_as_links_reach_others_as_plain_text(launcher: Launcher, tmp_path: Path) -> None:
    api = launcher.api
    coordinator, member = _user(1, "Coordination"), _user(2, "Membre")
    evil = "[Support PTCE](https://phishing.example/login)"
    async with launcher.in_process(tmp_path / "names.db") as bot:
        home = await _exchange(api, bot, coordinator["id"], lambda: api.send_text(coordinator, "/collectif"))
        message = next(m for m in reversed(home) if m.buttons())
        _, create = message.button(lambda text: "Créer" in text)
        await _exchange(api, bot, coordinator["id"], lambda: api.press(coordinator, message, create))
        await _exchange(api, bot, coordinator["id"], lambda: api.send_text(coordinator, evil))
        created = await _exchange(api, bot, coordinator["id"], lambda: api.send_text(coordinator, "**" + evil + "**"))
        code = re.search(r"start=([A-Za-z0-9_-]+)", "".join(m.text for m in created)).group(1)  # type: ignore[union-attr]
        invited = await _exchange(api, bot, member["id"], lambda: api.send_text(member, f"/start {code}"))
        received = "\n".join(m.text for m in invited)
        assert "phishing.example" in received  # shown, as typed…
        assert "<a " not in received and "href" not in received  # …never as a link hiding its address
        assert "<b>[Support" not in received  # and the coordinator's ** did not make it bold
        assert "[Support PTCE]" in "".join(_plain(m).replace("\u2060", "") for m in invited)
    assert bot.exit_code == 0


# =========================================================================== 6. a storage error is not a network error


class BurstLocker:
    """Another program holding the queue file's write lock in short bursts (250 ms of every 300 ms)."""

    def __init__(self, path: Path, seconds: float, held: float = 0.25, period: float = 0.3) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(path, seconds, held, period), daemon=True)
        self.thread.start()

    def _run(self, path: Path, seconds: float, held: float, period: float) -> None:
        connection = sqlite3.connect(path, timeout=5, isolation_level=None)
        until = time.monotonic() + seconds
        while time.monotonic() < until and not self.stop.is_set():
            connection.execute("BEGIN IMMEDIATE")
            time.sleep(held)
            connection.execute("COMMIT")
            time.sleep(period - held)
        connection.close()

    async def finished(self) -> None:
        await asyncio.to_thread(self.thread.join)


async def test_queue_file_locked_in_bursts_loses_no_reply(launcher: Launcher, tmp_path: Path, kb: Any,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    api = launcher.api
    db = tmp_path / "bursts.db"
    users = [_user(n) for n in range(40)]
    caplog.set_level(logging.INFO)
    async with launcher.in_process(db) as bot:
        locker = BurstLocker(queue_path_for(db), 4.0)
        try:
            for round_ in range(3):
                for user in users:
                    api.send_text(user, "/aide" if round_ != 1 else "/source")
                await asyncio.sleep(0.4)
        finally:
            await locker.finished()
        await bot.settle(STEP_TIMEOUT * 2)
        counts = [len(api.texts(u["id"])) for u in users]
        technical = [t for u in users for t in api.texts(u["id"]) if "problème technique" in t]
        assert bot.channel.sender.uncertain == 0
    assert technical == []
    expected = len(api.texts(users[0]["id"]))
    assert expected >= 3 and counts == [expected] * len(users), counts  # none lost, none twice
    assert "a pu être remis" not in caplog.text


# =========================================================================== 7. /oublier leaves no trace


async def test_forget_leaves_nothing_in_either_file_or_its_wal(launcher: Launcher, tmp_path: Path) -> None:
    api = launcher.api
    db = tmp_path / "forget.db"
    person = _user(9, "Zéphyrine-Unique")
    marker = "Mon-secret-très-personnel-4711"
    async with launcher.in_process(db) as bot:
        for n in range(3):
            api.send_text(_user(20 + n), "/aide")  # others keep using the bot meanwhile
        for text in ("/start", f"{marker} ?", f"c’est quoi un PTCE {marker} ?", "/aide"):
            api.send_text(person, text)
        await bot.settle(STEP_TIMEOUT)
        replies = await _exchange(api, bot, person["id"], lambda: api.send_text(person, "/oublier"))
        confirm = next(m for m in reversed(replies) if m.buttons())
        _, data = confirm.buttons()[0]
        await _exchange(api, bot, person["id"], lambda: api.press(person, confirm, data))
        assert any("effac" in _plain(m).lower() for m in api.chat_messages(person["id"])[-2:])
        await bot.settle(STEP_TIMEOUT)
        await asyncio.sleep(0.2)
        # While the bot still runs: every file, WAL included, is free of the person.
        leaks = _traces(db, marker, person)
        assert leaks == [], leaks
    assert bot.exit_code == 0


def _traces(db: Path, marker: str, person: dict[str, Any]) -> list[str]:
    needles = [marker.encode("utf-8"), person["first_name"].encode("utf-8"), f"tg:{person['id']}".encode(),
               f'"id": {person["id"]}'.encode()]
    found = []
    for base in (db, queue_path_for(db)):
        for path in (base, Path(f"{base}-wal")):
            if not path.exists():
                continue
            content = path.read_bytes()
            found += [f"{path.name}: {needle!r}" for needle in needles if needle in content]
    return found
