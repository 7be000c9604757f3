"""Reliability: crashes, concurrency, fuzzing, odd Telegram updates, broken files and databases.

- A ``ptce-bot chat`` killed with SIGKILL in the middle of the orientation resumes, after a
  restart, at the same question with every earlier answer (and the pending selection) kept.
- 200 users × 50 events sent concurrently through the Telegram application end with the
  state, answers and messages each user's own sequence implies (replayed alone).
- Random sequences of commands, button presses (valid, stale, forged) and texts never raise
  and always leave a valid stored state (Hypothesis).
- Odd updates in the shapes of the Bot API never raise.
- Broken knowledge files make ``ptce-bot --data DIR kb check`` exit 1 naming file, entry
  and field; read-only, locked or foreign database files give a French message and a
  non-zero exit; a database of the previous schema is migrated without losing anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import itertools
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlite_utils import Database
from telegram import Update
from telegram.ext import ContextTypes

from bot.cli import main as cli_main
from bot.render import split_text, to_html
from bot.telegram.app import build_application, drain
from bot.telegram.channel import channel_of
from bot.telegram.engine_port import user_key
from bot.telegram.intake import Poller
from bot.telegram.texts import EMPTY_TEXT, ERROR_TEXT
from dialogue.assembly import open_store
from dialogue.buttons import STALE
from dialogue.engine import Engine
from dialogue.features.registry import standard_commands
from dialogue.storage.progress import ProgressStore
from dialogue.storage.schema import migrations
from dialogue.types import MAX_PAYLOAD_BYTES, Choose, Command, Event, Reply, Say
from knowledge.loader import DATA_DIR, KnowledgeBase
from tests.support.bot_api import FakeBotApi
from tests.support.transport import CoreRequest

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456789:AAH-reliability_token_00000000000000"
BOT_USER = {"id": 123456789, "is_bot": True, "first_name": "PTCE", "username": "ptce_rel_bot"}
DATE = 1_800_000_000


# --------------------------------------------------------------------------- helpers


def child_env() -> dict[str, str]:
    """Environment for a ``python -m bot.cli`` child: this source tree first, no PTCE_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PTCE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def chat_command(db: Path, user: str = "k") -> list[str]:
    return [sys.executable, "-m", "bot.cli", "chat", "--user", user, "--db", str(db)]


def run_chat(db: Path, text: str, *, user: str = "k", timeout: float = 60, wrapper: Path | None = None) -> subprocess.CompletedProcess:
    command = chat_command(db, user)
    if wrapper is not None:
        command = [sys.executable, str(wrapper), *command[3:]]
    return subprocess.run(command, input=text, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=child_env())


def read_user(db: Path, user_id: str) -> dict[str, Any] | None:
    """The user's row and answers, read through a read-only connection (the writer may be alive)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute("SELECT state, flow, context FROM users WHERE id = ?", (user_id,)).fetchone()
        if row is None:
            return None
        answers = {
            question: None if skipped else json.loads(value)
            for question, value, skipped in conn.execute(
                "SELECT question, value, skipped FROM answers WHERE user_id = ?", (user_id,)
            )
        }
    finally:
        conn.close()
    return {"state": row[0], "flow": row[1], "context": json.loads(row[2] or "{}"), "answers": answers}


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(sqlite3.OperationalError):
            if condition():
                return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {what}")


def option_ids(kb: KnowledgeBase) -> dict[str, tuple[str, frozenset[str]]]:
    """question id → (kind, option ids), over every flow."""
    known: dict[str, tuple[str, frozenset[str]]] = {}
    for flow in kb.flows.values():
        for _, question in flow.questions():
            known[question.id] = (question.kind, frozenset(o.id for o in question.options))
    return known


def assert_valid_value(known, question: str, value, where: str) -> None:
    assert question in known, f"{where}: unknown question {question!r}"
    kind, options = known[question]
    if value is None:
        return
    if kind == "single":
        assert isinstance(value, str) and value in options, f"{where}: {question}={value!r}"
    else:
        assert isinstance(value, list), f"{where}: {question}={value!r}"
        assert set(value) <= options and len(set(value)) == len(value), f"{where}: {question}={value!r}"


def assert_valid_record(engine: Engine, user_id: str) -> None:
    """Stored state is a state of the machine; every stored answer and pending selection is valid."""
    record = engine.store.load(user_id)
    if record is None:  # forgotten
        return
    assert record.state in engine.fsm.state_set, record.state
    assert record.flow is None or record.flow in engine.flows, record.flow
    known = option_ids(engine.kb)
    for question, value in record.answers.items():
        assert_valid_value(known, question, value, "answer")
    selection = record.context.selection
    assert isinstance(selection, dict)
    for question, value in selection.items():
        assert value is not None
        assert_valid_value(known, question, value, "selection")


def assert_valid_replies(replies: list[Reply]) -> None:
    assert isinstance(replies, list) and replies
    for reply in replies:
        assert isinstance(reply, Reply) and isinstance(reply.text, str)
        assert len(reply.text.encode("utf-16-le")) // 2 <= 4096  # Telegram's limit, on every channel
        for button in reply.all_buttons():
            assert button.label.strip()
            assert 1 <= len(button.payload.encode("utf-8")) <= MAX_PAYLOAD_BYTES, button.payload


def payloads(replies: list[Reply]) -> list[str]:
    return [button.payload for reply in replies for button in reply.all_buttons()]


# --------------------------------------------------------------------------- offline Bot API


def error_recorder(errors: list[BaseException]):
    async def record(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        errors.append(context.error)

    return record


def telegram_app(engine: Engine) -> tuple[Any, FakeBotApi, list[BaseException]]:
    """The bot's application around ``engine``, answered in-process by the fake Bot API (minimal answers)."""
    request = FakeBotApi(token=TOKEN, bot=BOT_USER, echo=False)
    app = build_application(engine, TOKEN, request=CoreRequest(request), get_updates_request=CoreRequest(request),
                            rate_limit=False)
    errors: list[BaseException] = []
    app.add_error_handler(error_recorder(errors))
    return app, request, errors


def update_json(update_id: int, user_id: int, event: Event) -> dict[str, Any]:
    user = {"id": user_id, "is_bot": False, "first_name": f"U{user_id}", "language_code": "fr"}
    chat = {"id": user_id, "type": "private", "first_name": user["first_name"]}
    if isinstance(event, Choose):
        message = {"message_id": 1, "date": DATE, "chat": chat, "from": BOT_USER, "text": "…"}
        query = {"id": f"cq{update_id}", "from": user, "chat_instance": "ci", "data": event.payload, "message": message}
        return {"update_id": update_id, "callback_query": query}
    message: dict[str, Any] = {"message_id": update_id, "date": DATE, "chat": chat, "from": user}
    if isinstance(event, Command):
        message["text"] = f"/{event.name} {event.argument}".rstrip()
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(event.name) + 1}]
    else:
        message["text"] = event.text
    return {"update_id": update_id, "message": message}


def expected_deliveries(event: Event, replies: list[Reply]) -> list[tuple[str, str]]:
    """What the channel sends for one event's replies (see :func:`bot.telegram.replies.actions_for`)."""
    out: list[tuple[str, str]] = []
    for reply in replies:
        parts = split_text(reply.text)
        if reply.edit and isinstance(event, Choose) and len(parts) == 1 and reply.text.strip():
            out.append(("edit", to_html(parts[0])))
            continue
        for part in parts if reply.text.strip() else [EMPTY_TEXT]:
            out.append(("send", to_html(part)))
    return out


# --------------------------------------------------------------------------- 1. SIGKILL


@pytest.mark.slow
def test_sigkill_mid_orientation_then_resume(tmp_path: Path, kb: KnowledgeBase) -> None:
    db = tmp_path / "kill.db"
    user = "cli:k"
    flow = kb.flows["orientation"]
    log = (tmp_path / "first-run.txt").open("w", encoding="utf-8")
    proc = subprocess.Popen(
        chat_command(db), stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=child_env()
    )

    def seen(check: Callable[[dict], bool]) -> Callable[[], bool]:
        return lambda: (u := read_user(db, user)) is not None and check(u)

    steps = [
        # (line typed, what the database must show afterwards)
        ("/orientation", seen(lambda u: u["state"] == "orientation__typologie")),
        ("1", seen(lambda u: u["answers"].get("typologie") == "territoire" and u["state"] == "orientation__logiques")),
        ("1", seen(lambda u: u["context"].get("selection", {}).get("logiques") == ["reseau"])),
        ("2", seen(lambda u: u["context"].get("selection", {}).get("logiques") == ["reseau", "accompagnement"])),
        ("5", seen(lambda u: u["answers"].get("logiques") == ["reseau", "accompagnement"] and u["state"] == "orientation__marqueurs")),
        ("3", seen(lambda u: u["context"].get("selection", {}).get("marqueurs") == ["structuration"])),
    ]
    try:
        wait_for(lambda: db.exists(), "database created")
        for line, condition in steps:
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
            wait_for(condition, f"database after typing {line!r}")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    assert proc.returncode == -signal.SIGKILL
    before = read_user(db, user)
    assert before is not None
    assert before["answers"] == {"typologie": "territoire", "logiques": ["reseau", "accompagnement"]}

    again = run_chat(db, "/reprendre\n")
    assert again.returncode == 0, again.stderr
    step = flow.steps[2]
    assert f"Étape 3/{len(flow.steps)} — {step.title}" in again.stdout, again.stdout[-2000:]
    assert step.questions[0].text.split()[0] in again.stdout
    assert "✅ Collectif structuré" in again.stdout  # the pending selection survived too
    after = read_user(db, user)
    assert after["answers"] == before["answers"]
    assert after["state"] == "orientation__marqueurs"
    assert after["context"].get("selection") == {"marqueurs": ["structuration"]}


def _busy_script(kb: KnowledgeBase, rounds: int = 3) -> list[str]:
    """Lines that keep ``ptce-bot chat`` writing: the whole orientation, restart, again."""
    lines = ["/orientation"]
    for _ in range(rounds):
        for _, question in kb.flows["orientation"].questions():
            if question.kind == "single":
                lines.append("1")
            else:
                lines += ["1", "2", str(len(question.options) + 1)]  # toggle two, then « Valider »
        lines += ["/recommencer", "1"]  # « Oui, recommencer »
    return lines


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [7, 41])
def test_sigkill_while_busy_keeps_every_acknowledged_event(tmp_path: Path, kb: KnowledgeBase, kill_after: int) -> None:
    """Killed while answering as fast as it can: the database is intact and holds exactly the
    events whose replies were printed (plus, possibly, the one in progress)."""
    from bot.terminal import parse_input, render_replies

    db = tmp_path / "busy.db"
    lines = _busy_script(kb)
    out_path = tmp_path / "busy.txt"
    with out_path.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(chat_command(db), stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=child_env())
        try:
            proc.stdin.write("".join(line + "\n" for line in lines))
            proc.stdin.flush()
            wait_for(lambda: out_path.read_text(encoding="utf-8").count("\n> ") >= kill_after, f"{kill_after} events echoed", timeout=60)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    echoed = out_path.read_text(encoding="utf-8").count("\n> ")
    assert proc.returncode == -signal.SIGKILL, "the chat finished before it could be killed"
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    store = ProgressStore.open(db)
    stored = snapshot(store, "cli:k")
    store.close()
    # Replay: /start, then the lines as the terminal parses them; events 1…echoed-1 were answered.
    shadow = Engine(kb, ProgressStore(Database(memory=True)))
    buttons = render_replies(shadow.handle("cli:k", Command("start")), io.StringIO(), colour=False)
    candidates = []
    for index, line in enumerate(lines[:echoed], start=1):
        event = parse_input(line, buttons)
        assert event is not None
        new = render_replies(shadow.handle("cli:k", event), io.StringIO(), colour=False)
        buttons = new or buttons
        if index >= echoed - 1:
            candidates.append(snapshot(shadow.store, "cli:k"))
    assert stored in candidates, f"database after {echoed} echoed lines matches no acknowledged prefix: {stored}"


# --------------------------------------------------------------------------- 2. concurrency


TEXTS = (
    "c'est quoi un ptce",
    "comment financer notre pôle ?",
    "faut-il créer une association ?",
    "qu'est-ce qu'une SCIC",
    "oui",
    "non",
    "passer",
    "retour",
    "valider",
    "2",
    "1",
    "aucun",
    "je veux faire le point",
    "blabla sans rapport",
    "'); DROP TABLE users;--",
    "😀 merci",
)
COMMAND_CHOICES = (
    ("start", ""),
    ("menu", ""),
    ("orientation", ""),
    ("formes", ""),
    ("reprendre", ""),
    ("progression", ""),
    ("synthese", ""),
    ("recommencer", ""),
    ("oublier", ""),
    ("glossaire", ""),
    ("aide", ""),
    ("start", "orientation"),
    ("inconnue", ""),
)
FORGED = ("a:typologie:galaxie", "x" * 80, "t:nulle.part", "ok:", "rr!", "forget!", "b:typologie", "")


def simulate_user(engine: Engine, user_id: str, rng: random.Random, length: int) -> tuple[list[Event], list[list[Reply]]]:
    """A plausible user, driven by the replies of ``engine`` (which sees only this user)."""
    events: list[Event] = []
    outputs: list[list[Reply]] = []
    fresh: list[str] = []
    seen: list[str] = []
    for index in range(length):
        draw = rng.random()
        if index == 0:
            event: Event = Command("start")
        elif draw < 0.62 and fresh:
            event = Choose(rng.choice(fresh))
        elif draw < 0.70 and seen:
            event = Choose(rng.choice(seen))
        elif draw < 0.74:
            event = Choose(rng.choice([p for p in FORGED if p]))
        elif draw < 0.88:
            event = Say(rng.choice(TEXTS))
        else:
            event = Command(*rng.choice(COMMAND_CHOICES))
        replies = engine.handle(user_id, event)
        events.append(event)
        outputs.append(replies)
        buttons = payloads(replies)
        if buttons:
            fresh = buttons
            seen.extend(buttons)
    return events, outputs


def snapshot(store: ProgressStore, user_id: str) -> tuple | None:
    record = store.load(user_id)
    if record is None:
        return None
    return (record.state, record.flow, record.answers, record.context)


CONCURRENT_USERS = 200
EVENTS_PER_USER = 50
FIRST_TELEGRAM_ID = 700_000
_worker_engine: Engine | None = None


def simulate_chunk(numbers: list[int]) -> list[tuple[int, list[Event], tuple | None, list[tuple[str, str]]]]:
    """Replay users alone (each on a fresh in-memory store): their events and what they imply.

    Runs in a worker process, so that the expectation is computed while the application
    under test is already busy with the first users.
    """
    global _worker_engine
    if _worker_engine is None:
        from knowledge.loader import load_knowledge

        _worker_engine = Engine(load_knowledge(), ProgressStore(Database(memory=True)))
        gc.collect()
        gc.freeze()  # long-lived objects out of the collector's way: a faster replay, same results
    shadow = _worker_engine
    results = []
    for number in numbers:
        telegram_id = FIRST_TELEGRAM_ID + number
        shadow.store = ProgressStore(Database(memory=True))  # the engine keeps no per-user state elsewhere
        events, outputs = simulate_user(shadow, user_key(telegram_id), random.Random(number), EVENTS_PER_USER)
        deliveries = [d for event, replies in zip(events, outputs) for d in expected_deliveries(event, replies)]
        results.append((telegram_id, events, snapshot(shadow.store, user_key(telegram_id)), deliveries))
    return results


@pytest.mark.slow
async def test_concurrent_users_through_telegram_match_their_own_sequences(kb: KnowledgeBase) -> None:
    import concurrent.futures
    import multiprocessing

    chunks = [list(range(start, min(start + 10, CONCURRENT_USERS))) for start in range(0, CONCURRENT_USERS, 10)]
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context(method))
    futures = [asyncio.wrap_future(pool.submit(simulate_chunk, chunk)) for chunk in chunks]
    # In memory: this test is about ordering and isolation; durability on disk is the SIGKILL test's.
    engine = Engine(kb, ProgressStore.memory())
    app, request, errors = telegram_app(engine)
    update_ids = itertools.count(1)
    gc.collect()
    gc.freeze()  # the test process holds many long-lived objects: keep full collections short
    expected_state: dict[int, tuple | None] = {}
    expected_texts: dict[int, list[tuple[str, str]]] = {}
    plans: dict[int, list[Event]] = {}

    channel = channel_of(app)
    # The long-polling intake: each raw update recorded in the queue file, then dispatched per user.
    poller = Poller(app.bot, channel.state, channel.dispatcher.submit, lambda: channel.dispatcher.waiting)

    async def producer(telegram_id: int, events: list[Event]) -> None:
        local = random.Random(telegram_id)
        for event in events:
            assert poller.accept([update_json(next(update_ids), telegram_id, event)]) is not None
            if local.random() < 0.5:
                await asyncio.sleep(0)

    # The engine's thread and the event loop take turns on the GIL at every SQLite call: switch sooner.
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    try:
        async with app:
            try:
                producers = []
                for finished in asyncio.as_completed(futures):
                    for telegram_id, events, state, texts in await finished:
                        plans[telegram_id] = events
                        expected_state[telegram_id] = state
                        expected_texts[telegram_id] = texts
                        producers.append(asyncio.create_task(producer(telegram_id, events)))
                await asyncio.gather(*producers)
                await asyncio.wait_for(drain(app), timeout=240)
            finally:
                pass
    finally:
        sys.setswitchinterval(switch_interval)
        pool.shutdown(cancel_futures=True)
        gc.unfreeze()
    try:
        assert len(plans) == CONCURRENT_USERS
        assert sum(map(len, plans.values())) == CONCURRENT_USERS * EVENTS_PER_USER
        assert errors == [], errors[:3]
        assert channel_of(app).dispatcher.active_users == 0
        wrong_state = [uid for uid in plans if snapshot(engine.store, user_key(uid)) != expected_state[uid]]
        assert wrong_state == [], (
            f"{len(wrong_state)} users differ, e.g. {wrong_state[0]}: "
            f"{snapshot(engine.store, user_key(wrong_state[0]))} != {expected_state[wrong_state[0]]}"
        )
        wrong_texts = [uid for uid in plans if request.deliveries(uid) != expected_texts[uid]]
        assert wrong_texts == [], f"{len(wrong_texts)} users saw other messages or another order, e.g. {wrong_texts[0]}"
        for uid in plans:
            assert_valid_record(engine, user_key(uid))
    finally:
        engine.close()


# --------------------------------------------------------------------------- 3. property-based


SPECIAL_TEXTS = (
    "",
    " ",
    "\n\t \r",
    "a" * 10_000,
    "ptce " * 2_000,
    "😀🇫🇷👩‍👩‍👧" * 400,
    "\x00\x01\x02\x1b[31m\x7f\x9f",
    "\u202eTCEP\u200b\u2028\u2029\ufeff",
    "'); DROP TABLE users;--",
    "\" OR 1=1; DELETE FROM answers; --",
    "%s %d {0} {} \\x00",
    "<b>html</b> **gras** [lien](javascript:alert(1))",
    "oui",
    "non",
    "passer",
    "retour",
    "valider",
    "aucun",
    "1",
    "2",
    "0",
    "99",
    "-1",
    "faire le point",
    "c'est quoi un ptce",
    "c'est quoi une scic",
    "qu'est-ce que l'ESS",
    "/start",
)
FORGED_PAYLOADS = (
    "",
    ":",
    "::",
    "a:",
    "a::",
    "a:typologie:",
    "a:typologie:galaxie",
    "a:logiques:reseau",
    "x:logiques:aucune:extra",
    "x:typologie:territoire",
    "ok:logiques:x",
    "ok:typologie",
    "b:typologie",
    "s:",
    "t:",
    "t:../../etc/passwd",
    "more:nulle.part",
    "vig:",
    "i:",
    "i:nulle_part",
    "f:",
    "f:nulle_part",
    "rr!",
    "forget!",
    "m:extra",
    "r:x",
    "g:x",
    "synd:0",
    "synd:x",
    "synd:2:3",
    "res:formes:99",
    "res:nulle_part:1",
    "ed:orientation:99",
    "ed:orientation:1:nulle_part",
    "ed:formes:-",
    "ed:nulle_part",
    "keep:x",
    "k:o:abcdefgh:2",
    "x" * 65,
    "é" * 40,
    "a:" + "q" * 200 + ":o",
    "t:'); DROP TABLE users;--",
    "\x00",
)


def _flow_payloads(kb_data: dict) -> st.SearchStrategy[str]:
    kinds = st.sampled_from(["a", "x", "ok", "s", "b"])
    questions = st.sampled_from(sorted(kb_data) + ["nulle_part"])
    options = st.sampled_from(sorted({o for _, opts in kb_data.values() for o in opts}) + ["", "nulle_part"])
    return st.builds(lambda k, q, o: f"{k}:{q}:{o}" if o else f"{k}:{q}", kinds, questions, options)


def _actions(known) -> st.SearchStrategy:
    command = st.tuples(
        st.just("cmd"),
        st.sampled_from(sorted(name for name, _ in standard_commands()) + ["inconnue", "START", "Orientation", "", "x" * 300, "💥"]),
        st.sampled_from(["", "orientation", "formes", "nulle part", "x" * 500]),
    )
    press = st.tuples(st.just("press"), st.integers(0, 60))
    stale = st.tuples(st.just("stale"), st.integers(0, 10_000))
    forged = st.tuples(
        st.just("forged"),
        st.one_of(st.sampled_from(FORGED_PAYLOADS), st.text(max_size=90), _flow_payloads(known)),
    )
    say = st.tuples(st.just("say"), st.one_of(st.sampled_from(SPECIAL_TEXTS), st.text(max_size=300)))
    return st.one_of(press, press, press, command, stale, forged, say)


@pytest.fixture(scope="module")
def fuzz_engine(kb: KnowledgeBase) -> Iterator[Engine]:
    engine = Engine(kb, ProgressStore(Database(memory=True)))
    yield engine
    engine.close()


_fuzz_users = itertools.count(1)


@settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_random_sequences_never_raise_and_leave_a_valid_state(fuzz_engine: Engine, data: st.DataObject) -> None:
    engine = fuzz_engine
    known = option_ids(engine.kb)
    actions = data.draw(st.lists(_actions(known), min_size=1, max_size=35), label="actions")
    user = f"fuzz:{next(_fuzz_users)}"
    fresh: list[str] = []
    seen: list[str] = []
    for action in actions:
        kind = action[0]
        pressed_fresh = False
        if kind == "cmd":
            event: Event = Command(action[1], action[2])
        elif kind == "press":
            pool = fresh or seen
            if not pool:
                event = Command("start")
            else:
                pressed_fresh = bool(fresh)
                event = Choose(pool[action[1] % len(pool)])
        elif kind == "stale":
            event = Choose(seen[action[1] % len(seen)]) if seen else Choose("m")
        elif kind == "forged":
            event = Choose(action[1])
        else:
            event = Say(action[1])
        replies = engine.handle(user, event)
        assert_valid_replies(replies)
        if pressed_fresh:
            # A button of the message just received is never refused as stale.
            assert all(r.text != STALE for r in replies), (event, [r.text[:60] for r in replies])
        buttons = payloads(replies)
        fresh = buttons
        seen.extend(buttons)
        assert_valid_record(engine, user)


SETUPS: dict[str, tuple[Event, ...]] = {
    "menu": (),
    "single question": (Command("orientation"),),
    "multiple question with a selection": (Command("orientation"), Choose("a:typologie:filiere"), Choose("x:logiques:reseau")),
    "other flow": (Command("formes"),),
}


@settings(max_examples=150, deadline=None)
@given(text=st.one_of(st.text(max_size=4200), st.sampled_from(SPECIAL_TEXTS)), setup=st.sampled_from(sorted(SETUPS)))
def test_any_text_in_any_state_never_raises(fuzz_engine: Engine, text: str, setup: str) -> None:
    user = f"text:{next(_fuzz_users)}"
    for event in SETUPS[setup]:
        fuzz_engine.handle(user, event)
    assert_valid_replies(fuzz_engine.handle(user, Say(text)))
    assert_valid_record(fuzz_engine, user)


@settings(max_examples=150, deadline=None)
@given(payload=st.one_of(st.text(max_size=200), st.binary(max_size=100).map(lambda b: b.decode("latin-1")), st.sampled_from(FORGED_PAYLOADS)))
def test_any_payload_never_raises(fuzz_engine: Engine, payload: str) -> None:
    user = f"payload:{next(_fuzz_users)}"
    fuzz_engine.handle(user, Command("orientation"))
    assert_valid_replies(fuzz_engine.handle(user, Choose(payload)))
    assert_valid_record(fuzz_engine, user)


# --------------------------------------------------------------------------- 4. odd Telegram updates

USER = {"id": 5001, "is_bot": False, "first_name": "Alex", "language_code": "fr"}
PRIVATE = {"id": 5001, "type": "private", "first_name": "Alex"}
GROUP = {"id": -100200300, "type": "supergroup", "title": "Réseau"}
CHANNEL = {"id": -100900900, "type": "channel", "title": "Canal"}


def _message(**fields: Any) -> dict[str, Any]:
    return {"message_id": 42, "date": DATE, "chat": PRIVATE, "from": USER} | fields


def _query(**fields: Any) -> dict[str, Any]:
    message = {"message_id": 7, "date": DATE, "chat": PRIVATE, "from": BOT_USER, "text": "Menu"}
    return {"id": "cq-odd", "from": USER, "chat_instance": "ci", "message": message} | fields


_FILE = {"file_id": "AgAD", "file_unique_id": "u1"}
ODD_UPDATES: dict[str, dict[str, Any]] = {
    "empty update": {},
    "private message without from": {"message": {"message_id": 1, "date": DATE, "chat": PRIVATE, "text": "salut"}},
    "group message from a channel (sender_chat, no from)": {
        "message": {"message_id": 1, "date": DATE, "chat": GROUP, "sender_chat": CHANNEL, "text": "@ptce_rel_bot /start"}
    },
    "anonymous group admin": {
        "message": _message(chat=GROUP, sender_chat=GROUP, text="/start@ptce_rel_bot",
                            entities=[{"type": "bot_command", "offset": 0, "length": 19}])
    },
    "photo without text": {"message": _message(photo=[_FILE | {"width": 90, "height": 90}], caption="regardez")},
    "sticker": {"message": _message(sticker=_FILE | {"type": "regular", "width": 512, "height": 512, "is_animated": False, "is_video": False})},
    "voice": {"message": _message(voice=_FILE | {"duration": 3})},
    "location": {"message": _message(location={"latitude": 48.85, "longitude": 2.35})},
    "contact": {"message": _message(contact={"phone_number": "+33600000000", "first_name": "Camille"})},
    "dice": {"message": _message(dice={"emoji": "🎲", "value": 6})},
    "new chat members (group)": {"message": _message(chat=GROUP, new_chat_members=[USER])},
    "text of 10,000 characters": {"message": _message(text="ptce " * 2000)},
    "text with NUL and RTL": {"message": _message(text="\x00\u202e\u200b'); DROP TABLE users;--")},
    "bare slash": {"message": _message(text="/", entities=[{"type": "bot_command", "offset": 0, "length": 1}])},
    "command for another bot": {"message": _message(text="/start@autre_bot", entities=[{"type": "bot_command", "offset": 0, "length": 16}])},
    "command entity longer than text": {"message": _message(text="/menu", entities=[{"type": "bot_command", "offset": 0, "length": 50}])},
    "unknown command with long argument": {"message": _message(text="/inconnue " + "x" * 4000, entities=[{"type": "bot_command", "offset": 0, "length": 9}])},
    "group text mentioning the bot": {
        "message": _message(chat=GROUP, text="@ptce_rel_bot c'est quoi un ptce", entities=[{"type": "mention", "offset": 0, "length": 13}])
    },
    "forum topic message": {"message": _message(chat=GROUP | {"is_forum": True}, text="@ptce_rel_bot aide", is_topic_message=True, message_thread_id=5, entities=[{"type": "mention", "offset": 0, "length": 13}])},
    "message from a bot": {"message": _message(**{"from": BOT_USER | {"id": 999, "username": "autre_bot"}, "text": "bip"})},
    "edited message": {"edited_message": _message(text="/start", edit_date=DATE + 5, entities=[{"type": "bot_command", "offset": 0, "length": 6}])},
    "channel post": {"channel_post": {"message_id": 3, "date": DATE, "chat": CHANNEL, "sender_chat": CHANNEL, "text": "/start"}},
    "edited channel post": {"edited_channel_post": {"message_id": 3, "date": DATE, "edit_date": DATE + 1, "chat": CHANNEL, "text": "x"}},
    "inline query": {"inline_query": {"id": "iq1", "from": USER, "query": "ptce", "offset": ""}},
    "chosen inline result": {"chosen_inline_result": {"result_id": "r1", "from": USER, "query": "ptce"}},
    "callback with 5,000 bytes of data": {"callback_query": _query(data="x" * 5000)},
    "callback with 65 bytes of data": {"callback_query": _query(data="t:" + "a" * 63)},
    "callback with forged answer": {"callback_query": _query(data="a:typologie:galaxie")},
    "callback with control characters": {"callback_query": _query(data="a:\x00:\x1b")},
    "callback without data (game)": {"callback_query": _query(game_short_name="jeu")},
    "callback from an inline message (no message)": {
        "callback_query": {"id": "cq-inline", "from": USER, "chat_instance": "ci", "inline_message_id": "im1", "data": "m"}
    },
    "callback on an inaccessible message": {
        "callback_query": _query(message={"message_id": 7, "date": 0, "chat": PRIVATE}, data="m")
    },
    "callback in a group on someone else's message": {
        "callback_query": _query(message={"message_id": 7, "date": DATE, "chat": GROUP, "from": BOT_USER, "text": "Menu"}, data="x:logiques:reseau")
    },
    "poll": {
        "poll": {
            "id": "p1", "question": "Q ?", "options": [{"text": "a", "voter_count": 0, "persistent_id": "o1"}], "total_voter_count": 0,
            "is_closed": False, "is_anonymous": True, "type": "regular", "allows_multiple_answers": False,
            "allows_revoting": False, "members_only": False,
        }
    },
    "poll answer": {"poll_answer": {"poll_id": "p1", "user": USER, "option_ids": [0], "option_persistent_ids": ["o1"]}},
    "chat join request": {"chat_join_request": {"chat": GROUP, "from": USER, "user_chat_id": 5001, "date": DATE}},
    "bot blocked (my_chat_member)": {
        "my_chat_member": {
            "chat": PRIVATE, "from": USER, "date": DATE,
            "old_chat_member": {"status": "member", "user": BOT_USER},
            "new_chat_member": {"status": "kicked", "user": BOT_USER, "until_date": 0},
        }
    },
    "chat member update": {
        "chat_member": {
            "chat": GROUP, "from": USER, "date": DATE,
            "old_chat_member": {"status": "left", "user": USER},
            "new_chat_member": {"status": "member", "user": USER},
        }
    },
    "message reaction": {
        "message_reaction": {"chat": PRIVATE, "message_id": 1, "date": DATE, "user": USER, "old_reaction": [], "new_reaction": [{"type": "emoji", "emoji": "👍"}]}
    },
    "pre-checkout query": {"pre_checkout_query": {"id": "pc", "from": USER, "currency": "EUR", "total_amount": 100, "invoice_payload": "x"}},
}


@pytest.mark.parametrize("name", list(ODD_UPDATES))
async def test_odd_update_never_raises(name: str, kb: KnowledgeBase) -> None:
    engine = Engine(kb, ProgressStore.memory())
    app, request, errors = telegram_app(engine)
    async with app:
        # Directly, then through the durable update queue and the per-user dispatcher.
        await app.process_update(Update.de_json({"update_id": 1, **ODD_UPDATES[name]}, app.bot))
        await app.update_queue.put(Update.de_json({"update_id": 2, **ODD_UPDATES[name]}, app.bot))
        await asyncio.wait_for(drain(app), timeout=30)
        assert channel_of(app).queue.is_done(2)
    assert errors == [], errors
    sent = [call.params.get("text") for call in request.calls]
    assert ERROR_TEXT not in sent


# --------------------------------------------------------------------------- 5. broken knowledge files


def _question(flow: dict, question_id: str) -> dict:
    return next(q for step in flow["steps"] for q in step["questions"] if q["id"] == question_id)


def _edit(relative: str, change: Callable[[Any], None]) -> Callable[[Path], None]:
    def apply(data: Path) -> None:
        path = data / relative
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        change(raw)
        path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")

    return apply


# (kind of error, how to break a copy of the data, words the message must contain)
BROKEN_KB = [
    ("document: unknown topic", _edit("document.yaml", lambda r: r["intro_questions"][0].update(topics=["sujet.inconnu"])),
     ("document.yaml", "« quoi »", "« topics »", "sujet.inconnu")),
    ("document: page not a number", _edit("document.yaml", lambda r: r["chapters"][2].update(page="douze")),
     ("document.yaml", "chapters[3]", "« page »")),
    ("topics: text too long", _edit("topics.yaml", lambda r: r["topics"][4].update(short="x" * 800)),
     ("topics.yaml", "« short »", "trop long")),
    ("topics: file missing", lambda d: (d / "topics.yaml").unlink(), ("topics.yaml", "introuvable")),
    ("glossary: unknown topic", _edit("glossary.yaml", lambda r: r["terms"][2].update(topic="nulle.part")),
     ("glossary.yaml", "« topic »", "nulle.part")),
    ("glossary: missing field", _edit("glossary.yaml", lambda r: r["terms"][3].pop("definition")),
     ("glossary.yaml", "« definition »", "manquant")),
    ("glossary: duplicate", _edit("glossary.yaml", lambda r: r["terms"].append(dict(r["terms"][0]))),
     ("glossary.yaml", "« term »", "double")),
    ("glossary: not UTF-8", lambda d: (d / "glossary.yaml").write_bytes(b"\xff\xfe\x00terms"), ("glossary.yaml", "UTF-8")),
    ("lexicon: wrong type", _edit("lexicon.yaml", lambda r: r["synonyms"].update(ptce="pas une liste")),
     ("lexicon.yaml", "« ptce »", "« synonyms »")),
    ("flow: unknown kind", _edit("flows/orientation.yaml", lambda r: _question(r, "echelle").update(kind="several")),
     ("orientation.yaml", "echelle", "« kind »", "several")),
    ("flow: label too long", _edit("flows/orientation.yaml", lambda r: _question(r, "echelle")["options"][0].update(label="x" * 60)),
     ("orientation.yaml", "commune", "« label »", "trop long")),
    ("flow: duplicate option", _edit("flows/orientation.yaml", lambda r: _question(r, "lieu")["options"].append(dict(_question(r, "lieu")["options"][0]))),
     ("orientation.yaml", "lieu", "« id »", "double")),
    ("flow: unknown step topic", _edit("flows/orientation.yaml", lambda r: r["steps"][2].update(topic="nulle.part")),
     ("orientation.yaml", "maturite", "« topic »", "nulle.part")),
    ("flow: missing field", _edit("flows/orientation.yaml", lambda r: _question(r, "diagnostic").pop("text")),
     ("orientation.yaml", "diagnostic", "« text »", "manquant")),
    ("flow: unknown field", _edit("flows/orientation.yaml", lambda r: _question(r, "diagnostic").update(couleur="bleu")),
     ("orientation.yaml", "diagnostic", "« couleur »", "inconnu")),
    ("flow: YAML syntax", lambda d: (d / "flows" / "formes.yaml").write_text("id: formes\nsteps: [oops\n", encoding="utf-8"),
     ("formes.yaml", "ligne")),
    ("synthesis: unknown answer", _edit("synthesis.yaml", lambda r: r["sections"][0]["rules"][0]["when"].update(answer="nulle_part")),
     ("synthesis.yaml", "typo_territoire", "« when »", "nulle_part")),
    ("synthesis: unknown option", _edit("synthesis.yaml", lambda r: r["sections"][0]["rules"][0]["when"].update({"is": "galaxie"})),
     ("synthesis.yaml", "typo_territoire", "« when »", "galaxie")),
    ("synthesis: empty file", lambda d: (d / "synthesis.yaml").write_text("", encoding="utf-8"), ("synthesis.yaml",)),
]


def _broken_copy(tmp_path: Path, breaker: Callable[[Path], None]) -> Path:
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    breaker(data)
    return data


@pytest.mark.parametrize(("kind", "breaker", "expected"), BROKEN_KB, ids=[b[0] for b in BROKEN_KB])
def test_kb_check_names_file_entry_and_field(tmp_path: Path, kind: str, breaker, expected: tuple[str, ...]) -> None:
    data = _broken_copy(tmp_path, breaker)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli_main(["--data", str(data), "kb", "check"])
    message = err.getvalue()
    assert code == 1, message
    assert "Traceback" not in message
    for part in expected:
        assert part in message, f"{part!r} missing from: {message}"


@pytest.mark.slow
def test_kb_check_subprocess_exit_code(tmp_path: Path) -> None:
    _, breaker, expected = BROKEN_KB[9]
    data = _broken_copy(tmp_path, breaker)
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--data", str(data), "kb", "check"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=child_env(),
    )
    assert done.returncode == 1, done.stderr
    assert all(part in done.stderr for part in expected), done.stderr
    assert "Traceback" not in done.stderr


# --------------------------------------------------------------------------- 6. database files


def _make_db(path: Path) -> None:
    store = open_store(path)
    store.close()  # the last connection removes -wal/-shm: only the .db file remains


@contextlib.contextmanager
def _read_only(paths: list[Path]) -> Iterator[str]:
    """Make files/directories unwritable: chmod when not root, the immutable flag as root."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in paths}
        for p in paths:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            if any(os.access(p, os.W_OK) for p in paths):
                pytest.skip("chmod does not make the files read-only here")
            yield "chmod"
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("running as root without chattr: cannot make the database read-only")
    done: list[Path] = []
    try:
        for p in paths:
            if subprocess.run([chattr, "+i", str(p)], capture_output=True).returncode != 0:
                pytest.skip("running as root and chattr +i is not permitted")
            done.append(p)
        yield "chattr +i"
    finally:
        for p in reversed(done):
            subprocess.run([chattr, "-i", str(p)], capture_output=True)


def _french_failure(code: int, err: str) -> str:
    assert code != 0, err
    assert "Traceback" not in err, err
    assert "base de données" in err, err
    return err


@pytest.fixture
def chat_here(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, kb: KnowledgeBase):
    """``ptce-bot chat --user k --db DB`` run in this process (knowledge already loaded)."""
    monkeypatch.setattr("dialogue.assembly.load_knowledge", lambda data_dir=None: kb)

    def run(db: Path, text: str, user: str = "k") -> tuple[int, str, str]:
        capsys.readouterr()
        monkeypatch.setattr(sys, "stdin", io.StringIO(text))
        code = cli_main(["chat", "--user", user, "--db", str(db)])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_read_only_database_file(tmp_path: Path, chat_here) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "p.db"
    _make_db(db)
    with _read_only([db]):
        code, _, err = chat_here(db, "/menu\n")
    assert "lecture seule" in _french_failure(code, err), err


def test_read_only_database_file_and_directory(tmp_path: Path, chat_here) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "p.db"
    _make_db(db)
    with _read_only([db, folder]):
        code, _, err = chat_here(db, "/menu\n")
    _french_failure(code, err)


def test_read_only_directory_message_is_french(tmp_path: Path, chat_here) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "p.db"
    _make_db(db)
    with _read_only([db, folder]):
        code, _, err = chat_here(db, "/menu\n")
    message = _french_failure(code, err)
    assert "unable to open" not in message and ("lecture seule" in message or "droits" in message), message


def test_read_only_connection(tmp_path: Path, chat_here, monkeypatch: pytest.MonkeyPatch) -> None:
    """Works as root too: every connection is opened with ``file:…?mode=ro``."""
    db = tmp_path / "p.db"
    _make_db(db)
    connect = sqlite3.connect

    def read_only(database, *args, **kwargs):
        kwargs["uri"] = True
        return connect(f"file:{database}?mode=ro", *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", read_only)
    code, _, err = chat_here(db, "/menu\n")
    assert "lecture seule" in _french_failure(code, err), err


@pytest.mark.slow
def test_locked_database(tmp_path: Path) -> None:
    """Another process holds ``BEGIN EXCLUSIVE``: ``ptce-bot chat`` (a real process) gives up cleanly."""
    db = tmp_path / "p.db"
    _make_db(db)
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        # The default waits a minute for the lock to be released; two seconds are enough here.
        done = subprocess.run(chat_command(db), input="/menu\n", capture_output=True, text=True, timeout=90,
                              cwd=ROOT, env=child_env() | {"PTCE_LOCK_WAIT": "2"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "verrouillée" in _french_failure(done.returncode, done.stderr), done.stderr


def test_file_that_is_not_a_database(tmp_path: Path, chat_here) -> None:
    db = tmp_path / "p.db"
    db.write_bytes(b"ceci n'est pas une base SQLite\n" * 200)
    code, _, err = chat_here(db, "/menu\n")
    assert "SQLite" in _french_failure(code, err), err


def test_user_name_that_is_not_utf8(tmp_path: Path, chat_here) -> None:
    code, _, err = chat_here(tmp_path / "p.db", "/menu\n", user=os.fsdecode(b"\xffk"))
    assert code == 0, err


def test_database_of_the_previous_schema_is_migrated(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = tmp_path / "old.db"
    old = Database(path)
    migrations.apply(old, stop_before="m002_activity_and_history")
    assert "active" not in old["users"].columns_dict
    assert not old["answer_history"].exists()
    user = "cli:ancien"
    old["users"].insert(
        {
            "id": user,
            "state": "orientation__echelle",
            "flow": "orientation",
            "knowledge_version": "0-old",
            "first_seen": "2026-01-05T10:00:00+00:00",
            "last_seen": datetime_now_iso(),
            "context": json.dumps({"topic": "ptce.definition", "selection": {"disparites": ["conflits"]}}),
        }
    )
    answers = [
        ("typologie", json.dumps("filiere"), 0),
        ("logiques", json.dumps(["reseau", "ingenierie"]), 0),
        ("marqueurs", None, 1),
    ]
    old["answers"].insert_all(
        {"user_id": user, "question": q, "value": v, "skipped": s, "answered_at": "2026-01-05T10:01:00+00:00"}
        for q, v, s in answers
    )
    old.close()

    store = ProgressStore.open(path)
    engine = Engine(kb, store)
    try:
        applied = {migration.name for migration in migrations.applied(store.db)}
        assert "m002_activity_and_history" in applied
        row = store.db["users"].get(user)
        assert row["active"] == 1 and row["first_seen"] == "2026-01-05T10:00:00+00:00"
        assert store.db["answer_history"].count == 3
        record = store.load(user)
        assert record.answers == {"typologie": "filiere", "logiques": ["reseau", "ingenierie"], "marqueurs": None}
        assert record.context.selection == {"disparites": ["conflits"]}

        replies = engine.handle(user, Command("reprendre"))
        text = "\n".join(r.text for r in replies)
        flow = kb.flows["orientation"]
        assert f"Étape 4/{len(flow.steps)} — {flow.steps[3].title}" in text, text
        assert "a:echelle:epci" in payloads(replies)
        engine.handle(user, Choose("a:echelle:epci"))
        after = store.load(user)
        assert after.answers == record.answers | {"echelle": "epci"}
        assert after.state == "orientation__disparites"
        assert after.context.selection == {"disparites": ["conflits"]}
    finally:
        engine.close()


def datetime_now_iso() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- 7. turns under locks (issue 14)


def _hold_write_lock(db: Path) -> sqlite3.Connection:
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_turn_is_stored_once_with_its_replies(tmp_path: Path, kb: KnowledgeBase) -> None:
    from dialogue.storage.progress import ProgressStore

    store = ProgressStore.open(tmp_path / "p.db")
    engine = Engine(kb, store)
    try:
        calls = []

        def run() -> list[Reply]:
            calls.append(1)
            return engine.handle("tg:1", Command("start", "orientation"))

        encode = lambda replies: json.dumps([r.text for r in replies])  # noqa: E731
        decode = lambda text: [Reply(t) for t in json.loads(text)]  # noqa: E731
        first = store.once("tg:update:1", "tg:1", run, encode, decode)
        again = store.once("tg:update:1", "tg:1", run, encode, decode)
        assert len(calls) == 1  # the second time, the stored replies are returned
        assert [r.text for r in again] == [r.text for r in first]
        store.forget("tg:1")
        assert store.db.execute("SELECT COUNT(*) FROM turn_markers").fetchone()[0] == 0  # /oublier erases them
    finally:
        engine.close()


def test_locked_turn_writes_nothing_and_read_only_turn_goes_through(tmp_path: Path, kb: KnowledgeBase) -> None:
    from dialogue.storage.errors import DatabaseBusy
    from dialogue.storage.progress import BOT_BUSY_TIMEOUT_MS, ProgressStore

    db = tmp_path / "p.db"
    store = ProgressStore.open(db, busy_timeout_ms=BOT_BUSY_TIMEOUT_MS)
    engine = Engine(kb, store)
    try:
        engine.handle("tg:1", Command("start"))
        before = snapshot(store, "tg:1")
        holder = _hold_write_lock(db)
        try:
            started = time.monotonic()
            with pytest.raises(DatabaseBusy):
                store.once("k1", "tg:1", lambda: engine.handle("tg:1", Command("start", "orientation")), str, list)
            assert time.monotonic() - started < 1.0  # fails fast: the caller retries off the event loop
            help_replies = store.once("k2", "tg:1", lambda: engine.handle("tg:1", Command("aide")), str, list)
            assert help_replies and "Comment" in help_replies[0].text
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert snapshot(store, "tg:1") == before  # nothing half-written
        with sqlite3.connect(db) as check:
            assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        engine.close()


def test_replaced_database_file_is_noticed(tmp_path: Path) -> None:
    from dialogue.storage.errors import DatabaseGone
    from dialogue.storage.progress import ProgressStore

    db = tmp_path / "p.db"
    store = ProgressStore.open(db)
    try:
        assert not store.file_replaced()
        db.rename(tmp_path / "moved.db")
        ProgressStore.open(db).close()  # a new, empty file at the same path
        assert store.file_replaced()
        with pytest.raises(DatabaseGone):
            store.once("k", "u", lambda: [], str, list)
        rescued = store.rescue_copy()
        assert rescued is not None and rescued.exists()
    finally:
        store.close()


def test_chat_waits_for_a_short_lock_instead_of_failing(tmp_path: Path) -> None:
    """Issue 14: another program's write lock (2 s here) delays the terminal chat; nothing fails."""
    db = tmp_path / "p.db"
    _make_db(db)
    holder = _hold_write_lock(db)
    release = __import__("threading").Timer(2.0, lambda: (holder.execute("COMMIT"), holder.close()))
    release.start()
    try:
        done = run_chat(db, "/aide\n/start orientation\n", timeout=90)
    finally:
        release.join()
    assert done.returncode == 0, done.stderr
    assert "verrouillée" not in done.stderr and "Étape" in done.stdout
