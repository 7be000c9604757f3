"""Reading Telegram's failures: flood waits, and whether a failed request may have been delivered."""

from __future__ import annotations

import datetime as dtm
import warnings
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut

from bot.telegram.logs import logger
from bot.telegram.timing import Timing

T = TypeVar("T")

#: Attempts of an idempotent call.
SEND_ATTEMPTS = 3


def may_have_reached_telegram(exc: NetworkError) -> bool:
    """True unless the failure certainly happened before Telegram got the request.

    Connection refused, connect timeout and pool timeout happen before anything is sent;
    a ``NetworkError`` without a transport cause comes from Telegram's own error answer
    (5xx, Bad Gateway). Anything else (read timeout, connection cut) is uncertain.
    """
    cause = exc.__cause__
    if isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return False
    if isinstance(exc, TimedOut):
        return True
    return cause is not None


def retry_after_seconds(exc: RetryAfter) -> float:
    """Telegram's flood wait, in seconds (the attribute's type depends on PTB's settings)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value: object = exc.retry_after
    if isinstance(value, dtm.timedelta):
        return value.total_seconds()
    return float(value)  # type: ignore[arg-type]


class IdempotentCalls:
    """Runs *idempotent* Bot API calls (setMyCommands, a report's upload…) with retries.

    At most :data:`SEND_ATTEMPTS` attempts; ``BadRequest``, ``Forbidden`` and other
    refusals are raised at once. Messages never go through here: see the outbox.
    """

    def __init__(self, timing: Timing) -> None:
        self._timing = timing

    async def __call__(self, action: Callable[[], Awaitable[T]], *, retry_flood_control: bool = True) -> T:
        timing = self._timing
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                return await action()
            except RetryAfter as exc:
                delay = retry_after_seconds(exc)
                if not retry_flood_control or attempt == SEND_ATTEMPTS or delay > timing.max_retry_after:
                    raise
                logger.warning("Limite de débit Telegram : nouvel essai dans %.1f s", delay)
                await timing.sleep(delay + timing.retry_margin)
            except BadRequest:
                raise
            except NetworkError as exc:  # includes TimedOut
                if attempt == SEND_ATTEMPTS:
                    raise
                delay = timing.network_backoff * 2 ** (attempt - 1)
                logger.warning("Erreur réseau (%s), nouvel essai dans %.1f s", type(exc).__name__, delay)
                await timing.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover
