"""Per-user ordering: different users' updates concurrently, each user's updates in arrival order."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import deque
from collections.abc import Awaitable, Callable

from telegram import Update

from bot.telegram.state import ChannelState
from dialogue.storage.errors import StorageError

#: Updates processed at the same time (all users together).
MAX_CONCURRENT_UPDATES = 256


class Dispatcher:
    """One FIFO per Telegram user, drained by one task at a time.

    A queue exists only while its user has updates waiting. Updates without a user are
    processed on their own. After an update's handlers ran, it is marked done (unless the
    bot is stopping: then it stays queued in the file for the next start).
    """

    def __init__(self, process: Callable[[Update], Awaitable[None]], state: ChannelState,
                 max_concurrent_updates: int = MAX_CONCURRENT_UPDATES) -> None:
        self._process_update = process
        self._state = state
        self._semaphore = asyncio.Semaphore(max_concurrent_updates)
        self._queues: dict[object, deque[Update]] = {}
        self._tasks: dict[object, asyncio.Task[None]] = {}
        #: Updates whose processing raised (marked « bad », not retried).
        self.failed = 0

    @property
    def active_users(self) -> int:
        """Number of users with updates running or waiting."""
        return len(self._queues)

    @property
    def waiting(self) -> int:
        """Updates submitted and not processed yet."""
        return sum(len(queue) for queue in self._queues.values())

    @staticmethod
    def ordering_key(update: object) -> int | None:
        """The Telegram user whose updates must not overlap, or ``None``."""
        if isinstance(update, Update) and update.effective_user is not None:
            return update.effective_user.id
        return None

    def submit(self, update: Update) -> None:
        key: object = self.ordering_key(update)
        if key is None:
            key = ("update", update.update_id)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
        queue.append(update)
        if key not in self._tasks:
            self._tasks[key] = asyncio.create_task(self._drain(key, queue), name=f"ptce-user-{hash(key) & 0xffff}")

    async def _drain(self, key: object, queue: deque[Update]) -> None:
        try:
            while queue and not self._state.stopping:
                async with self._semaphore:
                    if self._state.stopping:
                        break
                    try:
                        await self._process(queue[0])
                    except Exception as exc:  # one update must not stop its user's queue (nor anyone else's)
                        self._give_up(queue[0], exc)
                queue.popleft()
        finally:
            del self._tasks[key]
            if not queue:
                del self._queues[key]

    async def _process(self, update: Update) -> None:
        await self._process_update(update)
        if self._state.stopping:
            return  # a turn cut short stays « new »; one that completed is already done
        try:
            if not self._state.queue.is_done(update.update_id):
                self._state.queue.finish(update.update_id)
        except (StorageError, sqlite3.DatabaseError) as exc:
            self._state.log_limited("finish", logging.ERROR, "File des updates inaccessible : %s", exc)

    def _give_up(self, update: Update, exc: Exception) -> None:
        """Mark an update that broke its processing « bad » (logged without its content) and go on."""
        self.failed += 1
        self._state.log_limited("failed-update", logging.ERROR, "Update %s abandonnée (%s ; %d au total)",
                                update.update_id, type(exc).__name__, self.failed)
        try:
            self._state.queue.finish(update.update_id, bad=True)
        except Exception as error:  # the file itself fails: the update comes back at the next start
            self._state.log_limited("finish", logging.ERROR, "File des updates inaccessible : %s", type(error).__name__)

    async def join(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def stop(self) -> None:
        """Cancel what waits; a turn already in the worker thread still commits (exactly once)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
