"""The web page end to end: the real server (``ptce-bot web``) driven by Debian's headless Chromium.

One server and one browser for the module; a second browser, and one with JavaScript off,
where a test needs them. ``PTCE_WEB_SCREENSHOTS=docs`` writes the README's screenshots.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    pytest.skip("Debian packages chromium and chromium-driver not installed", allow_module_level=True)

from selenium import webdriver  # noqa: E402  (only when Chromium is there)
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

WAIT = 20


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """``ptce-bot web`` in a child process, restartable on the same database."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "bot.cli", "web", "--db", str(self.db), "--port", str(self.port),
                   "--session-rate", "50", "--address-rate", "500"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/sante", timeout=1) as response:
                    if response.read() == b"ok":
                        return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(self.process.stderr.read().decode() if self.process.stderr else "server died") from None
                time.sleep(0.1)
        raise RuntimeError("the web server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("web") / "ptce.db")
    server.start()
    yield server
    server.stop()


def chromium(downloads: Path | None = None, *, javascript: bool = True, width: int = 1100, height: int = 1400) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}"):
        options.add_argument(argument)
    prefs: dict = {}
    if downloads is not None:
        prefs |= {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    if not javascript:
        prefs["profile.managed_default_content_settings.javascript"] = 2
    options.add_experimental_option("prefs", prefs)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    if downloads is not None:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    return driver


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads) -> Iterator[WebDriver]:
    driver = chromium(downloads)
    yield driver
    driver.quit()


@pytest.fixture
def fresh(browser: WebDriver, server: Server) -> WebDriver:
    """The module's browser as a new visitor (no cookie)."""
    browser.get(server.url + "/sante")
    browser.delete_all_cookies()
    browser.get(server.url + "/")
    return browser


# ---------------------------------------------------------------------------- helpers


def submit(driver: WebDriver, action: Callable[[], object]) -> None:
    """Do ``action`` (a click, a key) and wait until the page shows the answer (with or without a reload).

    Every answer gives the forms a new ``turn`` token, whether the page was reloaded or the
    script added the new replies to it.
    """
    old = turn_token(driver)
    action()
    WebDriverWait(driver, WAIT, poll_frequency=0.02).until(lambda d: turn_token(d) not in (None, old))
    WebDriverWait(driver, WAIT, poll_frequency=0.02).until(lambda d: d.find_elements(By.ID, "contenu"))


def turn_token(driver: WebDriver) -> str | None:
    """The ``turn`` token of the message box's form; ``None`` while the page is being replaced."""
    try:
        return driver.find_element(By.CSS_SELECTOR, "#saisie input[name=turn]").get_attribute("value")
    except NoSuchElementException:
        return None
    except WebDriverException as error:
        # Mid-navigation Chromium may answer « Node with given id does not belong to the document »
        # instead of a stale-element error: the page is being replaced.
        if "does not belong to the document" in str(error) or isinstance(error, StaleElementReferenceException):
            return None
        raise


def buttons(driver: WebDriver) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, ".msg.latest button[name=choice]")


def button(driver: WebDriver, label: str) -> WebElement:
    for candidate in driver.find_elements(By.CSS_SELECTOR, "button"):
        if label in candidate.text:
            return candidate
    raise AssertionError(f"no button « {label} »: {[b.text for b in buttons(driver)]}")


def click(driver: WebDriver, label_or_element: str | WebElement) -> None:
    element = button(driver, label_or_element) if isinstance(label_or_element, str) else label_or_element
    submit(driver, element.click)


def latest(driver: WebDriver) -> str:
    return " ".join(element.text for element in driver.find_elements(By.CSS_SELECTOR, ".msg.latest .bubble"))


def next_answer(driver: WebDriver) -> tuple[WebElement, str] | None:
    """The button a person answering « the first option » presses next, and its kind."""
    for prefix in ("a:", "x:"):
        for element in buttons(driver):
            if (element.get_attribute("value") or "").startswith(prefix):
                return element, prefix
    return None


def answer_orientation_by_mouse(driver: WebDriver, *, after_three: Callable[[], None] | None = None) -> None:
    click(driver, "Orientation pas à pas")
    for count in range(80):
        if count == 3 and after_three is not None:
            after_three()
        found = next_answer(driver)
        if found is None:
            return
        element, kind = found
        click(driver, element)
        if kind == "x:":
            click(driver, "Valider")
    raise AssertionError("the orientation never ended")


_TABBABLE = """
const all = [...document.querySelectorAll('a[href], button, input:not([type=hidden]), summary, [tabindex="0"]')]
  .filter(e => e.offsetParent !== null && !e.disabled);
return [all.indexOf(document.activeElement), all.indexOf(arguments[0])];
"""


def tab_to(driver: WebDriver, target: WebElement) -> WebElement:
    """Move the focus to ``target`` with Tab or Shift+Tab only (the count worked out first, then typed at once)."""
    here, there = driver.execute_script(_TABBABLE, target)
    assert there >= 0, "the element cannot be reached with the keyboard"
    if here != there:
        keys = Keys.TAB * (there - here) if there > here else Keys.SHIFT + Keys.TAB * (here - there) + Keys.NULL
        driver.switch_to.active_element.send_keys(keys)
    focused = driver.switch_to.active_element
    assert focused == target, (focused.tag_name, focused.text, target.text)
    return focused


def axe_violations(driver: WebDriver) -> list[dict]:
    from selenium_axe_python import Axe

    axe = Axe(driver)
    axe.inject()
    results = axe.run(options={"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}})
    return [v for v in results["violations"] if v["impact"] in ("serious", "critical")]


# ---------------------------------------------------------------------------- the tests


def test_free_question_with_its_buttons_without_reloading(fresh: WebDriver) -> None:
    driver = fresh
    click(driver, "Commencer")
    assert "Bonjour" in latest(driver) and button(driver, "Orientation pas à pas")
    driver.execute_script("window.notReloaded = true;")
    field = driver.find_element(By.ID, "texte")
    field.send_keys("comment financer les ressources du pôle ?")
    submit(driver, lambda: field.send_keys(Keys.ENTER))
    assert driver.execute_script("return window.notReloaded === true;")  # the script answered without a reload
    assert buttons(driver) and "Menu" in [b.text for b in buttons(driver)]
    assert driver.switch_to.active_element.get_attribute("id") == "texte"  # focus kept on the message box
    WebDriverWait(driver, WAIT).until(lambda d: d.find_element(By.ID, "annonce").get_attribute("textContent").strip())
    announced = driver.find_element(By.ID, "annonce").get_attribute("textContent")
    assert announced.split()[0] in latest(driver)  # the reply, read out by screen readers
    assert "comment financer les ressources du pôle ?" in driver.find_elements(By.CSS_SELECTOR, ".msg.user")[-1].text
    severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []


def test_whole_orientation_by_mouse_survives_a_server_restart_then_the_pdf_opens(fresh: WebDriver, server: Server, downloads: Path) -> None:
    driver = fresh
    click(driver, "Commencer")
    seen: dict[str, str] = {}

    def restart() -> None:
        seen["before"] = latest(driver)
        server.stop()
        server.start()
        driver.refresh()
        seen["after"] = latest(driver)

    answer_orientation_by_mouse(driver, after_three=restart)
    assert seen["before"] and seen["before"] == seen["after"]  # same question on screen, nothing lost
    assert "Votre synthèse en bref" in driver.find_element(By.ID, "conversation").text
    click(driver, "Recevoir le document (PDF)")
    click(driver, "Passer")
    link = driver.find_element(By.CSS_SELECTOR, "a.download")
    assert "Votre synthèse d’orientation (PDF)" in link.text
    picture = driver.find_element(By.CSS_SELECTOR, "figure img")
    assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 100;", picture)
    link.click()
    deadline = time.monotonic() + WAIT
    pdfs: list[Path] = []
    while time.monotonic() < deadline and not pdfs:
        pdfs = [p for p in downloads.glob("synthese-ptce-*.pdf") if p.stat().st_size > 1000]
        time.sleep(0.2)
    assert pdfs, list(downloads.iterdir())
    from pypdf import PdfReader

    text = "".join(page.extract_text() or "" for page in PdfReader(pdfs[0]).pages)
    assert "PTCE" in text and len(PdfReader(pdfs[0]).pages) >= 2


def test_whole_orientation_by_keyboard_only(fresh: WebDriver) -> None:
    driver = fresh
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert driver.switch_to.active_element.text == "Aller à la zone de saisie"  # the skip link comes first

    def activate(target: WebElement) -> None:
        element = tab_to(driver, target)
        submit(driver, lambda: element.send_keys(Keys.ENTER))

    activate(button(driver, "Commencer"))
    activate(button(driver, "Orientation pas à pas"))
    for _ in range(80):
        assert driver.switch_to.active_element.get_attribute("id") == "texte"
        found = next_answer(driver)
        if found is None:
            break
        element, kind = found
        activate(element)
        if kind == "x:":
            activate(button(driver, "Valider"))
    assert "Votre synthèse en bref" in driver.find_element(By.ID, "conversation").text
    # The focus is always visible: the focused button has an outline.
    driver.find_element(By.ID, "texte").send_keys(Keys.SHIFT + Keys.TAB)
    outline = driver.execute_script("return getComputedStyle(document.activeElement).outlineStyle;")
    assert outline not in ("", "none")


def test_two_browsers_at_once_do_not_see_each_other(fresh: WebDriver, server: Server) -> None:
    first = fresh
    click(first, "Commencer")
    field = first.find_element(By.ID, "texte")
    field.send_keys("qui finance un PTCE ?")
    submit(first, lambda: field.send_keys(Keys.ENTER))
    second = chromium()
    try:
        second.get(server.url + "/")
        assert "qui finance un PTCE ?" not in second.page_source and button(second, "Commencer")
        click(second, "Commencer")
        click(second, "Orientation pas à pas")
        assert "Étape 1/" in latest(second)
        first.refresh()
        assert "Étape 1/" not in first.find_element(By.ID, "conversation").text
        assert "qui finance un PTCE ?" in first.find_element(By.ID, "conversation").text
    finally:
        second.quit()


def test_the_page_works_with_javascript_disabled(server: Server) -> None:
    driver = chromium(javascript=False)
    try:
        driver.get(server.url + "/")
        assert not driver.execute_script("return document.documentElement.classList.contains('js');")
        click(driver, "Commencer")
        answer_orientation_by_mouse(driver)
        assert "Votre synthèse en bref" in driver.find_element(By.ID, "conversation").text
        assert driver.current_url.endswith("/#derniere")  # every answer was a plain form post and redirect
    finally:
        driver.quit()


def test_axe_finds_no_serious_violation_and_the_page_fits_a_phone(fresh: WebDriver) -> None:
    driver = fresh
    assert axe_violations(driver) == []  # the welcome page
    click(driver, "Commencer")
    click(driver, "Qu’est-ce qu’un PTCE")
    field = driver.find_element(By.ID, "texte")
    field.send_keys("/orientation")
    submit(driver, lambda: field.send_keys(Keys.ENTER))
    click(driver, next_answer(driver)[0])
    for summary in driver.find_elements(By.CSS_SELECTOR, "details summary"):
        summary.click()
    violations = axe_violations(driver)
    assert violations == [], [(v["id"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in violations]
    for summary in driver.find_elements(By.CSS_SELECTOR, "details summary"):
        summary.click()
    screenshots = os.environ.get("PTCE_WEB_SCREENSHOTS")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 320, "height": 720, "deviceScaleFactor": 1, "mobile": True})
    try:
        driver.refresh()
        width = driver.execute_script("return [document.documentElement.scrollWidth, document.documentElement.clientWidth];")
        assert width[0] <= width[1], width  # no sideways scrolling at 320 px
        assert axe_violations(driver) == []
        if screenshots:
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
            )
            driver.refresh()
            driver.execute_script("document.getElementById('derniere').scrollIntoView({block: 'start'});")
            driver.save_screenshot(str(Path(screenshots) / "web-phone.png"))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    if screenshots:
        driver.set_window_size(1280, 900)
        driver.refresh()
        driver.execute_script("document.getElementById('derniere').scrollIntoView({block: 'start'});")
        driver.save_screenshot(str(Path(screenshots) / "web-desktop.png"))
        driver.set_window_size(1100, 1400)
