"""Engine turns for the web page: one worker thread, each turn and what the page shows committed together.

The engine is synchronous and its progress connection must not be used by two threads
at once: every database access of the web channel runs in one worker thread, which
also serialises each person's turns. The PDF and the picture are built outside it (one
at a time), so that a report does not hold up other people's turns.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from bot.web.markup import to_plain
from bot.web.store import Message, StaleSession, WebStore, new_user_id
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
    #: Instead of ``messages``, when the page asking is up to date: only what the turn added or changed.
    written: list[Message] | None = None
    #: Id of the person's newest message after the turn (the page's « up to date » mark).
    newest: int = 0


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


class Worker:
    """One thread running jobs in order; their results handed back to the event loop.

    Lighter than an executor for one job per turn: a job is a queue entry and an asyncio
    future, and when the loop is busy, results that finish meanwhile share one wake-up.
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._ready: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, function: Callable[[], T]) -> asyncio.Future[T]:
        if self._closed:
            raise RuntimeError("the worker has stopped")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, future, function))
        return future

    def shutdown(self) -> None:
        """Finish the jobs already queued, then stop."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, future, function = job
            try:
                outcome: tuple[Any, BaseException | None] = (function(), None)
            except BaseException as error:  # handed to the caller, as an executor would
                outcome = (None, error)
            with self._lock:
                self._ready.append((future, *outcome))
                wake = len(self._ready) == 1  # else a wake-up is already on its way
            if wake:
                try:
                    loop.call_soon_threadsafe(self._settle)
                except RuntimeError:  # the loop is closed: nobody waits for the result any more
                    with self._lock:
                        self._ready.clear()

    def _settle(self) -> None:
        with self._lock:
            ready, self._ready = self._ready, []
        for future, result, error in ready:
            if future.done():  # cancelled meanwhile
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)


class WebTurns:
    """The engine and the web tables, used from one worker thread."""

    def __init__(self, engine: WebEngine) -> None:
        self.engine = engine
        self.worker = Worker("ptce-web-engine")
        self.store = WebStore(engine.store.db)
        engine.store.add_forget_hook(self.store.forget)

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function`` in the worker thread."""
        return await self.worker.submit(functools.partial(function, *args))

    # ------------------------------------------------------------------ in the worker thread

    def page(self, sid: str | None) -> tuple[int, list[Message]]:
        """The person's newest message id and the conversation the page shows."""
        user = self.store.user_of(sid) if sid else None
        if user is None:
            return 0, []
        return self.store.view(user).newest, self.store.messages(user)

    def turn(self, sid: str, turn: str, event: Event, with_page: bool = False, shown: int | None = None) -> TurnResult:
        """One event of the person behind ``sid``: the engine's turn and the page's new messages, in one transaction.

        ``with_page``: also give what the page shows next, in the same trip to the worker
        thread: only the messages the turn wrote when the page asking shows the person's
        newest message (``shown``), else the whole conversation.
        """
        try:
            try:
                return self._turn(sid, turn, event, with_page, shown)
            except StaleSession:
                return self._turn(sid, turn, event, with_page, shown)  # the session read again from the table
        except BaseException:
            self.store.drop_caches()  # the turn was rolled back: so were the writes the caches followed
            raise

    def _turn(self, sid: str, turn: str, event: Event, with_page: bool, shown: int | None) -> TurnResult:
        user = self.store.user_of(sid)
        if user is not None and self.store.seen_turn(user, turn):
            # The same form sent twice: already answered.
            return TurnResult(messages=self.store.messages(user) if with_page else None, newest=self.store.view(user).newest)
        fresh = user is None
        user_id = user or new_user_id()
        before = self.store.view(user_id).newest if not fresh else 0
        label = self._label(user_id, event) if not fresh else _event_text(event, [])
        result = TurnResult()
        written: list[Message] = []

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
            written.append(self.store.add_user_message(owner, turn, "" if only_edits or owner != user_id else label))
            promised = [_promise(reply, owner, result.pending) for reply in replies]
            written.extend(self.store.add_replies(owner, turn, replies, promised))
            result.newest = self.store.view(owner).newest
            return replies

        self.engine.store.once(f"web:{user_id}:{turn}", user_id, run, encode_replies, decode_replies)
        if not with_page or result.pending:
            return result
        if result.new_sid is None and written and shown == before:
            result.written = [message for message in written if message.text]
        else:
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
        self.worker.shutdown()


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
