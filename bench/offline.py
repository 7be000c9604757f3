"""An offline Bot API for the bench: a ``BaseRequest`` that answers at once, and updates.

Nothing leaves the process: every call is answered from memory with the JSON the Bot
API would return (the sent message echoed back with its keyboard, ``True`` for
``answerCallbackQuery``…), so the figures measure this program and PTB, not a network.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from typing import Any

from telegram import Update
from telegram.request import BaseRequest, RequestData

from dialogue.types import Choose, Command, Event, Say

TOKEN = "123456789:AAH-bench_token_0000000000000000000"
BOT_ID = 123456789
BOT_USER = {"id": BOT_ID, "is_bot": True, "first_name": "PTCE", "username": "ptce_bench_bot"}
FIRST_USER_ID = 10_000


class OfflineRequest(BaseRequest):
    """Answers every Bot API call instantly; counts calls per method."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._ids = itertools.count(1000)

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    @property
    def read_timeout(self) -> float:
        return 1.0

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        endpoint = url.rsplit("/", 1)[-1]
        self.calls[endpoint] += 1
        params = request_data.parameters if request_data else {}
        return 200, json.dumps({"ok": True, "result": self._result(endpoint, params)}).encode()

    def _result(self, endpoint: str, params: dict[str, Any]) -> Any:
        if endpoint in ("sendMessage", "editMessageText"):
            if "inline_message_id" in params:
                return True
            chat_id = int(params["chat_id"])
            message = {
                "message_id": int(params.get("message_id") or next(self._ids)),
                "date": 1_800_000_000,
                "chat": {"id": chat_id, "type": "private", "first_name": "U"},
                "from": BOT_USER,
                "text": params.get("text", ""),
            }
            if "reply_markup" in params:
                message["reply_markup"] = params["reply_markup"]
            return message
        if endpoint == "getMe":
            return BOT_USER | {"can_join_groups": True, "supports_inline_queries": False}
        if endpoint in ("getUpdates", "getMyCommands"):
            return []
        return True


def user_dict(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": f"U{user_id}", "language_code": "fr"}


def update_dict(update_id: int, user_id: int, event: Event) -> dict[str, Any]:
    """The Bot API JSON of the update that carries ``event`` from a user in a private chat."""
    user = user_dict(user_id)
    chat = {"id": user_id, "type": "private", "first_name": user["first_name"]}
    if isinstance(event, Choose):
        return {
            "update_id": update_id,
            "callback_query": {
                "id": f"cq{update_id}",
                "from": user,
                "chat_instance": f"ci{user_id}",
                "data": event.payload,
                "message": {
                    "message_id": 1,
                    "date": 1_800_000_000,
                    "chat": chat,
                    "from": BOT_USER,
                    "text": "…",
                },
            },
        }
    message: dict[str, Any] = {"message_id": update_id, "date": 1_800_000_000, "chat": chat, "from": user}
    if isinstance(event, Command):
        text = f"/{event.name} {event.argument}".strip()
        message["text"] = text
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    elif isinstance(event, Say):
        message["text"] = event.text
    else:  # pragma: no cover - Event is closed
        raise TypeError(event)
    return {"update_id": update_id, "message": message}


def make_updates(bot, order: list[tuple[int, Event]], first_user_id: int = FIRST_USER_ID) -> list[Update]:
    """Update objects for (user index, event) pairs, bound to ``bot``."""
    return [
        Update.de_json(update_dict(number, first_user_id + user, event), bot)
        for number, (user, event) in enumerate(order, start=1)
    ]
