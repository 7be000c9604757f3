"""Intake: every update recorded in the queue file before Telegram is told it was received.

Long polling (:class:`Poller`), the webhook's update queue (:class:`DurableUpdateQueue`)
and, at start-up, :func:`resume` for what was recorded before a stop or a crash.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from telegram import Bot, Update
from telegram.error import InvalidToken, RetryAfter, TelegramError

from bot.telegram.durable import TelegramQueue
from bot.telegram.isolation import clean
from bot.telegram.logs import logger
from bot.telegram.retries import retry_after_seconds
from bot.telegram.state import ChannelState, ShuttingDown
from bot.telegram.texts import DELAYED_TEXT
from dialogue.storage.errors import StorageError

#: The updates the bot asks Telegram for (channel posts, inline queries… are not needed).
ALLOWED_UPDATES = [
    Update.MESSAGE,
    Update.EDITED_MESSAGE,
    Update.CALLBACK_QUERY,
    Update.MY_CHAT_MEMBER,
]
#: Updates fetched per getUpdates call.
POLL_LIMIT = 100
#: Intake pauses while this many recorded updates wait (keeps the queue file small).
MAX_BACKLOG = 5000
#: Exit code when Telegram no longer accepts the token.
EXIT_TOKEN_REFUSED = 2

Submit = Callable[[Update], None]


class Poller:
    """Long polling that records every update before confirming it, and skips unparseable ones."""

    def __init__(self, bot: Bot, state: ChannelState, submit: Submit, waiting: Callable[[], int]) -> None:
        self._bot = bot
        self._state = state
        self._submit = submit
        self._waiting = waiting
        self.bad_updates = 0
        self._told: dict[int, float] = {}
        self._intake_failing = False

    def accept(self, raw: Sequence[Any]) -> int | None:
        """Parse and record one batch; the offset that confirms it (``None``: nothing to confirm)."""
        items: list[tuple[int, dict[str, Any] | None]] = []
        parsed: dict[int, Update] = {}
        for item in raw:
            update_id = item.get("update_id") if isinstance(item, dict) else None
            if not isinstance(update_id, int) or isinstance(update_id, bool):
                self.bad_updates += 1
                self._state.log_limited("bad-update", logging.WARNING,
                                        "Update sans identifiant ignorée (%d illisibles au total)", self.bad_updates)
                continue
            try:
                item = clean(item)  # lone surrogates → « � »: stored and answered, not refused
                update = Update.de_json(item, self._bot)
            except Exception as exc:  # the library's parsing: any error means « unreadable »
                self._count_bad(update_id, exc)
                items.append((update_id, None))
                continue
            items.append((update_id, item))
            parsed[update_id] = update
        if not items:
            return None
        try:
            new = self._state.queue.record(items)
        except StorageError:
            raise
        except Exception:  # one item the file refuses (not a storage failure): find it, keep the others
            new = self._record_one_by_one(items)
        for update_id in sorted(new):
            try:
                self._submit(parsed[update_id])
            except Exception as exc:
                self._count_bad(update_id, exc)
                self._state.queue.finish(update_id)
        return max(update_id for update_id, _ in items) + 1

    def _count_bad(self, update_id: int, exc: BaseException) -> None:
        """Count and log an unusable update, without its content (the exception's message may quote it)."""
        self.bad_updates += 1
        self._state.log_limited(
            "bad-update", logging.WARNING,
            "Update %s illisible ignorée (%s ; %d illisibles au total)",
            update_id, type(exc).__name__, self.bad_updates)

    def _record_one_by_one(self, items: Sequence[tuple[int, dict[str, Any] | None]]) -> set[int]:
        new: set[int] = set()
        queue = self._state.queue
        for update_id, payload in items:
            try:
                new |= queue.record([(update_id, payload)])
            except StorageError:
                raise
            except Exception as exc:
                self._count_bad(update_id, exc)
                queue.record([(update_id, None)])
        return new

    async def run(self) -> None:
        state = self._state
        timing = state.timing
        await self._delete_webhook()
        offset = state.queue.next_offset()
        delay = timing.network_backoff
        while not state.stopping:
            if self._waiting() > MAX_BACKLOG:
                await timing.sleep(timing.backlog_pause)
                continue
            try:
                raw = await self._bot.do_api_request(
                    "getUpdates",
                    api_kwargs={"offset": offset, "timeout": timing.poll_timeout, "limit": POLL_LIMIT,
                                "allowed_updates": ALLOWED_UPDATES},
                    read_timeout=timing.poll_timeout + timing.read_timeout,
                )
            except RetryAfter as exc:
                await timing.sleep(min(retry_after_seconds(exc), timing.max_retry_after))
                continue
            except InvalidToken:
                logger.critical("Telegram refuse désormais le jeton (révoqué ?) : arrêt du bot (code 2).")
                state.request_stop(EXIT_TOKEN_REFUSED)
                return
            except TelegramError as exc:  # network, conflict with another instance, Telegram's errors
                state.log_limited("poll", logging.WARNING, "Réception des messages impossible (%s), nouvel essai",
                                  type(exc).__name__)
                await timing.sleep(delay)
                delay = min(delay * 2, timing.max_network_backoff)
                continue
            delay = timing.network_backoff
            if not isinstance(raw, list) or not raw:
                continue
            try:
                confirmed = self.accept(raw)
            except StorageError as exc:
                # Not recorded, so not confirmed: Telegram keeps them, we ask again.
                state.log_limited("intake", logging.ERROR, "Impossible d’enregistrer les messages reçus : %s", exc)
                self._intake_failing = True
                await self._tell_unavailable(raw)
                await timing.sleep(timing.storage_retry)
                continue
            if self._intake_failing:
                self._intake_failing = False
                logger.warning("Enregistrement des messages reçus de nouveau possible.")
            if confirmed is not None:
                offset = max(offset or 0, confirmed)

    async def confirm(self) -> None:
        """At shutdown: tell Telegram which updates are recorded (they are processed next start)."""
        offset = self._state.queue.next_offset()
        if offset is None:
            return
        try:
            raw = await self._bot.do_api_request(
                "getUpdates", api_kwargs={"offset": offset, "timeout": 0, "limit": POLL_LIMIT},
                read_timeout=self._state.timing.read_timeout)
            if isinstance(raw, list) and raw:
                self.accept(raw)
        except Exception:  # noqa: BLE001 - whatever failed, unconfirmed updates come back at the next start
            pass

    async def _delete_webhook(self) -> None:
        while not self._state.stopping:
            try:
                await self._bot.delete_webhook(drop_pending_updates=False)
                return
            except TelegramError as exc:
                self._state.log_limited("webhook", logging.WARNING, "deleteWebhook impossible (%s)",
                                        type(exc).__name__)
                await self._state.timing.sleep(self._state.timing.network_backoff)

    async def _tell_unavailable(self, raw: Sequence[Any]) -> None:
        """While nothing can be recorded, tell each writing user once in a while (not durable)."""
        timing = self._state.timing
        now = timing.clock()
        for item in raw:
            try:
                chat_id = int(item["message"]["chat"]["id"]) if "message" in item else None
            except (KeyError, TypeError, ValueError):
                chat_id = None
            if chat_id is None or chat_id <= 0 or now - self._told.get(chat_id, -1e9) < timing.unavailable_notice_interval:
                continue
            self._told[chat_id] = now
            try:
                await self._bot.send_message(chat_id=chat_id, text=DELAYED_TEXT)
            except TelegramError:
                pass


class DurableUpdateQueue(asyncio.Queue[object]):
    """The webhook's update queue: an update is recorded before the webhook call is answered."""

    def __init__(self) -> None:
        super().__init__()
        self._state: ChannelState | None = None
        self._submit: Submit | None = None

    def connect(self, state: ChannelState, submit: Submit) -> None:
        """Route updates to the channel (until then, the queue behaves as a plain one)."""
        self._state, self._submit = state, submit

    def put_nowait(self, item: object) -> None:
        state, submit = self._state, self._submit
        if isinstance(item, Update) and state is not None and submit is not None:
            if state.stopping:
                raise ShuttingDown  # answered 500: Telegram sends it again later
            try:
                payload = item.to_dict()
                cleaned = clean(payload)
                if cleaned is not payload:  # lone surrogates: the engine must see the repaired text
                    item = Update.de_json(cleaned, item.get_bot())
                new = state.queue.record([(item.update_id, cleaned)])
            except StorageError:
                raise  # answered 500: Telegram sends it again later
            except Exception as exc:
                # Only this update is unusable: recorded « bad », answered 200 so Telegram does not resend it.
                state.log_limited("bad-update", logging.WARNING, "Update %s illisible ignorée (%s)",
                                  item.update_id, type(exc).__name__)
                state.queue.record([(item.update_id, None)])
                return
            if item.update_id in new:
                submit(item)
            return
        super().put_nowait(item)

    async def put(self, item: object) -> None:
        if isinstance(item, Update):
            self.put_nowait(item)
            return
        await super().put(item)


def resume(bot: Bot, queue: TelegramQueue, submit: Submit, kick: Callable[[int], None]) -> tuple[int, int]:
    """At start-up: re-submit recorded updates, re-deliver queued replies.

    Rows whose request may have reached Telegram before a crash are dropped, never resent.
    Returns (updates resumed, replies dropped as uncertain).
    """
    dropped = queue.drop_uncertain()
    if dropped:
        logger.warning("%d réponse(s) peut-être déjà remise(s) avant l’arrêt : pas de nouvel envoi", dropped)
    pending = queue.pending()
    bad = 0
    for update_id, payload in pending:
        try:
            update = Update.de_json(clean(payload), bot)
        except Exception:
            bad += 1
            queue.finish(update_id)
            continue
        submit(update)
    if pending:
        logger.info("%d message(s) reçu(s) avant l’arrêt repris", len(pending) - bad)
    for chat_id in queue.pending_chats():
        kick(chat_id)
    return len(pending) - bad, dropped
