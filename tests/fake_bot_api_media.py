"""sendDocument and sendPhoto for the loopback fake Bot API (the PDF report's end-to-end test).

Kept apart from :mod:`tests.fake_bot_api` so the two grow independently: the
subclass answers the two upload methods like Telegram and records each file
the bot uploaded (name, bytes, caption).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from tests.fake_bot_api import BOT_USER, FakeBotApi


@dataclass
class SentFile:
    method: str  # sendDocument or sendPhoto
    chat_id: int
    filename: str
    content: bytes
    caption: str


class MediaFakeBotApi(FakeBotApi):
    """The fake Bot API plus uploads: ``files`` lists what the bot sent, in order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.files: list[SentFile] = []

    def _answer(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        field = {"sendDocument": "document", "sendPhoto": "photo"}.get(method)
        if field is None:
            return super()._answer(method, params)
        upload = params.get(field)
        if not isinstance(upload, dict) or "content" not in upload:
            return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: there is no {field} in the request"}
        chat_id = int(params["chat_id"])
        self.files.append(SentFile(method, chat_id, upload["filename"], upload["content"], str(params.get("caption", ""))))
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": BOT_USER,
            "caption": str(params.get("caption", "")),
        }
        file_id = f"file-{len(self.files)}"
        if field == "document":
            message["document"] = {"file_id": file_id, "file_unique_id": file_id, "file_name": upload["filename"],
                                   "mime_type": "application/pdf", "file_size": upload["size"]}
        else:
            message["photo"] = [{"file_id": file_id, "file_unique_id": file_id, "width": 1080, "height": 1080,
                                 "file_size": upload["size"]}]
        return 200, {"ok": True, "result": message}
