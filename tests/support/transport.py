"""The in-process transport: PTB's ``BaseRequest`` seam answering from the fake Bot API core."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

from tests.support.bot_api import MAX_POLL_WAIT, FakeBotApi


def parameters(request_data: RequestData | None) -> dict[str, Any]:
    """The call's parameters as the core expects them (uploaded files as ``{"filename", "size", "content"}``)."""
    if request_data is None:
        return {}
    params = dict(request_data.parameters)
    if request_data.contains_files:
        for name, (filename, content, _mime) in request_data.multipart_data.items():
            data = content if isinstance(content, bytes) else content.read()
            upload = {"filename": filename, "size": len(data), "content": data}
            # The parameter refers to the part as « attach://name »; the core wants the file itself.
            for key, value in list(params.items()):
                if value == f"attach://{name}" or key == name:
                    params[key] = upload
            params.setdefault(name, upload)
    return params


class CoreRequest(BaseRequest):
    """Answers every Bot API call from ``core``, in the event loop, without a network.

    A :class:`~tests.support.bot_api.Late` answer longer than ``read_timeout`` raises
    ``TimedOut`` after ``read_timeout`` (the call was handled: as with a real server).
    ``delay`` adds a pause to every call; without one, each call yields to the event loop once
    (as a network call would), unless ``suspend`` is false (benchmarks: the fake costs nothing).
    """

    def __init__(self, core: FakeBotApi, *, read_timeout: float = 5.0, delay: Callable[[], float] | None = None,
                 suspend: bool = True) -> None:
        self.core = core
        self._suspend = suspend
        self._read_timeout = read_timeout
        self._delay = delay
        self.in_flight = 0
        self.max_in_flight = 0

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    @property
    def read_timeout(self) -> float:
        return self._read_timeout

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: Any = None, write_timeout: Any = None, connect_timeout: Any = None,
                         pool_timeout: Any = None) -> tuple[int, bytes]:
        prefix, _, endpoint = url.rpartition("/")
        token = prefix.rpartition("/bot")[2]
        if self.core.port_closed:
            raise NetworkError("httpx.ConnectError: connection refused") from httpx.ConnectError("connection refused")
        params = parameters(request_data)
        if endpoint == "getUpdates":
            await self._long_poll(int(params.get("offset") or 0), float(params.get("timeout") or 0))
        if self._delay is not None:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await asyncio.sleep(self._delay())
            finally:
                self.in_flight -= 1
        elif self._suspend:
            await asyncio.sleep(0)  # a real call suspends: other updates run meanwhile
        answer = self.core.call(token, endpoint, params)
        if answer.error is not None:
            raise answer.error
        if answer.late:
            await asyncio.sleep(min(answer.late, self._read_timeout))
            if answer.late > self._read_timeout:
                raise TimedOut("Timed out") from httpx.ReadTimeout("read timeout")
        return answer.status, json.dumps(answer.body).encode()

    async def _long_poll(self, offset: int, timeout: float) -> None:
        deadline = time.monotonic() + min(timeout, MAX_POLL_WAIT)
        while not self.core.has_updates(offset) and time.monotonic() < deadline and not self.core.port_closed:
            await asyncio.sleep(0.005)
