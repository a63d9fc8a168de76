"""The web page at `/`, in a real browser: headless Chromium from Debian's packages, driven by
Selenium through the system's chromedriver (nothing is downloaded), in front of the real API
and `dagster dev` on the bundled sample."""

from __future__ import annotations

import os
import tempfile

import pytest

from storemon_assets.db.engine import create_db_engine, create_tables
from storemon_assets.local_servers import dagster_dev, storemon_api
from storemon_assets.service import ingest_files
from storemon_assets.settings import SAMPLE_DATA_DIR, sqlite_url
from storemon_tests.conftest import chromium

pytestmark = pytest.mark.e2e

# As root and in a container: no sandbox, no GPU, nothing phoned home, a throw-away profile.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--window-size=1200,1600",
]


@pytest.fixture
def browser(tmp_path):
    browser_path, driver_path = chromium()
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never fetch anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(browser_path)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path, prefix='chromium-')}")
    driver = webdriver.Chrome(service=Service(executable_path=str(driver_path)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def running(tmp_path):
    """`dagster dev` and `storemon api` on a home whose database holds the bundled sample."""
    engine = create_db_engine(sqlite_url(tmp_path / "data" / "storemon.db"))
    create_tables(engine)
    ingest_files(engine, sorted(SAMPLE_DATA_DIR.glob("*.csv")))
    engine.dispose()
    with dagster_dev(tmp_path) as dagster_url, storemon_api(tmp_path, dagster_url) as api_url:
        yield api_url


def test_trigger_on_the_page_runs_a_report_and_shows_the_worst_stores_timelines(browser, running, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(running + "/")
    status = browser.find_element(By.ID, "status")
    # Nothing published yet: the page says so instead of failing.
    WebDriverWait(browser, 30).until(
        lambda b: "no report has been published" in b.find_element(By.ID, "summary-note").text
    )

    browser.find_element(By.ID, "trigger").click()
    WebDriverWait(browser, 20).until(lambda _: status.text.startswith(("Running", "Complete")))
    WebDriverWait(browser, 180, poll_frequency=0.5).until(
        lambda _: status.text in ("Complete",) or "Failed" in status.text
    )
    assert status.text == "Complete"

    download = browser.find_element(By.ID, "download")
    assert download.is_displayed() and "/get_report?report_id=" in download.get_attribute("href")
    # The fleet summary of the sample: its 100 stores.
    WebDriverWait(browser, 30).until(lambda b: "100" in b.find_element(By.ID, "summary").text)
    # The worst stores, each with its timeline picture, loaded and drawn.
    WebDriverWait(browser, 30).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#worst-table tbody tr")) == 10)
    first = browser.find_element(By.CSS_SELECTOR, "#timelines img.timeline")
    browser.execute_script("arguments[0].scrollIntoView()", first)
    WebDriverWait(browser, 30).until(
        lambda b: b.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", first)
    )
    assert "/timeline.svg" in first.get_attribute("src")
    # Under each week, the store's 90-day strip: a bar per local date (T - 90 days to T meets 91
    # of them), each with the day's minutes in its tooltip.
    WebDriverWait(browser, 30).until(
        lambda b: len(b.find_elements(By.CSS_SELECTOR, "#timelines .store:first-child .strip span")) == 91
    )
    bar = browser.find_element(By.CSS_SELECTOR, "#timelines .store:first-child .strip span:last-child")
    assert "min up" in bar.get_attribute("title") and "business minutes" in bar.get_attribute("title")
    browser.save_screenshot(str(tmp_path / "page.png"))  # kept with the test's temporary files
    # A clean console: no failed request (a missing icon included) and no script error. The one
    # expected: /summary's 404 before the first report was published (the API's answer for "none").
    before_first_report = "/summary - Failed to load resource: the server responded with a status of 404"
    problems = [
        entry["message"]
        for entry in browser.get_log("browser")
        if entry["level"] in ("SEVERE", "WARNING") and before_first_report not in entry["message"]
    ]
    assert problems == []
