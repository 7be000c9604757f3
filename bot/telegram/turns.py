"""Engine turns: each run once in the engine's worker thread, stored exactly once, retried past locks."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from bot.telegram.engine_port import AdvisorEngine, user_key
from bot.telegram.logs import logger
from bot.telegram.state import ChannelState, ShuttingDown
from bot.telegram.texts import BUSY_TEXT, UNAVAILABLE_TEXT
from dialogue.storage.errors import DatabaseBusy, DatabaseGone, StorageError
from dialogue.types import Button, Event, Reply

T = TypeVar("T")


class TurnNotStored(Exception):
    """The turn could not be written; ``text`` tells the user what to do."""

    def __init__(self, text: str) -> None:
        super().__init__("turn not stored")
        self.text = text


def encode_replies(replies: list[Reply]) -> str:
    """Replies as stored with their turn (so a turn run again returns the same replies)."""
    return json.dumps(
        [
            {"text": r.text, "edit": r.edit, "buttons": [[[b.label, b.payload] for b in row] for row in r.buttons]}
            for r in replies
        ],
        ensure_ascii=False,
    )


def decode_replies(text: str) -> list[Reply]:
    return [
        Reply(
            item["text"],
            tuple(tuple(Button(label, payload) for label, payload in row) for row in item["buttons"]),
            edit=bool(item["edit"]),
        )
        for item in json.loads(text)
    ]


class Turns:
    """Runs the engine in one worker thread (the only user of the progress connection)."""

    def __init__(self, engine: AdvisorEngine, state: ChannelState, on_database_gone: Callable[[], None]) -> None:
        self.engine = engine
        self._state = state
        self._on_database_gone = on_database_gone
        self.worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ptce-engine")
        #: Telegram users erased by their last turn (/oublier): the channel erases its own traces.
        self.forgotten: set[int] = set()
        #: The last storage problem reported (``None`` while the database works).
        self.storage_trouble: str | None = None

    async def in_worker(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function`` where the engine's turns run (the progress connection is not shared across threads)."""
        return await asyncio.get_running_loop().run_in_executor(self.worker, functools.partial(function, *args))

    def _turn_in_worker(self, key: str, user: str, event: Event) -> tuple[list[Reply], bool, bool]:
        """Runs in the worker thread: the replies, whether the turn wrote, whether it erased the person."""
        store = self.engine.store
        replies = store.once(key, user, lambda: list(self.engine.handle(user, event)), encode_replies, decode_replies)
        return replies, store.last_turn_wrote, store.last_turn_forgot

    async def run(self, update_id: int, user_id: int, event: Event) -> list[Reply]:
        """The engine's replies to ``event``, the turn stored exactly once.

        Raises :class:`TurnNotStored` when the database stayed locked or unwritable too
        long (nothing of the turn was written), :class:`ShuttingDown` when stopping.
        """
        timing = self._state.timing
        started = timing.clock()
        delay = timing.first_lock_retry
        while True:
            if self._state.stopping:
                raise ShuttingDown
            if self._state.database_gone:
                raise TurnNotStored(UNAVAILABLE_TEXT)
            try:
                replies, wrote, forgot = await self.in_worker(self._turn_in_worker, f"tg:{update_id}", user_key(user_id), event)
            except DatabaseGone:
                self._on_database_gone()
                raise TurnNotStored(UNAVAILABLE_TEXT) from None
            except StorageError as exc:
                if not exc.transient:
                    raise
                busy = isinstance(exc, DatabaseBusy)
                limit = timing.lock_wait_limit if busy else timing.unavailable_wait_limit
                waited = timing.clock() - started
                if not busy or waited >= timing.brief_lock:  # brief locks (another program's short write) are normal
                    self._storage_problem(str(exc))
                if waited >= limit:
                    logger.warning("Message abandonné après %.0f s d’attente de la base (chat %s)", waited, user_id)
                    raise TurnNotStored(BUSY_TEXT if busy else UNAVAILABLE_TEXT) from None
                await timing.sleep(min(delay, limit - waited))
                delay = min(delay * 2, timing.max_lock_retry)
                continue
            if forgot:
                self.forgotten.add(user_id)
            if self.storage_trouble is not None and wrote:
                logger.warning("Base de données de nouveau disponible.")
                self.storage_trouble = None
            return replies

    def _storage_problem(self, description: str) -> None:
        if self.storage_trouble != description:
            self.storage_trouble = description
            logger.error("Base de données indisponible : %s Les messages attendent.", description)

    async def mark_inactive(self, chat_id: int) -> None:
        """The user blocked the bot (best effort: a storage error is only logged)."""
        try:
            await self.in_worker(self.engine.mark_inactive, user_key(chat_id))
        except StorageError as exc:
            logger.log(logging.WARNING, "Impossible de noter l’utilisateur inactif : %s", exc)

    def shutdown(self) -> None:
        """Wait for the turn in the worker thread (it commits, exactly once), then stop the thread."""
        self.worker.shutdown(wait=True)
