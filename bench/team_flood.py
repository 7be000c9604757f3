"""Bench « telegram_latency », team flood (issue #21): the bystanders' p99 while accounts flood the team chat.

25 accounts each ask a question and hand it over to the team during the first quarter of
the run (75 updates on top of the usual workload of the other users, about 3 per second); the latency of the other users'
updates is measured as in the normal run (update received → its last reply accepted by the
API). Before the fix the team-chat sync held a lock inside every update: the bystanders'
p99 rose from 0.13 s to 13.5 s.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from dialogue.engine import Engine
from dialogue.features.registry import standard_features
from dialogue.features.team.flow import TeamServices
from dialogue.features.team.handovers import HandoverStore
from dialogue.features.team.question_log import QuestionLog
from dialogue.payloads import encode
from dialogue.storage.progress import BOT_BUSY_TIMEOUT_MS, ProgressStore
from dialogue.types import Choose, Event, Say
from knowledge.loader import KnowledgeBase

FLOOD_ACCOUNTS = 25
#: Target of the issue for the bystanders' p99 during the flood.
P99_BYSTANDERS_MS = 500.0
#: Flooding accounts' indexes start here (the workload's users are numbered from 0).
FLOOD_FIRST_USER = 100_000


def flood_order(accounts: int) -> list[tuple[int, Event]]:
    """Each account: a question, « transmettre », « seulement la question » — interleaved across accounts."""
    steps: list[Event] = [Say("Comment trouver des financements pour notre PTCE ?"), Choose(encode("tm", "h")),
                          Choose(encode("tm", "h1"))]
    return [(FLOOD_FIRST_USER + account, step) for step in steps for account in range(accounts)]


def mixed(order: list[tuple[int, Event]], flood: list[tuple[int, Event]]) -> list[tuple[int, Event]]:
    """The flood spread over the first quarter of the run, on top of the bystanders' updates."""
    every = max(1, len(order) // (4 * max(1, len(flood))))
    out: list[tuple[int, Event]] = []
    rest = list(order)
    for item in flood:
        out.append(item)
        out.extend(rest[:every])
        rest = rest[every:]
    return out + rest


def team_flood(kb: KnowledgeBase, order: list[tuple[int, Event]], tmp: Path, offered_per_s: float,
               paced_run: Any, accounts: int = FLOOD_ACCOUNTS) -> dict[str, Any]:
    from bench.offline import FIRST_USER_ID, TOKEN, make_updates, offline_api, offline_request
    from bot.telegram.app import build_application, install_team_chat
    from bot.telegram.durable import TelegramQueue, queue_path_for
    from tests.support.bot_api import TEAM_CHAT_ID

    path = tmp / "lat-team-flood.db"
    store = ProgressStore.open(path, busy_timeout_ms=BOT_BUSY_TIMEOUT_MS)
    services = TeamServices(QuestionLog(store.db), HandoverStore(store.db), team_chat=True)
    engine = Engine(kb, store, features=standard_features(team=services))
    queue = TelegramQueue.open(queue_path_for(path))
    try:
        api = offline_api()
        app = build_application(engine, TOKEN, request=offline_request(api), get_updates_request=offline_request(api),
                                rate_limit=True, queue=queue)
        relay = install_team_chat(app, engine.handovers, TEAM_CHAT_ID)

        async def last_posts(_app: Any) -> None:
            await relay.sync()
        updates = make_updates(app.bot, mixed(order, flood_order(accounts)))
        bystanders = {u.update_id for u in updates if u.effective_user and u.effective_user.id < FIRST_USER_ID + FLOOD_FIRST_USER}
        result = asyncio.run(paced_run(app, updates, offered_per_s, measured=bystanders, hooks=True, finish=last_posts))
        result["team_posts"] = sum(1 for chat, _ in api.messages if chat == TEAM_CHAT_ID)
        result["handovers"] = engine.handovers.db.execute("SELECT COUNT(*) FROM handovers").fetchone()[0]
        result["flood_accounts"] = accounts
        return result
    finally:
        engine.close()
        queue.close()
