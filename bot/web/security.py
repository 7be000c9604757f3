"""Protections of the web page: headers, body size cap, rate limits, CSRF tokens.

The first two are plain ASGI middleware so that they apply to every response, error
pages and static files included.
"""

from __future__ import annotations

import hmac
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Literal

from itsdangerous import TimestampSigner
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.web.texts import TOO_LARGE, error_page

Clock = Callable[[], float]


def content_security_policy(frame_ancestors: str) -> str:
    """No inline script or style, nothing from another origin, forms posted only here."""
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        f"form-action 'self'; base-uri 'none'; frame-ancestors {frame_ancestors}"
    )


class SecurityHeaders:
    """Adds the security headers to every response."""

    def __init__(self, app: ASGIApp, frame_ancestors: str, *, secure: bool) -> None:
        self.app = app
        headers = [
            (b"content-security-policy", content_security_policy(frame_ancestors).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"cross-origin-resource-policy", b"same-origin"),
        ]
        if frame_ancestors.strip() in ("", "'none'"):
            headers.append((b"x-frame-options", b"DENY"))  # for browsers that ignore frame-ancestors
        if secure:
            headers.append((b"strict-transport-security", b"max-age=31536000"))
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (name, value) for name, value in self.headers if name not in present
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes (declared or streamed) with a French 413 page."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.limit + 1
                if declared > self.limit:
                    await error_page(413, TOO_LARGE)(scope, receive, send)
                    return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
            return message

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracking)
        except BodyTooLarge:
            if not started:
                await error_page(413, TOO_LARGE)(scope, receive, send)


class RateLimiter:
    """Token buckets by key: ``burst`` requests at once, then one every ``interval`` seconds.

    Keys are forgotten least-recently-used first beyond ``max_keys``, so that a flood of
    new addresses cannot fill the memory.
    """

    def __init__(self, burst: int, interval: float, *, clock: Clock = time.monotonic, max_keys: int = 50_000) -> None:
        self.burst = burst
        self.interval = interval
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str) -> float:
        """0 if the request may go on (a token is spent), else the seconds to wait."""
        now = self.clock()
        tokens, stamp = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - stamp) / self.interval)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, now)
            wait = (1 - tokens) * self.interval
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait


def wait_seconds(wait: float) -> int:
    return max(1, math.ceil(wait))


def csrf_ok(session: dict[str, Any], submitted: object) -> bool:
    """The form carries the token of this session (compared in constant time)."""
    expected = session.get("csrf")
    return isinstance(expected, str) and isinstance(submitted, str) and bool(expected) and hmac.compare_digest(expected, submitted)


class RememberingSigner(TimestampSigner):
    """Checks a cookie's signature once: the same signed value, seen again, is not checked again until it expires."""

    def __init__(self, secret_key: str, *, size: int = 50_000) -> None:
        super().__init__(secret_key)
        self.size = size
        self._checked: OrderedDict[bytes, tuple[bytes, float]] = OrderedDict()

    def unsign(self, value: Any, max_age: Any = None, return_timestamp: bool = False) -> Any:
        if return_timestamp:
            return super().unsign(value, max_age=max_age, return_timestamp=True)
        key = bytes(value)
        known = self._checked.get(key)
        if known is not None and (max_age is None or time.time() - known[1] <= float(max_age)):
            self._checked.move_to_end(key)
            return known[0]
        payload, stamp = super().unsign(value, max_age=max_age, return_timestamp=True)
        self._checked[key] = (payload, stamp.timestamp())
        while len(self._checked) > self.size:
            self._checked.popitem(last=False)
        return payload


class CachedSessions(SessionMiddleware):
    """Starlette's signed-cookie sessions, each browser's cookie verified once rather than on every request."""

    def __init__(
        self,
        app: ASGIApp,
        secret_key: str,
        session_cookie: str = "session",
        max_age: int | None = None,
        same_site: Literal["lax", "strict", "none"] = "lax",
        https_only: bool = False,
        partitioned: bool = False,
    ) -> None:
        super().__init__(
            app,
            secret_key,
            session_cookie=session_cookie,
            max_age=max_age,
            same_site=same_site,
            https_only=https_only,
            partitioned=partitioned,
        )
        self.signer = RememberingSigner(secret_key)
