"""A person using the web page through plain HTML forms (Starlette's test client, no JavaScript)."""

from __future__ import annotations

import re
from html import unescape

from starlette.testclient import TestClient

_CHOICE = re.compile(r'<button type="submit" name="choice" value="([^"]*)">(.*?)</button>', re.S)
_FIELD = re.compile(r'name="(csrf|turn)" value="([^"]*)"')
_TAGS = re.compile(r"<[^>]+>")


class Browser:
    """One browser: its own cookie jar, the last page it was shown, the forms on it."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.page = ""
        self.status = 0
        self.open()

    def open(self, path: str = "/") -> str:
        response = self.client.get(path)
        self.status = response.status_code
        self.page = response.text
        return self.page

    @property
    def csrf(self) -> str:
        return dict(_FIELD.findall(self.page))["csrf"]

    @property
    def turn(self) -> str:
        return dict(_FIELD.findall(self.page))["turn"]

    def post(self, path: str = "/envoyer", **fields: str):
        """Submit a form of the current page (its CSRF token and turn added), follow the redirect."""
        data = {"csrf": self.csrf, "turn": self.turn, **fields}
        response = self.client.post(path, data=data)
        self.status = response.status_code
        self.page = response.text
        return response

    def say(self, text: str):
        return self.post(text=text)

    def command(self, name: str, argument: str = ""):
        return self.post(command=name, argument=argument)

    def buttons(self) -> list[tuple[str, str]]:
        """(label, payload) of the buttons under the latest replies."""
        return [(unescape(_TAGS.sub("", label)), unescape(payload)) for payload, label in _CHOICE.findall(self.page)]

    def payload_of(self, label: str) -> str:
        for text, payload in self.buttons():
            if label in text:
                return payload
        raise AssertionError(f"no button « {label} » in {[text for text, _ in self.buttons()]}")

    def press(self, label: str):
        return self.post(choice=self.payload_of(label))

    def text(self) -> str:
        """The page's visible text, tags removed, entities decoded."""
        return unescape(_TAGS.sub(" ", self.page))

    def latest_text(self) -> str:
        """The text of the latest replies (from the first of them to the message box)."""
        start = self.page.find('id="derniere"')
        end = self.page.find("id='saisie'")
        return unescape(_TAGS.sub(" ", self.page[start:end]))

    def finish_orientation(self) -> None:
        """Answer every question of the orientation with its first option, as a person clicking would."""
        self.post(choice="f:orientation")
        for _ in range(80):
            payloads = [payload for _, payload in self.buttons()]
            single = [p for p in payloads if p.startswith("a:")]
            multiple = [p for p in payloads if p.startswith("x:")]
            if single:
                self.post(choice=single[0])
            elif multiple:
                self.post(choice=multiple[0])
                self.post(choice="ok:" + multiple[0].split(":")[1])
            else:
                return
        raise AssertionError("the orientation never ended")


_NEWEST = re.compile(r"data-newest='(\d+)'")
_BUBBLE = re.compile(r'<li class="msg [^"]*" data-id="(\d+)"')


def bubbles(html: str) -> dict[str, str]:
    """The page's (or an answer's) bubbles by message id, their forms' tokens blanked out."""
    starts = [(match.start(), match.group(1)) for match in _BUBBLE.finditer(html)]
    ends = [start for start, _ in starts[1:]] + [html.find("</ol>") if "</ol>" in html else len(html)]
    found = {}
    for (start, message_id), end in zip(starts, ends):
        found[message_id] = _FIELD.sub(lambda m: f'name="{m.group(1)}" value=""', html[start:end])
    return found


class ScriptBrowser(Browser):
    """A browser whose page script sends the forms (as ``static/chat.js`` does): the answer is JSON when the page was up to date."""

    def __init__(self, client: TestClient) -> None:
        self.tokens: dict[str, str] = {}
        self.news: dict | None = None
        super().__init__(client)

    def open(self, path: str = "/") -> str:
        page = super().open(path)
        self._from_page()
        return page

    def _from_page(self) -> None:
        newest = _NEWEST.search(self.page)
        self.tokens = {**dict(_FIELD.findall(self.page)), "shown": newest.group(1) if newest else ""}

    @property
    def csrf(self) -> str:
        return self.tokens["csrf"]

    @property
    def turn(self) -> str:
        return self.tokens["turn"]

    def post(self, path: str = "/envoyer", **fields: str):
        response = self.client.post(path, data={**self.tokens, **fields}, headers={"X-PTCE-Fetch": "1"})
        self.status = response.status_code
        self.news = None
        if response.headers["content-type"].startswith("application/json"):
            self.news = response.json()
            self.tokens = {"csrf": self.news["csrf"], "turn": self.news["turn"], "shown": str(self.news["newest"])}
            self.page = self.news["html"]  # what the script adds to the page
        else:
            self.page = response.text
            self._from_page()
        return response
