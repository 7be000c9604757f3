"""One way to start the bot for end-to-end tests: in-process against the core, or as a real subprocess.

In-process (the default, fast): the real application, durable queue file, engine and
lifecycle (:func:`bot.telegram.lifecycle.serve`) in the test's event loop, talking to the
core through :class:`~tests.support.transport.CoreRequest`, with the fast :data:`FAST`
timings. A subprocess (``python -m bot.cli telegram``) against the loopback server is kept
for what needs a process: SIGKILL, SIGTERM, exit codes, file-size limits::

    def test_x(launcher):                 # the fixture; launcher.api is the core
        bot = launcher.subprocess(db)     # waits for its first getUpdates
        ...
        assert bot.terminate() == 0

    async def test_y(launcher):
        async with launcher.in_process(db) as bot:
            launcher.api.send_text(user, "/start")
            await launcher.api.until(lambda: launcher.api.texts(user["id"]))
        assert bot.exit_code == 0
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest

from bot.telegram.timing import TIMING_VARIABLE, Timing
from tests.support.bot_api import FakeBotApi
from tests.support.loopback import LoopbackServer

ROOT = Path(__file__).resolve().parent.parent.parent
STARTUP_TIMEOUT = 60.0
#: systemd's TimeoutStopSec given in the README.
TIMEOUT_STOP_SEC = 30.0

#: Fault windows in milliseconds: what the production timings do in seconds.
FAST = Timing(
    max_retry_after=0.2, retry_margin=0.01, network_backoff=0.02, max_network_backoff=0.2, read_timeout=1.0,
    poll_timeout=1, backlog_pause=0.01, first_lock_retry=0.01, max_lock_retry=0.05, brief_lock=0.2,
    watch_interval=0.05, storage_retry=0.05, gone_notice=0.2, shutdown_grace=1.0, confirm_timeout=0.5,
    team_push_interval=0.1, team_stop_grace=2.0,
)


def fast_environment(**changes: Any) -> dict[str, str]:
    """The environment giving a bot subprocess the :data:`FAST` timings (with ``changes``)."""
    timing = replace(FAST, **changes)
    # The HTTP client's timeouts stay as in production: a loaded machine must not turn into lost messages.
    kept = {"sleep", "clock", "read_timeout", "poll_timeout"} - set(changes)
    pairs = [f"{f.name}={getattr(timing, f.name)}" for f in fields(timing) if f.name not in kept]
    return {TIMING_VARIABLE: ",".join(pairs)}


class InProcessBot:
    """The bot running in this event loop until :meth:`stop` (``async with`` stops it)."""

    def __init__(self, api: FakeBotApi, db: Path, kb: Any, *, timing: Timing, rate_limit: bool,
                 team_chat: int | None, read_timeout: float | None) -> None:
        self.api = api
        self.db = db
        self.kb = kb
        self.timing = timing
        self.rate_limit = rate_limit
        self.team_chat = team_chat
        self.read_timeout = read_timeout if read_timeout is not None else timing.read_timeout
        self.exit_code: int | None = None
        #: The team chat's advisors (``TELEGRAM_TEAM_ADVISORS``) and the cap on hand-overs per hour.
        self.advisors: frozenset[int] = frozenset()
        self.handovers_per_hour: int | None = None
        self.application: Any = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[int] | None = None
        self._engine: Any = None
        self._queue: Any = None

    @property
    def channel(self) -> Any:
        from bot.telegram.channel import channel_of

        return channel_of(self.application)

    async def start(self) -> InProcessBot:
        from bot.telegram.app import build_application, install_team_chat, open_storage
        from bot.telegram.lifecycle import serve
        from dialogue.engine import Engine
        from dialogue.features.registry import standard_features
        from dialogue.features.team.flow import TeamServices
        from dialogue.features.team.handovers import HandoverStore
        from dialogue.features.team.question_log import QuestionLog
        from dialogue.storage.progress import ProgressStore
        from tests.support.transport import CoreRequest

        store = ProgressStore.open(self.db)
        handovers = HandoverStore(store.db, per_hour=self.handovers_per_hour)
        team = TeamServices(QuestionLog(store.db), handovers, team_chat=self.team_chat is not None)
        self._engine = Engine(self.kb, store, features=standard_features(team=team))
        self._queue = open_storage(self._engine, self.db)
        request = CoreRequest(self.api, read_timeout=self.read_timeout)
        self.application = build_application(
            self._engine, self.api.token, timing=self.timing, request=request,
            get_updates_request=CoreRequest(self.api, read_timeout=self.read_timeout),
            rate_limit=self.rate_limit, queue=self._queue,
        )
        if self.team_chat is not None:
            install_team_chat(self.application, self._engine.handovers, self.team_chat, self.advisors)
        after = len(self.api.calls)
        task = self._task = asyncio.create_task(serve(self.application, self.channel, stop=self._stop, handle_signals=False))
        try:
            await self.api.until(lambda: task.done() or "getUpdates" in self.api.methods()[after:], timeout=STARTUP_TIMEOUT)
        except BaseException:
            await self.stop()
            raise
        if task.done():
            await self.stop()  # raises what stopped it
        return self

    async def settle(self, timeout: float = 15.0) -> None:
        """Wait until every queued update was fetched and handled, and every reply delivered."""

        def settled() -> bool:
            return self.api.pending_updates() == 0 and self.channel.idle

        while True:
            await self.api.until(settled, timeout)
            await asyncio.sleep(0.02)  # a getUpdates answer may be on its way: look again
            if settled():
                return

    async def stop(self) -> int:
        """Stop as SIGTERM would; the exit code :func:`serve` returned."""
        self._stop.set()
        try:
            if self._task is not None:
                self.exit_code = await self._task
        finally:
            if self._engine is not None:
                self._engine.close()
                self._queue.close()
                self._engine = None
        return self.exit_code if self.exit_code is not None else -1

    async def stopped(self, timeout: float = 30.0) -> int:
        """Wait until the bot stops by itself (database gone, token refused); its exit code."""
        assert self._task is not None
        await asyncio.wait_for(asyncio.shield(self._task), timeout)
        return await self.stop()

    async def __aenter__(self) -> InProcessBot:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class BotProcess:
    """``python -m bot.cli telegram`` pointed at the loopback server, output kept in files."""

    def __init__(self, server: LoopbackServer, tmp_path: Path, db: Path, run: int, extra_args: list[str] | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        env = {key: value for key, value in os.environ.items()
               if not key.upper().endswith("_PROXY") and not key.startswith("TELEGRAM_")}
        env |= {
            "TELEGRAM_BOT_TOKEN": server.core.token,
            "TELEGRAM_BASE_URL": server.base_url,
            "PTCE_DB": str(db),
            "NO_PROXY": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.stdout_path = tmp_path / f"bot-{run}.out"
        self.stderr_path = tmp_path / f"bot-{run}.err"
        self._stdout = self.stdout_path.open("wb")
        self._stderr = self.stderr_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "telegram", *(extra_args or [])],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=self._stdout, stderr=self._stderr,
        )

    def output(self) -> str:
        for handle in (self._stdout, self._stderr):
            if not handle.closed:
                handle.flush()
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")

    def terminate(self, timeout: float = 30.0) -> int:
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


class Launcher:
    """Starts bots against one fake core (``api``); everything started is stopped at the end of the test."""

    def __init__(self, tmp_path: Path, kb: Any, api: FakeBotApi | None = None) -> None:
        self.tmp_path = tmp_path
        self.kb = kb
        self.api = api or FakeBotApi()
        self._server: LoopbackServer | None = None
        self._processes: list[BotProcess] = []
        self._runs = 0

    @property
    def server(self) -> LoopbackServer:
        """The loopback HTTP server over :attr:`api` (started on first use)."""
        if self._server is None:
            self._server = LoopbackServer(self.api).start()
        return self._server

    def in_process(self, db: Path, *, timing: Timing = FAST, rate_limit: bool = False, team_chat: int | None = None,
                   read_timeout: float | None = None, advisors: frozenset[int] = frozenset(),
                   handovers_per_hour: int | None = None, **timing_changes: Any) -> InProcessBot:
        if timing_changes:
            timing = replace(timing, **timing_changes)
        bot = InProcessBot(self.api, db, self.kb, timing=timing, rate_limit=rate_limit, team_chat=team_chat,
                           read_timeout=read_timeout)
        bot.advisors, bot.handovers_per_hour = advisors, handovers_per_hour
        return bot

    def subprocess(self, db: Path, *, extra_args: list[str] | None = None, extra_env: dict[str, str] | None = None,
                   wait_ready: bool = True) -> BotProcess:
        """A real ``ptce-bot telegram`` process; with ``wait_ready``, returns once it polls."""
        self._runs += 1
        after = len(self.api.calls)
        bot = BotProcess(self.server, self.tmp_path, db, self._runs, extra_args, extra_env)
        self._processes.append(bot)
        if not wait_ready:
            return bot
        try:
            self.api.wait_until(lambda: bot.process.poll() is not None or "getUpdates" in self.api.methods()[after:],
                                timeout=STARTUP_TIMEOUT)
        except TimeoutError:
            bot.kill()
            raise
        if bot.process.poll() is not None:
            output = bot.output()
            bot.kill()
            pytest.fail(f"le bot s’est arrêté au démarrage :\n{output}")
        return bot

    def close(self) -> None:
        for bot in self._processes:
            bot.kill()
        if self._server is not None:
            self._server.stop()


@pytest.fixture
def launcher(tmp_path: Path, kb: Any) -> Iterator[Launcher]:
    """Starts the bot in-process or as a subprocess against one fake Bot API (``launcher.api``)."""
    launch = Launcher(tmp_path, kb)
    try:
        yield launch
    finally:
        launch.close()
