"""The team chat on top of the loopback fake Bot API (kept apart from ``fake_bot_api`` on purpose).

Adds getChat / getChatMember (the start-up check) and advisors who reply to
the bot's messages in a group, as Telegram delivers them: a message whose
``reply_to_message`` is the bot's message.
"""

from __future__ import annotations

import time
from typing import Any

from tests.fake_bot_api import BOT_ID, BOT_USER, FakeBotApi, SentMessage

TEAM_CHAT = {"id": -1001234567890, "type": "supergroup", "title": "Équipe PTCE"}
ADVISOR = {"id": 4242, "is_bot": False, "first_name": "Dominique"}


class TeamFakeBotApi(FakeBotApi):
    def __init__(self, *args: Any, bot_is_member: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bot_is_member = bot_is_member

    def _answer(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if method == "getChat":
            if int(params["chat_id"]) != TEAM_CHAT["id"]:
                return 400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
            return 200, {"ok": True, "result": TEAM_CHAT | {"accent_color_id": 0, "max_reaction_count": 11}}
        if method == "getChatMember":
            status = "member" if self.bot_is_member else "left"
            user = BOT_USER if int(params["user_id"]) == BOT_ID else {"id": int(params["user_id"]), "is_bot": False, "first_name": "?"}
            return 200, {"ok": True, "result": {"status": status, "user": user}}
        return super()._answer(method, params)

    def team_messages(self) -> list[SentMessage]:
        return self.chat_messages(TEAM_CHAT["id"])

    def advisor_reply(self, to: SentMessage | None, text: str, advisor: dict[str, Any] = ADVISOR) -> int:
        """An advisor writes in the team chat, replying to ``to`` (or not, when None)."""
        message: dict[str, Any] = {
            "message_id": next(self._user_message_ids),
            "date": int(time.time()),
            "chat": TEAM_CHAT,
            "from": advisor,
            "text": text,
        }
        if to is not None:
            message["reply_to_message"] = {
                "message_id": to.message_id,
                "date": int(time.time()),
                "chat": TEAM_CHAT,
                "from": BOT_USER,
                "text": to.text,
            }
        return self.push_update(message=message)
