"""Telegram channel for the PTCE advisor (``ptce-bot telegram``).

Callbacks stay thin: a Telegram update becomes one engine event
(:class:`~dialogue.types.Command`, :class:`~dialogue.types.Choose` or
:class:`~dialogue.types.Say`), the engine answers with replies, and the replies are
rendered as HTML messages with inline keyboards. The engine owns all dialogue state;
nothing here remembers anything about a user.

How an update travels (each step survives a crash, see :mod:`bot.durable`):

1. **Intake** — :class:`Poller` fetches raw updates and parses them one by one: an update
   the library cannot parse is skipped, counted and logged once without its content. The
   good ones are recorded in the ``updates`` table *before* the next ``getUpdates`` call
   confirms them to Telegram (webhook mode: before the HTTP answer).
2. **Ordering** — :class:`Dispatcher` keeps one queue per Telegram user: a user's updates
   are handled one after the other, in arrival order; different users concurrently.
3. **Engine** — ``Engine.handle`` runs in a single worker thread (one writer, no lock
   contention inside the process, the event loop never blocks on SQLite). The turn's
   changes and its replies commit together (:meth:`ProgressStore.once`), so a turn is
   applied once even if the process dies right after. When another program holds the
   database's write lock, the turn fails fast and is retried with back-off while other
   users are served; after :data:`LOCK_WAIT_LIMIT` the user is asked in French to resend,
   and nothing of the turn was written. No reply is sent for a turn that was not stored.
4. **Outbox** — the replies and the update's « done » mark commit in one transaction;
   :class:`OutboxSender` then delivers each chat's rows in order. 429 and 5xx answers and
   connection failures before the request left are retried (waits bounded by
   :data:`MAX_RETRY_AFTER`, per chat: one user's flood wait pauses nobody else); a request
   that may have reached Telegram (timeout after sending, connection cut) is never sent
   again, so nobody gets a reply twice.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextvars
import datetime as dtm
import functools
import json
import logging
import os
import re
import signal
import sqlite3
import sys
import time
import warnings
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from telegram import (
    BotCommand,
    CallbackQuery,
    LinkPreviewOptions,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType, ParseMode
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import BaseRequest, RequestData
from telegram.warnings import PTBUserWarning

from bot.durable import SENDING, Action, OutboxRow, TelegramQueue, queue_path_for
from bot.render import keyboard, split_text, to_html, to_plain
from dialogue.storage.errors import DatabaseBusy, DatabaseGone, StorageError
from dialogue.storage.progress import ProgressStore
from dialogue.types import Button, Choose, Command, Event, Reply, Say

logger = logging.getLogger(__name__)

#: Shape of a bot token as given by @BotFather (``<bot id>:<secret>``).
TOKEN_PATTERN = re.compile(r"^\d{5,}:[A-Za-z0-9_-]{30,}$")
#: Telegram accepts 1–256 characters from this set for a webhook's secret token.
WEBHOOK_SECRET_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
#: Characters of an unknown command's name that may be echoed back to the user.
UNSAFE_COMMAND_CHARS = re.compile(r"[^a-z0-9_]")
#: The updates the bot asks Telegram for (channel posts, inline queries… are not needed).
ALLOWED_UPDATES = [
    Update.MESSAGE,
    Update.EDITED_MESSAGE,
    Update.CALLBACK_QUERY,
    Update.MY_CHAT_MEMBER,
]

#: A flood-control pause longer than this is cut short (the send is then tried again).
MAX_RETRY_AFTER = 30.0
#: First back-off after a failure that happened before the request was sent, doubled up to the max.
NETWORK_BACKOFF = 0.5
MAX_NETWORK_BACKOFF = 30.0
#: Client timeouts for Bot API calls (a late answer counts as « may have been delivered »).
READ_TIMEOUT = float(os.environ.get("PTCE_TELEGRAM_READ_TIMEOUT") or 5.0)
#: Long-polling wait asked from Telegram.
POLL_TIMEOUT = 10
#: Updates fetched per getUpdates call.
POLL_LIMIT = 100
#: Intake pauses while this many recorded updates wait (keeps the queue file small).
MAX_BACKLOG = 5000
#: Updates processed at the same time (all users together).
MAX_CONCURRENT_UPDATES = 256
#: How long a turn waits for another program's write lock before the user is asked to resend.
LOCK_WAIT_LIMIT = 60.0
#: How long a turn waits for a read-only or full database before the user is told.
UNAVAILABLE_WAIT_LIMIT = 10.0
#: First and longest pause between two tries of a turn that met a lock.
FIRST_LOCK_RETRY = 0.05
MAX_LOCK_RETRY = 1.0
#: How often the database file's identity is checked.
WATCH_INTERVAL = 1.0
#: Messages in flight at once (all chats): enough for Telegram's 30/s, few to leave in doubt after a crash.
MAX_SENDS_IN_FLIGHT = 8
#: At shutdown, requests already sent get this long to be answered.
SHUTDOWN_GRACE = 5.0
#: Exit code when the database file disappears or is replaced while running.
EXIT_DATABASE_GONE = 3
#: A webhook request larger than this is refused (Telegram's updates weigh a few KB).
MAX_WEBHOOK_BODY = 1_000_000
#: Same log line at most once per this many seconds.
LOG_INTERVAL = 30.0

UNSUPPORTED_TEXT = (
    "Je ne comprends que les messages écrits et les boutons. "
    "Écrivez votre question, ou tapez /menu pour voir ce que je propose."
)
ERROR_TEXT = "Désolé, un problème technique est survenu. Réessayez dans un instant ou tapez /menu."
BUSY_TEXT = (
    "Désolé, je n’ai pas pu enregistrer votre dernier message : la base de données est occupée. "
    "Renvoyez-le dans un instant, s’il vous plaît."
)
UNAVAILABLE_TEXT = (
    "Le service est momentanément indisponible : votre dernier message n’a pas pu être enregistré. "
    "Renvoyez-le dans quelques minutes, s’il vous plaît."
)
DELAYED_TEXT = (
    "Le service est momentanément indisponible : votre message sera traité dès que possible, "
    "inutile de le renvoyer."
)
EMPTY_TEXT = "…"

_STATE_KEY = "ptce"
_sleep = asyncio.sleep  # indirection so tests can skip real waits
#: The outbox row whose request is being made (set by the sender, read by the request layer).
_SENDING_ROW: contextvars.ContextVar[int | None] = contextvars.ContextVar("ptce_sending_row", default=None)

warnings.filterwarnings("ignore", message=r"Please use 'Bot\.(get_updates|getUpdates)'", category=PTBUserWarning)


class EngineLike(Protocol):
    """What the channel needs from :class:`dialogue.engine.Engine`."""

    def handle(self, user_id: str, event: Event) -> list[Reply]:
        """Answer one event of one user."""

    def mark_inactive(self, user_id: str) -> None:
        """Remember that the user blocked the bot."""


class TurnNotStored(Exception):
    """The turn could not be written; ``text`` tells the user what to do."""

    def __init__(self, text: str) -> None:
        super().__init__("turn not stored")
        self.text = text


class ShuttingDown(Exception):
    """The bot is stopping: the update stays queued for the next start."""


class LimitedLog:
    """Log a line at most once per :data:`LOG_INTERVAL` per key, with the count of skipped ones."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def __call__(self, key: str, level: int, message: str, *args: Any) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < LOG_INTERVAL:
            self._skipped[key] = self._skipped.get(key, 0) + 1
            return
        skipped = self._skipped.pop(key, 0)
        self._last[key] = now
        suffix = f" ({skipped} semblables non journalisés)" if skipped else ""
        logger.log(level, message + suffix, *args)


# --------------------------------------------------------------------------- replies in JSON


def _encode_replies(replies: list[Reply]) -> str:
    return json.dumps(
        [
            {"text": r.text, "edit": r.edit, "buttons": [[[b.label, b.payload] for b in row] for row in r.buttons]}
            for r in replies
        ],
        ensure_ascii=False,
    )


def _decode_replies(text: str) -> list[Reply]:
    return [
        Reply(
            item["text"],
            tuple(tuple(Button(label, payload) for label, payload in row) for row in item["buttons"]),
            edit=bool(item["edit"]),
        )
        for item in json.loads(text)
    ]


# --------------------------------------------------------------------------- the channel


@dataclass(slots=True)
class _ChannelState:
    """What the callbacks and the background tasks share, kept in ``application.bot_data``."""

    engine: EngineLike
    queue: TelegramQueue
    worker: concurrent.futures.ThreadPoolExecutor
    sender: OutboxSender | None = None
    dispatcher: Dispatcher | None = None
    stopping: bool = False
    stop_requested: asyncio.Event | None = None
    exit_code: int = 0
    database_gone: bool = False
    storage_trouble: str | None = None
    log_limited: LimitedLog = field(default_factory=LimitedLog)
    #: Reports being built and sent; kept so they are not garbage-collected and can be awaited.
    side_tasks: set[asyncio.Task] = field(default_factory=set)

    def background(self, work: Awaitable[Any]) -> None:
        """Run ``work`` beside the conversation (e.g. a PDF report) without holding up other updates."""
        task = asyncio.get_running_loop().create_task(work)
        self.side_tasks.add(task)
        task.add_done_callback(self.side_tasks.discard)

    # ------------------------------------------------------------------ engine turns

    def _store(self) -> ProgressStore | None:
        store = getattr(self.engine, "store", None)
        return store if isinstance(store, ProgressStore) else None

    def _turn_in_worker(self, key: str, user: str, event: Event) -> tuple[list[Reply], bool]:
        """Runs in the worker thread: the replies, and whether the turn wrote to the database."""
        store = self._store()
        if store is None:
            return list(self.engine.handle(user, event)), True
        replies = store.once(key, user, lambda: list(self.engine.handle(user, event)), _encode_replies, _decode_replies)
        return replies, store.last_turn_wrote

    async def in_worker(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.worker, functools.partial(function, *args))

    async def run_turn(self, update_id: int, user_id: int, event: Event) -> list[Reply]:
        """The engine's replies to ``event``, the turn stored exactly once.

        Raises :class:`TurnNotStored` when the database stayed locked or unwritable too
        long (nothing of the turn was written), :class:`ShuttingDown` when stopping.
        """
        started = time.monotonic()
        delay = FIRST_LOCK_RETRY
        while True:
            if self.stopping:
                raise ShuttingDown
            if self.database_gone:
                raise TurnNotStored(UNAVAILABLE_TEXT)
            try:
                replies, wrote = await self.in_worker(self._turn_in_worker, f"tg:{update_id}", user_key(user_id), event)
            except DatabaseGone:
                self.on_database_gone()
                raise TurnNotStored(UNAVAILABLE_TEXT) from None
            except StorageError as exc:
                if not exc.transient:
                    raise
                busy = isinstance(exc, DatabaseBusy)
                limit = LOCK_WAIT_LIMIT if busy else UNAVAILABLE_WAIT_LIMIT
                waited = time.monotonic() - started
                if not busy or waited >= 1.0:  # brief locks (another program's short write) are normal
                    self._storage_problem(str(exc))
                if waited >= limit:
                    logger.warning("Message abandonné après %.0f s d’attente de la base (chat %s)", waited, user_id)
                    raise TurnNotStored(BUSY_TEXT if busy else UNAVAILABLE_TEXT) from None
                await _sleep(min(delay, limit - waited))
                delay = min(delay * 2, MAX_LOCK_RETRY)
                continue
            if self.storage_trouble is not None and wrote:
                logger.warning("Base de données de nouveau disponible.")
                self.storage_trouble = None
            return replies

    def _storage_problem(self, description: str) -> None:
        if self.storage_trouble != description:
            self.storage_trouble = description
            logger.error("Base de données indisponible : %s Les messages attendent.", description)

    async def mark_inactive(self, chat_id: int) -> None:
        try:
            await self.in_worker(self.engine.mark_inactive, user_key(chat_id))
        except StorageError as exc:
            logger.warning("Impossible de noter l’utilisateur inactif : %s", exc)

    # ------------------------------------------------------------------ storage health

    def on_database_gone(self) -> None:
        """The progress file was deleted or replaced: stop writing, tell users, exit non-zero."""
        if self.database_gone:
            return
        self.database_gone = True
        self.exit_code = EXIT_DATABASE_GONE
        store = self._store()
        logger.critical(
            "Le fichier de la base de données %s a été supprimé ou remplacé pendant que le bot tournait : "
            "plus aucune écriture, arrêt du bot (code %d).", getattr(store, "path", "?"), EXIT_DATABASE_GONE,
        )
        asyncio.get_running_loop().create_task(self._rescue_then_stop(store))

    async def _rescue_then_stop(self, store: ProgressStore | None) -> None:
        """Copy what the open connection still sees (in the worker: it owns the connection), then stop."""
        rescued = await self.in_worker(store.rescue_copy) if store is not None else None
        logger.warning("Copie de la base encore ouverte : %s", rescued or "impossible")
        # A few seconds for the users already waiting to be told, then stop.
        await _sleep(2.0)
        if self.stop_requested is not None:
            self.stop_requested.set()

    def check_files(self) -> None:
        store = self._store()
        if (store is not None and store.file_replaced()) or self.queue.file_replaced():
            self.on_database_gone()


# --------------------------------------------------------------------------- ordering


class Dispatcher:
    """Process different users' updates concurrently and each user's updates in order.

    One FIFO per Telegram user, drained by one task at a time; a queue exists only while
    its user has updates waiting. Updates without a user are processed on their own.
    After an update's handlers ran, it is marked done (unless the bot is stopping: then it
    stays queued in the file for the next start).
    """

    def __init__(self, application: Application, channel: _ChannelState,
                 max_concurrent_updates: int = MAX_CONCURRENT_UPDATES) -> None:
        self._application = application
        self._channel = channel
        self._semaphore = asyncio.Semaphore(max_concurrent_updates)
        self._queues: dict[object, deque[Update]] = {}
        self._tasks: dict[object, asyncio.Task] = {}

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
            while queue and not self._channel.stopping:
                async with self._semaphore:
                    if self._channel.stopping:
                        break
                    await self._process(queue[0])
                queue.popleft()
        finally:
            del self._tasks[key]
            if not queue:
                del self._queues[key]

    async def _process(self, update: Update) -> None:
        await self._application.process_update(update)
        if self._channel.stopping:
            return  # a turn cut short stays « new »; one that completed is already done
        try:
            if not self._channel.queue.is_done(update.update_id):
                self._channel.queue.finish(update.update_id)
        except (StorageError, sqlite3.DatabaseError) as exc:
            self._channel.log_limited("finish", logging.ERROR, "File des updates inaccessible : %s", exc)

    async def join(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def stop(self) -> None:
        """Cancel what waits; a turn already in the worker thread still commits (exactly once)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# --------------------------------------------------------------------------- delivery


def _may_have_reached_telegram(exc: NetworkError) -> bool:
    """True unless the failure certainly happened before Telegram got the request.

    Connection refused, connect timeout and pool timeout happen before anything is sent;
    a ``NetworkError`` without a transport cause comes from Telegram's own error answer
    (5xx, Bad Gateway). Anything else (read timeout, connection cut) is uncertain.
    """
    import httpx  # PTB's transport, already loaded

    cause = exc.__cause__
    if isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return False
    if isinstance(exc, TimedOut):
        return True
    return cause is not None


def _retry_after_seconds(exc: RetryAfter) -> float:
    value = getattr(exc, "_retry_after", None)
    if value is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = exc.retry_after
    if isinstance(value, dtm.timedelta):
        return value.total_seconds()
    return float(value)


class TrackingRequest(BaseRequest):
    """Wraps the real transport: marks the outbox row « sending » right before its request leaves.

    The mark is made after the rate limiter let the call through, so a row waiting for
    its turn is not mistaken, after a crash, for one that may have been delivered.
    """

    def __init__(self, inner: BaseRequest, on_sending: Callable[[int], None] | None = None) -> None:
        self.inner = inner
        self.on_sending = on_sending
        #: Tasks whose message request has left (waited for at shutdown; the others are not).
        self.on_wire: set[asyncio.Task] = set()
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
        row = _SENDING_ROW.get()
        if row is None or self.on_sending is None:
            return await self.inner.do_request(url, method, request_data, read_timeout=read_timeout,
                                               write_timeout=write_timeout, connect_timeout=connect_timeout,
                                               pool_timeout=pool_timeout)
        if self.closed:
            raise ShuttingDown  # not sent: the row stays pending for the next start
        self.on_sending(row)
        task = asyncio.current_task()
        self.on_wire.add(task)
        try:
            return await self.inner.do_request(url, method, request_data, read_timeout=read_timeout,
                                               write_timeout=write_timeout, connect_timeout=connect_timeout,
                                               pool_timeout=pool_timeout)
        finally:
            self.on_wire.discard(task)


class OutboxSender:
    """Delivers the outbox: one task per chat with rows waiting, rows in order."""

    def __init__(self, application: Application, channel: _ChannelState) -> None:
        self._bot = application.bot
        self._channel = channel
        self._tasks: dict[int, asyncio.Task] = {}
        self._in_flight = asyncio.Semaphore(MAX_SENDS_IN_FLIGHT)
        self.uncertain = 0
        self.delivered = 0

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    def kick(self, chat_id: int) -> None:
        """Make sure the chat's rows are being delivered."""
        if chat_id not in self._tasks and not self._channel.stopping:
            self._tasks[chat_id] = asyncio.create_task(self._drain(chat_id), name=f"ptce-send-{chat_id & 0xffff}")

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
        queue = self._channel.queue
        try:
            while not self._channel.stopping:
                try:
                    row = queue.next_row(chat_id)
                except StorageError as exc:
                    self._channel.log_limited("outbox", logging.ERROR, "Boîte d’envoi illisible : %s", exc)
                    await _sleep(1.0)
                    continue
                if row is None:
                    break
                try:
                    if row.status == SENDING:
                        # Its send started but the file could not record the outcome: it may have
                        # reached Telegram, so it is not sent again (as after a restart).
                        self.uncertain += 1
                        queue.remove(row.id)
                        continue
                    await self._deliver(row)
                except StorageError as exc:
                    # The file could not record the row's fate (full disk…): a row sent but not marked
                    # stays « sending » (never resent); one not sent stays pending and is tried again.
                    self._channel.log_limited("outbox", logging.ERROR, "Boîte d’envoi non enregistrée : %s", exc)
                    await _sleep(1.0)
        finally:
            self._tasks.pop(chat_id, None)

    async def _deliver(self, row: OutboxRow) -> None:
        queue = self._channel.queue
        delay = NETWORK_BACKOFF
        while True:
            token = _SENDING_ROW.set(row.id)
            try:
                async with self._in_flight:
                    await self._call(row)
            except RetryAfter as exc:
                wait = min(_retry_after_seconds(exc), MAX_RETRY_AFTER)
                self._channel.log_limited("flood", logging.WARNING,
                                          "Limite de débit Telegram : nouvel essai dans %.1f s", wait)
                queue.mark_pending(row.id)
                await _sleep(wait + 0.1)
                continue
            except Forbidden:
                # The user blocked the bot (or removed it from the group) meanwhile.
                logger.info("Envoi refusé par Telegram (chat %s) : utilisateur inactif", row.chat_id)
                queue.drop_chat(row.chat_id)
                if row.chat_id > 0:
                    await self._channel.mark_inactive(row.chat_id)
                return
            except BadRequest as exc:
                message = exc.message.lower()
                if row.kind == "edit" and "message is not modified" in message:
                    queue.remove(row.id)
                    return
                if row.kind == "edit":
                    logger.info("Modification impossible (%s), envoi d’un nouveau message", exc.message)
                    options = {k: v for k, v in row.options.items() if k not in ("message_id", "inline_message_id")}
                    queue.update_row(row.id, kind="send", options=options)
                    row = OutboxRow(row.id, row.chat_id, "send", row.text, row.buttons, options, row.status)
                    continue
                if "parse entities" in message and not row.options.get("plain"):
                    logger.warning("HTML refusé par Telegram (chat %s), envoi en texte brut", row.chat_id)
                    options = dict(row.options, plain=True)
                    queue.update_row(row.id, kind=row.kind, options=options)
                    row = OutboxRow(row.id, row.chat_id, row.kind, row.text, row.buttons, options, row.status)
                    continue
                logger.warning("Message refusé par Telegram (chat %s) : %s", row.chat_id, exc.message)
                queue.remove(row.id)
                return
            except NetworkError as exc:  # includes TimedOut
                if isinstance(exc.__cause__, ShuttingDown) or self._channel.stopping and not _may_have_reached_telegram(exc):
                    return  # never sent: stays pending in the file
                if _may_have_reached_telegram(exc):
                    self.uncertain += 1
                    logger.warning(
                        "Réponse de Telegram perdue (%s, chat %s) : le message a pu être remis, il n’est pas renvoyé",
                        type(exc).__name__, row.chat_id)
                    queue.remove(row.id)
                    return
                self._channel.log_limited("network", logging.WARNING,
                                          "Telegram injoignable (%s), nouvel essai dans %.1f s",
                                          type(exc).__name__, delay)
                queue.mark_pending(row.id)
                await _sleep(delay)
                delay = min(delay * 2, MAX_NETWORK_BACKOFF)
                continue
            finally:
                _SENDING_ROW.reset(token)
            queue.remove(row.id)
            self.delivered += 1
            return

    async def _call(self, row: OutboxRow) -> None:
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
            return
        reply_to = row.options.get("reply_to")
        await self._bot.send_message(
            chat_id=row.chat_id,
            text=text,
            parse_mode=parse_mode,
            reply_markup=markup,
            message_thread_id=row.options.get("thread_id"),
            reply_parameters=(ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
                              if reply_to is not None else None),
            link_preview_options=preview,
        )

    async def stop(self) -> None:
        """Let requests already sent finish (bounded), cancel the waits; rows stay in the file."""
        transport = self._bot.request
        if isinstance(transport, TrackingRequest):
            transport.closed = True  # from now on, only requests already sent may finish
        on_wire = list(getattr(transport, "on_wire", ()))
        if on_wire:
            await asyncio.wait(on_wire, timeout=SHUTDOWN_GRACE)
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# --------------------------------------------------------------------------- intake


class Poller:
    """Long polling that records every update before confirming it, and skips unparseable ones."""

    def __init__(self, application: Application, channel: _ChannelState) -> None:
        self._application = application
        self._channel = channel
        self.bad_updates = 0
        self._told: dict[int, float] = {}
        self._intake_failing = False

    def accept(self, raw: Sequence[Any]) -> int | None:
        """Parse and record one batch; the offset that confirms it (``None``: nothing to confirm)."""
        bot = self._application.bot
        items: list[tuple[int, dict[str, Any] | None]] = []
        parsed: dict[int, Update] = {}
        for item in raw:
            update_id = item.get("update_id") if isinstance(item, dict) else None
            if not isinstance(update_id, int) or isinstance(update_id, bool):
                self.bad_updates += 1
                self._channel.log_limited("bad-update", logging.WARNING,
                                          "Update sans identifiant ignorée (%d illisibles au total)", self.bad_updates)
                continue
            try:
                update = Update.de_json(item, bot)
            except Exception as exc:  # the library's parsing: any error means « unreadable »
                self.bad_updates += 1
                self._channel.log_limited(
                    "bad-update", logging.WARNING,
                    "Update %s illisible ignorée (%s ; %d illisibles au total)",
                    update_id, type(exc).__name__, self.bad_updates)
                items.append((update_id, None))
                continue
            items.append((update_id, item))
            parsed[update_id] = update
        if not items:
            return None
        new = self._channel.queue.record(items)
        for update_id in sorted(new):
            self._channel.dispatcher.submit(parsed[update_id])
        return max(update_id for update_id, _ in items) + 1

    async def run(self) -> None:
        bot = self._application.bot
        channel = self._channel
        await self._delete_webhook()
        offset = channel.queue.next_offset()
        delay = NETWORK_BACKOFF
        while not channel.stopping:
            if channel.dispatcher.waiting > MAX_BACKLOG:
                await _sleep(0.5)
                continue
            try:
                raw = await bot.do_api_request(
                    "getUpdates",
                    api_kwargs={"offset": offset, "timeout": POLL_TIMEOUT, "limit": POLL_LIMIT,
                                "allowed_updates": ALLOWED_UPDATES},
                    read_timeout=POLL_TIMEOUT + READ_TIMEOUT,
                )
            except RetryAfter as exc:
                await _sleep(min(_retry_after_seconds(exc), MAX_RETRY_AFTER))
                continue
            except InvalidToken:
                logger.critical("Telegram refuse désormais le jeton (révoqué ?) : arrêt du bot (code 2).")
                channel.exit_code = 2
                if channel.stop_requested is not None:
                    channel.stop_requested.set()
                return
            except TelegramError as exc:  # network, conflict with another instance, Telegram's errors
                channel.log_limited("poll", logging.WARNING, "Réception des messages impossible (%s), nouvel essai",
                                    type(exc).__name__)
                await _sleep(delay)
                delay = min(delay * 2, MAX_NETWORK_BACKOFF)
                continue
            delay = NETWORK_BACKOFF
            if not isinstance(raw, list) or not raw:
                continue
            try:
                confirmed = self.accept(raw)
            except StorageError as exc:
                # Not recorded, so not confirmed: Telegram keeps them, we ask again.
                channel.log_limited("intake", logging.ERROR,
                                    "Impossible d’enregistrer les messages reçus : %s", exc)
                self._intake_failing = True
                await self._tell_unavailable(raw)
                await _sleep(1.0)
                continue
            if self._intake_failing:
                self._intake_failing = False
                logger.warning("Enregistrement des messages reçus de nouveau possible.")
            if confirmed is not None:
                offset = max(offset or 0, confirmed)

    async def confirm(self) -> None:
        """At shutdown: tell Telegram which updates are recorded (they are processed next start)."""
        offset = self._channel.queue.next_offset()
        if offset is None:
            return
        try:
            raw = await self._application.bot.do_api_request(
                "getUpdates", api_kwargs={"offset": offset, "timeout": 0, "limit": POLL_LIMIT},
                read_timeout=READ_TIMEOUT)
            if isinstance(raw, list) and raw:
                self.accept(raw)
        except (TelegramError, StorageError):
            pass  # unconfirmed updates come back at the next start and are recognised

    async def _delete_webhook(self) -> None:
        while not self._channel.stopping:
            try:
                await self._application.bot.delete_webhook(drop_pending_updates=False)
                return
            except TelegramError as exc:
                self._channel.log_limited("webhook", logging.WARNING, "deleteWebhook impossible (%s)",
                                          type(exc).__name__)
                await _sleep(NETWORK_BACKOFF)

    async def _tell_unavailable(self, raw: Sequence[Any]) -> None:
        """While nothing can be recorded, tell each writing user once a minute (not durable)."""
        now = time.monotonic()
        for item in raw:
            try:
                chat_id = int(item["message"]["chat"]["id"]) if "message" in item else None
            except (KeyError, TypeError, ValueError):
                chat_id = None
            if chat_id is None or chat_id <= 0 or now - self._told.get(chat_id, -1e9) < 60:
                continue
            self._told[chat_id] = now
            try:
                await self._application.bot.send_message(chat_id=chat_id, text=DELAYED_TEXT)
            except TelegramError:
                pass


class DurableUpdateQueue(asyncio.Queue):
    """The webhook's update queue: an update is recorded before the webhook call is answered."""

    channel: _ChannelState | None = None

    def put_nowait(self, item: Any) -> None:
        channel = self.channel
        if isinstance(item, Update) and channel is not None and channel.dispatcher is not None:
            if channel.stopping:
                raise ShuttingDown  # answered 500: Telegram sends it again later
            new = channel.queue.record([(item.update_id, item.to_dict())])
            if item.update_id in new:
                channel.dispatcher.submit(item)
            return
        super().put_nowait(item)

    async def put(self, item: Any) -> None:
        if isinstance(item, Update):
            self.put_nowait(item)
            return
        await super().put(item)


# --------------------------------------------------------------------------- helpers


def _state(context: ContextTypes.DEFAULT_TYPE) -> _ChannelState:
    return context.bot_data[_STATE_KEY]


def user_key(user_id: int) -> str:
    """The engine's user id for a Telegram user."""
    return f"tg:{user_id}"


async def call_with_retries(action: Callable[[], Awaitable[Any]], *, retry_flood_control: bool = True) -> Any:
    """Run one *idempotent* Bot API call (setMyCommands…), retrying network errors and flood control.

    At most :data:`SEND_ATTEMPTS` attempts; ``BadRequest``, ``Forbidden`` and other
    refusals are raised at once. Messages never go through here: see :class:`OutboxSender`.
    """
    for attempt in range(1, SEND_ATTEMPTS + 1):
        try:
            return await action()
        except RetryAfter as exc:
            delay = _retry_after_seconds(exc)
            if not retry_flood_control or attempt == SEND_ATTEMPTS or delay > MAX_RETRY_AFTER:
                raise
            logger.warning("Limite de débit Telegram : nouvel essai dans %.1f s", delay)
            await _sleep(delay + 0.1)
        except BadRequest:
            raise
        except NetworkError as exc:  # includes TimedOut
            if attempt == SEND_ATTEMPTS:
                raise
            delay = NETWORK_BACKOFF * 2 ** (attempt - 1)
            logger.warning(
                "Erreur réseau (%s), nouvel essai dans %.1f s", type(exc).__name__, delay
            )
            await _sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


#: Attempts of an idempotent call.
SEND_ATTEMPTS = 3


def _is_private(update: Update) -> bool:
    return update.effective_chat is not None and update.effective_chat.type == ChatType.PRIVATE


def _mentions_bot(message: Message, username: str, bot_id: int) -> bool:
    """True if the message's text or caption mentions the bot."""
    wanted = "@" + username.lower()
    types = [MessageEntity.MENTION, MessageEntity.TEXT_MENTION]
    found = {**message.parse_entities(types), **message.parse_caption_entities(types)}
    for entity, text in found.items():
        if entity.type == MessageEntity.MENTION and text.lower() == wanted:
            return True
        if entity.type == MessageEntity.TEXT_MENTION and entity.user and entity.user.id == bot_id:
            return True
    return False


def _addressed_to_bot(message: Message, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """In a group, the bot answers only when mentioned or replied to; always in private."""
    if message.chat.type == ChatType.PRIVATE:
        return True
    bot = context.bot
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot.id:
        return True
    return _mentions_bot(message, bot.username, bot.id)


def _strip_mention(text: str, username: str) -> str:
    return re.sub(rf"@{re.escape(username)}\b", " ", text, flags=re.IGNORECASE).strip()


def _command_of(message: Message) -> tuple[str, str, str | None]:
    """``/name@target argument`` → (name, argument, target)."""
    text = message.text or ""
    entity = message.entities[0]
    word = message.parse_entity(entity)[1:]
    name, _, target = word.partition("@")
    argument = " ".join(text.split()[1:])
    return name.lower(), argument, (target or None)




# --------------------------------------------------------------------------- turns


def _may_edit(query: CallbackQuery) -> bool:
    """Edit only a message that belongs to the user who pressed its button."""
    message = query.message
    if message is None:
        return query.inline_message_id is not None
    if message.chat.type == ChatType.PRIVATE:
        return message.chat.id == query.from_user.id
    if not isinstance(message, Message):
        return False
    owner = message.reply_to_message.from_user if message.reply_to_message else None
    return owner is not None and owner.id == query.from_user.id


def actions_for(update: Update, replies: Sequence[Reply], query: CallbackQuery | None = None) -> list[Action]:
    """The outbox rows showing ``replies`` to the user who caused ``update``."""
    chat = update.effective_chat
    if chat is None:
        return []
    message = update.message
    group = chat.type != ChatType.PRIVATE
    options: dict[str, Any] = {}
    if group and message is not None:
        options["reply_to"] = message.message_id
    source = message if message is not None else (query.message if query else None)
    if isinstance(source, Message) and source.is_topic_message:
        options["thread_id"] = source.message_thread_id
    actions: list[Action] = []
    for reply in replies:
        buttons = tuple(tuple((b.label, b.payload) for b in row) for row in reply.buttons)
        parts = split_text(reply.text) if reply.text.strip() else [EMPTY_TEXT]
        if reply.edit and query is not None and len(parts) == 1 and reply.text.strip() and _may_edit(query):
            target = (
                {"message_id": query.message.message_id}
                if query.message is not None
                else {"inline_message_id": query.inline_message_id}
            )
            actions.append(Action(chat.id, parts[0], buttons, kind="edit", options=options | target))
            continue
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            actions.append(Action(chat.id, part, buttons if last else (), options=options))
    return actions


async def respond(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    event: Event | None,
    *,
    replies: Sequence[Reply] = (),
    query: CallbackQuery | None = None,
) -> None:
    """Run ``event`` through the engine (or show fixed ``replies``), queue the answer, deliver it."""
    channel = _state(context)
    chat, user = update.effective_chat, update.effective_user
    if chat is None or user is None:
        return
    if event is not None:
        try:
            replies = await channel.run_turn(update.update_id, user.id, event)
        except TurnNotStored as exc:
            replies = [Reply(exc.text)]
    channel.queue.complete(update.update_id, actions_for(update, replies, query))
    if channel.sender is not None:
        channel.sender.kick(chat.id)
    for reply in replies:
        if reply.attachment is not None:  # the PDF report: built off the event loop, after the text
            channel.background(_send_report(context, chat.id, update, reply.attachment))


async def _send_report(context: ContextTypes.DEFAULT_TYPE, chat_id: int, update: Update, request: Any) -> None:
    """Build and send the PDF report once the chat's pending replies are out."""
    from bot.telegram_report import send_report

    channel = _state(context)
    if channel.sender is not None:
        await channel.sender.settled(chat_id)
    message = update.effective_message
    thread_id = message.message_thread_id if isinstance(message, Message) and message.is_topic_message else None
    await send_report(
        context.bot, chat_id, request, getattr(channel.engine, "kb", None), thread_id=thread_id, call=call_with_retries
    )


def _ignored(update: Update) -> bool:
    """Updates without a person behind them (channels, anonymous admins) are ignored."""
    if update.effective_user is None or update.effective_chat is None:
        return True
    message = update.effective_message
    return message is not None and message.sender_chat is not None


# --------------------------------------------------------------------------- callbacks


async def on_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Pass one of the advisor's commands (``/start orientation`` included) to the engine."""
    if _ignored(update) or update.message is None:
        return
    name, argument, _ = _command_of(update.message)
    # Regards croisés: /collectif or /rejoindre in a group links it to the sender's collective.
    in_group = name in {"collectif", "rejoindre"} and not _is_private(update)
    group_chat = f"tg-group:{update.effective_chat.id}" if in_group else None
    await respond(update, context, Command(name, argument, group_chat=group_chat))


async def on_other_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Pass an unknown command to the engine, unless it is meant for another bot."""
    if _ignored(update) or update.message is None:
        return
    name, argument, target = _command_of(update.message)
    if target is not None and target.lower() != (context.bot.username or "").lower():
        return
    if target is None and not _is_private(update):
        return  # in groups, bare unknown commands are probably for other bots
    # The name is echoed back: keep only what a command name may hold (no markup, no link).
    name = UNSAFE_COMMAND_CHARS.sub("", name)[:32] or "inconnue"
    await respond(update, context, Command(name, argument))


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Pass free text to the engine (in groups, only when the bot is addressed)."""
    message = update.message
    if _ignored(update) or message is None or message.text is None:
        return
    if not _addressed_to_bot(message, context):
        return
    text = message.text
    if not _is_private(update):
        text = _strip_mention(text, context.bot.username)
    event: Event = Say(text) if text.strip() else Command("menu")
    await respond(update, context, event)


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer the button press, then pass its payload to the engine."""
    query = update.callback_query
    if query is None:
        return
    try:
        # One try: answering is only cosmetic (the spinner), and a late answer must not repeat.
        await query.answer()
    except TelegramError as exc:  # e.g. « query is too old »: the press is still handled
        logger.info("Réponse au bouton impossible : %s", type(exc).__name__)
    if _ignored(update) or query.data is None:
        return
    message = query.message
    if message is not None and message.chat.type == ChatType.PRIVATE and message.chat.id != query.from_user.id:
        # A private chat is its user's own: a press « from » someone else is forged.
        logger.warning("Bouton d’une autre conversation privée ignoré (update %s)", update.update_id)
        return
    await respond(update, context, Choose(query.data), query=query)


async def on_unsupported(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Explain that photos, stickers, voice notes… are not understood."""
    message = update.message
    if _ignored(update) or message is None or not _addressed_to_bot(message, context):
        return
    await respond(update, context, None, replies=[Reply(UNSUPPORTED_TEXT)])


async def on_my_chat_member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Tell the engine when a user blocks the bot in a private chat."""
    change = update.my_chat_member
    if change is None or change.chat.type != ChatType.PRIVATE:
        return
    if change.new_chat_member.status in (ChatMemberStatus.BANNED, ChatMemberStatus.LEFT):
        logger.info("Bot bloqué par un utilisateur (chat %s)", change.chat.id)
        await _state(context).mark_inactive(change.from_user.id)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the error with its context (never the message text) and apologise to the user."""
    if isinstance(context.error, ShuttingDown):
        return  # the update stays queued for the next start
    update_id = chat_id = None
    if isinstance(update, Update):
        update_id = update.update_id
        chat_id = update.effective_chat.id if update.effective_chat else None
    logger.error(
        "Erreur pendant le traitement de l’update %s (chat %s) : %s",
        update_id,
        chat_id,
        type(context.error).__name__,
        exc_info=context.error,
    )
    if (
        isinstance(update, Update)
        and update.effective_user is not None
        and update.effective_chat is not None
        and update.effective_chat.type == ChatType.PRIVATE
        and not isinstance(context.error, TelegramError)  # Telegram itself failed: don't insist
    ):
        channel = _state(context)
        try:
            channel.queue.complete(update.update_id, [Action(update.effective_chat.id, ERROR_TEXT)])
        except StorageError:
            return
        if channel.sender is not None:
            channel.sender.kick(update.effective_chat.id)


async def post_init(application: Application) -> None:
    """Publish the command list shown by Telegram's « / » menu; tell the engine the bot's username."""
    use_channel = getattr(application.bot_data[_STATE_KEY].engine, "use_channel", None)
    if use_channel is not None:  # invitation links: https://t.me/<username>?start=<code>
        from dialogue.types import ChannelSettings

        use_channel(ChannelSettings(bot_username=application.bot.username))
    engine = application.bot_data[_STATE_KEY].engine
    commands = [BotCommand(name, description) for name, description in engine.commands]
    try:
        await call_with_retries(lambda: application.bot.set_my_commands(commands))
    except TelegramError as exc:
        logger.warning("Impossible d’enregistrer les commandes : %s", type(exc).__name__)


async def _post_shutdown(application: Application) -> None:
    channel: _ChannelState = application.bot_data[_STATE_KEY]
    channel.worker.shutdown(wait=True)


# --------------------------------------------------------------------------- application


def register_handlers(application: Application) -> None:
    """Every handler of the bot, in one place (order matters: first match wins)."""
    new_messages = filters.UpdateType.MESSAGE  # edited messages are ignored
    application.add_handler(
        ChatMemberHandler(on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER)
    )
    names = sorted(name for name, _ in application.bot_data[_STATE_KEY].engine.commands)
    application.add_handler(CommandHandler(names, on_command, new_messages))
    application.add_handler(MessageHandler(new_messages & filters.COMMAND, on_other_command))
    application.add_handler(CallbackQueryHandler(on_button))
    application.add_handler(MessageHandler(new_messages & filters.TEXT, on_text))
    application.add_handler(
        MessageHandler(new_messages & ~filters.TEXT & ~filters.StatusUpdate.ALL, on_unsupported)
    )
    application.add_error_handler(on_error)


def file_url_for(base_url: str) -> str:
    """The file URL matching a Bot API URL (``…/bot`` → ``…/file/bot``)."""
    stripped = base_url.rstrip("/")
    if stripped.endswith("/bot"):
        return stripped[: -len("bot")] + "file/bot"
    return stripped + "/file/bot"


def channel_of(application: Application) -> _ChannelState:
    """The channel state of an application built by :func:`build_application`."""
    return application.bot_data[_STATE_KEY]


def build_application(
    engine: EngineLike,
    token: str,
    *,
    base_url: str | None = None,
    request: BaseRequest | None = None,
    get_updates_request: BaseRequest | None = None,
    rate_limit: bool = True,
    queue: TelegramQueue | None = None,
) -> Application:
    """Build the bot's application around ``engine`` (not started).

    ``queue`` is the durable intake and outbox; without one, an in-memory queue is used
    (tests). The engine runs in a single worker thread owned by the application.
    """
    from telegram.request import HTTPXRequest

    queue = queue if queue is not None else TelegramQueue.open(None)
    transport = TrackingRequest(
        request if request is not None
        else HTTPXRequest(connection_pool_size=MAX_CONCURRENT_UPDATES, read_timeout=READ_TIMEOUT,
                          write_timeout=READ_TIMEOUT, connect_timeout=READ_TIMEOUT, pool_timeout=READ_TIMEOUT),
        queue.mark_sending,
    )
    update_queue = DurableUpdateQueue()
    builder = (
        ApplicationBuilder()
        .token(token)
        .request(transport)
        .update_queue(update_queue)
        .post_init(post_init)
        .post_shutdown(_post_shutdown)
    )
    if base_url:
        builder = builder.base_url(base_url).base_file_url(
            os.environ.get("TELEGRAM_BASE_FILE_URL") or file_url_for(base_url)
        )
    if get_updates_request is not None:
        builder = builder.get_updates_request(get_updates_request)
    if rate_limit:
        # No retries inside the limiter: a RetryAfter there would pause every chat; the
        # outbox waits per chat instead (bounded by MAX_RETRY_AFTER).
        builder = builder.rate_limiter(AIORateLimiter(max_retries=0))
    application = builder.build()
    channel = _ChannelState(
        engine=engine,
        queue=queue,
        worker=concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ptce-engine"),
    )
    channel.sender = OutboxSender(application, channel)
    channel.dispatcher = Dispatcher(application, channel)
    update_queue.channel = channel
    application.bot_data[_STATE_KEY] = channel
    register_handlers(application)
    return application


async def drain(application: Application) -> None:
    """Wait until every submitted update is processed and every reply delivered (tests, bench)."""
    channel = channel_of(application)
    while (
        (channel.dispatcher is not None and channel.dispatcher.active_users)
        or (channel.sender is not None and channel.sender.busy)
        or channel.side_tasks
    ):
        if channel.dispatcher is not None:
            await channel.dispatcher.join()
        if channel.sender is not None:
            await channel.sender.join()
        if channel.side_tasks:
            await asyncio.gather(*list(channel.side_tasks), return_exceptions=True)


def resume(application: Application) -> tuple[int, int]:
    """At start-up: re-submit recorded updates, re-deliver queued replies.

    Rows whose request may have reached Telegram before a crash are dropped, never resent.
    Returns (updates resumed, replies dropped as uncertain).
    """
    channel = channel_of(application)
    dropped = channel.queue.drop_uncertain()
    if dropped:
        logger.warning("%d réponse(s) peut-être déjà remise(s) avant l’arrêt : pas de nouvel envoi", dropped)
    pending = channel.queue.pending()
    bad = 0
    for update_id, payload in pending:
        try:
            update = Update.de_json(payload, application.bot)
        except Exception:
            bad += 1
            channel.queue.finish(update_id)
            continue
        channel.dispatcher.submit(update)
    if pending:
        logger.info("%d message(s) reçu(s) avant l’arrêt repris", len(pending) - bad)
    for chat_id in channel.queue.pending_chats():
        channel.sender.kick(chat_id)
    return len(pending) - bad, dropped


@dataclass(frozen=True, slots=True)
class WebhookOptions:
    listen: str
    port: int
    url_path: str
    webhook_url: str
    secret_token: str | None


def _limit_webhook_body(max_bytes: int) -> bool:
    """Make the webhook's web server refuse bodies over ``max_bytes`` before reading them.

    python-telegram-bot builds tornado's ``HTTPServer`` itself without a size option
    (tornado's default is 100 MB); we wrap that constructor. Private API: if it moved,
    only the reverse proxy's limit remains (``client_max_body_size``, see the README).
    """
    try:
        from telegram.ext._utils import webhookhandler
        from tornado.httpserver import HTTPServer
    except ImportError:  # pragma: no cover - webhooks extra missing
        return False
    if not hasattr(webhookhandler, "HTTPServer"):  # pragma: no cover
        return False
    webhookhandler.HTTPServer = functools.partial(HTTPServer, max_body_size=max_bytes)
    return True


async def serve(application: Application, webhook: WebhookOptions | None = None,
                stop: asyncio.Event | None = None) -> int:
    """Run the bot until ``stop`` is set (SIGTERM/SIGINT); returns the exit code."""
    channel = channel_of(application)
    stop = stop or asyncio.Event()
    channel.stop_requested = stop
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - not the main thread
            pass
    poller: Poller | None = None
    tasks: list[asyncio.Task] = []
    async with application:
        # ``async with`` does not run the builder's hooks (run_polling would): run them here.
        await (application.post_init or post_init)(application)
        resume(application)
        if webhook is not None:
            _limit_webhook_body(MAX_WEBHOOK_BODY)
            await application.updater.start_webhook(
                listen=webhook.listen, port=webhook.port, url_path=webhook.url_path,
                webhook_url=webhook.webhook_url, secret_token=webhook.secret_token,
                allowed_updates=ALLOWED_UPDATES,
            )
            logger.info("Bot Telegram en mode webhook sur %s:%s", webhook.listen, webhook.port)
        else:
            poller = Poller(application, channel)
            tasks.append(asyncio.create_task(poller.run(), name="ptce-poller"))
            logger.info("Bot Telegram en mode long polling")
        tasks.append(asyncio.create_task(_watch(channel), name="ptce-watch"))
        await stop.wait()
        logger.info("Arrêt demandé : fin des envois en cours, le reste attend le prochain démarrage")
        started = time.monotonic()
        channel.stopping = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if webhook is not None and application.updater.running:
            await application.updater.stop()
        await channel.dispatcher.stop()
        await channel.sender.stop()
        # The turn already in the worker thread commits (exactly once) before the store closes.
        await loop.run_in_executor(None, functools.partial(channel.worker.shutdown, wait=True))
        if application.post_stop is not None:
            await application.post_stop(application)
        if poller is not None:
            try:
                await asyncio.wait_for(poller.confirm(), timeout=2.0)
            except asyncio.TimeoutError:
                pass  # unconfirmed updates come back at the next start and are recognised
        logger.info("Bot arrêté en %.1f s", time.monotonic() - started)
    return channel.exit_code


async def _watch(channel: _ChannelState) -> None:
    """Notice a database file deleted or replaced while running; prune old turn markers."""
    store = channel._store()
    last_prune = time.monotonic()
    while True:
        await _sleep(WATCH_INTERVAL)
        channel.check_files()
        if time.monotonic() - last_prune > 3600:
            last_prune = time.monotonic()
            try:
                channel.queue.prune()
            except StorageError:
                pass  # next hour
            if store is not None:
                await channel.in_worker(store.prune_markers)


# --------------------------------------------------------------------------- command line


class RedactSecrets(logging.Filter):
    """Replace secrets (bot token, webhook secret) by ``***`` in every log record."""

    def __init__(self, *secrets: str | None) -> None:
        super().__init__()
        self._secrets = [secret for secret in secrets if secret]

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        return True


class DropPayloads(logging.Filter):
    """Keep users' text out of the library's logs.

    python-telegram-bot logs whole update payloads in a few places (a webhook update it
    cannot parse, at CRITICAL; every call's parameters and results, at DEBUG).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("telegram") and "data" in str(record.msg).lower() and record.args:
            record.msg = str(record.msg).split("%", 1)[0] + "<contenu omis>"
            record.args = None
        return True


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def configure_logging(*secrets: str | None, level: str = "INFO") -> None:
    """Logs on stderr at ``level``, secrets redacted, no request URLs (they contain the token).

    Whatever the level, the libraries that could print users' text or the token stay
    quieter: python-telegram-bot at INFO at least, httpx/httpcore at WARNING, and
    ``transitions`` (two lines per state change) at WARNING.
    """
    numeric = getattr(logging, level.upper(), logging.INFO)
    logging.basicConfig(level=numeric, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(numeric)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("transitions").setLevel(logging.WARNING)
    logging.getLogger("telegram").setLevel(max(numeric, logging.INFO))
    # The outbox logs flood waits itself, once per chat and without a traceback.
    logging.getLogger("telegram.ext.AIORateLimiter").setLevel(logging.CRITICAL)
    redact = RedactSecrets(*secrets)
    payloads = DropPayloads()
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact)
        handler.addFilter(payloads)


def read_token(environ: Mapping[str, str] | None = None) -> str | None:
    """The bot token from ``TELEGRAM_BOT_TOKEN``, or ``None`` after explaining on stderr."""
    environ = os.environ if environ is None else environ
    token = (environ.get("TELEGRAM_BOT_TOKEN") or "").strip()
    if not token:
        print(
            "Erreur : la variable d’environnement TELEGRAM_BOT_TOKEN n’est pas définie.\n"
            "Créez un bot avec @BotFather sur Telegram, puis : "
            "export TELEGRAM_BOT_TOKEN='<jeton donné par BotFather>'",
            file=sys.stderr,
        )
        return None
    if not TOKEN_PATTERN.match(token):
        print(
            "Erreur : TELEGRAM_BOT_TOKEN n’a pas la forme d’un jeton de bot "
            "(chiffres, deux-points, puis au moins 30 lettres, chiffres, « _ » ou « - »).\n"
            "Copiez-le à nouveau depuis @BotFather (commande /token).",
            file=sys.stderr,
        )
        return None
    return token


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ptce-bot telegram`` (the token comes from ``TELEGRAM_BOT_TOKEN``)."""
    parser.description = (
        "Lance le bot Telegram (jeton dans TELEGRAM_BOT_TOKEN). Par défaut en « long polling » ; "
        "avec --webhook-url, Telegram envoie les messages à un serveur web local."
    )
    parser.add_argument(
        "--log-level", choices=LOG_LEVELS, default="INFO",
        help="niveau du journal (défaut : INFO ; le jeton et les textes des utilisateurs n’y figurent jamais)",
    )
    group = parser.add_argument_group("webhook")
    group.add_argument(
        "--webhook-url",
        metavar="URL",
        help="adresse HTTPS publique que Telegram appellera (active le mode webhook)",
    )
    group.add_argument(
        "--listen", default="127.0.0.1", help="adresse d’écoute locale (défaut : 127.0.0.1)"
    )
    group.add_argument(
        "--port", type=int, default=8443, help="port d’écoute local (défaut : 8443)"
    )
    group.add_argument(
        "--url-path",
        metavar="CHEMIN",
        help="chemin local du webhook (défaut : le chemin de --webhook-url)",
    )
    group.add_argument(
        "--webhook-secret",
        metavar="SECRET",
        help="secret vérifié à chaque appel (défaut : variable TELEGRAM_WEBHOOK_SECRET) ; obligatoire",
    )
    group.add_argument(
        "--insecure-no-secret",
        action="store_true",
        help="accepter un webhook sans secret (déconseillé : n’importe qui pourrait envoyer de faux messages)",
    )


def open_storage(db: str | os.PathLike | None, **engine_options: Any) -> tuple[EngineLike, TelegramQueue]:
    """The engine and the durable queue, both checked writable (``StorageError`` otherwise)."""
    from dialogue.assembly import create_engine  # imported late: heavy, and needs the data
    from dialogue.storage.progress import BOT_BUSY_TIMEOUT_MS, default_db_path

    engine = create_engine(db, **engine_options)
    try:
        store = getattr(engine, "store", None)
        if isinstance(store, ProgressStore):
            store.check_writable()
            store.set_busy_timeout(BOT_BUSY_TIMEOUT_MS)
        queue = TelegramQueue.open(queue_path_for(Path(db) if db else default_db_path()))
        try:
            queue.check_writable()
        except StorageError:
            queue.close()
            raise
    except BaseException:
        engine.close()
        raise
    return engine, queue


def run(args: argparse.Namespace) -> int:
    """Run the bot until interrupted (SIGINT/SIGTERM); returns the process exit code."""
    token = read_token()
    if token is None:
        return 2
    webhook_url: str | None = getattr(args, "webhook_url", None)
    secret = getattr(args, "webhook_secret", None) or os.environ.get("TELEGRAM_WEBHOOK_SECRET")
    if webhook_url and secret and not WEBHOOK_SECRET_PATTERN.match(secret):
        print(
            "Erreur : le secret du webhook doit compter 1 à 256 caractères parmi "
            "A-Z, a-z, 0-9, « _ » et « - ».",
            file=sys.stderr,
        )
        return 2
    if webhook_url and not secret:
        if not getattr(args, "insecure_no_secret", False):
            print(
                "Erreur : le mode webhook exige un secret (--webhook-secret ou TELEGRAM_WEBHOOK_SECRET), "
                "sinon n’importe qui pourrait envoyer de faux messages au bot. "
                "Pour passer outre en connaissance de cause : --insecure-no-secret.",
                file=sys.stderr,
            )
            return 2
        print(
            "Attention : webhook sans secret (--insecure-no-secret) : tout appel HTTP sera accepté "
            "comme un message de Telegram.",
            file=sys.stderr,
        )
    configure_logging(token, secret, level=getattr(args, "log_level", None) or "INFO")
    base_url = os.environ.get("TELEGRAM_BASE_URL") or None

    from bot import telegram_team
    from bot.team_cli import engine_options

    team_chat = telegram_team.team_chat_id()
    try:
        engine, queue = open_storage(getattr(args, "db", None), **engine_options(args), team_chat=team_chat is not None)
    except StorageError as exc:
        print(f"Erreur : {exc}", file=sys.stderr)
        return 1
    webhook = None
    if webhook_url:
        url_path = getattr(args, "url_path", None)
        if url_path is None:
            url_path = urlparse(webhook_url).path
        webhook = WebhookOptions(args.listen, args.port, url_path.lstrip("/"), webhook_url, secret)
    if hasattr(signal, "SIGXFSZ"):
        # A file-size limit then fails the write (handled like a full disk) instead of killing the bot.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    # Only for a Bot API server without limits (tests): Telegram itself needs the limiter.
    rate_limit = os.environ.get("PTCE_TELEGRAM_RATE_LIMIT", "1") != "0"
    try:
        application = build_application(engine, token, base_url=base_url, queue=queue, rate_limit=rate_limit)
        if team_chat is not None:
            telegram_team.install(application, engine.handovers, team_chat)
        return asyncio.run(serve(application, webhook))
    except InvalidToken:
        print("Erreur : Telegram a refusé le jeton TELEGRAM_BOT_TOKEN.", file=sys.stderr)
        return 2
    except TelegramError as exc:
        print(f"Erreur : échec de la connexion à Telegram ({type(exc).__name__}).", file=sys.stderr)
        return 1
    finally:
        engine.close()
        queue.close()
