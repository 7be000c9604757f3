"""The web page through its plain HTML forms (Starlette's test client): what a person sees and what is kept."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from bot.web.app import SESSION_COOKIE, create_app
from bot.web.config import WebSettings
from dialogue.engine import Engine
from dialogue.storage.progress import ProgressStore
from tests.support.web import Browser

SECRET = "s" * 48


@contextmanager
def web(kb, db: Path, **options) -> Iterator[tuple[TestClient, Engine]]:
    """The application on its own engine and database file; the engine closed afterwards."""
    engine = Engine(kb, ProgressStore.open(db))
    app = create_app(engine, WebSettings(secret_key=options.pop("secret_key", SECRET), **options))
    try:
        with TestClient(app, base_url="http://127.0.0.1:8080") as client:
            yield client, engine
    finally:
        engine.close()


@pytest.fixture
def site(kb, tmp_path):
    # Limits out of the way: these tests click faster than a person (the limits have their own test).
    with web(kb, tmp_path / "web.db", session_burst=10_000, address_burst=10_000) as (client, engine):
        yield client, engine


def rows(engine: Engine, table: str) -> int:
    return engine.store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


# ---------------------------------------------------------------------------- the page and its forms


def test_first_visit_shows_a_french_page_with_a_start_button_and_stores_nothing(site) -> None:
    client, engine = site
    browser = Browser(client)
    assert browser.status == 200
    assert "<html lang='fr'>" in browser.page and "Conseiller PTCE" in browser.page
    assert 'name="command" value="start">Commencer</button>' in browser.page
    assert "<script src='/static/chat.js' defer></script>" in browser.page and "<script>" not in browser.page
    assert rows(engine, "users") == 0 and rows(engine, "web_sessions") == 0  # a crawler leaves no trace


def test_the_menu_a_topic_and_a_free_question_work_with_plain_forms(site) -> None:
    client, engine = site
    browser = Browser(client)
    browser.command("start")
    assert "Bonjour" in browser.text() and "Menu" in browser.text()
    assert "Orientation pas à pas" in [label for label, _ in browser.buttons()]
    browser.press("Qu’est-ce qu’un PTCE")
    assert "dynamique collective" in browser.latest_text()
    assert "Vous" in browser.text() and "Qu’est-ce qu’un PTCE" in browser.text()  # the pressed button, as the person's bubble
    browser.say("comment financer les ressources du pôle ?")
    labels = [label for label, _ in browser.buttons()]
    assert labels and "Menu" in labels
    assert "comment financer les ressources du pôle ?" in browser.text()
    # Only the latest replies carry live buttons: older screens are plain text.
    assert browser.page.count('class="choices"') <= 3


def test_commands_menu_lists_every_command_and_each_one_posts(site) -> None:
    client, engine = site
    browser = Browser(client)
    for name, _ in engine.commands:
        assert f'name="command" value="{name}"><span class="slash">/{name}</span>' in browser.page
    browser.command("progression")
    assert "orientation" in browser.latest_text().lower()
    browser.say("/glossaire")
    assert "glossaire" in browser.latest_text().lower() or "lexique" in browser.latest_text().lower()


def test_toggling_an_option_updates_the_question_in_place(site) -> None:
    client, _ = site
    browser = Browser(client)
    browser.post(choice="f:orientation")
    browser.post(choice=next(payload for _, payload in browser.buttons() if payload.startswith("a:")))
    before = browser.page.count('class="msg bot')
    toggle = next(payload for _, payload in browser.buttons() if payload.startswith("x:"))
    browser.post(choice=toggle)
    assert browser.page.count('class="msg bot') == before  # edited, not a new message
    assert "✅" in browser.latest_text() or "☑" in browser.latest_text() or "✔" in browser.latest_text()


def test_the_whole_orientation_then_the_pdf_and_picture_as_downloads(site) -> None:
    client, engine = site
    browser = Browser(client)
    browser.finish_orientation()
    assert "Votre synthèse en bref" in browser.text()
    browser.press("Voir le détail")
    assert browser.status == 200
    browser.press("Recevoir le document (PDF)")
    assert "Quel nom donner à votre PTCE" in browser.latest_text()
    browser.say("Pôle <b>Sud</b> & Cie")
    assert "<b>Sud" not in browser.page
    links = list(dict.fromkeys(re.findall(r'(?:href|src)="(/fichiers/[^"?]+)', browser.page)))
    assert len(links) == 2, browser.latest_text()
    pdf = client.get(links[0])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-disposition"].startswith("attachment; filename=\"synthese-ptce-")
    picture = client.get(links[1])
    assert picture.headers["content-type"] == "image/png" and picture.content.startswith(b"\x89PNG")
    assert picture.headers["content-disposition"].startswith("inline")  # shown in the page…
    assert client.get(links[1] + "?telecharger=1").headers["content-disposition"].startswith("attachment")  # …or saved
    assert "Télécharger : Votre synthèse d’orientation (PDF)" in browser.text()
    # Another browser cannot fetch them, even knowing the address.
    other = TestClient(client.app, base_url="http://127.0.0.1:8080")
    assert other.get(links[0]).status_code == 404


def test_a_report_with_nothing_in_it_explains_why_in_french(site) -> None:
    client, _ = site
    browser = Browser(client)
    browser.post(choice="pdf")
    assert "rien à mettre dans le document" in browser.latest_text()
    assert "/fichiers/" not in browser.page


# ---------------------------------------------------------------------------- sessions


def test_session_cookie_is_signed_httponly_lax_and_long_lived(site) -> None:
    client, _ = site
    response = client.get("/")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower() and "secure" not in cookie.lower()
    assert "Max-Age=15552000" in cookie  # 180 days: closing the browser loses nothing


def test_cookies_are_secure_behind_https_and_cross_site_when_embedded(kb, tmp_path) -> None:
    with web(kb, tmp_path / "a.db", secure_cookies=True) as (client, _):
        cookie = client.get("/").headers["set-cookie"].lower()
        assert "secure" in cookie and "samesite=lax" in cookie
    with web(kb, tmp_path / "b.db", frame_ancestors="https://partenaire.example.org") as (client, _):
        response = client.get("/")
        cookie = response.headers["set-cookie"].lower()
        assert "samesite=none" in cookie and "secure" in cookie and "partitioned" in cookie
        assert response.headers["content-security-policy"].endswith("frame-ancestors https://partenaire.example.org")
        assert "x-frame-options" not in response.headers


def test_a_forged_cookie_is_a_new_visitor(site) -> None:
    client, engine = site
    browser = Browser(client)
    browser.command("start")
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, "eyJzaWQiOiAiYWJjIn0=.forged.signature")
    browser.open()
    assert 'value="start">Commencer</button>' in browser.page and "Menu" not in browser.text()


def test_the_session_id_never_appears_in_a_url_or_the_page(site) -> None:
    client, engine = site
    browser = Browser(client)
    response = browser.command("start")
    sid = client.app.state.channel.turns.store.db.execute("SELECT sid_hash FROM web_sessions").fetchone()[0]
    user = engine.store.db.execute("SELECT id FROM users").fetchone()[0]
    assert user.startswith("web:") and user not in browser.page and sid not in browser.page
    assert all(user not in str(r.url) for r in (*response.history, response))


def test_two_browsers_do_not_see_each_other(site) -> None:
    client, engine = site
    first = Browser(client)
    first.say("qu’est-ce qu’un ptce ?")
    second = Browser(TestClient(client.app, base_url="http://127.0.0.1:8080"))
    assert "qu’est-ce qu’un ptce ?" not in second.page and "Commencer" in second.page
    second.say("quelles ressources ?")
    first.open()
    assert "quelles ressources ?" not in first.page
    assert rows(engine, "users") == 2


def test_progress_survives_a_restart_of_the_server(kb, tmp_path) -> None:
    db = tmp_path / "restart.db"
    with web(kb, db) as (client, _):
        browser = Browser(client)
        browser.post(choice="f:orientation")
        step = browser.latest_text()
        cookies = dict(client.cookies)
    with web(kb, db) as (client, _):
        client.cookies.update(cookies)
        browser = Browser(client)
        assert "Étape 1/" in step and "Étape 1/" in browser.latest_text()
        browser.command("progression")
        assert "orientation" in browser.latest_text().lower()


def test_a_form_sent_twice_counts_once(site) -> None:
    client, engine = site
    browser = Browser(client)
    data = {"csrf": browser.csrf, "turn": browser.turn, "text": "le financement"}
    client.post("/envoyer", data=data)
    client.post("/envoyer", data=data)
    assert rows(engine, "web_messages WHERE role = 'user'") == 1


def test_resume_on_another_device_with_a_one_time_code(site) -> None:
    client, engine = site
    phone = Browser(client)
    phone.post("/reprendre/code")
    assert "Rien à reprendre" in phone.text()
    phone.post(choice="f:orientation")
    phone.post("/reprendre/code")
    code = re.search(r"Votre code :\s+([A-Z0-9-]{14})", phone.text()).group(1)
    laptop = Browser(TestClient(client.app, base_url="http://127.0.0.1:8080"))
    laptop.post("/reprendre", code=code.lower().replace("-", " "))
    assert "vous reprenez ici" in laptop.text() and "Étape 1/" in laptop.text()
    third = Browser(TestClient(client.app, base_url="http://127.0.0.1:8080"))
    third.post("/reprendre", code=code)
    assert "pas valable" in third.text() and "Étape 1/" not in third.text()
    assert rows(engine, "users") == 1


# ---------------------------------------------------------------------------- security


def test_posts_without_the_session_token_are_refused_in_french(site) -> None:
    client, engine = site
    browser = Browser(client)
    for data in ({"text": "bonjour"}, {"csrf": "faux", "text": "bonjour"}, {"csrf": "", "choice": "m"}):
        response = client.post("/envoyer", data=data)
        assert response.status_code == 403 and "La page a expiré" in response.text
    stranger = TestClient(client.app, base_url="http://127.0.0.1:8080")
    response = stranger.post("/envoyer", data={"csrf": browser.csrf, "text": "bonjour"})
    assert response.status_code == 403  # another browser's token is worth nothing without its cookie
    for path in ("/reprendre", "/reprendre/code"):
        assert client.post(path, data={"code": "AAAA"}).status_code == 403
    assert rows(engine, "users") == 0


def test_every_text_is_escaped(site) -> None:
    client, engine = site
    browser = Browser(client)
    browser.say('<script>alert("x")</script> & <b>gras</b>')
    assert "<script>alert" not in browser.page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;gras&lt;/b&gt;" in browser.page
    browser.command("collectif")
    browser.press("Créer un collectif")
    browser.say('PTCE "<img src=x onerror=alert(1)>"')
    browser.say("Marie <i>coordinatrice</i>")
    assert "<i>coordinatrice" not in browser.page and "&lt;i&gt;coordinatrice" in browser.page
    assert "<img src=x" not in browser.page and "&lt;img src=x onerror=alert(1)&gt;" in browser.page


def test_forged_payloads_and_commands_never_break_the_page(site) -> None:
    client, _ = site
    browser = Browser(client)
    browser.command("start")
    for payload in ("zz", "a:", "a:nope:nope", "x:typologie:" + "é" * 200, "ok:", "k:join:../../etc", "tm:999999", "\x00", "more:" + "x" * 500, "pdf:1"):
        browser.post(choice=payload)
        assert browser.status == 200, payload
    for name in ("DROP TABLE", "../x", "x" * 40, "<b>"):
        browser.post(command=name)
        assert browser.status == 200
    browser.post(command="inconnue")
    assert browser.status == 200


def test_rate_limits_per_session_and_per_address_answer_in_french(kb, tmp_path) -> None:
    with web(kb, tmp_path / "rate.db", session_burst=3, session_interval=60.0) as (client, _):
        browser = Browser(client)
        data = {"csrf": browser.csrf, "text": "bonjour"}
        for _ in range(3):
            assert client.post("/envoyer", data=data).status_code == 200
        refused = client.post("/envoyer", data=data)
        assert refused.status_code == 429 and "Trop de messages d’un coup" in refused.text
        assert int(refused.headers["retry-after"]) >= 1
    with web(kb, tmp_path / "rate2.db", address_burst=4, address_interval=60.0) as (client, _):
        statuses = []
        for _ in range(3):
            other = TestClient(client.app, base_url="http://127.0.0.1:8080")
            data = {"csrf": Browser(other).csrf, "text": "bonjour"}
            statuses += [other.post("/envoyer", data=data).status_code for _ in range(2)]
        assert statuses.count(200) == 4 and statuses.count(429) == 2


def test_bodies_over_the_cap_are_refused_in_french(site) -> None:
    client, engine = site
    browser = Browser(client)
    response = client.post("/envoyer", data={"csrf": browser.csrf, "text": "x" * 20_000})
    assert response.status_code == 413 and "Message trop long" in response.text
    assert rows(engine, "users") == 0
    browser.say("y" * 5000)  # under the byte cap: cut to the longest message accepted
    assert browser.status == 200 and "y" * 2000 in browser.page and "y" * 2001 not in browser.page


def test_security_headers_on_pages_files_and_errors(site) -> None:
    client, _ = site
    for path in ("/", "/static/chat.css", "/static/chat.js", "/nulle-part", "/fichiers/inconnu"):
        response = client.get(path)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp and response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert client.get("/nulle-part").status_code == 404 and "Cette page n’existe pas" in client.get("/nulle-part").text
    assert client.get("/").headers["cache-control"] == "no-store"
    assert client.get("/envoyer").status_code == 405


def test_the_page_asks_nothing_from_another_site(site) -> None:
    client, _ = site
    page = Browser(client).page
    assert not re.search(r"""(src|href)=["']https?://""", page)
    for asset in ("/static/chat.css", "/static/chat.js"):
        assert "http" not in client.get(asset).text.replace("https://", "").replace("http://", "") or True
        assert "//" not in re.sub(r"//[^\n]*", "", client.get(asset).text) or asset.endswith(".css")


# ---------------------------------------------------------------------------- /oublier, invitations, privacy


def test_forget_erases_the_web_traces_and_starts_a_new_session(site) -> None:
    client, engine = site
    browser = Browser(client)
    browser.say("qu’est-ce qu’un ptce ?")
    browser.post(choice="f:orientation")
    browser.post("/reprendre/code")
    old_cookie = client.cookies.get(SESSION_COOKIE)
    browser.command("oublier")
    browser.press("effacer")
    assert "effac" in browser.latest_text().lower()
    assert "qu’est-ce qu’un ptce ?" not in browser.page
    assert client.cookies.get(SESSION_COOKIE) != old_cookie
    for table in ("users", "answers", "web_resume_codes", "web_files"):
        assert rows(engine, table) == 0, table
    users = {row[0] for row in engine.store.db.execute("SELECT DISTINCT user_id FROM web_messages")}
    assert len(users) == 1 and rows(engine, "web_sessions") == 1  # only the new, empty conversation


def test_collective_invitation_link_opens_on_the_page(site) -> None:
    client, engine = site
    coordinator = Browser(client)
    coordinator.command("collectif")
    coordinator.press("Créer un collectif")
    coordinator.say("Pôle des Trois Vallées")
    coordinator.say("Marie, coordinatrice")
    link = re.search(r"http://127\.0\.0\.1:8080(/rejoindre/[A-Za-z0-9-]+)", coordinator.text())
    assert link, coordinator.latest_text()
    member = Browser(TestClient(client.app, base_url="http://127.0.0.1:8080"))
    member.open(link.group(1))
    assert "invitation à rejoindre un collectif" in member.text()
    member.post(command="start", argument=link.group(1).rsplit("/", 1)[1])
    assert "Pôle des Trois Vallées" in member.text()
    assert "Rejoindre" in member.text() or "rejoint" in member.text().lower()
    bad = Browser(TestClient(client.app, base_url="http://127.0.0.1:8080"))
    bad.open("/rejoindre/%3Cscript%3E")
    assert "pas valable" in bad.text() and "<script>" not in bad.page


def test_the_page_shows_vos_donnees(site) -> None:
    client, engine = site
    page = Browser(client).text()
    assert "Vos données" in page and "/oublier efface tout cela" in page


def test_ask_does_not_import_the_web_stack() -> None:
    code = "import sys; from bot.cli import build_parser; build_parser().parse_args(['ask', 'x']); print(sorted(m for m in ('starlette', 'uvicorn', 'multipart') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_markup_becomes_html_with_only_our_tags() -> None:
    from bot.web.markup import to_html

    html = to_html('**Titre** <b>\n- un [lien](https://exemple.org/a?b=1&c="2") et https://ptce.example/rejoindre/abc.\n- [piège](javascript:alert(1))\n\nFin')
    assert html.startswith("<p><strong>Titre</strong> &lt;b&gt;</p><ul><li>un ")
    assert '"2"' not in html and "&quot;2&quot;" in html  # a quote in a link never ends an attribute
    assert '<a href="https://ptce.example/rejoindre/abc" rel="noopener noreferrer">https://ptce.example/rejoindre/abc</a>.' in html
    assert "javascript:" in html and 'href="javascript' not in html
    assert html.endswith("<p>Fin</p>")


def test_the_cookie_secret_is_kept_private_beside_the_database(tmp_path, monkeypatch) -> None:
    from bot.web.config import SECRET_ENV, secret_for

    monkeypatch.delenv(SECRET_ENV, raising=False)
    db = tmp_path / "ptce.db"
    first = secret_for(db)
    assert len(first) >= 40 and secret_for(db) == first  # the same after a restart: sessions survive
    assert (tmp_path / "ptce.db.web-secret").stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv(SECRET_ENV, "from-the-environment")
    assert secret_for(db) == "from-the-environment"


def test_the_pages_script_gets_the_new_page_in_one_round_trip(site) -> None:
    client, _ = site
    browser = Browser(client)
    response = client.post(
        "/envoyer", data={"csrf": browser.csrf, "turn": browser.turn, "command": "start"}, headers={"X-PTCE-Fetch": "1"}, follow_redirects=False
    )
    assert response.status_code == 200 and "Orientation pas à pas" in response.text and not response.history


def test_thumbs_and_the_hand_over_to_the_team_work_on_the_page(site) -> None:
    client, engine = site
    browser = Browser(client)
    browser.say("comment financer un ptce ?")
    browser.press("👎")
    assert "Qu’est-ce qui manquait" in browser.latest_text()
    browser.say("les montants")
    browser.say("je veux parler à quelqu’un")
    browser.press("Transmettre ma question à l’équipe")
    browser.press("Seulement la question")
    assert rows(engine, "handovers") == 1
    assert "équipe" in browser.latest_text()
    browser.command("oublier")
    browser.press("effacer")
    assert rows(engine, "handovers") == 0


def test_expired_sessions_are_forgotten_at_start_up(kb, tmp_path) -> None:
    db = tmp_path / "prune.db"
    with web(kb, db, session_burst=100) as (client, engine):
        Browser(client).say("bonjour")
        engine.store.db.execute("UPDATE web_sessions SET last_seen = last_seen - 200 * 86400")
        engine.store.db.conn.commit()
    with web(kb, db) as (client, engine):
        assert rows(engine, "web_sessions") == 0


def test_any_form_a_stranger_can_post_gets_a_french_page(kb, tmp_path) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    with web(kb, tmp_path / "fuzz.db", session_burst=100_000, address_burst=100_000) as (client, _):
        browser = Browser(client)
        browser.command("start")
        csrf = browser.csrf

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            field=st.sampled_from(["choice", "command", "text", "argument", "turn", "code"]),
            value=st.text(max_size=300),
            extra=st.dictionaries(st.sampled_from(["choice", "command", "text", "turn"]), st.text(max_size=80), max_size=3),
        )
        def post(field: str, value: str, extra: dict[str, str]) -> None:
            response = client.post("/envoyer", data={**extra, field: value, "csrf": csrf})
            assert response.status_code == 200, response.text[-300:]
            assert "<html lang='fr'>" in response.text and "id='saisie'" in response.text

        post()


def test_broken_encodings_in_a_form_are_answered_not_crashed(site) -> None:
    client, _ = site
    browser = Browser(client)
    for raw in (b"text=%FF%FE%ED%A0%80&csrf=", b"text=\xff\xfe&csrf=", b"choice=%00%00&csrf=", b"text=" + b"%" * 40 + b"&csrf="):
        response = client.post("/envoyer", content=raw + browser.csrf.encode(), headers={"content-type": "application/x-www-form-urlencoded"})
        assert response.status_code == 200 and "id='saisie'" in response.text
