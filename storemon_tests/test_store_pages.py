"""The store pages of the API (/summary, /stores, /stores/{id}, its timeline.svg, and /): their
HTTP contract, on a real SQLite database holding a published report (no Dagster needed).

The data: store "s" is the SPEC's worked example (open Monday 2023-01-16 09:00-12:00 Chicago =
15:00-18:00 UTC; active 16:14, inactive 17:15 UTC; the status changes at 16:44:30 UTC).
Store "quiet" is open Monday 09:00-12:00 UTC and was only polled on Sunday: no observation.
Store "up" is open around the clock (no hours rows, UTC) and active throughout.
T = 2023-01-16 18:00 UTC (the latest poll).
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from storemon_assets.api import create_app
from storemon_assets.service import build_report, ingest_files, publish_current_report
from storemon_assets.web.routes import MAX_WORST
from storemon_tests.conftest import copy_of_migrated_sqlite
from storemon_tests.helpers import WORKED_EXAMPLE_ROW, write_csv

POLLS = """store_id,status,timestamp_utc
s,active,2023-01-16 16:14:00.000000 UTC
s,inactive,2023-01-16 17:15:00.000000 UTC
quiet,active,2023-01-15 10:00:00 UTC
up,active,2023-01-16 06:00:00 UTC
up,active,2023-01-16 18:00:00 UTC
"""
HOURS = """store_id,dayOfWeek,start_time_local,end_time_local
s,0,09:00:00,12:00:00
quiet,0,09:00:00,12:00:00
"""
TIMEZONES = """store_id,timezone_str
s,America/Chicago
quiet,UTC
up,UTC
"""


def published_database(root: Path, template: Path, files: list[tuple[str, str]]) -> Path:
    """A SQLite database holding the feed files `files` ((name, text)) and the report on them,
    published as "report-1"; returns its path. Made once per module: each test works on a copy
    (`copy_of_migrated_sqlite`), as if it had loaded and published the files itself."""
    engine = copy_of_migrated_sqlite(template, root / "storemon.db")
    ingest_files(engine, [write_csv(root, name, text) for name, text in files])
    publish_current_report(engine, build_report(engine), "report-1")
    engine.dispose()  # the last connection closed: the whole database is in the file (WAL checkpointed)
    return root / "storemon.db"


@pytest.fixture(scope="module")
def published(tmp_path_factory, migrated_sqlite) -> Path:
    return published_database(
        tmp_path_factory.mktemp("published"),
        migrated_sqlite,
        [("polls.csv", POLLS), ("hours.csv", HOURS), ("timezones.csv", TIMEZONES)],
    )


@pytest.fixture
def engine(tmp_path, published):
    """A database of this test's own holding POLLS, HOURS and TIMEZONES and the report on them."""
    engine = copy_of_migrated_sqlite(published, tmp_path / "storemon.db")
    yield engine
    engine.dispose()


def client_for(engine) -> TestClient:
    return TestClient(create_app(dagster_url="http://dagster.test", reports_dir=Path("/nonexistent"), engine=engine))


@pytest.fixture
def client(engine):
    with client_for(engine) as test_client:
        yield test_client


def test_store_detail_has_schedule_report_row_and_the_intervals_of_the_week(client):
    body = client.get("/stores/s").json()
    assert body["timezone"] == "America/Chicago"
    assert body["schedule"] == [{"day_of_week": 0, "day": "Mon", "opens": "09:00", "closes": "12:00"}]
    assert body["as_of"] == "2023-01-16T18:00:00.000000Z"
    assert body["report_id"] == "report-1"
    # 104.5 min up = 1.74 h, 75.5 min down = 1.26 h; the last hour (11:00-12:00 local) all down.
    assert body["report"] == WORKED_EXAMPLE_ROW
    assert body["intervals"] == [
        {
            "start_utc": "2023-01-16T15:00:00.000000Z",
            "end_utc": "2023-01-16T16:44:30.000000Z",
            "start_local": "2023-01-16T09:00:00.000000-06:00",
            "end_local": "2023-01-16T10:44:30.000000-06:00",
            "hours": pytest.approx(104.5 / 60),
            "status": "up",
        },
        {
            "start_utc": "2023-01-16T16:44:30.000000Z",
            "end_utc": "2023-01-16T18:00:00.000000Z",
            "start_local": "2023-01-16T10:44:30.000000-06:00",
            "end_local": "2023-01-16T12:00:00.000000-06:00",
            "hours": pytest.approx(75.5 / 60),
            "status": "down",
        },
    ]
    assert body["no_data"] == []
    assert body["timeline_svg"] == "/stores/s/timeline.svg"


def test_store_without_observations_shows_its_business_time_as_no_data(client):
    body = client.get("/stores/quiet").json()
    assert body["intervals"] == []
    assert [(d["start_utc"], d["end_utc"]) for d in body["no_data"]] == [
        ("2023-01-16T09:00:00.000000Z", "2023-01-16T12:00:00.000000Z")
    ]
    assert body["report"]["uptime_last_week"] == body["report"]["downtime_last_week"] == 0.0


def test_store_without_hours_is_open_around_the_clock(client):
    body = client.get("/stores/up").json()
    assert len(body["schedule"]) == 7 and {(d["opens"], d["closes"]) for d in body["schedule"]} == {("00:00", "00:00")}
    # Active throughout: one interval over the whole week [9th 18:00, 16th 18:00).
    assert [(i["start_utc"], i["end_utc"], i["status"]) for i in body["intervals"]] == [
        ("2023-01-09T18:00:00.000000Z", "2023-01-16T18:00:00.000000Z", "up")
    ]
    assert body["report"]["uptime_last_week"] == 168.0


@pytest.mark.parametrize("path", ["/stores/nobody", "/stores/nobody/timeline.svg"])
def test_unknown_store_is_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "nobody" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/summary", "/stores", "/stores/s", "/stores/s/timeline.svg"])
def test_before_any_report_is_published_the_pages_say_so(tmp_path, migrated_sqlite, path):
    with client_for(copy_of_migrated_sqlite(migrated_sqlite, tmp_path / "storemon.db")) as client:
        response = client.get(path)
    assert response.status_code == 404
    assert "no report has been published yet" in response.json()["detail"]


def test_worst_stores_are_the_most_downtime_first(client):
    body = client.get("/stores", params={"worst": 2}).json()
    assert body["as_of"] == "2023-01-16T18:00:00.000000Z"
    # s has 1.26 h down; quiet and up have 0: the tie goes to the smaller id, "quiet".
    assert [(s["store_id"], s["downtime_last_week"]) for s in body["stores"]] == [("s", 1.26), ("quiet", 0.0)]
    assert len(client.get("/stores").json()["stores"]) == 3  # default 20, three stores exist


@pytest.mark.parametrize("worst", [0, -1, MAX_WORST + 1, "many"])
def test_worst_is_bounded(client, worst):
    assert client.get("/stores", params={"worst": worst}).status_code == 422


def test_fleet_summary_adds_up_the_report(client):
    body = client.get("/summary").json()
    assert body["stores"] == 3 and body["stores_without_observations"] == 1
    # Up: 1.74 + 0 + 168 = 169.74 h; down: 1.26 h; share 169.74 / 171 = 0.99263 -> 0.9926.
    assert body["uptime_hours_last_week"] == 169.74
    assert body["downtime_hours_last_week"] == 1.26
    assert body["uptime_share_last_week"] == 0.9926
    # s: 1.74 / 3 = 58 % up: under 95 % and under 80 %; "quiet" has no business time counted.
    assert body["stores_below_95_percent"] == 1 and body["stores_below_80_percent"] == 1


def test_timeline_is_an_svg_with_a_row_per_local_day_and_both_statuses(client):
    response = client.get("/stores/s/timeline.svg")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    svg = response.text
    ElementTree.fromstring(response.content)  # well-formed XML
    # The week [Mon 9th 12:00, Mon 16th 12:00) Chicago: eight local days, Monday to Monday.
    for day in ("Mon 09 Jan", "Tue 10 Jan", "Sun 15 Jan", "Mon 16 Jan"):
        assert day in svg
    # Up and down bars drawn, each colour beside its legend entry.
    assert svg.lower().count("#0072b2") == 2 and svg.lower().count("#e69f00") == 2
    assert "America/Chicago" in svg


def test_timeline_marks_business_time_without_observations(client):
    svg = client.get("/stores/quiet/timeline.svg").text
    assert "<pattern" in svg  # the hatch of "no observation"
    assert "no observation" in svg
    # No up or down bar: each colour appears once, in the legend.
    assert svg.lower().count("#0072b2") == 1 and svg.lower().count("#e69f00") == 1


def test_the_page_is_served_at_the_root(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'id="trigger"' in response.text and '<script src="/static/app.js"' in response.text
    script = client.get("/static/app.js")  # the page's script, a served file (its CSP forbids inline script)
    assert script.status_code == 200 and "/stores?worst=" in script.text


def test_store_pages_are_in_the_openapi_document(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/summary", "/stores", "/stores/{store_id}", "/stores/{store_id}/timeline.svg"} <= set(paths)
    detail = paths["/stores/{store_id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert detail == {"$ref": "#/components/schemas/StoreDetail"}


def test_a_store_id_with_a_slash_and_a_space_has_its_pages(tmp_path, migrated_sqlite):
    # Store ids are opaque text (SPEC §1): "a/b c" is one store, open around the clock, active.
    engine = copy_of_migrated_sqlite(migrated_sqlite, tmp_path / "storemon.db")
    polls = 'store_id,status,timestamp_utc\n"a/b c",active,2023-01-16 06:00:00 UTC\n"a/b c",active,2023-01-16 18:00:00 UTC\n'
    files = [
        write_csv(tmp_path, "polls.csv", polls),
        write_csv(tmp_path, "tz.csv", 'store_id,timezone_str\n"a/b c",UTC\n'),
    ]
    ingest_files(engine, files)
    publish_current_report(engine, build_report(engine), "report-1")
    with client_for(engine) as client:
        body = client.get("/stores/a%2Fb%20c").json()
        assert body["store_id"] == "a/b c"
        assert body["report"]["uptime_last_week"] == 168.0  # the whole week [9th 18:00, 16th 18:00)
        # The link to the picture is percent-encoded, and it leads to the picture.
        assert body["timeline_svg"] == "/stores/a%2Fb%20c/timeline.svg"
        picture = client.get(body["timeline_svg"])
        assert picture.status_code == 200 and picture.headers["content-type"] == "image/svg+xml"
        assert "store a/b c" in picture.text
        # Written out with its slash, the id still names the store.
        assert client.get("/stores/a/b c").json()["store_id"] == "a/b c"
        assert client.get("/stores/a/b").status_code == 404


ODD_IDS = ["$x^{$", "a$b$c", ".", "..", "x/timeline.svg", "s" * 201, "a/../b", "%2F"]


@pytest.fixture(scope="module")
def odd_published(tmp_path_factory, migrated_sqlite) -> Path:
    """Stores whose ids are legal (SPEC §1: opaque text) but awkward in a URL or a picture's title:
    each open around the clock (UTC), active at 06:00 and 18:00 on the 16th."""
    quoted = ['"' + store.replace('"', '""') + '"' for store in ODD_IDS]
    polls = "store_id,status,timestamp_utc\n" + "".join(
        f"{q},active,2023-01-16 06:00:00 UTC\n{q},active,2023-01-16 18:00:00 UTC\n" for q in quoted
    )
    timezones = "store_id,timezone_str\n" + "".join(f"{q},UTC\n" for q in quoted)
    return published_database(
        tmp_path_factory.mktemp("odd"), migrated_sqlite, [("polls.csv", polls), ("tz.csv", timezones)]
    )


@pytest.fixture
def odd_client(tmp_path, odd_published):
    engine = copy_of_migrated_sqlite(odd_published, tmp_path / "storemon.db")
    with client_for(engine) as client:
        yield client
    engine.dispose()


@pytest.mark.parametrize("store_id", ODD_IDS)
def test_every_store_in_the_report_has_reachable_pages(odd_client, store_id):
    # The page and the JSON link to a store the way this test does: detail by its id in a query
    # parameter (any id), the picture by the link the detail gives.
    detail = odd_client.get("/store", params={"store_id": store_id})
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["store_id"] == store_id
    assert body["report"]["uptime_last_week"] == 168.0  # the whole week [9th 18:00, 16th 18:00)
    picture = odd_client.get(body["timeline_svg"])
    assert picture.status_code == 200, picture.text
    assert picture.headers["content-type"] == "image/svg+xml"
    ElementTree.fromstring(picture.content)  # well-formed XML
    # The id is drawn as the text it is: no mathematics made of a `$...$` pair.
    title = next(t for t in ElementTree.fromstring(picture.content).iter() if (t.text or "").startswith("store "))
    assert title.text.startswith(f"store {store_id} · UTC")
    assert odd_client.get("/store/timeline.svg", params={"store_id": store_id}).content == picture.content


def test_plain_ids_keep_their_path_links_and_odd_ones_get_the_query_form():
    from storemon_assets.web import timeline_path

    assert timeline_path("a/b c") == "/stores/a%2Fb%20c/timeline.svg"
    assert timeline_path("..") == "/store/timeline.svg?store_id=.."
    assert timeline_path("x/timeline.svg") == "/store/timeline.svg?store_id=x%2Ftimeline.svg"
    assert timeline_path("s" * 201) == "/store/timeline.svg?store_id=" + "s" * 201
    assert timeline_path("%2F") == "/store/timeline.svg?store_id=%252F"


@pytest.mark.parametrize("store_id", ["$x^{$", "a$b$c"])
def test_an_id_with_dollars_is_drawn_as_text_through_its_path_too(odd_client, store_id):
    picture = odd_client.get(f"/stores/{quote(store_id, safe='')}/timeline.svg")
    assert picture.status_code == 200  # was a 500: matplotlib read `$...$` as mathematics
    texts = ElementTree.fromstring(picture.content).itertext()
    assert any(text.startswith(f"store {store_id} · UTC") for text in texts)


def test_store_detail_has_the_daily_values_of_the_last_90_dates(client):
    daily = client.get("/stores/s").json()["daily"]
    # T = Monday 2023-01-16 18:00 UTC = 12:00 Chicago: the dates whose day meets the 90 days
    # before T are 2022-10-18 (12:00 CST on it is T - 90 d) to 2023-01-16: 91 dates, oldest first.
    assert (len(daily), daily[0]["date"], daily[-1]["date"]) == (91, "2022-10-18", "2023-01-16")
    # The worked example's Monday: 180 business minutes, 104.5 up and 75.5 down.
    assert daily[-1] == {
        "date": "2023-01-16",
        "business_minutes": 180.0,
        "uptime_minutes": 104.5,
        "downtime_minutes": 75.5,
        "uptime_share": 0.5806,  # 104.5 / 180 = 0.58055.. -> 0.5806
    }
    # The Monday before: open 09:00-12:00, all of it nearer to the first observation (active).
    assert daily[-8] == {
        "date": "2023-01-09",
        "business_minutes": 180.0,
        "uptime_minutes": 180.0,
        "downtime_minutes": 0.0,
        "uptime_share": 1.0,
    }
    assert daily[-2]["business_minutes"] == 0 and daily[-2]["uptime_share"] is None  # a closed Sunday
    quiet = client.get("/stores/quiet").json()["daily"]
    assert quiet[-1] == {  # no observation: business minutes count, nothing up or down
        "date": "2023-01-16",
        "business_minutes": 180.0,
        "uptime_minutes": 0.0,
        "downtime_minutes": 0.0,
        "uptime_share": None,
    }


def test_summary_has_the_fleets_uptime_over_the_last_30_days(client):
    share = client.get("/summary").json()["uptime_share_last_30_days"]
    # The dates meeting [T - 30 d, T) = [2022-12-17 18:00, 2023-01-16 18:00) UTC: 2022-12-17 ..
    # 2023-01-16. "s" is open 5 Mondays x 3 h (12-19 .. 01-16), of which only the last Monday's
    # 75.5 min are down: 900 - 75.5 = 824.5 min up. "up" (24x7 UTC, always active) has those
    # dates up to T: 30 days + 18 h = 44,280 min, all up. "quiet" observed nothing. Share =
    # (824.5 + 44,280) / (900 + 44,280) = 45,104.5 / 45,180 = 0.99833.. -> 0.9983.
    assert share == 0.9983


def test_a_picture_is_drawn_once_per_report_and_store(engine, monkeypatch):
    from storemon_assets.web import routes

    drawn = []
    real = routes.timeline_svg
    monkeypatch.setattr(routes, "timeline_svg", lambda rows, title: drawn.append(title) or real(rows, title))
    with client_for(engine) as client:
        first = client.get("/stores/s/timeline.svg")
        assert client.get("/stores/s/timeline.svg").content == first.content
        assert client.get("/store/timeline.svg", params={"store_id": "s"}).content == first.content
        assert len(drawn) == 1  # the same report and store: kept
        client.get("/stores/up/timeline.svg")
        assert len(drawn) == 2
        publish_current_report(engine, build_report(engine), "report-2")  # a new report: drawn anew
        assert client.get("/stores/s/timeline.svg").status_code == 200
        assert len(drawn) == 3
        assert client.get("/stores/nobody/timeline.svg").status_code == 404  # an unknown store: nothing kept


def test_pictures_asked_for_at_once_leave_worker_threads_for_the_other_pages(tmp_path, monkeypatch, migrated_sqlite):
    """20 stores' pictures at once, each slow to draw (0.2 s), on a pool of 4 worker threads: they
    are drawn at most DRAWING_AT_ONCE at a time, and /summary, asked for once they all wait, is
    answered before the tenth is drawn (it used to wait for a thread behind nearly all of them: the
    18th or so of 20, as of 40 before; 20 drawn two at a time take 2 s of waiting, 40 took 4)."""
    import threading
    import time

    import anyio
    import httpx

    from storemon_assets.web import routes
    from storemon_assets.web.pictures import DRAWING_AT_ONCE

    stores = [f"store-{n:02d}" for n in range(20)]
    engine = copy_of_migrated_sqlite(migrated_sqlite, tmp_path / "storemon.db")
    polls = "store_id,status,timestamp_utc\n" + "".join(f"{s},active,2023-01-16 18:00:00 UTC\n" for s in stores)
    ingest_files(engine, [write_csv(tmp_path, "polls.csv", polls)])
    publish_current_report(engine, build_report(engine), "report-1")

    drawing, most, events = [0], [0], []
    guard = threading.Lock()

    def slow_picture(rows, title):
        with guard:
            drawing[0] += 1
            most[0] = max(most[0], drawing[0])
        time.sleep(0.2)
        with guard:
            drawing[0] -= 1
            events.append("picture")
        return b"<svg/>"

    monkeypatch.setattr(routes, "timeline_svg", slow_picture)
    app = create_app(dagster_url="http://dagster.test", reports_dir=Path("/nonexistent"), engine=engine)

    async def load():
        anyio.to_thread.current_default_thread_limiter().total_tokens = 4
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:

            async def picture(store: str):
                assert (await client.get(f"/stores/{store}/timeline.svg")).status_code == 200

            async def summary():
                await anyio.sleep(0.1)  # the pictures all asked for by then
                assert (await client.get("/summary")).status_code == 200
                events.append("summary")

            async with anyio.create_task_group() as group:
                for store in stores:
                    group.start_soon(picture, store)
                group.start_soon(summary)

    anyio.run(load)
    assert events.count("picture") == len(stores)
    assert most[0] <= DRAWING_AT_ONCE
    assert events.index("summary") < 10, events.index("summary")


def test_the_store_page_shows_the_90_day_strip_one_bar_per_date(client):
    page = client.get("/stores/s", headers={"Accept": "text/html"}).text
    strip = page[page.index('<div class="strip"') : page.index("</div>", page.index('<div class="strip"'))]
    bars = strip.count("<span ")
    assert bars == len(client.get("/stores/s").json()["daily"]) == 91  # 2022-10-18 .. 2023-01-16
    # The worked example's Monday: 104.5 of 180 minutes up = 58.06 %, below 80 %: a "down" bar.
    assert (
        '<span class="down" title="2023-01-16: 104.50 min up, 75.50 min down of 180.00 business minutes '
        '(58.06 % up)"></span>' in strip
    )
    # The Monday before, all 180 minutes up; the Sunday between, closed.
    assert '<span class="up" title="2023-01-09: 180.00 min up, 0.00 min down of 180.00' in strip
    assert '<span class="closed" title="2023-01-15: 0.00 min up, 0.00 min down of 0.00 business minutes">' in strip
    assert '<link rel="stylesheet" href="/static/strip.css">' in page
    assert client.get("/static/strip.css").text.count(".strip") == 8


def test_strip_bands_follow_the_uptime_share():
    from storemon_assets.web.store_page import strip_band

    assert [strip_band(60, s) for s in (1.0, 0.995, 0.9949, 0.95, 0.8, 0.7999, None)] == [
        "up",
        "up",
        "mostly",
        "mostly",
        "partly",
        "down",
        "unknown",
    ]
    assert strip_band(0, None) == "closed"
