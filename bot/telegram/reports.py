"""The PDF report and the profile picture on Telegram: built off the event loop, sent through the outbox.

The files are built in a worker thread (``asyncio.to_thread``) so the event loop keeps
answering other users meanwhile; one report is built at a time, which bounds the memory
a burst of requests can take. fpdf2 and matplotlib are imported by the first report,
never at start-up.

The document and the picture are then queued in the outbox like any message
(:mod:`bot.telegram.outbox`): recorded before they leave, never uploaded twice (a
timeout after the upload does not send a second PDF), retried after a flood wait of any
length, and the person is told when the document finally cannot be sent (or may not
have arrived).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from telegram import Bot
from telegram.constants import ChatAction
from telegram.error import TelegramError

from bot.telegram.durable import DOCUMENT, PHOTO, Action
from bot.telegram.texts import DOCUMENT_UNCERTAIN_TEXT, PICTURE_FAILED_TEXT
from dialogue.types import Attachment

if TYPE_CHECKING:
    from knowledge.loader import KnowledgeBase

logger = logging.getLogger(__name__)

_build_lock = threading.Lock()

#: Queues rows in the outbox (and starts their delivery).
Enqueue = Callable[[list[Action]], Awaitable[None]]


def build_files(kb: KnowledgeBase, request: Attachment) -> Any:
    """The report's PDF and picture (one build at a time: it takes memory)."""
    from report import build_report

    with _build_lock:
        return build_report(kb, request)


def report_actions(chat_id: int, request: Attachment, files: Any, thread_id: int | None) -> list[Action]:
    """The document and the picture as outbox rows, with what to tell the person if they fail."""
    common = {"thread_id": thread_id}
    return [
        Action(chat_id, request.DOCUMENT_CAPTION, kind=DOCUMENT, data=files.pdf,
               options=common | {"filename": files.pdf_name, "failed": request.FAILED, "uncertain": DOCUMENT_UNCERTAIN_TEXT}),
        Action(chat_id, request.PICTURE_CAPTION, kind=PHOTO, data=files.png,
               options=common | {"filename": files.png_name, "failed": PICTURE_FAILED_TEXT}),
    ]


async def send_report(bot: Bot, chat_id: int, request: Attachment, kb: KnowledgeBase, *, enqueue: Enqueue,
                      thread_id: int | None = None) -> bool:
    """Build the files off the event loop, then queue the PDF and the picture. False if nothing could be built."""
    from report import EmptyReport

    try:  # « envoi d’un fichier… » under the chat's title while the first report imports its libraries
        await bot.send_chat_action(chat_id=chat_id, action=ChatAction.UPLOAD_DOCUMENT, message_thread_id=thread_id)
    except TelegramError:
        pass  # only a courtesy
    try:
        files = await asyncio.to_thread(build_files, kb, request)
    except EmptyReport as error:
        await enqueue([Action(chat_id, str(error), options={"thread_id": thread_id, "plain": True})])
        return False
    except Exception:  # a broken report must not take the conversation down with it
        logger.exception("Échec de la préparation du document PDF (chat %s)", chat_id)
        await enqueue([Action(chat_id, request.FAILED, options={"thread_id": thread_id, "plain": True})])
        return False
    await enqueue(report_actions(chat_id, request, files, thread_id))
    return True
