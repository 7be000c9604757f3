"""What every part of the running channel shares: the queue file, the timings, the stop flags."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from bot.telegram.durable import TelegramQueue
from bot.telegram.logs import LimitedLog
from bot.telegram.timing import Timing


class ShuttingDown(Exception):
    """The bot is stopping: the update stays queued for the next start."""


@dataclass(slots=True)
class ChannelState:
    """Flags and shared objects of one running channel (no behaviour of its own)."""

    queue: TelegramQueue
    timing: Timing
    log_limited: LimitedLog
    stopping: bool = False
    exit_code: int = 0
    #: Set to stop the bot (SIGTERM, revoked token, database gone).
    stop_requested: asyncio.Event | None = None
    #: The progress file was deleted or replaced: nothing more is written.
    database_gone: bool = False

    @classmethod
    def create(cls, queue: TelegramQueue, timing: Timing) -> ChannelState:
        return cls(queue=queue, timing=timing, log_limited=LimitedLog(timing))

    def request_stop(self, exit_code: int | None = None) -> None:
        if exit_code is not None:
            self.exit_code = exit_code
        if self.stop_requested is not None:
            self.stop_requested.set()


@dataclass(slots=True)
class SideTasks:
    """Work running beside the conversation (PDF reports): kept so it is neither collected nor forgotten."""

    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def start(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def join(self) -> None:
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
