"""The web page at `/`, in a real browser: headless Chromium from Debian's packages, driven by
Selenium through the system's chromedriver (nothing is downloaded), in front of the real API
and `dagster dev` on the bundled sample."""

from __future__ import annotations

import os
import tempfile
import time

import httpx
import pytest

from storemon_assets.db.engine import open_database
from storemon_assets.db.tokens import create_token
from storemon_assets.local_servers import dagster_dev, storemon_api
from storemon_assets.service import ingest_files
from storemon_assets.settings import SAMPLE_DATA_DIR, sqlite_url
from storemon_assets.web.access import TOKEN_TTL_SECONDS
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
    engine = open_database(sqlite_url(tmp_path / "data" / "storemon.db"))
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
    first = first_timeline_drawn(browser)
    assert "/timeline.svg" in first.get_attribute("src")
    # Under each week, the store's 90-day strip: a bar per local date (T - 90 days to T meets 91
    # of them), each with the day's minutes in its tooltip.
    WebDriverWait(browser, 30).until(
        lambda b: len(b.find_elements(By.CSS_SELECTOR, "#timelines .store:first-child .strip span")) == 91
    )
    bar = browser.find_element(By.CSS_SELECTOR, "#timelines .store:first-child .strip span:last-child")
    assert "min up" in bar.get_attribute("title") and "business minutes" in bar.get_attribute("title")
    browser.save_screenshot(str(tmp_path / "page.png"))  # kept with the test's temporary files
    # A clean console: no failed request (a missing icon included), no script error and no
    # Content-Security-Policy violation (the page is served with a strict one: an inline script
    # or style would be refused and logged here). The one expected: /summary's 404 before the
    # first report was published (the API's answer for "none").
    assert "script-src 'self'" in httpx.get(running + "/").headers["content-security-policy"]
    before_first_report = "/summary - Failed to load resource: the server responded with a status of 404"
    assert console_problems(browser, before_first_report) == []

    # Tokens configured: the page asks for one, keeps it for the tab and works as before, its
    # pictures fetched with the bearer header.
    token = create_token(open_database(sqlite_url(tmp_path / "data" / "storemon.db")), "browser", "trigger")
    time.sleep(TOKEN_TTL_SECONDS + 0.5)  # the API notices the first token within this bound
    browser.get(running + "/")
    WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "login").is_displayed())
    assert "needs an API token" in browser.find_element(By.ID, "login-note").text
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    WebDriverWait(browser, 30).until(lambda b: "100" in b.find_element(By.ID, "summary").text)
    first = first_timeline_drawn(browser)
    assert first.get_attribute("src").startswith("blob:")
    assert browser.execute_script("return sessionStorage.getItem('storemon.token')") == token
    assert browser.get_cookies() == []  # no cookie: nothing a browser would send on its own
    # Expected: the first calls before the token was entered answer 401.
    assert console_problems(browser, "status of 401") == []


def console_problems(browser, expected: str | None = None) -> list[str]:
    """The browser console's errors and warnings since the last call, but the `expected` one."""
    return [
        entry["message"]
        for entry in browser.get_log("browser")
        if entry["level"] in ("SEVERE", "WARNING") and (expected is None or expected not in entry["message"])
    ]


def first_timeline_drawn(browser):
    """The first timeline picture of the fleet page, once the worst stores' table is full (10 rows)
    and that picture has loaded and has a size."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 30).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#worst-table tbody tr")) == 10)
    first = browser.find_element(By.CSS_SELECTOR, "#timelines img.timeline")
    browser.execute_script("arguments[0].scrollIntoView()", first)
    wait_loaded(browser, first)
    return first


def wait_loaded(browser, picture) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 30).until(
        lambda b: b.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", picture)
    )


@pytest.fixture
def published(tmp_path):
    """`storemon api` (no Dagster needed) on a database holding a published report: the sample,
    plus stores made down and silent at T, one with a hostile id."""
    from storemon_assets.service import build_report, publish_current_report

    engine = open_database(sqlite_url(tmp_path / "data" / "storemon.db"))
    ingest_files(engine, sorted(SAMPLE_DATA_DIR.glob("*.csv")))
    as_of = build_report(engine).uptime.as_of_us
    ingest_files(engine, [_with_instants(tmp_path / "extra.csv", as_of)])
    publish_current_report(engine, build_report(engine, as_of), "report-1")
    engine.dispose()
    with storemon_api(tmp_path, "http://127.0.0.1:9") as api_url:
        yield api_url


def _with_instants(path, as_of_us: int):
    """Write the extra polls with real timestamps: two inactive polls for the down store (T - 40 min
    and T - 1 min: 40 business minutes down or more, it is open around the clock) and one for `silent`."""
    import datetime as dt

    def stamp(offset_minutes: int) -> str:
        moment = dt.datetime.fromtimestamp(as_of_us / 1e6, dt.UTC) - dt.timedelta(minutes=offset_minutes)
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f UTC")

    path.write_text(
        "store_id,status,timestamp_utc\n"
        f'"<b>down & out</b>",inactive,{stamp(40)}\n'
        f'"<b>down & out</b>",inactive,{stamp(1)}\n'
        f"silent,active,{stamp(300)}\n"
    )
    return path


def test_the_fleet_page_opens_with_down_and_silent_stores_and_finds_a_store_by_keyboard(browser, published):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser.set_window_size(1000, 1200)
    browser.get(published + "/")
    WebDriverWait(browser, 30).until(lambda b: "<b>down & out</b>" in b.find_element(By.ID, "down-now").text)
    down = browser.find_element(By.CSS_SELECTOR, "#down-now a")
    assert down.text == "<b>down & out</b>"  # shown as text, never as markup
    assert down.get_attribute("href").endswith("/store?store_id=%3Cb%3Edown%20%26%20out%3C%2Fb%3E")
    assert browser.find_elements(By.CSS_SELECTOR, "#down-now b") == []
    WebDriverWait(browser, 10).until(lambda b: "silent" in b.find_element(By.ID, "not-reporting").text)
    # Every store id on the page links to its page: the worst stores' table too.
    WebDriverWait(browser, 30).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#worst-table tbody a")) == 10)
    # Nothing wider than the window at 1,000 px.
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")

    # Keyboard only: the search box is the first field; type an id and press Enter.
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    focused = browser.switch_to.active_element
    assert focused.get_attribute("id") == "search-id"
    focused.send_keys("silent", Keys.ENTER)
    WebDriverWait(browser, 30).until(lambda b: "store silent" in b.title)
    assert "Not reporting" in browser.find_element(By.TAG_NAME, "main").text
    assert console_problems(browser) == []


def test_a_store_page_shows_status_timeline_and_incidents(browser, published):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.set_window_size(1000, 1200)
    browser.get(published + "/stores/%3Cb%3Edown%20%26%20out%3C%2Fb%3E")
    assert browser.title == "store <b>down & out</b> · storemon"
    now = browser.find_element(By.CSS_SELECTOR, ".now")
    assert now.get_attribute("data-status") == "down" and now.text.startswith("Down since ")
    wait_loaded(browser, browser.find_element(By.TAG_NAME, "img"))
    rows = browser.find_elements(By.CSS_SELECTOR, "section table tbody tr")
    assert any("still down" in row.text for row in rows)
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    # Keyboard: the first Tab reaches the link back to the fleet page.
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("href").endswith("/")
    assert console_problems(browser) == []


@pytest.mark.parametrize("path, rendered", [("/docs", ".swagger-ui .info .title"), ("/redoc", "h1")])
def test_the_api_docs_render_from_this_server_alone_under_their_policy(browser, published, path, rendered):
    """/docs and /redoc draw the API's description from files this server ships (no network here),
    and nothing they do is refused by their Content-Security-Policy (it would be logged)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(published + path)
    WebDriverWait(browser, 30).until(lambda b: "storemon" in b.find_element(By.CSS_SELECTOR, rendered).text)
    policy = httpx.get(published + path).headers["content-security-policy"]
    assert "https:" not in policy and "http:" not in policy  # nothing allowed from elsewhere
    # The one refusal expected: ReDoc's "powered by" logo, which it fetches from its own CDN.
    assert console_problems(browser, "https://cdn.redoc.ly/redoc/logo-mini.svg") == []
