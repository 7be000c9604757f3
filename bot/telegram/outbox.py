"""Delivery of the outbox: each chat's queued replies in order, none ever sent twice.

429 and 5xx answers and connection failures before the request left are retried (per
chat: one user's flood wait pauses nobody else); a request that may have reached
Telegram (timeout after sending, connection cut) is never sent again.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Bot, InputFile, LinkPreviewOptions, Message, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.request import BaseRequest, RequestData

from bot.render import keyboard, to_html, to_plain
from bot.telegram.durable import (
    BLOCKED,
    DELETE,
    DOCUMENT,
    PHOTO,
    REFUSED,
    SENDING,
    SENT,
    UNCERTAIN,
    Action,
    OutboxRow,
)
from bot.telegram.logs import logger
from bot.telegram.retries import may_have_reached_telegram, retry_after_seconds
from bot.telegram.state import ChannelState, ShuttingDown
from dialogue.storage.errors import StorageError
from dialogue.types import Button

#: Messages in flight at once (all chats): enough for Telegram's 30/s, few to leave in doubt after a crash.
MAX_SENDS_IN_FLIGHT = 8

#: The outbox row whose request is being made (set by the sender, read by the request layer).
SENDING_ROW: contextvars.ContextVar[int | None] = contextvars.ContextVar("ptce_sending_row", default=None)


class NotSent(TelegramError):
    """The row could not be marked « sending », so its request did not leave (a storage error, not the network).

    A ``TelegramError``: python-telegram-bot passes it through unchanged, where it would wrap
    any other exception raised inside the request into a ``NetworkError`` (« may have reached
    Telegram »), and the reply would be dropped although it never left.
    """

    def __init__(self, cause: StorageError) -> None:
        super().__init__(f"not sent: {cause}")
        self.cause = cause


class TrackingRequest(BaseRequest):
    """Wraps the real transport: marks the outbox row « sending » right before its request leaves.

    The mark is made after the rate limiter let the call through, so a row waiting for
    its turn is not mistaken, after a crash, for one that may have been delivered.
    """

    def __init__(self, inner: BaseRequest, on_sending: Callable[[int], None] | None = None) -> None:
        self.inner = inner
        self.on_sending = on_sending
        #: Tasks whose message request has left (waited for at shutdown; the others are not).
        self.on_wire: set[asyncio.Task[Any]] = set()
        #: Set at shutdown: no message request leaves any more.
        self.closed = False

    async def initialize(self) -> None:
        await self.inner.initialize()

    async def shutdown(self) -> None:
        await self.inner.shutdown()

    @property
    def read_timeout(self) -> float | None:
        return self.inner.read_timeout

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: Any = BaseRequest.DEFAULT_NONE, write_timeout: Any = BaseRequest.DEFAULT_NONE,
                         connect_timeout: Any = BaseRequest.DEFAULT_NONE,
                         pool_timeout: Any = BaseRequest.DEFAULT_NONE) -> tuple[int, bytes]:
        row = SENDING_ROW.get()
        if row is None or self.on_sending is None:
            return await self.inner.do_request(url, method, request_data, read_timeout=read_timeout,
                                               write_timeout=write_timeout, connect_timeout=connect_timeout,
                                               pool_timeout=pool_timeout)
        if self.closed:
            raise ShuttingDown  # not sent: the row stays pending for the next start
        try:
            self.on_sending(row)
        except StorageError as exc:
            raise NotSent(exc) from exc
        task = asyncio.current_task()
        if task is not None:
            self.on_wire.add(task)
        try:
            return await self.inner.do_request(url, method, request_data, read_timeout=read_timeout,
                                               write_timeout=write_timeout, connect_timeout=connect_timeout,
                                               pool_timeout=pool_timeout)
        finally:
            if task is not None:
                self.on_wire.discard(task)


class OutboxSender:
    """Delivers the outbox: one task per chat with rows waiting, rows in order."""

    def __init__(self, bot: Bot, state: ChannelState, mark_inactive: Callable[[int], Awaitable[None]]) -> None:
        self._bot = bot
        self._state = state
        self._mark_inactive = mark_inactive
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._in_flight = asyncio.Semaphore(MAX_SENDS_IN_FLIGHT)
        self.uncertain = 0
        self.delivered = 0
        #: Rows known not to have left although the file could not record it yet (429, 5xx, refused).
        self._not_sent: set[int] = set()
        #: Chats of people who erased themselves: the file's WAL is truncated once their replies are out.
        self._erase_after: set[int] = set()
        #: Rows Telegram accepted whose removal from the file failed (removed later, never resent): their message id.
        self._sent: dict[int, int | None] = {}
        #: Called after a keyed row settled (row, outcome): its producer records the outcome.
        self.listeners: list[Callable[[OutboxRow, str], None]] = []

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    def kick(self, chat_id: int) -> None:
        """Make sure the chat's rows are being delivered."""
        if chat_id not in self._tasks and not self._state.stopping:
            self._tasks[chat_id] = asyncio.create_task(self._drain(chat_id), name=f"ptce-send-{chat_id & 0xffff}")

    def erase_after(self, chat_id: int) -> None:
        """Once the chat's queued replies are delivered, checkpoint and truncate the file's WAL (/oublier)."""
        self._erase_after.add(chat_id)

    async def settled(self, chat_id: int) -> None:
        """Wait until the rows queued so far for ``chat_id`` are delivered."""
        task = self._tasks.get(chat_id)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    async def join(self) -> None:
        """Wait until every chat's rows are delivered (tests, benchmarks)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def _drain(self, chat_id: int) -> None:
        queue = self._state.queue
        timing = self._state.timing
        try:
            while not self._state.stopping:
                try:
                    row = queue.next_row(chat_id)
                except StorageError as exc:
                    self._state.log_limited("outbox", logging.ERROR, "Boîte d’envoi illisible : %s", exc)
                    await timing.sleep(timing.storage_retry)
                    continue
                if row is None:
                    if chat_id in self._erase_after:
                        self._erase_after.discard(chat_id)
                        queue.erase_traces()
                    break
                try:
                    if row.status == SENDING and row.id in self._sent:
                        self._settle(row, SENT, self._sent[row.id])  # delivered; only its removal had failed
                        self._sent.pop(row.id, None)
                        continue
                    if row.status == SENDING and row.id not in self._not_sent:
                        # Its send started but the file could not record the outcome: it may have
                        # reached Telegram, so it is not sent again (as after a restart).
                        self.uncertain += 1
                        self._settle(row, UNCERTAIN)
                        continue
                    await self._deliver(row)
                    self._not_sent.discard(row.id)
                except StorageError as exc:
                    # The file could not record the row's fate (full disk…): a row sent but not marked
                    # stays « sending » (never resent); one not sent stays pending and is tried again.
                    self._state.log_limited("outbox", logging.ERROR, "Boîte d’envoi non enregistrée : %s", exc)
                    await timing.sleep(timing.storage_retry)
        finally:
            self._tasks.pop(chat_id, None)

    async def _deliver(self, row: OutboxRow) -> None:
        queue = self._state.queue
        timing = self._state.timing
        delay = timing.network_backoff
        while True:
            token = SENDING_ROW.set(row.id)
            try:
                async with self._in_flight:
                    sent = await self._call(row)
            except NotSent as exc:
                # Nothing left: the row stays pending and is tried again once the file answers.
                self._state.log_limited("outbox", logging.ERROR, "Boîte d’envoi non enregistrée : %s", exc.cause)
                if self._state.stopping:
                    return
                await timing.sleep(timing.storage_retry)
                continue
            except RetryAfter as exc:
                wait = min(retry_after_seconds(exc), timing.max_retry_after)
                self._state.log_limited("flood", logging.WARNING,
                                        "Limite de débit Telegram : nouvel essai dans %.1f s", wait)
                self._not_sent.add(row.id)
                queue.mark_pending(row.id)
                await timing.sleep(wait + timing.retry_margin)
                continue
            except Forbidden:
                # The user blocked the bot (or removed it from the group) meanwhile.
                logger.info("Envoi refusé par Telegram (chat %s) : utilisateur inactif", row.chat_id)
                queue.drop_chat(row.chat_id)
                self._notify(row, BLOCKED)
                if row.chat_id > 0:
                    await self._mark_inactive(row.chat_id)
                return
            except BadRequest as exc:
                message = exc.message.lower()
                if row.kind == "edit" and "message is not modified" in message:
                    self._settle(row, SENT)
                    return
                if row.kind == "edit":
                    logger.info("Modification impossible (%s), envoi d’un nouveau message", exc.message)
                    options = {k: v for k, v in row.options.items() if k not in ("message_id", "inline_message_id")}
                    queue.update_row(row.id, kind="send", options=options)
                    row = row.but(kind="send", options=options)
                    continue
                if "parse entities" in message and not row.options.get("plain"):
                    logger.warning("HTML refusé par Telegram (chat %s), envoi en texte brut", row.chat_id)
                    options = dict(row.options, plain=True)
                    queue.update_row(row.id, kind=row.kind, options=options)
                    row = row.but(options=options)
                    continue
                logger.warning("Message refusé par Telegram (chat %s) : %s", row.chat_id, exc.message)
                self._settle(row, REFUSED, follow_up=row.options.get("failed"))
                return
            except NetworkError as exc:  # includes TimedOut
                if isinstance(exc.__cause__, ShuttingDown) or self._state.stopping and not may_have_reached_telegram(exc):
                    return  # never sent: stays pending in the file
                if may_have_reached_telegram(exc):
                    self.uncertain += 1
                    logger.warning(
                        "Réponse de Telegram perdue (%s, chat %s) : le message a pu être remis, il n’est pas renvoyé",
                        type(exc).__name__, row.chat_id)
                    self._settle(row, UNCERTAIN, follow_up=row.options.get("uncertain"))
                    return
                self._state.log_limited("network", logging.WARNING,
                                        "Telegram injoignable (%s), nouvel essai dans %.1f s",
                                        type(exc).__name__, delay)
                self._not_sent.add(row.id)
                queue.mark_pending(row.id)
                await timing.sleep(delay)
                delay = min(delay * 2, timing.max_network_backoff)
                continue
            finally:
                SENDING_ROW.reset(token)
            self._sent[row.id] = sent
            self.delivered += 1
            self._settle(row, SENT, sent)
            self._sent.pop(row.id, None)
            return

    def _settle(self, row: OutboxRow, status: str, message_id: int | None = None, *, follow_up: str | None = None) -> None:
        """Remove the row (a keyed one keeps its outcome); queue the note the user needs, if any."""
        queue = self._state.queue
        if follow_up:
            # A document that could not be sent, or may not have been: the person is told, in the same transaction.
            queue.settle(row, status, message_id,
                         then=Action(row.chat_id, follow_up, options={"thread_id": row.options.get("thread_id")}))
        else:
            queue.settle(row, status, message_id)
        self._notify(row, status)

    def _notify(self, row: OutboxRow, status: str) -> None:
        if row.key is None:
            return
        for listener in self.listeners:
            try:
                listener(row, status)
            except Exception:  # noqa: BLE001 - a producer's bookkeeping must not stop the chat's deliveries
                logger.exception("Suivi d’envoi en échec (%s)", row.key.split(":", 1)[0])

    async def _call(self, row: OutboxRow) -> int | None:
        """Make the row's request; the id of the message Telegram created (None for an edit or a deletion)."""
        if row.kind in (DOCUMENT, PHOTO):
            upload = InputFile(row.data or b"", filename=row.options.get("filename"))
            common: dict[str, Any] = {"chat_id": row.chat_id, "caption": row.text or None,
                                      "message_thread_id": row.options.get("thread_id")}
            if row.kind == DOCUMENT:
                sent: Message = await self._bot.send_document(document=upload, **common)
            else:
                sent = await self._bot.send_photo(photo=upload, **common)
            return sent.message_id
        if row.kind == DELETE:
            await self._bot.delete_message(chat_id=row.chat_id, message_id=row.options["message_id"])
            return None
        plain = bool(row.options.get("plain"))
        text = to_plain(row.text) if plain else to_html(row.text)
        parse_mode = None if plain else ParseMode.HTML
        markup = keyboard(tuple(tuple(Button(label, payload) for label, payload in line) for line in row.buttons))
        preview = LinkPreviewOptions(is_disabled=True)
        if row.kind == "edit":
            if row.options.get("inline_message_id"):
                await self._bot.edit_message_text(
                    text=text, inline_message_id=row.options["inline_message_id"], parse_mode=parse_mode,
                    reply_markup=markup, link_preview_options=preview)
            else:
                await self._bot.edit_message_text(
                    text=text, chat_id=row.chat_id, message_id=row.options["message_id"], parse_mode=parse_mode,
                    reply_markup=markup, link_preview_options=preview)
            return None
        reply_to = row.options.get("reply_to")
        message = await self._bot.send_message(
            chat_id=row.chat_id,
            text=text,
            parse_mode=parse_mode,
            reply_markup=markup,
            message_thread_id=row.options.get("thread_id"),
            reply_parameters=(ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
                              if reply_to is not None else None),
            link_preview_options=preview,
        )
        return message.message_id

    async def stop(self) -> None:
        """Let requests already sent finish (bounded), cancel the waits; rows stay in the file."""
        transport = self._bot.request
        on_wire: list[asyncio.Task[Any]] = []
        if isinstance(transport, TrackingRequest):
            transport.closed = True  # from now on, only requests already sent may finish
            on_wire = list(transport.on_wire)
        if on_wire:
            await asyncio.wait(on_wire, timeout=self._state.timing.shutdown_grace)
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
