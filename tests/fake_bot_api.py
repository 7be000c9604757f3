"""A loopback fake of the Telegram Bot API, for end-to-end tests of ``ptce-bot telegram``.

Run it in a thread (stdlib ``http.server``), point the bot at it with
``TELEGRAM_BASE_URL=http://127.0.0.1:<port>/bot``, queue updates as if users were
typing or pressing buttons, and read back every call the bot made::

    with FakeBotApi() as api:
        api.send_command(user, "/start")
        message = api.wait_for_message(chat_id, lambda m: "Menu" in m.text)

It serves getMe, getUpdates (long polling with a short wait, offsets honoured like
Telegram: confirmed updates are forgotten), sendMessage, editMessageText,
answerCallbackQuery, setMyCommands, getMyCommands, deleteWebhook, setWebhook,
getWebhookInfo, close and logOut. Parameters are read the way PTB's ``HTTPXRequest``
sends them: form-encoded with JSON-encoded values, multipart when files are sent,
or a JSON body.

Faults, per method, to check what the bot does when Telegram misbehaves::

    api.inject("sendMessage", Status(429, retry_after=5))   # the next call only
    api.fail_during("sendMessage", 6.0, Status(502))         # every call for 6 s
    api.inject("sendMessage", Late(3.0))                      # handled, answered 3 s late
    api.close_port(); …; api.open_port()                      # connection refused meanwhile
    api.push_raw({"update_id": 7, "message": {"date": "x"}})  # an update PTB cannot parse

A call answered with an error status does nothing (no message is created); a late
call is handled at once and only its answer is delayed, as when Telegram is slow.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

BOT_ID = 987654321
BOT_USERNAME = "ptce_e2e_bot"
BOT_USER = {"id": BOT_ID, "is_bot": True, "first_name": "Conseiller PTCE", "username": BOT_USERNAME}
#: A token of the right shape, for the bot process under test.
FAKE_TOKEN = f"{BOT_ID}:AAF-fake_e2e_token_000000000000000000"
#: Longest time a getUpdates call is held open (the bot asks for longer; Telegram may answer early).
MAX_POLL_WAIT = 0.5


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


Fault = Status | Late


@dataclass
class Call:
    """One Bot API call made by the bot."""

    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


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


def _decode_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def parse_parameters(content_type: str, body: bytes, query: str = "") -> dict[str, Any]:
    """Bot API call parameters from a query string and a form, multipart or JSON body."""
    params: dict[str, Any] = {k: _decode_value(v) for k, v in parse_qsl(query)}
    content_type = content_type or ""
    if not body:
        return params
    if content_type.startswith("application/json"):
        params.update(json.loads(body.decode("utf-8")))
    elif content_type.startswith("multipart/form-data"):
        header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if part.get_filename():
                content = part.get_content()
                params[name] = {"filename": part.get_filename(), "size": len(content), "content": content}
            else:
                payload = part.get_payload(decode=True) or b""
                params[name] = _decode_value(payload.decode("utf-8"))
    else:  # application/x-www-form-urlencoded
        params.update({k: _decode_value(v) for k, v in parse_qsl(body.decode("utf-8"), keep_blank_values=True)})
    return params


class FakeBotApi:
    """The fake server plus the state of the chats it simulates."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, token: str = FAKE_TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.messages: dict[tuple[int, int], SentMessage] = {}
        self.unknown_token_calls = 0
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._user_message_ids = itertools.count(100_000)
        self._changed = threading.Condition()
        self._faults: dict[str, list[Fault]] = {}
        self._windows: dict[str, list[tuple[float, Fault]]] = {}
        self.failed_calls: list[Call] = []
        self._host = host
        self._server = self._make_server(host, port)
        self._thread: threading.Thread | None = None

    def _make_server(self, host: str, port: int) -> ThreadingHTTPServer:
        assert host in ("127.0.0.1", "localhost"), "loopback only"
        server = ThreadingHTTPServer((host, port), self._handler_class(), bind_and_activate=False)
        server.daemon_threads = True
        server.request_queue_size = 256  # many chats connect at once; the default backlog is 5
        server.allow_reuse_address = True
        try:
            server.server_bind()
            server.server_activate()
        except OSError:
            server.server_close()
            raise
        return server

    # ------------------------------------------------------------------ faults

    def inject(self, method: str, *faults: Fault) -> None:
        """The next calls to ``method`` get these faults, one each, in order."""
        with self._changed:
            self._faults.setdefault(method, []).extend(faults)

    def fail_during(self, method: str, seconds: float, fault: Fault) -> None:
        """Every call to ``method`` during the next ``seconds`` gets ``fault``."""
        with self._changed:
            self._windows.setdefault(method, []).append((time.monotonic() + seconds, fault))

    def _take_fault(self, method: str) -> Fault | None:
        queued = self._faults.get(method)
        if queued:
            return queued.pop(0)
        now = time.monotonic()
        for until, fault in self._windows.get(method, []):
            if now < until:
                return fault
        return None

    def close_port(self) -> None:
        """Stop listening: the bot's connections are refused until :meth:`open_port`."""
        port = self.port
        self._server.shutdown()
        self._server.server_close()
        self._closed_port = port

    def open_port(self) -> None:
        self._server = self._make_server(self._host, self._closed_port)
        self.start()

    def push_raw(self, payload: dict[str, Any]) -> int:
        """Queue an update exactly as given (it may be one the library cannot parse)."""
        with self._changed:
            update_id = payload.get("update_id")
            if not isinstance(update_id, int):
                update_id = next(self._update_ids)
                payload = {"update_id": update_id, **payload}
            else:
                self._update_ids = itertools.count(update_id + 1)
            self._updates.append(payload)
            self._changed.notify_all()
            return update_id

    # ------------------------------------------------------------------ life cycle

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """Value for ``TELEGRAM_BASE_URL``."""
        return f"http://127.0.0.1:{self.port}/bot"

    def start(self) -> FakeBotApi:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-bot-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._changed:
            self._changed.notify_all()

    def __enter__(self) -> FakeBotApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ simulating users

    def push_update(self, **payload: Any) -> int:
        """Queue an update (``message=…``, ``callback_query=…``); returns its update_id."""
        with self._changed:
            update_id = next(self._update_ids)
            self._updates.append({"update_id": update_id, **payload})
            self._changed.notify_all()
            return update_id

    def send_text(self, user: dict[str, Any], text: str, *, chat: dict[str, Any] | None = None) -> int:
        """The user types ``text`` (a leading ``/word`` is marked as a command)."""
        chat = chat or {"id": user["id"], "type": "private", "first_name": user.get("first_name", "")}
        message: dict[str, Any] = {
            "message_id": next(self._user_message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": user,
            "text": text,
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
                "chat": {"id": message.chat_id, "type": "private"},
                "from": BOT_USER,
                "text": message.text,
                **({"reply_markup": message.reply_markup} if message.reply_markup else {}),
            },
        }
        return self.push_update(callback_query=query)

    def pending_updates(self) -> int:
        with self._changed:
            return len(self._updates)

    # ------------------------------------------------------------------ observing the bot

    def calls_to(self, method: str) -> list[Call]:
        with self._changed:
            return [call for call in self.calls if call.method == method]

    def wait_until(self, condition: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until ``condition()`` is truthy (checked on every call); return its value."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = condition()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout} s; last calls: {self._summary()}")
                self._changed.wait(remaining)

    def wait_for_call(self, method: str, *, after: int = 0, timeout: float = 10.0) -> Call:
        """The first call to ``method`` with index ≥ ``after`` in :attr:`calls`."""
        return self.wait_until(
            lambda: next((c for c in self.calls[after:] if c.method == method), None), timeout
        )

    def wait_idle(self, *, after: int = 0, quiet: float = 0.4, timeout: float = 10.0) -> list[Call]:
        """Wait until the bot has fetched every queued update and made no other call for ``quiet`` s.

        Returns the calls made since index ``after`` (getUpdates excluded).
        """
        deadline = time.monotonic() + timeout
        while True:
            with self._changed:
                others = [c for c in self.calls[after:] if c.method != "getUpdates"]
                last = max((c.at for c in others), default=0.0)
                idle = not self._updates and time.monotonic() - last >= quiet and others
            if idle:
                return others
            if time.monotonic() > deadline:
                raise TimeoutError(f"bot not idle within {timeout} s; last calls: {self._summary()}")
            time.sleep(0.05)

    def chat_messages(self, chat_id: int) -> list[SentMessage]:
        with self._changed:
            return [m for (c, _), m in sorted(self.messages.items()) if c == chat_id]

    def _summary(self) -> list[str]:
        return [c.method for c in self.calls[-12:]]

    # ------------------------------------------------------------------ the API

    def _answer(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        ok = lambda result: (200, {"ok": True, "result": result})  # noqa: E731
        if method == "getMe":
            return ok(BOT_USER | {"can_join_groups": True, "can_read_all_group_messages": False,
                                  "supports_inline_queries": False})
        if method == "getUpdates":
            return ok(self._get_updates(params))
        if method == "sendMessage":
            if not str(params.get("text", "")).strip():
                return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}
            chat_id = int(params["chat_id"])
            message = SentMessage(chat_id, next(self._message_ids), params["text"], params.get("reply_markup"))
            self.messages[(chat_id, message.message_id)] = message
            return ok(self._message_json(message))
        if method == "editMessageText":
            key = (int(params["chat_id"]), int(params["message_id"]))
            message = self.messages.get(key)
            if message is None:
                return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message to edit not found"}
            if message.text == params["text"] and message.reply_markup == params.get("reply_markup"):
                return 400, {"ok": False, "error_code": 400,
                             "description": "Bad Request: message is not modified: specified new message "
                                            "content and reply markup are exactly the same"}
            message.text, message.reply_markup = params["text"], params.get("reply_markup")
            message.edits += 1
            return ok(self._message_json(message))
        if method == "answerCallbackQuery":
            if len(str(params.get("text", ""))) > 200:
                return 400, {"ok": False, "error_code": 400, "description": "Bad Request: MESSAGE_TOO_LONG"}
            return ok(True)
        if method == "getMyCommands":
            sets = [c for c in self.calls if c.method == "setMyCommands"]
            return ok(sets[-1].params.get("commands", []) if sets else [])
        if method == "getWebhookInfo":
            return ok({"url": "", "has_custom_certificate": False, "pending_update_count": len(self._updates)})
        if method in {"setMyCommands", "deleteWebhook", "setWebhook", "close", "logOut",
                      "setMyDescription", "setMyShortDescription", "setChatMenuButton", "sendChatAction"}:
            return ok(True)
        return 404, {"ok": False, "error_code": 404, "description": "Not Found"}

    def _message_json(self, message: SentMessage) -> dict[str, Any]:
        data: dict[str, Any] = {
            "message_id": message.message_id,
            "date": int(time.time()),
            "chat": {"id": message.chat_id, "type": "private" if message.chat_id > 0 else "supergroup"},
            "from": BOT_USER,
            "text": message.text,
        }
        if message.reply_markup:
            data["reply_markup"] = message.reply_markup
        return data

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Called with the lock held; waits (releasing it) for updates like a long poll."""
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = min(float(params.get("timeout") or 0), MAX_POLL_WAIT)
        if offset:
            # Telegram forgets every update before the offset: they are confirmed.
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        deadline = time.monotonic() + timeout
        while not self._updates and time.monotonic() < deadline:
            self._changed.wait(deadline - time.monotonic())
        return self._updates[:limit]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                """Quiet: the calls are recorded instead."""

            def _serve(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                prefix, _, method = url.path.rpartition("/")
                if prefix != f"/bot{api.token}":
                    with api._changed:
                        api.unknown_token_calls += 1
                    status, answer = 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
                else:
                    params = parse_parameters(self.headers.get("Content-Type", ""), body, url.query)
                    late = 0.0
                    with api._changed:
                        fault = api._take_fault(method)
                        if isinstance(fault, Status):
                            status, answer = fault.code, fault.body()
                            api.failed_calls.append(Call(method, params))
                        else:
                            status, answer = api._answer(method, params)
                            api.calls.append(Call(method, params))
                            late = fault.seconds if isinstance(fault, Late) else 0.0
                        api._changed.notify_all()
                    if late:
                        time.sleep(late)
                data = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the bot gave up waiting (e.g. shutting down)

            do_GET = _serve
            do_POST = _serve

        return Handler
