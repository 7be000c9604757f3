"""Engine turns for the web page: one worker thread, each turn and what the page shows committed together.

The engine is synchronous and its progress connection must not be used by two threads
at once: every database access of the web channel runs in one worker thread, which
also serialises each person's turns. The PDF and the picture are built outside it (one
at a time), so that a report does not hold up other people's turns.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from bot.web.markup import to_plain
from bot.web.store import Message, WebStore, new_user_id
from dialogue.types import Attachment, Button, Choose, Event, Reply

if TYPE_CHECKING:
    from bot.telegram.engine_port import AdvisorEngine

    class WebEngine(AdvisorEngine, Protocol):
        """The engine's API a web page uses: the channels' one, and the sections of /aide it shows."""

        @property
        def help_sections(self) -> list[str]: ...

logger = logging.getLogger(__name__)
T = TypeVar("T")

_build_lock = threading.Lock()


@dataclass(slots=True)
class PendingFiles:
    """Files promised by a reply, to build after the turn."""

    user_id: str
    attachment: Attachment
    pdf_id: str
    png_id: str


@dataclass(slots=True)
class TurnResult:
    #: A new session id when /oublier cut every link with the old one.
    new_sid: str | None = None
    pending: list[PendingFiles] = field(default_factory=list)
    #: The page's messages after the turn (when asked for and no file is still to be built).
    messages: list[Message] | None = None


def _promise(reply: Reply, user_id: str, pending: list[PendingFiles]) -> dict[str, Any]:
    attachment = reply.attachment
    if attachment is None:
        return {}
    files = PendingFiles(user_id, attachment, secrets.token_urlsafe(16), secrets.token_urlsafe(16))
    pending.append(files)
    return {
        "files": [
            {"id": files.pdf_id, "kind": "pdf", "caption": attachment.DOCUMENT_CAPTION},
            {"id": files.png_id, "kind": "png", "caption": attachment.PICTURE_CAPTION},
        ],
        "failed": attachment.FAILED,
    }


def encode_replies(replies: list[Reply]) -> str:
    import json

    return json.dumps([r.text for r in replies], ensure_ascii=False)


def decode_replies(text: str) -> list[Reply]:
    import json

    return [Reply(item) for item in json.loads(text)]


class WebTurns:
    """The engine and the web tables, used from one worker thread."""

    def __init__(self, engine: WebEngine) -> None:
        self.engine = engine
        self.worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ptce-web-engine")
        self.store = WebStore(engine.store.db)
        engine.store.add_forget_hook(self.store.forget)

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function`` in the worker thread."""
        return await asyncio.get_running_loop().run_in_executor(self.worker, functools.partial(function, *args))

    # ------------------------------------------------------------------ in the worker thread

    def page(self, sid: str | None) -> tuple[str | None, list[Message]]:
        user = self.store.user_of(sid) if sid else None
        return user, (self.store.messages(user) if user else [])

    def turn(self, sid: str, turn: str, event: Event, with_page: bool = False) -> TurnResult:
        """One event of the person behind ``sid``: the engine's turn and the page's new messages, in one transaction.

        ``with_page``: also read the page's messages, in the same trip to the worker thread.
        """
        store = self.engine.store
        user = self.store.user_of(sid)
        if user is not None and self.store.seen_turn(user, turn):
            # The same form sent twice: already answered.
            return TurnResult(messages=self.store.messages(user) if with_page else None)
        fresh = user is None
        user_id = user or new_user_id()
        label = self._label(user_id, event) if not fresh else _event_text(event, [])
        result = TurnResult()

        def run() -> list[Reply]:
            self.store.forgotten.discard(user_id)
            if fresh:
                self.store.bind(sid, user_id)
            else:
                self.store.touch(sid)
            replies = list(self.engine.handle(user_id, event))
            owner = user_id
            if user_id in self.store.forgotten:
                # /oublier: this browser starts afresh under new ids; nothing links them to the old ones.
                result.new_sid = secrets.token_urlsafe(32)
                owner = new_user_id()
                self.store.bind(result.new_sid, owner)
            only_edits = all(reply.edit for reply in replies) and bool(replies)
            self.store.add_user_message(owner, turn, "" if only_edits or owner != user_id else label)
            self.store.add_replies(owner, turn, replies, [_promise(reply, owner, result.pending) for reply in replies])
            return replies

        store.once(f"web:{user_id}:{turn}", user_id, run, encode_replies, decode_replies)
        if with_page and not result.pending:
            result.messages = self.store.messages(self.store.user_of(result.new_sid or sid) or user_id)
        return result

    def _label(self, user_id: str, event: Event) -> str:
        screen = self.store.screen_buttons(user_id) if isinstance(event, Choose) else []
        return _event_text(event, screen)

    def store_files(self, pending: PendingFiles, files: Any) -> None:
        self.store.add_file(pending.user_id, pending.pdf_id, files.pdf_name, "application/pdf", files.pdf)
        self.store.add_file(pending.user_id, pending.png_id, files.png_name, "image/png", files.png)

    def fail_files(self, pending: PendingFiles, text: str) -> None:
        with self.store.db.atomic():
            self.store.set_failure(pending.user_id, [pending.pdf_id, pending.png_id], text)

    # ------------------------------------------------------------------ outside the worker

    async def build(self, pending: PendingFiles) -> None:
        """Build the report's files off the event loop, then store them (or the reason why not)."""
        from report import EmptyReport

        try:
            files = await asyncio.to_thread(self._build_files, pending.attachment)
        except EmptyReport as error:
            await self.call(self.fail_files, pending, str(error))
            return
        except Exception:  # a broken report must not take the conversation down with it
            logger.exception("Échec de la préparation du document PDF")
            await self.call(self.fail_files, pending, pending.attachment.FAILED)
            return
        await self.call(self.store_files, pending, files)

    def _build_files(self, attachment: Attachment) -> Any:
        from report import build_report

        with _build_lock:  # one report at a time: it takes memory
            return build_report(self.engine.kb, attachment)

    def shutdown(self) -> None:
        self.worker.shutdown(wait=True)


def _event_text(event: Event, screen: list[Button]) -> str:
    """What the person's bubble shows for ``event``."""
    if isinstance(event, Choose):
        for button in screen:
            if button.payload == event.payload:
                return to_plain(button.label)
        return ""
    if hasattr(event, "text"):
        return str(event.text)
    name = getattr(event, "name", "")
    argument = getattr(event, "argument", "")
    return f"/{name} {argument}".strip()
