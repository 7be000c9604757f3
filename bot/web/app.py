"""The web page's ASGI application (Starlette): routes from HTTP requests to engine events and back.

Starlette because it is a small toolkit over ASGI rather than a framework: routing,
forms, static files, signed-cookie sessions and a test client, with no template engine,
ORM or front-end build to carry. uvicorn serves it.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bot.terminal import parse_input
from bot.web import texts
from bot.web.config import WebSettings
from bot.web.page import PageState, render_messages, render_notices, render_page
from bot.web.security import BodyLimit, CachedSessions, RateLimiter, SecurityHeaders, csrf_ok, wait_seconds
from bot.web.store import Message, format_code
from bot.web.turns import TurnResult, WebTurns
from dialogue.storage.errors import StorageError
from dialogue.types import MAX_PAYLOAD_BYTES, ChannelSettings, Choose, Command, Event

if TYPE_CHECKING:
    from bot.web.turns import WebEngine

STATIC = Path(__file__).resolve().parent / "static"
SESSION_COOKIE = "ptce_session"
#: Header set by the page's script on its requests (answered with the page itself, not a redirect).
FETCH_HEADER = "x-ptce-fetch"
#: Form field the page's script adds: the id of the newest message it shows (see ``render_page``).
SHOWN_FIELD = "shown"
_COMMAND_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_INVITATION_CODE = re.compile(r"^[A-Za-z0-9-]{4,64}$")
_TURN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
#: Most fields a form of the page has (a stranger's form with more is refused).
MAX_FIELDS = 12


def client_address(request: Request) -> str:
    """The client's address (uvicorn puts the proxy's X-Forwarded-For here when it trusts the proxy)."""
    return request.client.host if request.client else "?"


def ensure_session(request: Request) -> tuple[str, str]:
    """The browser's session id and CSRF token, created on its first visit (in the signed cookie only)."""
    session = request.session
    if not isinstance(session.get("sid"), str) or not isinstance(session.get("csrf"), str):
        session.clear()
        session["sid"] = secrets.token_urlsafe(32)
        session["csrf"] = secrets.token_urlsafe(24)
    return session["sid"], session["csrf"]


def event_from(form: Any, max_text: int) -> Event | None:
    """The engine event a posted form stands for; ``None`` when it carries nothing usable."""
    choice = form.get("choice")
    if isinstance(choice, str) and choice:
        # Anything may be posted here: the engine answers a payload it does not know with « no longer valid ».
        return Choose(choice[: MAX_PAYLOAD_BYTES * 4])
    command = form.get("command")
    if isinstance(command, str) and command:
        if not _COMMAND_NAME.match(command):
            return None
        argument = form.get("argument")
        return Command(command, argument.strip()[:200] if isinstance(argument, str) else "")
    text = form.get("text")
    if isinstance(text, str) and text.strip():
        return parse_input(text[:max_text], [])
    return None


class WebChannel:
    """The application's state: the engine's turns, the settings, the rate limiters."""

    def __init__(self, engine: WebEngine, settings: WebSettings) -> None:
        self.engine = engine
        self.settings = settings
        self.turns = WebTurns(engine)
        self.turns.store.prune(settings.session_days * 24 * 3600)
        self.per_session = RateLimiter(settings.session_burst, settings.session_interval)
        self.per_address = RateLimiter(settings.address_burst, settings.address_interval)
        engine.use_channel(ChannelSettings(invitation_base=settings.invitation_base))
        # Fixed once the channel is set: not worked out again for every page.
        self.commands = list(engine.commands)
        self.help_sections = list(engine.help_sections)

    # ------------------------------------------------------------------ helpers

    def _state(self, request: Request, csrf: str, **extra: Any) -> PageState:
        return PageState(
            csrf=csrf,
            turn=secrets.token_urlsafe(12),
            commands=self.commands,
            help_sections=self.help_sections,
            max_text=self.settings.max_text,
            **extra,
        )

    async def _checked_form(self, request: Request) -> tuple[Any, str] | Response:
        """The posted form of a valid session, or the response refusing it (CSRF, rate limit)."""
        if "sid" not in request.session:
            return texts.error_page(403, texts.EXPIRED)
        form = await self._form(request)
        if isinstance(form, Response):
            return form
        if not csrf_ok(request.session, form.get("csrf")):
            return texts.error_page(403, texts.EXPIRED)
        sid = request.session["sid"]
        wait = max(self.per_session.take(sid), self.per_address.take(client_address(request)))
        if wait:
            seconds = wait_seconds(wait)
            return texts.error_page(429, texts.RATE_LIMITED.format(seconds=seconds), {"retry-after": str(seconds)})
        return form, sid

    async def _form(self, request: Request) -> Any:
        """The posted fields: the page's forms are URL-encoded, read here at once; other encodings go to Starlette's parser."""
        content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=self.settings.max_body)
        body = (await request.body()).decode("utf-8", "replace")
        try:
            return dict(parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="replace"))
        except ValueError:  # more fields than any form of the page has
            return texts.error_page(400, texts.BAD_FORM)

    @staticmethod
    def _back() -> RedirectResponse:
        # 303: the browser shows the page with GET, so a reload never posts the form again.
        return RedirectResponse("/#derniere", status_code=303, headers={"cache-control": "no-store"})

    # ------------------------------------------------------------------ routes

    async def home(
        self, request: Request, invitation: str | None = None, messages: list[Message] | None = None, newest: int = 0
    ) -> Response:
        sid, csrf = ensure_session(request)
        if messages is None:
            try:
                newest, messages = await self.turns.call(self.turns.page, sid)
            except StorageError:
                return texts.error_page(503, texts.UNAVAILABLE)
        notices = request.session.pop("notices", [])
        state = self._state(request, csrf, messages=messages, notices=notices, invitation=invitation)
        return HTMLResponse(render_page(state, newest), headers={"cache-control": "no-store"})

    def _news(self, request: Request, result: TurnResult) -> Response:
        """For the page's script, when its page was up to date: the turn's bubbles and the forms' new tokens, as JSON."""
        _, csrf = ensure_session(request)
        written = result.written or []
        state = self._state(request, csrf, messages=written)
        news = {
            "csrf": csrf,
            "turn": state.turn,
            "newest": result.newest,
            "html": render_messages(written, state),
            "notices": render_notices(request.session.pop("notices", [])),
        }
        return Response(json.dumps(news, ensure_ascii=False), media_type="application/json", headers={"cache-control": "no-store"})

    async def invitation(self, request: Request) -> Response:
        code = request.path_params["code"]
        if not _INVITATION_CODE.match(code):
            ensure_session(request)
            request.session["notices"] = [texts.INVITATION_BAD]
            return self._back()
        return await self.home(request, invitation=code)

    async def send(self, request: Request) -> Response:
        checked = await self._checked_form(request)
        if isinstance(checked, Response):
            return checked
        form, sid = checked
        event = event_from(form, self.settings.max_text)
        turn = form.get("turn")
        if event is None:
            return self._back()
        if not isinstance(turn, str) or not _TURN.match(turn):
            turn = secrets.token_urlsafe(12)
        fetch = request.headers.get(FETCH_HEADER) == "1"
        shown = form.get(SHOWN_FIELD)
        shown_id = int(shown) if fetch and isinstance(shown, str) and shown.isascii() and shown.isdigit() and len(shown) < 19 else None
        try:
            result = await self.turns.call(self.turns.turn, sid, turn, event, fetch, shown_id)
            for pending in result.pending:
                await self.turns.build(pending)
        except StorageError:
            return texts.error_page(503, texts.UNAVAILABLE)
        if result.new_sid is not None:
            request.session.clear()
            request.session["sid"] = result.new_sid
            request.session["csrf"] = secrets.token_urlsafe(24)
        if fetch:
            # The page's script wants the answer at once: one round trip instead of a redirect and a GET;
            # only the new bubbles when its page was up to date, else the whole page.
            if result.written is not None:
                return self._news(request, result)
            return await self.home(request, messages=result.messages, newest=result.newest)
        return self._back()

    async def resume_code(self, request: Request) -> Response:
        checked = await self._checked_form(request)
        if isinstance(checked, Response):
            return checked
        _, sid = checked
        try:
            user = await self.turns.call(self.turns.store.user_of, sid)
            code = await self.turns.call(self.turns.store.new_resume_code, user) if user else None
        except StorageError:
            return texts.error_page(503, texts.UNAVAILABLE)
        shown = texts.RESUME_CODE_SHOWN.format(code=format_code(code)) if code else texts.RESUME_NOTHING
        request.session["notices"] = [shown]
        return self._back()

    async def resume(self, request: Request) -> Response:
        checked = await self._checked_form(request)
        if isinstance(checked, Response):
            return checked
        form, sid = checked
        raw = form.get("code")
        try:
            user = await self.turns.call(self.turns.store.redeem, sid, raw) if isinstance(raw, str) and raw.strip() else None
        except StorageError:
            return texts.error_page(503, texts.UNAVAILABLE)
        request.session["notices"] = [texts.RESUME_DONE if user else texts.RESUME_BAD]
        return self._back()

    async def file(self, request: Request) -> Response:
        sid = request.session.get("sid")
        file_id = request.path_params["file_id"]
        if not isinstance(sid, str) or len(file_id) > 64:
            return texts.error_page(404, texts.FILE_GONE)
        try:
            user = await self.turns.call(self.turns.store.user_of, sid)
            found = await self.turns.call(self.turns.store.file, user, file_id) if user else None
        except StorageError:
            return texts.error_page(503, texts.UNAVAILABLE)
        if found is None:
            return texts.error_page(404, texts.FILE_GONE)
        name, mime, content = found
        inline_picture = mime == "image/png" and "telecharger" not in request.query_params
        disposition = "inline" if inline_picture else "attachment"
        return Response(
            content,
            media_type=mime,
            headers={"content-disposition": f'{disposition}; filename="{name}"', "cache-control": "private, no-store"},
        )

    async def favicon(self, request: Request) -> Response:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml", headers={"cache-control": "max-age=86400"})

    async def health(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def not_found(self, request: Request, exc: Exception) -> Response:
        return texts.error_page(404, texts.NOT_FOUND)

    async def method_not_allowed(self, request: Request, exc: Exception) -> Response:
        return texts.error_page(405, texts.NOT_FOUND)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        self.turns.shutdown()  # the turn under way commits before the engine is closed


def create_app(engine: WebEngine, settings: WebSettings) -> Starlette:
    """The ASGI application serving the chat page on ``engine``."""
    channel = WebChannel(engine, settings)
    routes = [
        Route("/", channel.home, methods=["GET"]),
        Route("/envoyer", channel.send, methods=["POST"]),
        Route("/rejoindre/{code}", channel.invitation, methods=["GET"]),
        Route("/reprendre/code", channel.resume_code, methods=["POST"]),
        Route("/reprendre", channel.resume, methods=["POST"]),
        Route("/fichiers/{file_id}", channel.file, methods=["GET"]),
        Route("/sante", channel.health, methods=["GET"]),
        Route("/favicon.ico", channel.favicon, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    secure = settings.secure_cookies or settings.embeddable
    middleware = [
        Middleware(SecurityHeaders, frame_ancestors=settings.frame_ancestors, secure=settings.secure_cookies),
        Middleware(BodyLimit, limit=settings.max_body),
        Middleware(
            CachedSessions,
            secret_key=settings.secret_key,
            session_cookie=SESSION_COOKIE,
            max_age=settings.session_days * 24 * 3600,
            # In a partner's iframe the cookie is a third-party one: only SameSite=None (with Secure) is sent there.
            same_site="none" if settings.embeddable else "lax",
            https_only=secure,
            partitioned=settings.embeddable,
        ),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={404: channel.not_found, 405: channel.method_not_allowed},
        lifespan=channel.lifespan,
    )
    app.state.channel = channel
    return app


def run(args: Any) -> int:
    """``ptce-bot web``: the page on http://HOST:PORT until Ctrl-C."""
    import logging

    import uvicorn

    from bot.team_cli import engine_options
    from bot.web.config import settings_from
    from dialogue.assembly import create_engine
    from dialogue.storage.progress import default_db_path

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s : %(message)s")
    # At INFO, transitions logs every state change: the log would hold people's paths, and the cost shows.
    logging.getLogger("transitions").setLevel(logging.WARNING)
    db_path = Path(args.db) if args.db else default_db_path()
    try:
        engine = create_engine(db_path, getattr(args, "data", None), **engine_options(args))
    except StorageError as error:
        print(f"Impossible d’ouvrir la base de données : {error}")
        return 1
    settings = settings_from(args, db_path)
    app = create_app(engine, settings)
    print(f"Conseiller PTCE sur {settings.public_url}/ (Ctrl-C pour arrêter)", flush=True)
    try:
        # proxy_headers: behind the reverse proxy on this machine, the client's address comes from X-Forwarded-For.
        uvicorn.run(app, host=args.host, port=args.port, proxy_headers=True, forwarded_allow_ips="127.0.0.1", access_log=False)
    finally:
        engine.close()
    return 0
