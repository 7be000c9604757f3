"""From Telegram updates to engine events, and from engine replies to outbox rows."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from telegram import Bot, CallbackQuery, Message, MessageEntity, Update
from telegram.constants import ChatType

from bot.render import split_text
from bot.telegram.durable import Action
from bot.telegram.texts import EMPTY_TEXT
from dialogue.types import Reply

#: Characters of an unknown command's name that may be echoed back to the user.
UNSAFE_COMMAND_CHARS = re.compile(r"[^a-z0-9_]")


def is_private(update: Update) -> bool:
    return update.effective_chat is not None and update.effective_chat.type == ChatType.PRIVATE


def ignored(update: Update) -> bool:
    """Updates without a person behind them (channels, anonymous admins) are ignored."""
    if update.effective_user is None or update.effective_chat is None:
        return True
    message = update.effective_message
    return message is not None and message.sender_chat is not None


def mentions_bot(message: Message, username: str, bot_id: int) -> bool:
    """True if the message's text or caption mentions the bot."""
    wanted = "@" + username.lower()
    types: list[str | None] = [MessageEntity.MENTION, MessageEntity.TEXT_MENTION]
    found = {**message.parse_entities(types), **message.parse_caption_entities(types)}
    for entity, text in found.items():
        if entity.type == MessageEntity.MENTION and text.lower() == wanted:
            return True
        if entity.type == MessageEntity.TEXT_MENTION and entity.user and entity.user.id == bot_id:
            return True
    return False


def addressed_to_bot(message: Message, bot: Bot) -> bool:
    """In a group, the bot answers only when mentioned or replied to; always in private."""
    if message.chat.type == ChatType.PRIVATE:
        return True
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot.id:
        return True
    return mentions_bot(message, bot.username, bot.id)


def strip_mention(text: str, username: str) -> str:
    return re.sub(rf"@{re.escape(username)}\b", " ", text, flags=re.IGNORECASE).strip()


def command_of(message: Message) -> tuple[str, str, str | None]:
    """``/name@target argument`` → (name, argument, target)."""
    text = message.text or ""
    entity = message.entities[0]
    word = message.parse_entity(entity)[1:]
    name, _, target = word.partition("@")
    argument = " ".join(text.split()[1:])
    return name.lower(), argument, (target or None)


def safe_command_name(name: str) -> str:
    """An unknown command's name as it may be echoed back (no markup, no link)."""
    return UNSAFE_COMMAND_CHARS.sub("", name)[:32] or "inconnue"


def may_edit(query: CallbackQuery) -> bool:
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


def topic_thread(message: object) -> int | None:
    """The forum topic a message belongs to, if any (replies go to the same topic)."""
    if isinstance(message, Message) and message.is_topic_message:
        return message.message_thread_id
    return None


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
    thread = topic_thread(source)
    if thread is not None:
        options["thread_id"] = thread
    actions: list[Action] = []
    for reply in replies:
        buttons = tuple(tuple((b.label, b.payload) for b in row) for row in reply.buttons)
        parts = split_text(reply.text) if reply.text.strip() else [EMPTY_TEXT]
        if reply.edit and query is not None and len(parts) == 1 and reply.text.strip() and may_edit(query):
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
