"""Composition root of the Telegram channel: the application, every handler, and ``run``.

Callbacks stay thin: a Telegram update becomes one engine event (:class:`Command`,
:class:`Choose` or :class:`Say`), the engine answers with replies, and the replies are
queued in the outbox as HTML messages with inline keyboards (see :mod:`bot.telegram`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import warnings
from pathlib import Path
from typing import Any

from telegram import BotCommand, CallbackQuery, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import InvalidToken, TelegramError
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
from telegram.request import BaseRequest, HTTPXRequest
from telegram.warnings import PTBUserWarning

from bot.telegram import config, lifecycle, team
from bot.telegram.channel import CHANNEL_KEY, Channel, channel_of
from bot.telegram.dispatcher import MAX_CONCURRENT_UPDATES
from bot.telegram.durable import Action, TelegramQueue, queue_path_for
from bot.telegram.engine_port import AdvisorEngine
from bot.telegram.intake import DurableUpdateQueue
from bot.telegram.logs import configure_logging, logger
from bot.telegram.outbox import TrackingRequest
from bot.telegram.replies import (
    actions_for,
    addressed_to_bot,
    command_of,
    ignored,
    is_private,
    safe_command_name,
    strip_mention,
    topic_thread,
)
from bot.telegram.reports import send_report
from bot.telegram.state import ShuttingDown
from bot.telegram.texts import ERROR_TEXT, UNSUPPORTED_TEXT
from bot.telegram.timing import PRODUCTION, Timing
from bot.telegram.turns import TurnNotStored
from dialogue.storage.errors import StorageError
from dialogue.types import Attachment, ChannelSettings, Choose, Command, Event, Reply, Say

AnyApplication = Application[Any, Any, Any, Any, Any, Any]
Context = ContextTypes.DEFAULT_TYPE

warnings.filterwarnings("ignore", message=r"Please use 'Bot\.(get_updates|getUpdates)'", category=PTBUserWarning)


# --------------------------------------------------------------------------- one turn


async def respond(update: Update, context: Context, event: Event | None, *,
                  replies: list[Reply] | None = None, query: CallbackQuery | None = None) -> None:
    """Run ``event`` through the engine (or show fixed ``replies``), queue the answer, deliver it."""
    channel = channel_of(context.application)
    chat, user = update.effective_chat, update.effective_user
    if chat is None or user is None:
        return
    shown = replies or []
    if event is not None:
        try:
            shown = await channel.turns.run(update.update_id, user.id, event)
        except TurnNotStored as exc:
            shown = [Reply(exc.text)]
    await complete(channel, update.update_id, actions_for(update, shown, query))
    if user.id in channel.turns.forgotten:
        channel.turns.forgotten.discard(user.id)
        channel.sender.erase_after(chat.id)  # the intake file's old pages, once the last reply is out
    channel.sender.kick(chat.id)
    for reply in shown:
        if reply.attachment is not None:  # the PDF report: built off the event loop, after the text
            channel.side_tasks.start(send_attachment(channel, context, chat.id, update, reply.attachment))


async def complete(channel: Channel, update_id: int | None, actions: list[Action]) -> None:
    """Queue the replies and mark the update done (``None``: no update); a file locked for a moment is waited for.

    The turn itself is already stored (its replies too, under the update id), so waiting here
    never runs it twice; after ``Timing.lock_wait_limit`` the error goes to the error handler.
    """
    timing = channel.timing
    started = timing.clock()
    while True:
        try:
            channel.queue.complete(update_id, actions)
            return
        except StorageError as exc:
            if not exc.transient or channel.state.stopping or timing.clock() - started >= timing.lock_wait_limit:
                raise
            channel.state.log_limited("complete", logging.WARNING, "File des réponses occupée : %s", exc)
            await timing.sleep(timing.storage_retry)


async def send_attachment(channel: Channel, context: Context, chat_id: int, update: Update,
                          request: Attachment) -> None:
    """Build the PDF report once the chat's pending replies are out, then queue it in the outbox."""
    await channel.sender.settled(chat_id)
    thread_id = topic_thread(update.effective_message)

    async def enqueue(actions: list[Action]) -> None:
        await complete(channel, None, actions)
        channel.sender.kick(chat_id)

    await send_report(context.bot, chat_id, request, channel.engine.kb, enqueue=enqueue, thread_id=thread_id)


# --------------------------------------------------------------------------- callbacks


async def on_command(update: Update, context: Context) -> None:
    """Pass one of the advisor's commands (``/start orientation`` included) to the engine."""
    if ignored(update) or update.message is None or update.effective_chat is None:
        return
    name, argument, _ = command_of(update.message)
    # In a group chat the engine decides: a feature may answer for the group (the collective links it).
    group_chat = None if is_private(update) else f"tg-group:{update.effective_chat.id}"
    await respond(update, context, Command(name, argument, group_chat=group_chat))


async def on_other_command(update: Update, context: Context) -> None:
    """Pass an unknown command to the engine, unless it is meant for another bot."""
    if ignored(update) or update.message is None:
        return
    name, argument, target = command_of(update.message)
    if target is not None and target.lower() != (context.bot.username or "").lower():
        return
    if target is None and not is_private(update):
        return  # in groups, bare unknown commands are probably for other bots
    await respond(update, context, Command(safe_command_name(name), argument))


async def on_text(update: Update, context: Context) -> None:
    """Pass free text to the engine (in groups, only when the bot is addressed)."""
    message = update.message
    if ignored(update) or message is None or message.text is None or not addressed_to_bot(message, context.bot):
        return
    text = message.text if is_private(update) else strip_mention(message.text, context.bot.username)
    await respond(update, context, Say(text) if text.strip() else Command("menu"))


async def on_button(update: Update, context: Context) -> None:
    """Answer the button press, then pass its payload to the engine."""
    query = update.callback_query
    if query is None:
        return
    try:
        # One try: answering is only cosmetic (the spinner), and a late answer must not repeat.
        await query.answer()
    except TelegramError as exc:  # e.g. « query is too old »: the press is still handled
        logger.info("Réponse au bouton impossible : %s", type(exc).__name__)
    if ignored(update) or query.data is None:
        return
    message = query.message
    if message is not None and message.chat.type == ChatType.PRIVATE and message.chat.id != query.from_user.id:
        # A private chat is its user's own: a press « from » someone else is forged.
        logger.warning("Bouton d’une autre conversation privée ignoré (update %s)", update.update_id)
        return
    await respond(update, context, Choose(query.data), query=query)


async def on_unsupported(update: Update, context: Context) -> None:
    """Explain that photos, stickers, voice notes… are not understood."""
    message = update.message
    if ignored(update) or message is None or not addressed_to_bot(message, context.bot):
        return
    await respond(update, context, None, replies=[Reply(UNSUPPORTED_TEXT)])


async def on_my_chat_member(update: Update, context: Context) -> None:
    """Tell the engine when a user blocks the bot in a private chat."""
    change = update.my_chat_member
    if change is None or change.chat.type != ChatType.PRIVATE:
        return
    if change.new_chat_member.status in (ChatMemberStatus.BANNED, ChatMemberStatus.LEFT):
        logger.info("Bot bloqué par un utilisateur (chat %s)", change.chat.id)
        await channel_of(context.application).turns.mark_inactive(change.from_user.id)


async def on_error(update: object, context: Context) -> None:
    """Log the error with its context (never the message text) and apologise to the user."""
    if isinstance(context.error, ShuttingDown):
        return  # the update stays queued for the next start
    update_id = chat_id = None
    if isinstance(update, Update):
        update_id = update.update_id
        chat_id = update.effective_chat.id if update.effective_chat else None
    logger.error("Erreur pendant le traitement de l’update %s (chat %s) : %s", update_id, chat_id,
                 type(context.error).__name__, exc_info=context.error)
    if (
        isinstance(update, Update)
        and update.effective_user is not None
        and update.effective_chat is not None
        and update.effective_chat.type == ChatType.PRIVATE
        and not isinstance(context.error, TelegramError)  # Telegram itself failed: don't insist
    ):
        channel = channel_of(context.application)
        try:
            channel.queue.complete(update.update_id, [Action(update.effective_chat.id, ERROR_TEXT)])
        except StorageError:
            return
        channel.sender.kick(update.effective_chat.id)


async def post_init(application: AnyApplication) -> None:
    """Publish the command list shown by Telegram's « / » menu; tell the engine the bot's username."""
    channel = channel_of(application)
    # Invitation links: https://t.me/<username>?start=<code>
    channel.engine.use_channel(ChannelSettings(bot_username=application.bot.username))
    commands = [BotCommand(name, description) for name, description in channel.engine.commands]
    try:
        await channel.calls(lambda: application.bot.set_my_commands(commands))
    except TelegramError as exc:
        logger.warning("Impossible d’enregistrer les commandes : %s", type(exc).__name__)


async def post_shutdown(application: AnyApplication) -> None:
    """Stop the engine's worker thread (its last turn commits first)."""
    channel_of(application).turns.shutdown()


# --------------------------------------------------------------------------- application


def register_handlers(application: AnyApplication) -> None:
    """Every handler of the bot, in one place (order matters: first match wins)."""
    new_messages = filters.UpdateType.MESSAGE  # edited messages are ignored
    application.add_handler(ChatMemberHandler(on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER))
    names = sorted(name for name, _ in channel_of(application).engine.commands)
    application.add_handler(CommandHandler(names, on_command, new_messages))
    application.add_handler(MessageHandler(new_messages & filters.COMMAND, on_other_command))
    application.add_handler(CallbackQueryHandler(on_button))
    application.add_handler(MessageHandler(new_messages & filters.TEXT, on_text))
    application.add_handler(MessageHandler(new_messages & ~filters.TEXT & ~filters.StatusUpdate.ALL, on_unsupported))
    application.add_error_handler(on_error)


def build_application(
    engine: AdvisorEngine,
    token: str,
    *,
    timing: Timing = PRODUCTION,
    base_url: str | None = None,
    request: BaseRequest | None = None,
    get_updates_request: BaseRequest | None = None,
    rate_limit: bool = True,
    queue: TelegramQueue | None = None,
    max_concurrent_updates: int = MAX_CONCURRENT_UPDATES,
) -> AnyApplication:
    """Build the bot's application around ``engine`` (not started).

    ``queue`` is the durable intake and outbox; without one, an in-memory queue is used
    (tests). The engine runs in a single worker thread owned by the channel.
    """
    queue = queue if queue is not None else TelegramQueue.open(None)
    transport = TrackingRequest(
        request if request is not None
        else HTTPXRequest(connection_pool_size=MAX_CONCURRENT_UPDATES, read_timeout=timing.read_timeout,
                          write_timeout=timing.read_timeout, connect_timeout=timing.read_timeout,
                          pool_timeout=timing.read_timeout),
        queue.mark_sending,
    )
    update_queue = DurableUpdateQueue()
    builder = (
        ApplicationBuilder()
        .token(token)
        .request(transport)
        .update_queue(update_queue)
        .post_init(post_init)
        .post_shutdown(post_shutdown)
    )
    if base_url:
        builder = builder.base_url(base_url).base_file_url(
            os.environ.get("TELEGRAM_BASE_FILE_URL") or config.file_url_for(base_url)
        )
    if get_updates_request is not None:
        builder = builder.get_updates_request(get_updates_request)
    if rate_limit:
        # No retries inside the limiter: a RetryAfter there would pause every chat; the
        # outbox waits per chat instead (bounded by Timing.max_retry_after).
        builder = builder.rate_limiter(AIORateLimiter(max_retries=0))  # type: ignore[arg-type]
    application = builder.build()
    channel = Channel.assemble(engine, queue, timing, application.bot, application.process_update, max_concurrent_updates)
    update_queue.connect(channel.state, channel.dispatcher.submit)
    application.bot_data[CHANNEL_KEY] = channel
    register_handlers(application)
    return application


def install_team_chat(application: AnyApplication, handovers: Any, chat_id: int,
                      advisors: frozenset[int] = frozenset()) -> team.TeamRelay:
    """Relay hand-overs to the team chat through the outbox; its store calls run in the engine's worker thread."""
    channel = channel_of(application)
    return team.install(application, handovers, chat_id, queue=channel.queue, kick=channel.sender.kick,
                        in_worker=channel.turns.in_worker, state=channel.state, listeners=channel.sender.listeners,
                        advisors=advisors)


def open_storage(engine: AdvisorEngine, db: str | os.PathLike[str] | None) -> TelegramQueue:
    """Check the engine's database writable and open the durable queue beside it (``StorageError`` otherwise)."""
    from dialogue.storage.progress import BOT_BUSY_TIMEOUT_MS, default_db_path

    engine.store.check_writable()
    engine.store.set_busy_timeout(BOT_BUSY_TIMEOUT_MS)
    queue = TelegramQueue.open(queue_path_for(Path(db) if db else default_db_path()))
    try:
        queue.check_writable()
    except StorageError:
        queue.close()
        raise
    return queue


def run(args: argparse.Namespace, *, timing: Timing | None = None) -> int:
    """Run the bot until interrupted (SIGINT/SIGTERM); returns the process exit code."""
    token = config.read_token()
    if token is None:
        return config.EXIT_USAGE
    secret = config.webhook_secret(args)
    try:
        webhook = config.webhook_options(args, secret)
    except config.ConfigurationError:
        return config.EXIT_USAGE
    try:
        timing = timing or PRODUCTION.with_environment()
    except ValueError as exc:
        print(f"Erreur : {exc}", file=sys.stderr)
        return config.EXIT_USAGE
    configure_logging(token, secret, level=getattr(args, "log_level", None) or "INFO")

    from bot.team_cli import engine_options
    from dialogue.assembly import create_engine  # imported late: heavy, and needs the data

    team_chat = team.team_chat_id()
    advisors = team.advisor_ids() if team_chat is not None else frozenset()
    db = getattr(args, "db", None)
    try:
        engine = create_engine(db, **engine_options(args), team_chat=team_chat is not None)
    except StorageError as exc:
        print(f"Erreur : {exc}", file=sys.stderr)
        return 1
    try:
        queue = open_storage(engine, db)
    except StorageError as exc:
        engine.close()
        print(f"Erreur : {exc}", file=sys.stderr)
        return 1
    if hasattr(signal, "SIGXFSZ"):
        # A file-size limit then fails the write (handled like a full disk) instead of killing the bot.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    # Only for a Bot API server without limits (tests): Telegram itself needs the limiter.
    rate_limit = os.environ.get("PTCE_TELEGRAM_RATE_LIMIT", "1") != "0"
    base_url = os.environ.get("TELEGRAM_BASE_URL") or None
    try:
        application = build_application(engine, token, timing=timing, base_url=base_url, queue=queue, rate_limit=rate_limit)
        if team_chat is not None:
            install_team_chat(application, engine.handovers, team_chat, advisors)
        return asyncio.run(lifecycle.serve(application, channel_of(application), webhook))
    except InvalidToken:
        print("Erreur : Telegram a refusé le jeton TELEGRAM_BOT_TOKEN.", file=sys.stderr)
        return 2
    except TelegramError as exc:
        print(f"Erreur : échec de la connexion à Telegram ({type(exc).__name__}).", file=sys.stderr)
        return 1
    finally:
        engine.close()
        queue.close()


async def drain(application: AnyApplication) -> None:
    """Wait until every submitted update is processed and every reply delivered (tests, bench)."""
    await channel_of(application).drain()
