"""The bench's offline Bot API: the tests' fake core (:mod:`tests.support`), answering at once, and updates.

Nothing leaves the process: every call is answered from memory with the JSON the Bot
API would return (the sent message echoed back with its keyboard, ``True`` for
``answerCallbackQuery``…), so the figures measure this program and PTB, not a network.
"""

from __future__ import annotations

from typing import Any

from telegram import Bot, Update

from dialogue.types import Choose, Command, Event, Say
from tests.support.bot_api import FakeBotApi, bot_user
from tests.support.transport import CoreRequest

TOKEN = "123456789:AAH-bench_token_0000000000000000000"
BOT_ID = 123456789
BOT_USER = bot_user(BOT_ID, "ptce_bench_bot")
FIRST_USER_ID = 10_000


def offline_api() -> FakeBotApi:
    """A fake Bot API that only counts calls per method (``counts``): nothing kept per call."""
    return FakeBotApi(token=TOKEN, bot=BOT_USER, record=False)


def offline_request(api: FakeBotApi) -> CoreRequest:
    """A ``BaseRequest`` answering from ``api`` at once, without yielding to the event loop."""
    return CoreRequest(api, suspend=False)


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


def make_updates(bot: Bot, order: list[tuple[int, Event]], first_user_id: int = FIRST_USER_ID) -> list[Update]:
    """Update objects for (user index, event) pairs, bound to ``bot``."""
    return [
        Update.de_json(update_dict(number, first_user_id + user, event), bot)
        for number, (user, event) in enumerate(order, start=1)
    ]
