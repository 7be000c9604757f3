"""The one fake Telegram Bot API core: chats, calls and faults, with no transport of its own.

Two transports reach it: :class:`tests.support.transport.CoreRequest` (PTB's
``BaseRequest`` seam, in the test's event loop) and
:class:`tests.support.loopback.LoopbackServer` (HTTP on 127.0.0.1, for a bot in a
subprocess). Both give the core the call's parameters the way PTB sends them (JSON
values decoded, uploaded files as ``{"filename", "size", "content"}``) and send back
its answer::

    api = FakeBotApi()
    api.send_text(user, "/start")                      # a user types (an update is queued)
    message = api.chat_messages(chat_id)[-1]           # what the user sees, edits applied
    api.press(user, message, message.buttons()[0][1])  # a button press

Every call is recorded (:attr:`calls`, failed ones flagged), and faults are injected
per method::

    api.inject("sendMessage", Status(429, retry_after=5))   # the next call only
    api.fail_during("sendMessage", 0.5, Status(502))         # every call for 0.5 s
    api.inject("sendMessage", Late(3.0))                      # handled, answered 3 s late
    api.inject("sendMessage", Raise(TimedOut()))              # in-process only: raised by the transport
    api.close_port(); …; api.open_port()                      # connection refused meanwhile
    api.push_raw({"update_id": 7, "message": {"date": "x"}})  # an update PTB cannot parse

A call answered with an error status does nothing (no message is created); a late call
is handled at once and only its answer is delayed, as when Telegram is slow.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

BOT_ID = 987654321
BOT_USERNAME = "ptce_e2e_bot"
#: A token of the right shape for the bot under test.
FAKE_TOKEN = f"{BOT_ID}:AAF-fake_e2e_token_000000000000000000"
#: Longest time a getUpdates call is held open (the bot asks for longer; Telegram may answer early).
MAX_POLL_WAIT = 0.5
#: The team chat of the hand-over tests, and an advisor in it.
TEAM_CHAT_ID = -1001234567890
TEAM_CHAT: dict[str, Any] = {"id": TEAM_CHAT_ID, "type": "supergroup", "title": "Équipe PTCE"}
ADVISOR = {"id": 4242, "is_bot": False, "first_name": "Dominique"}
DATE = 1_800_000_000


def bot_user(bot_id: int = BOT_ID, username: str = BOT_USERNAME) -> dict[str, Any]:
    return {"id": bot_id, "is_bot": True, "first_name": "Conseiller PTCE", "username": username}


def token_for(bot_id: int) -> str:
    return f"{bot_id}:AAF-fake_token_for_tests_00000000000000"


@dataclass(frozen=True)
class Status:
    """Answer with this HTTP status (429 carries ``retry_after``)."""

    code: int
    retry_after: int | None = None
    description: str = ""

    def body(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"ok": False, "error_code": self.code,
                                  "description": self.description or f"Error {self.code}"}
        if self.retry_after is not None:
            answer["parameters"] = {"retry_after": self.retry_after}
            answer["description"] = f"Too Many Requests: retry after {self.retry_after}"
        return answer


@dataclass(frozen=True)
class Late:
    """Handle the call normally, then wait ``seconds`` before answering."""

    seconds: float


@dataclass(frozen=True)
class Raise:
    """In-process transport only: raise ``error`` instead of answering (a timeout, a cut connection)."""

    error: BaseException


Fault = Status | Late | Raise


def bad_request(description: str) -> Status:
    return Status(400, description=f"Bad Request: {description}")


FORBIDDEN = Status(403, description="Forbidden: bot was blocked by the user")


@dataclass
class Call:
    """One Bot API call made by the bot (``failed``: answered with an error status or raised)."""

    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    failed: bool = False


@dataclass
class SentMessage:
    """A message as the user sees it (kept up to date by editMessageText)."""

    chat_id: int
    message_id: int
    text: str
    reply_markup: dict[str, Any] | None
    edits: int = 0

    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback_data) in reading order."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [(b["text"], b.get("callback_data", "")) for row in rows for b in row]

    def button(self, predicate: Callable[[str], bool]) -> tuple[str, str]:
        """The first button whose label satisfies ``predicate``."""
        for label, data in self.buttons():
            if predicate(label):
                return label, data
        raise LookupError(f"no such button among {[label for label, _ in self.buttons()]}")


@dataclass
class SentFile:
    method: str  # sendDocument or sendPhoto
    chat_id: int
    filename: str
    content: bytes
    caption: str


@dataclass
class Answer:
    """What the core answers one call with; ``late`` seconds before the answer leaves."""

    status: int
    body: dict[str, Any]
    late: float = 0.0
    error: BaseException | None = None


def _error(code: int, description: str) -> tuple[int, dict[str, Any]]:
    return code, {"ok": False, "error_code": code, "description": description}


class FakeBotApi:
    """The state of the chats the fake simulates, every call the bot made, and the faults to inject.

    Thread-safe: the loopback server answers from its threads, the in-process transport from
    the event loop. ``echo=False`` answers sent messages with a minimal object (no text,
    no keyboard), for load tests where PTB parsing them back would only cost time.
    """

    def __init__(self, *, token: str = FAKE_TOKEN, bot: dict[str, Any] | None = None, echo: bool = True,
                 bot_is_member: bool = True, record: bool = True) -> None:
        self.token = token
        self.bot = bot or bot_user(int(token.split(":")[0]))
        self.echo = echo
        #: Keep every call in :attr:`calls` (``False``: only :attr:`counts`, for benchmarks).
        self.record = record
        self.bot_is_member = bot_is_member
        self.calls: list[Call] = []
        self.counts: Counter[str] = Counter()
        self.messages: dict[tuple[int, int], SentMessage] = {}
        self.files: list[SentFile] = []
        #: (chat id, message id) of every message the bot deleted.
        self.deleted: list[tuple[int, int]] = []
        #: Members of the team chat who are its administrators (``getChatMember``).
        self.chat_admins: set[int] = set()
        self.unknown_token_calls = 0
        self.port_closed = False
        self._updates: list[dict[str, Any]] = []
        #: Every update pushed (kept after confirmation, for edits of earlier messages).
        self._sent_updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._user_message_ids = itertools.count(100_000)
        self.changed = threading.Condition()
        self._faults: dict[str, list[Fault]] = {}
        self._chat_faults: dict[tuple[str, int], list[Fault]] = {}
        self._windows: dict[str, list[tuple[float, Fault]]] = {}

    # ------------------------------------------------------------------ faults

    def inject(self, method: str, *faults: Fault) -> None:
        """The next calls to ``method`` get these faults, one each, in order."""
        with self.changed:
            self._faults.setdefault(method, []).extend(faults)

    def fail_during(self, method: str, seconds: float, fault: Fault) -> None:
        """Every call to ``method`` during the next ``seconds`` gets ``fault``."""
        with self.changed:
            self._windows.setdefault(method, []).append((time.monotonic() + seconds, fault))

    def fail(self, method: str, failure: Fault | BaseException) -> None:
        """The next call to ``method`` fails with ``failure`` (an error status, or an exception raised in-process)."""
        self.inject(method, failure if isinstance(failure, (Status, Late, Raise)) else Raise(failure))

    def close_port(self) -> None:
        """Connections are refused until :meth:`open_port` (the loopback server listens to this too)."""
        with self.changed:
            self.port_closed = True
            self.changed.notify_all()

    def open_port(self) -> None:
        with self.changed:
            self.port_closed = False
            self.changed.notify_all()

    def inject_for_chat(self, method: str, chat_id: int, *faults: Fault) -> None:
        """The next calls to ``method`` for ``chat_id`` get these faults (other chats are not affected)."""
        with self.changed:
            self._chat_faults.setdefault((method, chat_id), []).extend(faults)

    def _take_fault(self, method: str, params: dict[str, Any] | None = None) -> Fault | None:
        chat = (params or {}).get("chat_id")
        if chat is not None and str(chat).lstrip("-").isdigit():
            for_chat = self._chat_faults.get((method, int(chat)))
            if for_chat:
                return for_chat.pop(0)
        queued = self._faults.get(method)
        if queued:
            return queued.pop(0)
        now = time.monotonic()
        for until, fault in self._windows.get(method, []):
            if now < until:
                return fault
        return None

    # ------------------------------------------------------------------ simulating users

    def push_update(self, **payload: Any) -> int:
        """Queue an update (``message=…``, ``callback_query=…``); returns its update_id."""
        with self.changed:
            update_id = next(self._update_ids)
            self._updates.append({"update_id": update_id, **payload})
            self._sent_updates.append({"update_id": update_id, **payload})
            self.changed.notify_all()
            return update_id

    def push_raw(self, payload: dict[str, Any]) -> int:
        """Queue an update exactly as given (it may be one the library cannot parse)."""
        with self.changed:
            update_id = payload.get("update_id")
            if not isinstance(update_id, int):
                update_id = next(self._update_ids)
                payload = {"update_id": update_id, **payload}
            else:
                self._update_ids = itertools.count(update_id + 1)
            self._updates.append(payload)
            self.changed.notify_all()
            return update_id

    def send_text(self, user: dict[str, Any], text: str, *, chat: dict[str, Any] | None = None, **extra: Any) -> int:
        """The user types ``text`` (a leading ``/word`` is marked as a command)."""
        chat = chat or {"id": user["id"], "type": "private", "first_name": user.get("first_name", "")}
        message: dict[str, Any] = {
            "message_id": next(self._user_message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": user,
            "text": text,
            **extra,
        }
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return self.push_update(message=message)

    def press(self, user: dict[str, Any], message: SentMessage, data: str) -> int:
        """The user presses the button carrying ``data`` under ``message``."""
        query = {
            "id": f"cq-{next(self._user_message_ids)}",
            "from": user,
            "chat_instance": f"ci-{message.chat_id}",
            "data": data,
            "message": {
                "message_id": message.message_id,
                "date": int(time.time()),
                "chat": {"id": message.chat_id, "type": "private" if message.chat_id > 0 else "supergroup"},
                "from": self.bot,
                "text": message.text,
                **({"reply_markup": message.reply_markup} if message.reply_markup else {}),
            },
        }
        return self.push_update(callback_query=query)

    def advisor_reply(self, to: SentMessage | None, text: str, advisor: dict[str, Any] = ADVISOR) -> int:
        """An advisor writes in the team chat, replying to ``to`` (or not, when None)."""
        extra: dict[str, Any] = {}
        if to is not None:
            extra["reply_to_message"] = {"message_id": to.message_id, "date": int(time.time()), "chat": TEAM_CHAT,
                                         "from": self.bot, "text": to.text}
        return self.send_text(advisor, text, chat=TEAM_CHAT, **extra)

    def advisor_edit(self, reply: SentMessage, original_update: int, text: str, advisor: dict[str, Any] = ADVISOR) -> int:
        """An advisor edits the reply they sent as update ``original_update`` (Telegram sends ``edited_message``)."""
        with self.changed:
            original = next(u for u in self._sent_updates if u["update_id"] == original_update)["message"]
        edited = dict(original, text=text, edit_date=int(time.time()))
        return self.push_update(edited_message=edited)

    def pending_updates(self) -> int:
        with self.changed:
            return len(self._updates)

    # ------------------------------------------------------------------ observing the bot

    def reset_calls(self) -> None:
        with self.changed:
            self.calls.clear()
            self.counts.clear()

    def calls_to(self, method: str) -> list[Call]:
        """Calls to ``method`` that were answered normally."""
        with self.changed:
            return [call for call in self.calls if call.method == method and not call.failed]

    def attempts(self, method: str) -> list[dict[str, Any]]:
        """Parameters of every call to ``method``, failed ones included, in order."""
        with self.changed:
            return [call.params for call in self.calls if call.method == method]

    def sent(self, method: str = "sendMessage") -> list[dict[str, Any]]:
        """Parameters of every call to ``method`` (failed ones included), in order."""
        return self.attempts(method)

    def methods(self) -> list[str]:
        with self.changed:
            return [call.method for call in self.calls]

    @property
    def failed_calls(self) -> list[Call]:
        with self.changed:
            return [call for call in self.calls if call.failed]

    def chat_messages(self, chat_id: int) -> list[SentMessage]:
        with self.changed:
            return [m for (c, _), m in sorted(self.messages.items()) if c == chat_id]

    def deliveries(self, chat_id: int) -> list[tuple[str, str]]:
        """(``send`` or ``edit``, text) of every message call to ``chat_id``, failed ones included, in order."""
        with self.changed:
            return [("edit" if c.method == "editMessageText" else "send", c.params["text"]) for c in self.calls
                    if c.method in ("sendMessage", "editMessageText") and int(c.params.get("chat_id", 0)) == chat_id]

    def texts(self, chat_id: int) -> list[str]:
        return [m.text for m in self.chat_messages(chat_id)]

    def team_messages(self) -> list[SentMessage]:
        return self.chat_messages(TEAM_CHAT_ID)

    def total_messages(self) -> int:
        with self.changed:
            return len(self.messages)

    def summary(self) -> list[str]:
        with self.changed:
            return [c.method for c in self.calls[-12:]]

    def wait_until(self, condition: Callable[[], T], timeout: float = 10.0) -> T:
        """Block until ``condition()`` is truthy (checked on every call); return its value."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                value = condition()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout} s; last calls: {self.summary()}")
                self.changed.wait(min(remaining, 0.05))

    async def until(self, condition: Callable[[], T], timeout: float = 10.0) -> T:
        """The event loop's :meth:`wait_until` (the bot runs in the same loop)."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout} s; last calls: {self.summary()}")
            await asyncio.sleep(0.005)

    def _idle(self, after: int, quiet: float) -> list[Call] | None:
        with self.changed:
            others = [c for c in self.calls[after:] if c.method != "getUpdates"]
            last = max((c.at for c in others), default=0.0)
            if not self._updates and others and time.monotonic() - last >= quiet:
                return others
        return None

    def wait_idle(self, *, after: int = 0, quiet: float = 0.3, timeout: float = 10.0) -> list[Call]:
        """Block until every queued update was fetched and the bot made no other call for ``quiet`` s.

        Returns the calls made since index ``after`` (getUpdates excluded).
        """
        deadline = time.monotonic() + timeout
        while (calls := self._idle(after, quiet)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"bot not idle within {timeout} s; last calls: {self.summary()}")
            time.sleep(0.02)
        return calls

    async def idle(self, *, after: int = 0, quiet: float = 0.1, timeout: float = 10.0) -> list[Call]:
        """The event loop's :meth:`wait_idle`."""
        deadline = time.monotonic() + timeout
        while (calls := self._idle(after, quiet)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"bot not idle within {timeout} s; last calls: {self.summary()}")
            await asyncio.sleep(0.01)
        return calls

    # ------------------------------------------------------------------ the API

    def call(self, token: str, method: str, params: dict[str, Any]) -> Answer:
        """Record and answer one call (the transports' single entry point)."""
        with self.changed:
            if token != self.token:
                self.unknown_token_calls += 1
                code, body = _error(401, "Unauthorized")
                return Answer(code, body)
            fault = self._take_fault(method, params)
            self.counts[method] += 1
            if isinstance(fault, (Status, Raise)):
                self._record(method, params, failed=True)
                self.changed.notify_all()
                if isinstance(fault, Raise):
                    return Answer(0, {}, error=fault.error)
                return Answer(fault.code, fault.body())
            status, body = self._answer(method, params)
            self._record(method, params, failed=status != 200)
            self.changed.notify_all()
            return Answer(status, body, late=fault.seconds if isinstance(fault, Late) else 0.0)

    def _confirm(self, offset: int) -> None:
        """Telegram forgets every update before the offset asked: they are confirmed (lock held)."""
        if offset and self._updates and self._updates[0]["update_id"] < offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]

    def _record(self, method: str, params: dict[str, Any], *, failed: bool) -> None:
        if self.record:
            self.calls.append(Call(method, params, failed=failed))

    def has_updates(self, offset: int) -> bool:
        """Whether a getUpdates with ``offset`` has something to return (confirms what is before it)."""
        with self.changed:
            self._confirm(offset)
            return bool(self._updates)

    def wait_for_updates(self, offset: int, timeout: float) -> None:
        """Block (a loopback server thread) until an update at or after ``offset`` is queued, or ``timeout``."""
        deadline = time.monotonic() + min(timeout, MAX_POLL_WAIT)
        with self.changed:
            self._confirm(offset)
            while not any(u["update_id"] >= offset for u in self._updates):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self.changed.wait(remaining)

    def _answer(self, method: str, params: dict[str, Any]) -> tuple[int, Any]:
        """Called with the lock held."""
        def ok(result: Any) -> tuple[int, Any]:
            return 200, {"ok": True, "result": result}

        if method == "getMe":
            return ok(self.bot | {"can_join_groups": True, "can_read_all_group_messages": False,
                                  "supports_inline_queries": False})
        if method == "getUpdates":
            self._confirm(int(params.get("offset") or 0))
            return ok(self._updates[: int(params.get("limit") or 100)])
        if method == "sendMessage":
            if not str(params.get("text", "")).strip():
                return _error(400, "Bad Request: message text is empty")
            chat_id = int(params["chat_id"])
            message = SentMessage(chat_id, next(self._message_ids), params["text"], params.get("reply_markup"))
            self.messages[(chat_id, message.message_id)] = message
            return ok(self._message_json(message))
        if method == "editMessageText":
            if "inline_message_id" in params:
                return ok(True)
            key = (int(params["chat_id"]), int(params["message_id"]))
            known = self.messages.get(key)
            if known is None:  # a message sent before the fake existed (unit tests make them up)
                message = self.messages[key] = SentMessage(key[0], key[1], "", None)
            else:
                message = known
            if known is not None and message.text == params["text"] and message.reply_markup == params.get("reply_markup"):
                return _error(400, "Bad Request: message is not modified: specified new message "
                                   "content and reply markup are exactly the same")
            message.text, message.reply_markup = params["text"], params.get("reply_markup")
            message.edits += 1
            return ok(self._message_json(message))
        if method in {"sendDocument", "sendPhoto"}:
            return self._upload(method, params)
        if method == "deleteMessage":
            if self.messages.pop((int(params["chat_id"]), int(params["message_id"])), None) is None:
                return _error(400, "Bad Request: message to delete not found")
            self.deleted.append((int(params["chat_id"]), int(params["message_id"])))
            return ok(True)
        if method == "answerCallbackQuery":
            if len(str(params.get("text", ""))) > 200:
                return _error(400, "Bad Request: MESSAGE_TOO_LONG")
            return ok(True)
        if method == "getChat":
            if int(params["chat_id"]) != TEAM_CHAT["id"]:
                return _error(400, "Bad Request: chat not found")
            return ok(TEAM_CHAT | {"accent_color_id": 0, "max_reaction_count": 11})
        if method == "getChatMember":
            user_id = int(params["user_id"])
            status = "member" if self.bot_is_member else "left"
            if user_id != self.bot["id"]:
                status = "administrator" if user_id in self.chat_admins else "member"
            user = self.bot if user_id == self.bot["id"] else {"id": user_id, "is_bot": False, "first_name": "?"}
            member: dict[str, Any] = {"status": status, "user": user}
            if status == "administrator":
                member |= {"can_be_edited": False, "is_anonymous": False, "can_manage_chat": True,
                           "can_delete_messages": True, "can_manage_video_chats": True, "can_restrict_members": True,
                           "can_promote_members": False, "can_change_info": True, "can_invite_users": True,
                           "can_post_stories": False, "can_edit_stories": False, "can_delete_stories": False}
            return ok(member)
        if method == "getMyCommands":
            sets = [c for c in self.calls if c.method == "setMyCommands"]
            return ok(sets[-1].params.get("commands", []) if sets else [])
        if method == "getWebhookInfo":
            return ok({"url": "", "has_custom_certificate": False, "pending_update_count": len(self._updates)})
        if method in {"setMyCommands", "deleteWebhook", "setWebhook", "close", "logOut",
                      "setMyDescription", "setMyShortDescription", "setChatMenuButton", "sendChatAction"}:
            return ok(True)
        return _error(404, "Not Found")

    def _message_json(self, message: SentMessage) -> dict[str, Any]:
        chat = {"id": message.chat_id, "type": "private" if message.chat_id > 0 else "supergroup"}
        data: dict[str, Any] = {"message_id": message.message_id, "date": DATE, "chat": chat}
        if not self.echo:
            return data
        data |= {"from": self.bot, "text": message.text}
        if message.reply_markup:
            data["reply_markup"] = message.reply_markup
        return data

    def _upload(self, method: str, params: dict[str, Any]) -> tuple[int, Any]:
        kind = "document" if method == "sendDocument" else "photo"
        upload = params.get(kind)
        if not isinstance(upload, dict) or "content" not in upload:
            return _error(400, f"Bad Request: there is no {kind} in the request")
        chat_id = int(params["chat_id"])
        caption = str(params.get("caption", ""))
        self.files.append(SentFile(method, chat_id, upload["filename"], upload["content"], caption))
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": DATE,
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
            "from": self.bot,
            "caption": caption,
        }
        file_id = f"file-{len(self.files)}"
        if kind == "document":
            message["document"] = {"file_id": file_id, "file_unique_id": file_id, "file_name": upload["filename"],
                                   "mime_type": "application/pdf", "file_size": upload["size"]}
        else:
            message["photo"] = [{"file_id": file_id, "file_unique_id": file_id, "width": 1080, "height": 1080,
                                 "file_size": upload["size"]}]
        return 200, {"ok": True, "result": message}
