"""Sending the PDF report and the profile picture on Telegram.

The files are built in a worker thread (``asyncio.to_thread``) so the event loop
keeps answering other users meanwhile; one report is built at a time, which
bounds the memory a burst of requests can take. fpdf2 and matplotlib are
imported by the first report, never at start-up.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from telegram import Bot, InputFile
from telegram.constants import ChatAction
from telegram.error import BadRequest, Forbidden, TelegramError

from dialogue.types import Attachment

if TYPE_CHECKING:
    from knowledge.loader import KnowledgeBase

logger = logging.getLogger(__name__)

_build_lock = threading.Lock()


class CallWrapper(Protocol):
    """Runs one Bot API call (the channel passes its retrying wrapper)."""

    async def __call__(self, action: Callable[[], Awaitable[Any]]) -> Any: ...


async def _direct(action: Callable[[], Awaitable[Any]]) -> Any:
    return await action()


def build_files(kb: KnowledgeBase, request: Attachment) -> Any:
    """The report's PDF and picture (one build at a time: it takes memory)."""
    from report import build_report

    with _build_lock:
        return build_report(kb, request)


async def send_report(
    bot: Bot,
    chat_id: int,
    request: Attachment,
    kb: KnowledgeBase,
    *,
    thread_id: int | None = None,
    call: CallWrapper = _direct,
) -> bool:
    """Build the files off the event loop, then send the PDF and the picture. False if it failed."""
    from report import EmptyReport

    failed = request.FAILED
    try:  # « envoi d’un fichier… » under the chat's title while the first report imports its libraries
        await bot.send_chat_action(chat_id=chat_id, action=ChatAction.UPLOAD_DOCUMENT, message_thread_id=thread_id)
    except TelegramError:
        pass  # only a courtesy
    try:
        files = await asyncio.to_thread(build_files, kb, request)
    except EmptyReport as error:
        explanation = str(error)
        await call(lambda: bot.send_message(chat_id=chat_id, text=explanation, message_thread_id=thread_id))
        return False
    except Exception:  # a broken report must not take the conversation down with it
        logger.exception("Échec de la préparation du document PDF (chat %s)", chat_id)
        await call(lambda: bot.send_message(chat_id=chat_id, text=failed, message_thread_id=thread_id))
        return False
    try:
        await call(
            lambda: bot.send_document(
                chat_id=chat_id,
                document=InputFile(files.pdf, filename=files.pdf_name),
                caption=request.DOCUMENT_CAPTION,
                message_thread_id=thread_id,
            )
        )
        await call(
            lambda: bot.send_photo(
                chat_id=chat_id,
                photo=InputFile(files.png, filename=files.png_name),
                caption=request.PICTURE_CAPTION,
                message_thread_id=thread_id,
            )
        )
    except Forbidden:
        raise  # the channel marks the user inactive
    except BadRequest as error:
        logger.warning("Document refusé par Telegram (chat %s) : %s", chat_id, error.message)
        await call(lambda: bot.send_message(chat_id=chat_id, text=failed, message_thread_id=thread_id))
        return False
    return True
