"""Incidents and status now over HTTP (SPEC §9): /incidents, /status, each store's JSON and its
HTML page (content negotiation), on a real SQLite database holding a published report.

The data of test_store_pages: store "s" is the SPEC's worked example (open Monday 2023-01-16
09:00-12:00 Chicago = 15:00-18:00 UTC; active 16:14, inactive 17:15 UTC: down from the 16:44:30
midpoint, 75.5 min to closing); "quiet" (Monday 09:00-12:00 UTC) has no observation; "up" is
open around the clock and active. T = 2023-01-16 18:00 UTC, the closing instant of "s".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from storemon_assets.service import build_report, ingest_files, publish_current_report
from storemon_tests.conftest import copy_of_migrated_sqlite
from storemon_tests.helpers import at, write_csv
from storemon_tests.test_store_pages import HOURS, POLLS, TIMEZONES, client_for

HOSTILE = "<img src=x onerror=alert(1)>&\"'"


@pytest.fixture(scope="module")
def published(tmp_path_factory, migrated_sqlite) -> Path:
    """The database every test starts from, made once per module; `engine` is a copy of it."""
    folder = tmp_path_factory.mktemp("published")
    engine = copy_of_migrated_sqlite(migrated_sqlite, folder / "storemon.db")
    polls = POLLS + '"<img src=x onerror=alert(1)>&""\'",inactive,2023-01-16 17:00:00 UTC\n'
    files = [
        write_csv(folder, name, text)
        for name, text in (("polls.csv", polls), ("hours.csv", HOURS), ("timezones.csv", TIMEZONES))
    ]
    ingest_files(engine, files)
    publish_current_report(engine, build_report(engine), "report-1", stale_after_minutes=120)
    engine.dispose()  # the last connection closed: the whole database is in the one file
    return folder / "storemon.db"


@pytest.fixture
def engine(tmp_path, published):
    engine = copy_of_migrated_sqlite(published, tmp_path / "storemon.db")
    yield engine
    engine.dispose()


@pytest.fixture
def client(engine):
    with client_for(engine) as test_client:
        yield test_client


def test_store_json_keeps_its_keys_and_adds_status_now_and_incidents(client):
    body = client.get("/stores/s", headers={"Accept": "application/json"}).json()
    before = {
        "store_id",
        "timezone",
        "schedule",
        "special_hours",
        "as_of",
        "report_id",
        "report",
        "intervals",
        "no_data",
        "timeline_svg",
        "daily",
    }
    assert set(body) == before | {"status_now", "incidents"}
    assert body["incidents"] == [
        {
            "store_id": "s",
            "started_utc": "2023-01-16T16:44:30.000000Z",  # 10:44:30 Chicago, the midpoint
            "ended_utc": None,
            "started_local": "2023-01-16T10:44:30.000000-06:00",
            "ended_local": None,
            "downtime_minutes": 75.5,  # 10:44:30 to 12:00
            "open": True,
        }
    ]
    # T = 18:00 UTC is its closing instant: closed (half-open business time), since then.
    assert body["status_now"] == {
        "status": "closed",
        "since_utc": "2023-01-16T18:00:00.000000Z",
        "since_local": "2023-01-16T12:00:00.000000-06:00",
        "open_now": False,
        "newest_poll_utc": "2023-01-16T17:15:00.000000Z",
        "newest_poll_age_minutes": 45.0,
        "not_reporting": False,
    }


def test_a_browser_gets_the_store_page_and_a_client_keeps_the_json(client):
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    page = client.get("/stores/s", headers={"Accept": browser})
    assert page.headers["content-type"].startswith("text/html") and page.headers["vary"] == "Accept"
    assert "Closed since 2023-01-16T18:00:00.000000Z (2023-01-16T12:00:00.000000-06:00 local)" in page.text
    assert "2023-01-16T16:44:30.000000Z" in page.text and "still down" in page.text and "75.50" in page.text
    assert 'src="/stores/s/timeline.svg?report=report-1"' in page.text
    for accept in ("application/json", "*/*", None):
        response = client.get("/stores/s", headers={"Accept": accept} if accept else {})
        assert response.headers["content-type"] == "application/json", accept
        assert response.json()["store_id"] == "s"


def test_the_store_page_escapes_the_store_id_everywhere(client):
    from urllib.parse import quote

    page = client.get(f"/stores/{quote(HOSTILE, safe='')}", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "<img src=x" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;&amp;&quot;&#x27;" in page.text
    missing = client.get("/stores/%3Cscript%3Ex", headers={"Accept": "text/html"})
    assert missing.status_code == 404 and "<script>x" not in missing.text and "&lt;script&gt;x" in missing.text


def test_incidents_lists_the_open_ones(client):
    body = client.get("/incidents", params={"open": "true"}).json()
    assert body["as_of"] == "2023-01-16T18:00:00.000000Z" and body["report_id"] == "report-1"
    assert [(i["store_id"], i["started_utc"]) for i in body["incidents"]] == [
        (HOSTILE, "2023-01-09T18:00:00.000000Z"),  # open around the clock, only observation inactive: all week
        ("s", "2023-01-16T16:44:30.000000Z"),
    ]
    assert client.get("/incidents", params={"open": "false"}).json()["incidents"] == []
    assert len(client.get("/incidents").json()["incidents"]) == 2


def test_status_lists_stores_down_now_with_counts(client):
    body = client.get("/status", params={"status": "down"}).json()
    assert body["counts"] == {"up": 1, "down": 1, "closed": 2, "no_data": 0, "not_reporting": 0}
    assert body["matching"] == 1
    [down] = body["stores"]
    assert down["store_id"] == HOSTILE and down["status"] == "down"
    # Its only poll is at 17:00 and it is open around the clock: down since the week's start.
    assert down["since_utc"] == "2023-01-09T18:00:00.000000Z" and down["newest_poll_age_minutes"] == 60.0
    assert client.get("/status", params={"not_reporting": "true"}).json()["stores"] == []
    cut = client.get("/status", params={"limit": 2}).json()  # 4 stores in all: the list says it was cut
    assert cut["matching"] == 4 and len(cut["stores"]) == 2
    assert client.get("/status", params={"status": "bogus"}).status_code == 422


def test_a_report_far_after_the_newest_poll_says_its_data_is_stale(tmp_path, migrated_sqlite):
    engine = copy_of_migrated_sqlite(migrated_sqlite, tmp_path / "storemon.db")
    files = [
        write_csv(tmp_path, name, text)
        for name, text in (("polls.csv", POLLS), ("hours.csv", HOURS), ("timezones.csv", TIMEZONES))
    ]
    ingest_files(engine, files)
    publish_current_report(engine, build_report(engine, at("2023-01-20 18:00")), "late", stale_after_minutes=120)
    with client_for(engine) as client:
        warning = client.get("/summary").json()["stale_warning"]
        # The newest poll is at 2023-01-16 18:00: 4 days (96 h) before T.
        assert warning.startswith(
            "stale data: T (2023-01-20T18:00:00.000000Z) is 4.0 days after the newest poll loaded (2023-01-16T18:00"
        )
        # "up" is open around the clock, silent for 96 h: not reporting, its status a guess.
        status = client.get("/status", params={"not_reporting": "true"}).json()["stores"]
        assert [s["store_id"] for s in status] == ["up"]
        page = client.get("/stores/up", headers={"Accept": "text/html"}).text
        assert warning in page and "Not reporting" in page
