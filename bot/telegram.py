"""Telegram channel for the PTCE advisor (``ptce-bot telegram``).

Callbacks stay thin: a Telegram update becomes one engine event
(:class:`~dialogue.types.Command`, :class:`~dialogue.types.Choose` or
:class:`~dialogue.types.Say`), the engine answers with replies, and the replies are
rendered as HTML messages with inline keyboards. The engine owns all dialogue state;
nothing here remembers anything about a user.

Per-user ordering: updates are processed concurrently, but :class:`PerUserUpdateProcessor`
holds one :class:`asyncio.Lock` per Telegram user, so one user's updates are handled one
after the other, in arrival order, while other users are served meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dtm
import logging
import os
import re
import sys
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlparse

from telegram import (
    BotCommand,
    CallbackQuery,
    InlineKeyboardMarkup,
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
)
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import BaseRequest

from bot.render import keyboard, split_text, to_html, to_plain
from dialogue.commands import COMMAND_NAMES, COMMANDS
from dialogue.types import Choose, Command, Event, Reply, Say

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Shape of a bot token as given by @BotFather (``<bot id>:<secret>``).
TOKEN_PATTERN = re.compile(r"^\d{5,}:[A-Za-z0-9_-]{30,}$")
#: Telegram accepts 1–256 characters from this set for a webhook's secret token.
WEBHOOK_SECRET_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
#: The updates the bot asks Telegram for (channel posts, inline queries… are not needed).
ALLOWED_UPDATES = [
    Update.MESSAGE,
    Update.EDITED_MESSAGE,
    Update.CALLBACK_QUERY,
    Update.MY_CHAT_MEMBER,
]

#: Attempts for one outgoing call when the network fails (and on flood control without the
#: rate limiter); every wait is bounded.
SEND_ATTEMPTS = 3
#: First back-off after a network error, doubled at each attempt.
NETWORK_BACKOFF = 0.5
#: A flood-control pause longer than this is not waited for: the message is given up.
MAX_RETRY_AFTER = 30.0
#: Updates processed at the same time (all users together).
MAX_CONCURRENT_UPDATES = 256

UNSUPPORTED_TEXT = (
    "Je ne comprends que les messages écrits et les boutons. "
    "Écrivez votre question, ou tapez /menu pour voir ce que je propose."
)
ERROR_TEXT = "Désolé, un problème technique est survenu. Réessayez dans un instant ou tapez /menu."
EMPTY_TEXT = "…"

_STATE_KEY = "ptce"
_sleep = asyncio.sleep  # indirection so tests can skip real waits


class EngineLike(Protocol):
    """What the channel needs from :class:`dialogue.engine.Engine`."""

    def handle(self, user_id: str, event: Event) -> list[Reply]:
        """Answer one event of one user."""

    def mark_inactive(self, user_id: str) -> None:
        """Remember that the user blocked the bot."""


@dataclass(slots=True)
class _ChannelState:
    """What the callbacks share, kept in ``application.bot_data``."""

    engine: EngineLike
    retry_flood_control: bool  # False when AIORateLimiter already retries RetryAfter


# --------------------------------------------------------------------------- ordering


class _UserSlot:
    """A user's lock and the number of updates holding or waiting for it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class PerUserUpdateProcessor(BaseUpdateProcessor):
    """Process different users' updates concurrently and each user's updates in order.

    Each update waits for its user's lock; ``asyncio.Lock`` wakes waiters first in,
    first out, and tasks reach the lock in the order the application received the
    updates, so a user's updates run one at a time in arrival order. A lock lives only
    while one of its user's updates is running or waiting: the table never holds more
    entries than there are updates in flight.
    """

    def __init__(self, max_concurrent_updates: int = MAX_CONCURRENT_UPDATES) -> None:
        super().__init__(max_concurrent_updates)
        self._slots: dict[int, _UserSlot] = {}

    @property
    def active_users(self) -> int:
        """Number of users with an update running or waiting (size of the lock table)."""
        return len(self._slots)

    @staticmethod
    def ordering_key(update: object) -> int | None:
        """The Telegram user whose updates must not overlap, or ``None``."""
        if isinstance(update, Update) and update.effective_user is not None:
            return update.effective_user.id
        return None

    async def process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Wait for the user's turn first, then for a shared slot, then run the handlers.

        Taking the user's lock before the shared slot keeps one user's backlog from
        holding slots that other users' updates need.
        """
        key = self.ordering_key(update)
        if key is None:
            async with self._semaphore:
                await self.do_process_update(update, coroutine)
            return
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _UserSlot()
        slot.users += 1
        try:
            async with slot.lock, self._semaphore:
                await self.do_process_update(update, coroutine)
        finally:
            slot.users -= 1
            if slot.users == 0:
                del self._slots[key]

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Run the update's handlers (ordering is arranged by :meth:`process_update`)."""
        await coroutine

    async def initialize(self) -> None:
        """Nothing to allocate."""

    async def shutdown(self) -> None:
        """Forget all locks."""
        self._slots.clear()


# --------------------------------------------------------------------------- helpers


def _state(context: ContextTypes.DEFAULT_TYPE) -> _ChannelState:
    return context.bot_data[_STATE_KEY]


def user_key(user_id: int) -> str:
    """The engine's user id for a Telegram user."""
    return f"tg:{user_id}"


def _retry_after_seconds(exc: RetryAfter) -> float:
    value = getattr(exc, "_retry_after", None)
    if value is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = exc.retry_after
    if isinstance(value, dtm.timedelta):
        return value.total_seconds()
    return float(value)


async def call_with_retries(
    action: Callable[[], Awaitable[T]], *, retry_flood_control: bool = True
) -> T:
    """Run one Bot API call, retrying network errors and (optionally) flood control.

    At most :data:`SEND_ATTEMPTS` attempts; ``BadRequest``, ``Forbidden`` and other
    refusals are raised at once.
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


# --------------------------------------------------------------------------- delivery


async def _send_parts(
    context: ContextTypes.DEFAULT_TYPE,
    chat_id: int,
    reply: Reply,
    *,
    thread_id: int | None = None,
    reply_to: int | None = None,
) -> None:
    """Send one reply, split into parts of ≤ 4 096 characters, keyboard on the last part."""
    state = _state(context)
    parts = split_text(reply.text) if reply.text.strip() else [EMPTY_TEXT]
    markup = keyboard(reply.buttons)
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        await _send_one(
            context,
            chat_id,
            part,
            markup if last else None,
            thread_id=thread_id,
            reply_to=reply_to,
            retry_flood_control=state.retry_flood_control,
        )


async def _send_one(
    context: ContextTypes.DEFAULT_TYPE,
    chat_id: int,
    markup_text: str,
    reply_markup: InlineKeyboardMarkup | None,
    *,
    thread_id: int | None,
    reply_to: int | None,
    retry_flood_control: bool,
) -> None:
    """Send one message as HTML; if Telegram refuses the HTML, send it as plain text."""
    reply_parameters = (
        ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
        if reply_to is not None
        else None
    )

    async def send(text: str, parse_mode: str | None) -> Message:
        return await context.bot.send_message(
            chat_id=chat_id,
            text=text,
            parse_mode=parse_mode,
            reply_markup=reply_markup,
            message_thread_id=thread_id,
            reply_parameters=reply_parameters,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        )

    try:
        await call_with_retries(
            lambda: send(to_html(markup_text), ParseMode.HTML),
            retry_flood_control=retry_flood_control,
        )
    except BadRequest as exc:
        if "parse entities" not in exc.message.lower():
            raise
        logger.warning("HTML refusé par Telegram (chat %s), envoi en texte brut", chat_id)
        await call_with_retries(
            lambda: send(to_plain(markup_text), None), retry_flood_control=retry_flood_control
        )


def _may_edit(query: CallbackQuery) -> bool:
    """Edit only a message that belongs to the user who pressed its button."""
    message = query.message
    if message is None:
        return query.inline_message_id is not None
    if message.chat.type == ChatType.PRIVATE:
        return True
    if not isinstance(message, Message):
        return False
    owner = message.reply_to_message.from_user if message.reply_to_message else None
    return owner is not None and owner.id == query.from_user.id


async def _edit(context: ContextTypes.DEFAULT_TYPE, query: CallbackQuery, reply: Reply) -> bool:
    """Edit the pressed message in place; False if it must be sent as a new message."""
    parts = split_text(reply.text)
    if len(parts) != 1 or not reply.text.strip() or not _may_edit(query):
        return False
    try:
        await call_with_retries(
            lambda: query.edit_message_text(
                text=to_html(parts[0]),
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard(reply.buttons),
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            ),
            retry_flood_control=_state(context).retry_flood_control,
        )
    except BadRequest as exc:
        if "message is not modified" in exc.message.lower():
            return True
        logger.info("Modification impossible (%s), envoi d’un nouveau message", exc.message)
        return False
    return True


async def deliver(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    replies: Sequence[Reply],
    *,
    query: CallbackQuery | None = None,
) -> None:
    """Show the engine's replies to the user who caused ``update``."""
    chat = update.effective_chat
    user = update.effective_user
    if chat is None or user is None:
        return
    message = update.message
    group = chat.type != ChatType.PRIVATE
    reply_to = message.message_id if (group and message is not None) else None
    source = message if message is not None else (query.message if query else None)
    thread_id = (
        source.message_thread_id
        if isinstance(source, Message) and source.is_topic_message
        else None
    )
    try:
        for reply in replies:
            if reply.edit and query is not None and await _edit(context, query, reply):
                continue
            await _send_parts(context, chat.id, reply, thread_id=thread_id, reply_to=reply_to)
    except Forbidden:
        # The user blocked the bot (or removed it from the group) meanwhile.
        logger.info("Envoi refusé par Telegram (chat %s) : utilisateur inactif", chat.id)
        if not group:
            _state(context).engine.mark_inactive(user_key(user.id))


def _handle(context: ContextTypes.DEFAULT_TYPE, user_id: int, event: Event) -> list[Reply]:
    """Pass one event to the (synchronous, fast) engine."""
    return list(_state(context).engine.handle(user_key(user_id), event))


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
    replies = _handle(context, update.effective_user.id, Command(name, argument))
    await deliver(update, context, replies)


async def on_other_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Pass an unknown command to the engine, unless it is meant for another bot."""
    if _ignored(update) or update.message is None:
        return
    name, argument, target = _command_of(update.message)
    if target is not None and target.lower() != (context.bot.username or "").lower():
        return
    if target is None and not _is_private(update):
        return  # in groups, bare unknown commands are probably for other bots
    replies = _handle(context, update.effective_user.id, Command(name, argument))
    await deliver(update, context, replies)


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
    replies = _handle(context, update.effective_user.id, event)
    await deliver(update, context, replies)


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer the button press, then pass its payload to the engine."""
    query = update.callback_query
    if query is None:
        return
    try:
        await call_with_retries(
            lambda: query.answer(), retry_flood_control=_state(context).retry_flood_control
        )
    except TelegramError as exc:  # e.g. « query is too old »: the press is still handled
        logger.info("Réponse au bouton impossible : %s", type(exc).__name__)
    if _ignored(update) or query.data is None:
        return
    replies = _handle(context, query.from_user.id, Choose(query.data))
    await deliver(update, context, replies, query=query)


async def on_unsupported(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Explain that photos, stickers, voice notes… are not understood."""
    message = update.message
    if _ignored(update) or message is None or not _addressed_to_bot(message, context):
        return
    await deliver(update, context, [Reply(UNSUPPORTED_TEXT)])


async def on_my_chat_member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Tell the engine when a user blocks the bot in a private chat."""
    change = update.my_chat_member
    if change is None or change.chat.type != ChatType.PRIVATE:
        return
    if change.new_chat_member.status in (ChatMemberStatus.BANNED, ChatMemberStatus.LEFT):
        logger.info("Bot bloqué par un utilisateur (chat %s)", change.chat.id)
        _state(context).engine.mark_inactive(user_key(change.from_user.id))


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the error with its context (never the message text) and apologise to the user."""
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
        try:
            await context.bot.send_message(chat_id=update.effective_chat.id, text=ERROR_TEXT)
        except TelegramError:
            logger.warning("Impossible de prévenir l’utilisateur (chat %s)", chat_id)


async def post_init(application: Application) -> None:
    """Publish the command list shown by Telegram's « / » menu."""
    commands = [BotCommand(name, description) for name, description in COMMANDS]
    try:
        await call_with_retries(
            lambda: application.bot.set_my_commands(commands),
            retry_flood_control=application.bot_data[_STATE_KEY].retry_flood_control,
        )
    except TelegramError as exc:
        logger.warning("Impossible d’enregistrer les commandes : %s", type(exc).__name__)


# --------------------------------------------------------------------------- application


def register_handlers(application: Application) -> None:
    """Every handler of the bot, in one place (order matters: first match wins)."""
    new_messages = filters.UpdateType.MESSAGE  # edited messages are ignored
    application.add_handler(
        ChatMemberHandler(on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER)
    )
    application.add_handler(CommandHandler(sorted(COMMAND_NAMES), on_command, new_messages))
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


def build_application(
    engine: EngineLike,
    token: str,
    *,
    base_url: str | None = None,
    request: BaseRequest | None = None,
    get_updates_request: BaseRequest | None = None,
    rate_limit: bool = True,
) -> Application:
    """Build the bot's application around ``engine`` (not started)."""
    builder = (
        ApplicationBuilder()
        .token(token)
        .concurrent_updates(PerUserUpdateProcessor())
        .post_init(post_init)
    )
    if base_url:
        builder = builder.base_url(base_url).base_file_url(
            os.environ.get("TELEGRAM_BASE_FILE_URL") or file_url_for(base_url)
        )
    if request is not None:
        builder = builder.request(request)
    if get_updates_request is not None:
        builder = builder.get_updates_request(get_updates_request)
    if rate_limit:
        builder = builder.rate_limiter(AIORateLimiter(max_retries=SEND_ATTEMPTS))
    application = builder.build()
    application.bot_data[_STATE_KEY] = _ChannelState(
        engine=engine, retry_flood_control=not rate_limit
    )
    register_handlers(application)
    return application


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


def configure_logging(*secrets: str | None) -> None:
    """INFO logs on stderr, secrets redacted, no request URLs (they contain the token)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    redact = RedactSecrets(*secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact)


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
        help="secret vérifié à chaque appel (défaut : variable TELEGRAM_WEBHOOK_SECRET)",
    )


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
    configure_logging(token, secret)
    base_url = os.environ.get("TELEGRAM_BASE_URL") or None

    from dialogue.engine import create_engine  # imported late: heavy, and needs the data

    from bot import telegram_team
    from bot.team_cli import engine_options

    team_chat = telegram_team.team_chat_id()
    engine = create_engine(getattr(args, "db", None), **engine_options(args), team_chat=team_chat is not None)
    try:
        application = build_application(engine, token, base_url=base_url)
        if team_chat is not None:
            telegram_team.install(application, engine.team_services.handovers, team_chat)
        if webhook_url:
            url_path = getattr(args, "url_path", None)
            if url_path is None:
                url_path = urlparse(webhook_url).path
            logger.info("Bot Telegram en mode webhook sur %s:%s", args.listen, args.port)
            application.run_webhook(
                listen=args.listen,
                port=args.port,
                url_path=url_path.lstrip("/"),
                webhook_url=webhook_url,
                secret_token=secret,
                allowed_updates=ALLOWED_UPDATES,
            )
        else:
            logger.info("Bot Telegram en mode long polling")
            application.run_polling(allowed_updates=ALLOWED_UPDATES)
    except InvalidToken:
        print("Erreur : Telegram a refusé le jeton TELEGRAM_BOT_TOKEN.", file=sys.stderr)
        return 2
    except TelegramError as exc:
        print(f"Erreur : échec de la connexion à Telegram ({type(exc).__name__}).", file=sys.stderr)
        return 1
    finally:
        engine.close()
    return 0
