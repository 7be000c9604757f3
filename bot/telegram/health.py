"""Storage health: the progress or queue file deleted or replaced while the bot runs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.telegram.durable import TelegramQueue
from bot.telegram.logs import logger
from bot.telegram.state import ChannelState
from dialogue.storage.progress import ProgressStore

#: Exit code when the database file disappears or is replaced while running.
EXIT_DATABASE_GONE = 3

RunInWorker = Callable[[Callable[[], Path | None]], Awaitable[Path | None]]


class DatabaseWatch:
    """Notices a vanished database: stop writing, tell users, keep a copy, exit non-zero."""

    def __init__(self, state: ChannelState, store: ProgressStore, queue: TelegramQueue) -> None:
        self._state = state
        self._store = store
        self._queue = queue
        #: Runs the rescue copy in the engine's worker thread (it owns the connection); set by the channel.
        self.in_worker: RunInWorker | None = None

    def check_files(self) -> None:
        if self._store.file_replaced() or self._queue.file_replaced():
            self.database_gone()

    def database_gone(self) -> None:
        """The progress file was deleted or replaced: stop writing, tell users, exit non-zero."""
        state = self._state
        if state.database_gone:
            return
        state.database_gone = True
        state.exit_code = EXIT_DATABASE_GONE
        logger.critical(
            "Le fichier de la base de données %s a été supprimé ou remplacé pendant que le bot tournait : "
            "plus aucune écriture, arrêt du bot (code %d).", self._store.path or "?", EXIT_DATABASE_GONE,
        )
        asyncio.get_running_loop().create_task(self._rescue_then_stop())

    async def _rescue_then_stop(self) -> None:
        """Copy what the open connection still sees, then stop."""
        run = self.in_worker
        rescued = await run(self._store.rescue_copy) if run is not None else self._store.rescue_copy()
        logger.warning("Copie de la base encore ouverte : %s", rescued or "impossible")
        # A few seconds for the users already waiting to be told, then stop.
        await self._state.timing.sleep(self._state.timing.gone_notice)
        self._state.request_stop()
