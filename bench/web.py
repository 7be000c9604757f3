"""The web page under load (``make bench``, section « web »): concurrent sessions over loopback.

The real server (``ptce-bot web``, uvicorn, one process) on a SQLite file; this process
plays scripted people (the bench's usual workload), each with its own connection and
cookie, through the forms of the page as its script sends them: POST /envoyer with the
id of the newest message shown, answered with the turn's new bubbles and the forms' new
tokens as JSON (or the whole page when the page was out of date; a browser without
JavaScript gets a redirect and a GET instead). A turn's latency runs from the POST to
the last byte of that answer.
The client is a lean keep-alive HTTP/1.1 loop, so that it is not what is measured.

Two runs, both with every session open at once:

- **saturation**: each session sends its next event as soon as it has its page (no
  pause); gives the throughput, compared with the engine alone on the same scripts
  (``Engine.handle`` in a loop, same machine, same run): the « engine-only floor »;
- **paced**: each session pauses as a reader would between turns (uniform 0.5–3.5 s);
  gives the latency people feel at that load.

Peak memory is the server's ``VmHWM`` (resident high-water mark).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

from bench.report import Section, percentile
from bench.workload import Workload, interleave
from dialogue.engine import Engine
from dialogue.storage.progress import ProgressStore
from dialogue.types import Choose, Command, Event
from knowledge.loader import KnowledgeBase

NAME = "web"
MAX_P99_MS = 100.0
MIN_FLOOR_RATIO = 0.5
_FIELD = re.compile(r'name="(csrf|turn)" value="([^"]*)"')
_NEWEST = re.compile(r"data-newest='(\d+)'")


def _page_state(page: str) -> dict[str, str] | None:
    """The fields the page's script sends with a form: its tokens and the newest message shown."""
    fields = dict(_FIELD.findall(page))
    newest = _NEWEST.search(page)
    if "id='saisie'" not in page or len(fields) != 2 or newest is None:
        return None
    return {**fields, "shown": newest.group(1)}


def _news_state(content: bytes) -> dict[str, str] | None:
    """The same fields from the JSON answer (the turn's bubbles) the script applies to its page."""
    try:
        news = json.loads(content)
        return {"csrf": news["csrf"], "turn": news["turn"], "shown": str(news["newest"])} if news["html"] else None
    except (ValueError, KeyError, TypeError):
        return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _form(event: Event) -> dict[str, str]:
    if isinstance(event, Command):
        return {"command": event.name, "argument": event.argument}
    if isinstance(event, Choose):
        return {"choice": event.payload}
    return {"text": event.text}


class _Server:
    def __init__(self, db: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "bot.cli", "web", "--db", str(db), "--port", str(self.port),
                   "--session-rate", "1000", "--address-rate", "100000", "--no-question-log"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/sante", timeout=1):
                    return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError("the web server did not start") from None
                time.sleep(0.1)
        raise RuntimeError("the web server did not start in time")

    def peak_rss_mb(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def cpu_seconds(self) -> float | None:
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return None

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class _Connection:
    """A keep-alive HTTP/1.1 connection with one cookie jar: a lean client, so that the client is not what is measured."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.cookie = ""
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Accept: text/html"]
        if self.cookie:
            lines.append(f"Cookie: {self.cookie}")
        if body:
            lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        received: dict[str, str] = {}
        for line in header_lines:
            if ":" in line:
                name, _, value = line.partition(":")
                received[name.strip().lower()] = value.strip()
        content = await self.reader.readexactly(int(received.get("content-length", "0")))
        if "set-cookie" in received:
            self.cookie = received["set-cookie"].split(";", 1)[0]
        return int(status_line.split()[1]), received, content

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()


async def _session(url: str, script: list[Event], pause: tuple[float, float] | None, rng: random.Random,
                   latencies: list[float], errors: list[str], fetch: bool, whole_pages: list[int]) -> None:
    host, port = url.removeprefix("http://").split(":")
    connection = _Connection(host, int(port))
    try:
        _, _, content = await connection.request("GET", "/")
        fields = _page_state(content.decode("utf-8")) or {}
        for event in script:
            if pause is not None:
                await asyncio.sleep(rng.uniform(*pause))
            started = time.perf_counter()
            try:
                body = urlencode({**fields, **_form(event)}).encode()
                status, headers, content = await connection.request("POST", "/envoyer", body, {"X-PTCE-Fetch": "1"} if fetch else None)
                if status == 303:  # a browser without JavaScript follows the redirect to the page
                    status, headers, content = await connection.request("GET", "/")
            except (OSError, asyncio.IncompleteReadError, ValueError) as error:  # counted, never fatal
                errors.append(f"{type(error).__name__}: {error}")
                await connection.close()
                connection = _Connection(host, int(port))
                continue
            latencies.append(time.perf_counter() - started)
            json_answer = headers.get("content-type", "").startswith("application/json")
            if not json_answer:
                whole_pages.append(1)
            state = _news_state(content) if json_answer else _page_state(content.decode("utf-8"))
            if status != 200 or state is None:
                errors.append(f"HTTP {status}")
            else:
                fields = state
    finally:
        await connection.close()


async def _load(
    url: str, scripts: list[list[Event]], pause: tuple[float, float] | None, seed: int, fetch: bool = True
) -> tuple[list[float], list[str], float, int]:
    """Latencies, errors, wall time, and how many answers were the whole page (the page was out of date)."""
    latencies: list[float] = []
    errors: list[str] = []
    whole_pages: list[int] = []
    rng = random.Random(seed)
    started = time.perf_counter()
    await asyncio.gather(
        *(_session(url, script, pause, random.Random(rng.random()), latencies, errors, fetch, whole_pages) for script in scripts)
    )
    return latencies, errors, time.perf_counter() - started, len(whole_pages)


def _engine_floor(kb: KnowledgeBase, scripts: list[list[Event]], db: Path) -> float:
    """Turns per second of ``Engine.handle`` alone on the same scripts and the same kind of file."""
    engine = Engine(kb, ProgressStore.open(db))
    try:
        for user, event in interleave(scripts[:5]):  # first matcher calls, page cache: as warm as the server
            engine.handle(f"warm:{user}", event)
        order = interleave(scripts)
        started = time.perf_counter()
        for user, event in order:
            engine.handle(f"floor:{user}", event)
        return len(order) / (time.perf_counter() - started)
    finally:
        engine.close()


def web_load(
    sessions: int = 200, events: int = 30, *, kb: KnowledgeBase, workdir, seed: int = 22, pause: tuple[float, float] = (0.5, 3.5)
) -> Section:
    section = Section(NAME)
    workload = Workload.from_kb(kb)
    saturation_scripts = workload.scripts(sessions, events, seed=seed)
    paced_scripts = workload.scripts(sessions, events, seed=seed + 1)
    with workdir() as tmp:
        floor = _engine_floor(kb, saturation_scripts, tmp / "floor.db")
        server = _Server(tmp / "web.db")
        try:
            cpu0 = server.cpu_seconds()
            sat_latencies, sat_errors, sat_wall, sat_whole = asyncio.run(_load(server.url, saturation_scripts, None, seed))
            cpu1 = server.cpu_seconds()
            paced_latencies, paced_errors, paced_wall, paced_whole = asyncio.run(_load(server.url, paced_scripts, pause, seed + 1))
            peak = server.peak_rss_mb()
        finally:
            server.stop()
    sat_ms = [s * 1000 for s in sat_latencies]
    paced_ms = [s * 1000 for s in paced_latencies]
    rate = len(sat_latencies) / sat_wall if sat_wall else None
    paced_rate = len(paced_latencies) / paced_wall if paced_wall else None
    server_cpu = (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None
    section.details = {
        "sessions": sessions,
        "events_per_session": events,
        "engine_floor_turns_per_s": floor,
        "saturation": {"turns": len(sat_latencies), "wall_s": sat_wall, "turns_per_s": rate, "server_cpu_s": server_cpu,
                       "p50_ms": percentile(sat_ms, 0.5), "p99_ms": percentile(sat_ms, 0.99), "errors": sat_errors[:5],
                       "error_count": len(sat_errors), "whole_pages": sat_whole},
        "paced": {"turns": len(paced_latencies), "wall_s": paced_wall, "turns_per_s": paced_rate, "pause_s": list(pause),
                  "p50_ms": percentile(paced_ms, 0.5), "p99_ms": percentile(paced_ms, 0.99), "errors": paced_errors[:5],
                  "error_count": len(paced_errors), "whole_pages": paced_whole},
        "server_peak_rss_mb": peak,
    }
    section.add("engine-only floor (Engine.handle in a loop)", floor, "turns/s")
    section.add(f"web, {sessions} sessions at once, no pause", rate, "turns/s")
    section.add("web / engine-only floor", rate / floor if rate and floor else None, "×", MIN_FLOOR_RATIO, ">=")
    per_cpu = len(sat_latencies) / server_cpu if server_cpu else None
    section.add("server CPU per turn (HTTP + engine + page)", 1000 / per_cpu if per_cpu else None, "ms")
    section.add("web turns per server CPU-second / engine-only floor", per_cpu / floor if per_cpu and floor else None, "×",
                note="the same ratio with the machine's other load taken out")
    section.add("web, no pause: p50 (POST → page shown)", percentile(sat_ms, 0.5), "ms")
    section.add("web, no pause: p99", percentile(sat_ms, 0.99), "ms")
    section.add(f"web, readers pausing {pause[0]:g}–{pause[1]:g} s ({paced_rate or 0:.0f} turns/s): p50", percentile(paced_ms, 0.5), "ms")
    section.add("web, readers pausing: p99", percentile(paced_ms, 0.99), "ms", MAX_P99_MS, "<=")
    section.add("errors (both runs)", len(sat_errors) + len(paced_errors), "", 0, "<=")
    section.add("server peak memory (VmHWM)", peak, "MB")
    section.notes.append(
        "server: ptce-bot web (uvicorn, one process, engine in one worker thread) on a SQLite file; client: the bench process, "
        "one keep-alive connection (own cookie) per session over 127.0.0.1; a turn = POST /envoyer answered with the turn's new bubbles (JSON), as the "
        "page's script sends it. Client and server share the machine's cores; the floor replays the same scripts through "
        "Engine.handle, warmed the same way, in the same run."
    )
    return section
