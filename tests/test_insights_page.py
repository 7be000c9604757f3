"""The insights page in headless Chromium: it renders its charts, without console errors (screenshot kept)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot import insights
from bot.insights_html import write_html

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def page(tmp_path_factory, kb) -> Path:
    from bench.insights_demo import simulate

    tmp = tmp_path_factory.mktemp("insights")
    store = simulate(tmp / "demo.db", users=60)
    path = write_html(insights.compute(store.db, kb), kb, tmp / "insights.html")
    store.close()
    return path


def test_page_is_self_contained_french_with_inline_charts(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    assert "<html lang='fr'>" in html and "Questions à revoir" in html
    assert html.count("<svg") >= 4
    assert "src=\"http" not in html and "href=\"http" not in html  # nothing fetched from elsewhere


@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="Debian packages chromium and chromium-driver not installed")
def test_page_in_headless_chromium_shows_charts_without_console_errors(page: Path, tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,2400"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        driver.get(page.as_uri())
        assert driver.title.startswith("Conseiller PTCE")
        charts = driver.find_elements(By.CSS_SELECTOR, ".chart svg")
        assert len(charts) >= 4
        for chart in charts:
            size = chart.size
            assert size["width"] > 200 and size["height"] > 80, size
        assert driver.find_element(By.ID, "chart-funnel-orientation").find_elements(By.TAG_NAME, "svg")
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == []
        shot = tmp_path / "insights.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    finally:
        driver.quit()
