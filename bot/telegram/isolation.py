"""One update never stops the others: text repaired, the background tasks supervised.

Telegram's JSON may carry a lone UTF-16 surrogate (``"\\ud800"`` is valid escaped JSON);
Python decodes it into a string that UTF-8 cannot encode, so SQLite, the engine's store
and the HTTP client would all fail on it. :func:`scrub` replaces such code points by
« � » (U+FFFD) before anything else sees the update: the person is answered as if
the character were a typo.

:func:`supervise` runs a background task (long polling, the file watch, the team chat's
sync): an unexpected exception is logged in one line without the payload and the task
restarts with back-off; after :data:`MAX_CRASHES` crashes in a row without a quiet
period, the bot stops with a non-zero exit code and one clear line, never a dead loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from bot.telegram.logs import logger
from bot.telegram.state import ChannelState

#: A UTF-16 surrogate left alone (a valid pair is decoded into one code point by ``json``).
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"

#: Crashes in a row after which a supervised task gives up and the bot stops.
MAX_CRASHES = 5
#: A task that ran this long without crashing has its crash count reset.
QUIET_PERIOD = 60.0
#: Exit code when a background task kept crashing.
EXIT_TASK_FAILED = 4


def has_lone_surrogate(text: str) -> bool:
    return _LONE_SURROGATE.search(text) is not None


def scrub(value: Any) -> Any:
    """``value`` (decoded JSON) with every lone surrogate replaced by U+FFFD; unchanged objects are returned as is."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub(REPLACEMENT, value) if has_lone_surrogate(value) else value
    if isinstance(value, dict):
        return {scrub(key): scrub(item) for key, item in value.items()}
    if isinstance(value, list):
        return [scrub(item) for item in value]
    return value


def needs_scrub(item: Any) -> bool:
    """Fast check: does any string in ``item`` hold a lone surrogate?"""
    if isinstance(item, str):
        return has_lone_surrogate(item)
    if isinstance(item, dict):
        return any(needs_scrub(key) or needs_scrub(value) for key, value in item.items())
    if isinstance(item, list):
        return any(needs_scrub(value) for value in item)
    return False


def clean(item: Any) -> Any:
    """The update as the rest of the channel may use it."""
    return scrub(item) if needs_scrub(item) else item


async def supervise(name: str, work: Callable[[], Awaitable[None]], state: ChannelState) -> None:
    """Run ``work`` until it returns or the bot stops; restart it after an unexpected exception.

    The log line names the task and the exception's type only (never its message, which
    may quote a user's text). Cancelled at stop like the task itself.
    """
    timing = state.timing
    crashes = 0
    delay = timing.network_backoff
    while not state.stopping:
        started = timing.clock()
        try:
            await work()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the supervisor's whole point: anything a task did not expect
            if state.stopping:
                return
            if timing.clock() - started > QUIET_PERIOD:
                crashes, delay = 0, timing.network_backoff
            crashes += 1
            if crashes >= MAX_CRASHES:
                logger.critical("Tâche « %s » en échec répété (%s) : arrêt du bot (code %d).",
                                name, type(exc).__name__, EXIT_TASK_FAILED)
                state.request_stop(EXIT_TASK_FAILED)
                return
            logger.error("Tâche « %s » interrompue (%s) : reprise dans %.1f s.", name, type(exc).__name__, delay,
                         exc_info=logger.isEnabledFor(logging.DEBUG))
            await timing.sleep(delay)
            delay = min(delay * 2, timing.max_network_backoff)
