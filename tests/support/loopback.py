"""The loopback transport: an HTTP server on 127.0.0.1 (random port) answering from the fake Bot API core.

Point a bot in a subprocess at it with ``TELEGRAM_BASE_URL=server.base_url``. Parameters
are read the way PTB's ``HTTPXRequest`` sends them: form-encoded with JSON-encoded
values, multipart when files are sent, or a JSON body.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.support.bot_api import FakeBotApi


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


class LoopbackServer:
    """``http.server`` in a thread, serving the core; :meth:`close_port` really stops listening."""

    def __init__(self, core: FakeBotApi, host: str = "127.0.0.1") -> None:
        assert host in ("127.0.0.1", "localhost"), "loopback only"
        self.core = core
        self._host = host
        self._port = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """Value for ``TELEGRAM_BASE_URL``."""
        return f"http://127.0.0.1:{self._port}/bot"

    def start(self) -> LoopbackServer:
        server = ThreadingHTTPServer((self._host, self._port), self._handler_class(), bind_and_activate=False)
        server.daemon_threads = True
        server.request_queue_size = 256  # many chats connect at once; the default backlog is 5
        server.allow_reuse_address = True
        try:
            server.server_bind()
            server.server_activate()
        except OSError:
            server.server_close()
            raise
        self._server = server
        self._port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, name="fake-bot-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self.core.changed:
            self.core.changed.notify_all()

    def close_port(self) -> None:
        """Stop listening: connections are refused until :meth:`open_port` (same port)."""
        self.core.close_port()
        self.stop()

    def open_port(self) -> None:
        self.core.open_port()
        self.start()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        core = self.core

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                """Quiet: the calls are recorded instead."""

            def _serve(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                prefix, _, method = url.path.rpartition("/")
                token = prefix[len("/bot"):] if prefix.startswith("/bot") else ""
                params = parse_parameters(self.headers.get("Content-Type", ""), body, url.query)
                if method == "getUpdates" and token == core.token:
                    core.wait_for_updates(int(params.get("offset") or 0), float(params.get("timeout") or 0))
                answer = core.call(token, method, params)
                if answer.late:
                    time.sleep(answer.late)
                status = answer.status if answer.error is None else 500
                data = json.dumps(answer.body if answer.error is None else {"ok": False, "error_code": 500,
                                                                              "description": "Internal"}).encode()
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
