"""The team chat on Telegram (``TELEGRAM_TEAM_CHAT_ID``): hand-overs posted, advisors' answers delivered.

Everything the relay sends goes through the outbox (:mod:`bot.telegram.outbox`) as *keyed*
rows: a hand-over post is queued once (key ``team-post:<ref>``), recorded before it
leaves, never sent twice even if the bot stops between the send and its record; what
became of it (sent with its message id, uncertain, refused, blocked) comes back through
the queue file and is then written to the hand-over (:meth:`TeamRelay.sync`). The same
holds for the answers delivered to users, the notes in the team chat, and the deletion
of a person's hand-over posts after /oublier.

Who may answer: the advisors listed in ``TELEGRAM_TEAM_ADVISORS`` (Telegram user ids) and
those the chat's administrators add with ``/equipe ajouter``; with no list at all, the
chat's administrators. Anyone else's reply is ignored with a note. Edited messages are
never delivered again.

The sync runs in its own task, woken after each update and every few seconds: no update
waits for it (a flood of hand-overs no longer slows anyone else down).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from telegram import Bot, Message, Update
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationHandlerStop, ContextTypes, MessageHandler, TypeHandler, filters

from bot.telegram.durable import BLOCKED, DELETE, REFUSED, SENT, Action, OutboxRow, TelegramQueue
from bot.telegram.isolation import supervise
from bot.telegram.state import ChannelState
from dialogue.features.team.handovers import Handover, HandoverStore
from dialogue.storage.errors import StorageError
from dialogue.texts import typeset
from dialogue.types import literal

logger = logging.getLogger(__name__)

TEAM_CHAT_VARIABLE = "TELEGRAM_TEAM_CHAT_ID"
ADVISORS_VARIABLE = "TELEGRAM_TEAM_ADVISORS"
RELAY_KEY = "ptce_team_relay"
POST, ANSWER, NOTE, REMOVE = "team-post:", "team-answer:", "team-note:", "team-delete:"
#: « Question n° 12 » at the start of a post, as the advisors' clients quote it back.
POST_REFERENCE = re.compile(r"^Question n°\s*(\d+)")
#: Shortest pause between two syncs (the engine's worker thread serves the turns first).
SYNC_PAUSE = 0.25
#: How long a chat member's administrator status is trusted before it is asked again.
ADMIN_CACHE_SECONDS = 60.0

AnyApplication = Application[Any, Any, Any, Any, Any, Any]
#: Runs a store call where the engine's turns run (the channel's worker thread).
RunInWorker = Callable[..., Awaitable[Any]]

NOT_AN_ADVISOR = (
    "Seuls les conseillers de l’équipe peuvent répondre aux personnes : cette réponse n’est pas transmise. "
    "Un administrateur du groupe peut vous ajouter avec /equipe ajouter (en réponse à l’un de vos messages)."
)
EDIT_NOT_SENT = (
    "Les modifications ne sont pas transmises : la personne a déjà la première version. "
    "Pour la compléter, répondez de nouveau au message de la question."
)
UNKNOWN_POST = "Ce message ne correspond à aucune question en attente : répondez au message « Question n° … »."
TEXT_ONLY = "Seules les réponses écrites sont transmises à la personne."


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


def advisor_ids(environ: Mapping[str, str] | None = None) -> frozenset[int]:
    """``TELEGRAM_TEAM_ADVISORS``: Telegram user ids separated by commas or spaces."""
    raw = (environ if environ is not None else os.environ).get(ADVISORS_VARIABLE, "")
    try:
        return frozenset(int(part) for part in re.split(r"[\s,;]+", raw.strip()) if part)
    except ValueError:
        raise SystemExit(
            f"Erreur : {ADVISORS_VARIABLE} doit lister des identifiants numériques d’utilisateurs Telegram, "
            "séparés par des virgules (par exemple 12345678,87654321)."
        ) from None


def user_chat(user_id: str) -> int | None:
    """The private chat of a Telegram user's engine id (``tg:<id>``); None for other channels."""
    prefix, _, number = user_id.partition(":")
    return int(number) if prefix == "tg" and number.lstrip("-").isdigit() else None


def team_post(item: Handover, user_code: str) -> str:
    # The person's words are shown as typed: never a link or bold in the team's chat.
    lines = [f"Question n° {item.ref} (personne {user_code[:8]}) :", f"« {literal(item.question)} »"]
    if item.recent:
        lines.append("")
        lines.append("Messages précédents :")
        lines.extend(f"- {literal(message)}" for message in item.recent)
    lines.append("")
    lines.append("Pour répondre à la personne, répondez à ce message (« Répondre »).")
    return typeset("\n".join(lines))


def user_delivery(item: Handover) -> str:
    return typeset(f"Réponse de l’équipe (question n° {item.ref}) : {literal(item.answer or '')}")


class TeamRelay:
    """Queues hand-over posts and answers in the outbox and records what became of them."""

    def __init__(self, store: HandoverStore, chat_id: int, *, queue: TelegramQueue, kick: Callable[[int], None],
                 in_worker: RunInWorker, state: ChannelState, advisors: frozenset[int] = frozenset()) -> None:
        self.store = store
        self.chat_id = chat_id
        self._queue = queue
        self._kick = kick
        self._run = self._where_turns_run
        self._state = state
        self._timing = state.timing
        self.advisors = advisors
        self._wake = asyncio.Event()
        self._in_worker = in_worker
        self._task: asyncio.Task[None] | None = None
        self._admins: dict[int, tuple[bool, float]] = {}
        self._bot: Bot | None = None

    async def _where_turns_run(self, function: Callable[..., Any], *args: Any) -> Any:
        try:
            return await self._in_worker(function, *args)
        except RuntimeError:
            # The worker was shut down at stop: no turn runs any more, so the shared connection is free
            # and what Telegram accepted must still be written to the hand-overs.
            return function(*args)

    # ------------------------------------------------------------------ the sync, off the updates' path

    def nudge(self) -> None:
        """Something may wait (a hand-over created, an answer recorded, a row settled): sync soon."""
        self._wake.set()

    def on_outcome(self, row: OutboxRow, status: str) -> None:
        if row.key is not None and row.key.startswith("team-"):
            self.nudge()

    async def after_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        self.nudge()  # no waiting here: the sync runs in its own task

    async def _loop(self) -> None:
        while True:
            try:
                # Not ``wait_for``: on Python 3.11 it may swallow a cancellation that meets the wake-up.
                async with asyncio.timeout(self._timing.team_push_interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.sync()
            except StorageError as exc:
                self._state.log_limited("team", logging.WARNING, "Groupe de l’équipe : envoi différé (%s)", exc)
            # Nudges coalesce: at most a few syncs a second, whatever the flood of updates.
            await self._timing.sleep(min(SYNC_PAUSE, self._timing.team_push_interval))

    async def sync(self) -> None:
        """Record the outcomes of what was sent, then queue what waits (posts, answers, deletions)."""
        await self._record_outcomes()
        actions: list[Action] = []
        for item in await self._run(self.store.unposted):
            code = await self._run(self.store.user_code, item.ref)
            actions.append(Action(self.chat_id, team_post(item, code), key=f"{POST}{item.ref}"))
        for item in await self._run(self.store.undelivered):
            chat = user_chat(item.user_id)
            if chat is not None:  # terminal users receive it the next time they write
                actions.append(Action(chat, user_delivery(item), key=f"{ANSWER}{item.ref}:{item.answered_at}"))
        for chat, message_id in await self._run(self.store.pending_deletions):
            actions.append(Action(int(chat), "", kind=DELETE, options={"message_id": message_id},
                                  key=f"{REMOVE}{chat}:{message_id}"))
        if actions:
            self._queue.enqueue(actions)
            for chat in {action.chat_id for action in actions}:
                self._kick(chat)

    async def _record_outcomes(self) -> None:
        queue = self._queue
        for key, status, message_id in queue.outcomes(POST):
            ref = int(key[len(POST):])
            if status != SENT:
                logger.warning("Question n° %s : publication dans le groupe de l’équipe incertaine ou refusée (%s)",
                               ref, status)
            await self._run(self.store.mark_posted, ref, str(self.chat_id), message_id or 0)
            queue.forget_outcome(key)
        notes: list[Action] = []
        for key, status, _ in queue.outcomes(ANSWER):
            ref_text, _sep, answered_at = key[len(ANSWER):].partition(":")
            item = await self._run(self.store.get, int(ref_text))
            if item is not None and item.answered_at == answered_at:
                await self._run(self.store.mark_delivered, item.ref)
                notes.append(self._note(_delivery_note(item.ref, status), item.team_message_id,
                                        key=f"{NOTE}{item.ref}:{answered_at}"))
            queue.forget_outcome(key)
        for key, _, _ in queue.outcomes(REMOVE):
            chat, _sep, number = key[len(REMOVE):].rpartition(":")
            await self._run(self.store.deleted, chat, int(number))
            queue.forget_outcome(key)
        for key, _, _ in queue.outcomes(NOTE):
            queue.forget_outcome(key)
        if notes:
            queue.enqueue(notes)
            self._kick(self.chat_id)

    def _note(self, text: str, reply_to: int | None, *, key: str | None = None) -> Action:
        options: dict[str, Any] = {"plain": True}
        if reply_to:
            options["reply_to"] = reply_to
        return Action(self.chat_id, text, options=options, key=key)

    def _tell(self, text: str, reply_to: int | None) -> None:
        self._queue.enqueue([self._note(text, reply_to)])
        self._kick(self.chat_id)

    # ------------------------------------------------------------------ the team chat's messages

    async def on_team_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A message in the team chat: an advisor's reply to a hand-over is the answer; nothing else reaches the engine."""
        try:
            await self._team_message(update, context.bot)
        except StorageError as exc:
            self._state.log_limited("team", logging.ERROR, "Groupe de l’équipe : message non enregistré (%s)", exc)
        except Exception as exc:  # noqa: BLE001 - logged without its text; the advisors' chat goes on
            logger.error("Groupe de l’équipe : message non traité (%s)", type(exc).__name__,
                         exc_info=logger.isEnabledFor(logging.DEBUG))
        raise ApplicationHandlerStop

    async def _team_message(self, update: Update, bot: Bot) -> None:
        edited = update.edited_message
        if edited is not None:
            if _replies_to_bot(edited, bot) and edited.text:
                self._tell(EDIT_NOT_SENT, edited.message_id)
            return
        message = update.message
        if message is None or message.from_user is None:
            return
        if message.text and message.text.split(maxsplit=1)[0].split("@")[0].lower() == "/equipe":
            await self._team_command(message, bot)
            return
        if not _replies_to_bot(message, bot):
            return  # the team's own conversation
        replied = message.reply_to_message
        assert replied is not None
        item = await self._run(self.store.by_team_message, str(self.chat_id), replied.message_id)
        if item is None:
            item = await self._uncertain_post(replied)
        if item is None:
            self._tell(UNKNOWN_POST, message.message_id)
            return
        if not await self.may_answer(bot, message.from_user.id):
            self._tell(NOT_AN_ADVISOR, message.message_id)
            return
        if not message.text:
            self._tell(TEXT_ONLY, message.message_id)
            return
        answered = await self._run(self.store.answer, item.ref, message.text)
        if answered is not None and user_chat(answered.user_id) is None:
            self._tell(f"Réponse enregistrée (question n° {item.ref}) : elle sera remise au prochain message de la personne.",
                       message.message_id)
        self.nudge()

    async def _uncertain_post(self, replied: Message) -> Handover | None:
        """A post whose message id is not known (its send timed out, or its outcome is not read yet):
        the bot's post the advisor replied to names the question."""
        found = POST_REFERENCE.search(replied.text or "")
        if found is None:
            return None
        item = await self._run(self.store.get, int(found.group(1)))
        if item is None or item.team_message_id not in (None, 0):
            return None
        await self._run(self.store.mark_posted, item.ref, str(self.chat_id), replied.message_id)
        return await self._run(self.store.get, item.ref)

    async def may_answer(self, bot: Bot, user_id: int) -> bool:
        listed = self.advisors | frozenset(await self._run(self.store.advisors))
        if listed:
            return user_id in listed
        return await self.is_admin(bot, user_id)

    async def is_admin(self, bot: Bot, user_id: int) -> bool:
        now = self._timing.clock()
        cached = self._admins.get(user_id)
        if cached is not None and now - cached[1] < ADMIN_CACHE_SECONDS:
            return cached[0]
        try:
            member = await bot.get_chat_member(self.chat_id, user_id)
            admin = member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)
        except TelegramError:
            return False
        self._admins[user_id] = (admin, now)
        return admin

    async def _team_command(self, message: Message, bot: Bot) -> None:
        """``/equipe`` lists the advisors; ``/equipe ajouter`` / ``retirer`` (administrators) change the list."""
        assert message.from_user is not None
        words = (message.text or "").split()[1:]
        action = words[0].lower() if words else ""
        if action not in ("ajouter", "retirer"):
            self._tell(await self._advisors_text(), message.message_id)
            return
        if not await self.is_admin(bot, message.from_user.id):
            self._tell("Seuls les administrateurs du groupe peuvent changer la liste des conseillers.", message.message_id)
            return
        target = message.reply_to_message.from_user if message.reply_to_message else None
        if target is not None and not target.is_bot:
            user_id, name = target.id, target.full_name
        elif len(words) > 1 and words[1].isdigit():
            user_id, name = int(words[1]), words[1]
        else:
            self._tell("Répondez à un message de la personne avec /equipe ajouter (ou /equipe retirer), "
                       "ou donnez son identifiant numérique.", message.message_id)
            return
        if action == "ajouter":
            await self._run(self.store.add_advisor, user_id, name)
            self._tell(f"{name} peut désormais répondre aux personnes.", message.message_id)
        else:
            await self._run(self.store.remove_advisor, user_id)
            self._tell(f"{name} ne peut plus répondre aux personnes.", message.message_id)

    async def _advisors_text(self) -> str:
        stored = await self._run(self.store.advisor_names)
        names = [name for _, name in stored] + [str(i) for i in sorted(self.advisors) if i not in dict(stored)]
        if not names:
            return ("Aucune liste de conseillers : les administrateurs du groupe peuvent répondre aux personnes. "
                    "Ajoutez un conseiller avec /equipe ajouter, en réponse à l’un de ses messages.")
        return "Conseillers qui peuvent répondre aux personnes : " + ", ".join(names) + "."

    # ------------------------------------------------------------------ start and stop

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

    async def start(self, application: AnyApplication) -> None:
        await self.check(application.bot)
        self._task = asyncio.create_task(supervise("groupe de l’équipe", self._loop, self._state), name="ptce-team")
        self.nudge()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=self._timing.team_stop_grace)
            self._task = None
        try:  # what was sent until the stop is written to the hand-overs now, not at the next start
            await self._record_outcomes()
        except Exception as exc:  # noqa: BLE001 - the outcomes stay in the queue file for the next start
            logger.warning("Groupe de l’équipe : suivi des envois reporté (%s)", type(exc).__name__)


def _replies_to_bot(message: Message, bot: Bot) -> bool:
    replied = message.reply_to_message
    return replied is not None and replied.from_user is not None and replied.from_user.id == bot.id


def _delivery_note(ref: int, status: str) -> str:
    if status == BLOCKED:
        return f"⚠️ La personne a bloqué le bot : réponse non remise (question n° {ref})."
    if status == REFUSED:
        return f"⚠️ Telegram a refusé la réponse : non remise (question n° {ref}). Reformulez-la et répondez de nouveau."
    return f"✅ Réponse remise à la personne (question n° {ref})."


def install(application: AnyApplication, store: HandoverStore, chat_id: int, *, queue: TelegramQueue,
            kick: Callable[[int], None], in_worker: RunInWorker, state: ChannelState,
            listeners: list[Callable[[OutboxRow, str], None]], advisors: frozenset[int] = frozenset()) -> TeamRelay:
    """Attach the relay to a built application (handlers, start-up check, the sync task)."""
    relay = TeamRelay(store, chat_id, queue=queue, kick=kick, in_worker=in_worker, state=state, advisors=advisors)
    application.bot_data[RELAY_KEY] = relay
    listeners.append(relay.on_outcome)
    # Group -1 runs before the advisor's handlers and stops them for the team chat (edits included).
    application.add_handler(MessageHandler(filters.Chat(chat_id), relay.on_team_message), group=-1)
    application.add_handler(TypeHandler(Update, relay.after_update), group=1)
    previous_init, previous_stop = application.post_init, application.post_stop

    async def post_init(app: AnyApplication) -> None:
        if previous_init is not None:
            await previous_init(app)
        await relay.start(app)

    async def post_stop(app: AnyApplication) -> None:
        await relay.stop()
        if previous_stop is not None:
            await previous_stop(app)

    application.post_init = post_init
    application.post_stop = post_stop
    return relay
