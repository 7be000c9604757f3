"""The page's script path (``static/chat.js``): only the new replies come back, and they stay right.

The worker thread keeps in memory which person each browser speaks as and what each page
shows; these tests are about what a person sees when that memory could be wrong: after
/oublier, a resume code used on another device, a restart, a session removed from the table.
"""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.support.web import Browser, ScriptBrowser, bubbles
from tests.test_web import rows, site, web  # noqa: F401  (site: the fixture)


def _client(client: TestClient) -> TestClient:
    return TestClient(client.app, base_url="http://127.0.0.1:8080")


def test_the_script_gets_only_the_new_replies_and_a_reload_shows_the_same(site) -> None:
    client, _ = site
    browser = ScriptBrowser(client)
    browser.command("start")
    assert browser.news is not None and "Bonjour" in browser.text()
    browser.press("Qu’est-ce qu’un PTCE")
    news = bubbles(browser.page)
    assert "Bonjour" not in browser.text()  # the earlier replies are already on the page
    assert "Qu’est-ce qu’un PTCE" in browser.text() and "dynamique collective" in browser.text()
    browser.say("comment financer les ressources du pôle ?")
    assert browser.news is not None and "comment financer les ressources du pôle ?" in browser.text()
    assert "Menu" in [label for label, _ in browser.buttons()]
    latest = bubbles(browser.page)
    # A reload shows the very same bubbles; the earlier ones without their buttons.
    reloaded = Browser(client)
    page = bubbles(reloaded.page)
    assert all(page[message_id] == html for message_id, html in latest.items())
    assert all(message_id in page and 'class="choices"' not in page[message_id] for message_id in news)
    assert f"data-newest='{browser.tokens['shown']}'" in reloaded.page


def test_a_toggled_option_comes_back_as_the_same_bubble(site) -> None:
    client, _ = site
    browser = ScriptBrowser(client)
    browser.post(choice="f:orientation")
    browser.post(choice=next(payload for _, payload in browser.buttons() if payload.startswith("a:")))
    question = bubbles(browser.page)
    toggle = next(payload for _, payload in browser.buttons() if payload.startswith("x:"))
    browser.post(choice=toggle)
    edited = bubbles(browser.page)
    assert browser.news is not None and len(edited) == 1
    (message_id,) = edited
    assert message_id in question and edited[message_id] != question[message_id]  # replaced in place
    browser.post(choice=toggle)  # and again: the page is still up to date
    assert browser.news is not None and list(bubbles(browser.page)) == [message_id]
    assert bubbles(Browser(client).page)[message_id] == bubbles(browser.page)[message_id]


def test_after_forget_the_page_starts_afresh(site) -> None:
    client, engine = site
    browser = ScriptBrowser(client)
    browser.say("qu’est-ce qu’un ptce ?")
    browser.post(choice="f:orientation")
    browser.command("oublier")
    browser.press("effacer")
    assert browser.news is None  # the whole page, new session
    assert "effac" in browser.text().lower() and "qu’est-ce qu’un ptce ?" not in browser.page
    browser.say("qui finance un ptce ?")
    assert browser.news is not None and "qui finance un ptce ?" in browser.text()
    page = Browser(client).page
    assert "qu’est-ce qu’un ptce ?" not in page and "qui finance un ptce ?" in page
    assert rows(engine, "users") == 1


def test_a_resume_code_used_elsewhere_then_both_pages_stay_right(site) -> None:
    client, engine = site
    phone = ScriptBrowser(client)
    phone.post(choice="f:orientation")
    phone.post("/reprendre/code")
    code = phone.text().split("Votre code :")[1].split()[0]
    laptop = ScriptBrowser(_client(client))
    laptop.say("une question d’abord")  # a conversation of its own, left for the phone's
    laptop.say("et une autre")
    laptop.post("/reprendre", code=code)
    assert "vous reprenez ici" in laptop.text() and "Étape 1/" in laptop.text()
    laptop.post(choice=next(payload for _, payload in laptop.buttons() if payload.startswith("a:")))
    assert laptop.news is not None and "Étape 2/" in laptop.text()
    # The phone still shows step 1: its next form gets the whole page, with what the laptop did.
    phone.command("progression")
    assert phone.news is None and "Étape 2/" in phone.text()
    phone.say("le financement")
    assert phone.news is not None  # up to date again
    laptop.say("la gouvernance")
    assert laptop.news is None and "le financement" in laptop.text() and "une question d’abord" not in laptop.text()
    assert rows(engine, "users WHERE id IN (SELECT user_id FROM web_sessions)") == 1


def test_the_script_goes_on_after_a_restart(kb, tmp_path) -> None:
    db = tmp_path / "restart.db"
    with web(kb, db, session_burst=1000) as (client, _):
        browser = ScriptBrowser(client)
        browser.post(choice="f:orientation")
        tokens, cookies = dict(browser.tokens), dict(client.cookies)
        payload = next(payload for _, payload in browser.buttons() if payload.startswith("a:"))
        label = next(label for label, p in browser.buttons() if p == payload)
    with web(kb, db, session_burst=1000) as (client, engine):
        client.cookies.update(cookies)
        browser = ScriptBrowser.__new__(ScriptBrowser)
        browser.client, browser.tokens, browser.news, browser.page, browser.status = client, tokens, None, "", 0
        browser.post(choice=payload)
        assert browser.news is not None and label in browser.text() and "Étape 2/" in browser.text()
        again = client.post("/envoyer", data={**tokens, "choice": payload}, headers={"X-PTCE-Fetch": "1"})
        assert again.status_code == 200  # the same form sent again after the restart: answered once
        assert rows(engine, "web_messages WHERE role = 'user'") == 2


def test_a_session_removed_from_the_table_starts_a_new_conversation(site) -> None:
    client, engine = site
    browser = ScriptBrowser(client)
    browser.say("qu’est-ce qu’un ptce ?")
    engine.store.db.execute("DELETE FROM web_sessions")  # e.g. by hand, behind the server's memory
    browser.say("qui finance un ptce ?")
    assert browser.news is None and "qu’est-ce qu’un ptce ?" not in browser.page and "qui finance un ptce ?" in browser.page
    owners = {row[0] for row in engine.store.db.execute("SELECT user_id FROM web_messages WHERE text = 'qui finance un ptce ?'")}
    bound = {row[0] for row in engine.store.db.execute("SELECT user_id FROM web_sessions")}
    assert owners == bound and len(bound) == 1


def test_a_page_out_of_date_gets_the_whole_conversation(site) -> None:
    client, _ = site
    first = ScriptBrowser(client)
    first.say("qu’est-ce qu’un ptce ?")
    tokens = dict(first.tokens)
    first.say("qui finance un ptce ?")
    # An older tab of the same browser sends its form: its page lacks the last turn.
    old_tab = client.post("/envoyer", data={**tokens, "turn": "vieil-onglet-1", "text": "la gouvernance"}, headers={"X-PTCE-Fetch": "1"})
    assert old_tab.headers["content-type"].startswith("text/html")
    assert "qui finance un ptce ?" in old_tab.text and "la gouvernance" in old_tab.text


def test_a_remembered_cookie_signature_still_expires_and_a_forged_one_is_refused(monkeypatch) -> None:
    import time

    import pytest
    from itsdangerous import BadSignature, SignatureExpired

    from bot.web.security import RememberingSigner

    signer = RememberingSigner("s" * 48)
    signed = signer.sign(b"payload")
    assert signer.unsign(signed, max_age=60) == b"payload"
    assert signer.unsign(signed, max_age=60) == b"payload"  # remembered
    with pytest.raises(BadSignature):
        signer.unsign(signed[:-2] + b"xx", max_age=60)
    later = time.time() + 120
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(SignatureExpired):
        signer.unsign(signed, max_age=60)
