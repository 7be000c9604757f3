"""The team chat on Telegram (``TELEGRAM_TEAM_CHAT_ID``): hand-overs posted, advisors' replies delivered.

The queue lives in SQLite (``dialogue.features.team.handovers``), so a restart loses
nothing: items not yet posted are posted at start-up, answers recorded from
the command line (``ptce-bot inbox answer``) are pushed within a few seconds.
Messages in the team chat that are not replies to a handed-over question are
ignored, and never reach the advisor engine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from telegram import Bot, Update
from telegram.constants import ChatMemberStatus
from telegram.error import Forbidden, TelegramError
from telegram.ext import Application, ApplicationHandlerStop, ContextTypes, MessageHandler, TypeHandler, filters

from bot.telegram.timing import Timing
from dialogue.features.team.handovers import Handover, HandoverStore
from dialogue.texts import typeset

logger = logging.getLogger(__name__)

TEAM_CHAT_VARIABLE = "TELEGRAM_TEAM_CHAT_ID"
RELAY_KEY = "ptce_team_relay"

AnyApplication = Application[Any, Any, Any, Any, Any, Any]
#: Runs a store call where the engine's turns run (the channel's worker thread).
RunInWorker = Callable[..., Awaitable[Any]]


class TeamChatError(TelegramError):
    """The team chat is unusable (unknown, or the bot is not a member)."""


def team_chat_id(environ: Mapping[str, str] | None = None) -> int | None:
    raw = (environ if environ is not None else os.environ).get(TEAM_CHAT_VARIABLE, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(
            f"Erreur : {TEAM_CHAT_VARIABLE} doit être l’identifiant numérique d’un groupe (par exemple -1001234567890)."
        ) from None


def user_chat(user_id: str) -> int | None:
    """The private chat of a Telegram user's engine id (``tg:<id>``); None for other channels."""
    prefix, _, number = user_id.partition(":")
    return int(number) if prefix == "tg" and number.lstrip("-").isdigit() else None


def team_post(item: Handover, user_code: str) -> str:
    lines = [f"Question n° {item.ref} (personne {user_code[:8]}) :", f"« {item.question} »"]
    if item.recent:
        lines.append("")
        lines.append("Messages précédents :")
        lines.extend(f"- {message}" for message in item.recent)
    lines.append("")
    lines.append("Pour répondre à la personne, répondez à ce message (« Répondre »).")
    return typeset("\n".join(lines))


def user_delivery(item: Handover) -> str:
    return typeset(f"Réponse de l’équipe (question n° {item.ref}) : {item.answer}")


class TeamRelay:
    """Posts hand-overs to the team chat and delivers the advisors' answers to their users."""

    def __init__(self, store: HandoverStore, chat_id: int, *, in_worker: RunInWorker | None = None,
                 timing: Timing | None = None) -> None:
        self.store = store
        self.chat_id = chat_id
        self._timing = timing or Timing()
        self._pusher: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        #: Runs a store call where the engine's turns run (the channel's worker thread): the
        #: connection is shared, and a write from the event loop would land inside a turn's transaction.
        self._run = in_worker
        self._in_flight: set[asyncio.Future[Any]] = set()

    async def _db(self, function: Callable[..., Any], *args: Any) -> Any:
        if self._run is None:
            return function(*args)
        try:
            return await self._run(function, *args)
        except RuntimeError:
            # The worker was shut down at stop: no turn runs any more, so the shared
            # connection is free and the record of a message already sent must still be written.
            return function(*args)

    async def _send_then_record(self, work: Awaitable[Any]) -> Any:
        """Run a « send, then record that it was sent » pair to its end.

        At stop the dispatcher cancels the handler that called :meth:`flush`; cancelled
        between the send and its record, the hand-over was posted again after a restart.
        The pair is shielded and :meth:`stop` waits for it.
        """
        task = asyncio.ensure_future(work)
        self._in_flight.add(task)
        task.add_done_callback(self._finished)
        return await asyncio.shield(task)

    def _finished(self, task: asyncio.Future[Any]) -> None:
        self._in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Its caller (cancelled at stop) cannot log it: the item waits for the next start.
            logger.debug("Groupe de l’équipe : envoi différé (%s)", type(task.exception()).__name__)

    async def _post(self, bot: Bot, item: Handover) -> None:
        user_code = await self._db(self._user_code, item.ref)
        sent = await bot.send_message(self.chat_id, team_post(item, user_code))
        await self._db(self.store.mark_posted, item.ref, str(self.chat_id), sent.message_id)

    def _user_code(self, ref: int) -> str:
        row = self.store.db.execute("SELECT user_hash FROM handovers WHERE ref = ?", [ref]).fetchone()
        return (row[0] if row else "") or ""

    async def check(self, bot: Bot) -> None:
        """At start-up: the team chat must exist and the bot must be in it."""
        try:
            await bot.get_chat(self.chat_id)
            member = await bot.get_chat_member(self.chat_id, bot.id)
        except TelegramError as error:
            raise self._fail(f"le groupe de l’équipe {self.chat_id} est introuvable ({error.message}).") from error
        if member.status in {ChatMemberStatus.LEFT, ChatMemberStatus.BANNED}:
            raise self._fail(f"le bot n’est pas membre du groupe de l’équipe {self.chat_id} : ajoutez-le au groupe.")

    @staticmethod
    def _fail(reason: str) -> TeamChatError:
        message = f"Erreur : {TEAM_CHAT_VARIABLE} : {reason}"
        print(message, file=sys.stderr)
        return TeamChatError(message)

    async def flush(self, bot: Bot) -> None:
        """Post waiting hand-overs to the team chat; push answered ones to their users."""
        async with self._lock:
            for item in await self._db(self.store.unposted):
                await self._send_then_record(self._post(bot, item))
            for item in await self._db(self.store.undelivered):
                chat = user_chat(item.user_id)
                if chat is None:
                    continue  # terminal users receive it the next time they write
                await self._deliver(bot, item, chat)

    async def _deliver(self, bot: Bot, item: Handover, chat: int) -> None:
        await self._send_then_record(self._deliver_once(bot, item, chat))

    async def _deliver_once(self, bot: Bot, item: Handover, chat: int) -> None:
        try:
            await bot.send_message(chat, user_delivery(item))
            note = f"✅ Réponse remise à la personne (question n° {item.ref})."
        except Forbidden:
            note = f"⚠️ La personne a bloqué le bot : réponse non remise (question n° {item.ref})."
        await self._db(self.store.mark_delivered, item.ref)
        try:
            await bot.send_message(self.chat_id, note, reply_to_message_id=item.team_message_id)
        except TelegramError:
            logger.warning("Confirmation non envoyée dans le groupe de l’équipe (question n° %s)", item.ref)

    async def on_team_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A message in the team chat: a reply to a hand-over is the answer; anything else is ignored."""
        message = update.effective_message
        replied = message.reply_to_message if message is not None else None
        if message is not None and replied is not None and message.text and replied.from_user and replied.from_user.id == context.bot.id:
            item = await self._db(self.store.by_team_message, str(self.chat_id), replied.message_id)
            if item is not None:
                answered = await self._db(self.store.answer, item.ref, message.text)
                if answered is not None:
                    chat = user_chat(answered.user_id)
                    if chat is not None:
                        async with self._lock:
                            await self._deliver(context.bot, answered, chat)
                    else:
                        await message.reply_text(
                            f"Réponse enregistrée (question n° {item.ref}) : elle sera remise au prochain message de la personne."
                        )
        raise ApplicationHandlerStop

    async def after_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """After any update: post or deliver what waits."""
        await self.flush(context.bot)

    async def start(self, application: AnyApplication) -> None:
        await self.check(application.bot)
        await self.flush(application.bot)

        async def push_forever() -> None:
            while True:
                await self._timing.sleep(self._timing.team_push_interval)
                try:
                    await self.flush(application.bot)
                except TelegramError as error:
                    logger.warning("Groupe de l’équipe : envoi différé (%s)", type(error).__name__)

        self._pusher = asyncio.create_task(push_forever())

    async def stop(self, application: AnyApplication | None) -> None:
        if self._pusher is not None:
            self._pusher.cancel()
            self._pusher = None
        if self._in_flight:
            # A message already sent gets its record before the store closes (bounded wait).
            await asyncio.wait(set(self._in_flight), timeout=self._timing.team_stop_grace)


def install(application: AnyApplication, store: HandoverStore, chat_id: int, *,
            in_worker: RunInWorker | None = None, timing: Timing | None = None) -> TeamRelay:
    """Attach the relay to a built application (handlers, start-up check, periodic push)."""
    relay = TeamRelay(store, chat_id, in_worker=in_worker, timing=timing)
    application.bot_data[RELAY_KEY] = relay
    # Group -1 runs before the advisor's handlers and stops them for the team chat.
    application.add_handler(MessageHandler(filters.Chat(chat_id), relay.on_team_message), group=-1)
    application.add_handler(TypeHandler(Update, relay.after_update), group=1)
    previous_init, previous_stop = application.post_init, application.post_stop

    async def post_init(app: AnyApplication) -> None:
        if previous_init is not None:
            await previous_init(app)
        await relay.start(app)

    async def post_stop(app: AnyApplication) -> None:
        await relay.stop(app)
        if previous_stop is not None:
            await previous_stop(app)

    application.post_init = post_init
    application.post_stop = post_stop
    return relay
