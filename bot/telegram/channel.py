"""The running channel's parts, wired together once and shared by the handlers and the lifecycle."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from telegram import Bot, Update
from telegram.ext import Application

from bot.telegram.dispatcher import MAX_CONCURRENT_UPDATES, Dispatcher
from bot.telegram.durable import TelegramQueue
from bot.telegram.engine_port import AdvisorEngine
from bot.telegram.health import DatabaseWatch
from bot.telegram.outbox import OutboxSender
from bot.telegram.retries import IdempotentCalls
from bot.telegram.state import ChannelState, SideTasks
from bot.telegram.timing import Timing
from bot.telegram.turns import Turns

#: Where the channel is kept in ``application.bot_data``.
CHANNEL_KEY = "ptce"


@dataclass(slots=True)
class Channel:
    """Everything the callbacks and the background tasks share (kept in ``application.bot_data``)."""

    engine: AdvisorEngine
    state: ChannelState
    turns: Turns
    dispatcher: Dispatcher
    sender: OutboxSender
    watch: DatabaseWatch
    calls: IdempotentCalls
    side_tasks: SideTasks

    @property
    def queue(self) -> TelegramQueue:
        return self.state.queue

    @property
    def timing(self) -> Timing:
        return self.state.timing

    @classmethod
    def assemble(cls, engine: AdvisorEngine, queue: TelegramQueue, timing: Timing, bot: Bot,
                 process_update: Callable[[Update], Awaitable[None]],
                 max_concurrent_updates: int = MAX_CONCURRENT_UPDATES) -> Channel:
        state = ChannelState.create(queue, timing)
        watch = DatabaseWatch(state, engine.store, queue)
        turns = Turns(engine, state, watch.database_gone)
        watch.in_worker = turns.in_worker
        return cls(
            engine=engine,
            state=state,
            turns=turns,
            dispatcher=Dispatcher(process_update, state, max_concurrent_updates),
            sender=OutboxSender(bot, state, turns.mark_inactive),
            watch=watch,
            calls=IdempotentCalls(timing),
            side_tasks=SideTasks(),
        )

    @property
    def idle(self) -> bool:
        """Nothing submitted waits, nothing queued waits to be sent, no report is being built."""
        return not (self.dispatcher.active_users or self.sender.busy or self.side_tasks.tasks)

    async def drain(self) -> None:
        """Wait until every submitted update is processed and every reply delivered (tests, bench)."""
        while not self.idle:
            await self.dispatcher.join()
            await self.sender.join()
            await self.side_tasks.join()


def channel_of(application: Application[Any, Any, Any, Any, Any, Any]) -> Channel:
    """The channel of an application built by :func:`bot.telegram.app.build_application`."""
    channel = application.bot_data[CHANNEL_KEY]
    assert isinstance(channel, Channel)
    return channel
