"""SPEC §10 over HTTP: every route behind the token dependency unless it is on the public list,
every route x every kind of caller, tenant tokens that see only their stores, cross-site
refusal, trigger coalescing / rate limit / idempotent launch, unknown ids remembered, and output
hygiene (Content-Security-Policy, hostile store ids in page, SVG and JSON).

A real SQLite database holds a published report of three stores ("s", "up" and HIDDEN) and the
tokens; Dagster is a fake run client (what lives in Dagster itself is in test_api.py)."""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import polars as pl
import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from storemon_assets.api import create_app
from storemon_assets.api.reports import report_runs
from storemon_assets.api.runs import RUNNING_STATES, DagsterUnavailable, LaunchUnconfirmed, RunInfo
from storemon_assets.core.access import RateLimiter
from storemon_assets.db.engine import open_database
from storemon_assets.db.tokens import create_token, find_token, revoke_token
from storemon_assets.names import REPORT_JOB, REQUESTED_BY_TAG, TRIGGER_ID_TAG, TRIGGER_KEY_TAG
from storemon_assets.service import build_report, ingest_files, publish_current_report, write_report_text
from storemon_assets.settings import sqlite_url
from storemon_assets.web.access import PAGE_POLICY, PUBLIC_PATHS, authorize
from storemon_tests.dagster_server import LOCAL_INSTANCE_CONFIG
from storemon_tests.helpers import write_csv

HIDDEN = "hidden-b7e1"  # a store the tenant token must never see
TENANT_STORES = "s,up"
POLLS = f"""store_id,status,timestamp_utc
s,active,2023-01-16 16:14:00.000000 UTC
s,inactive,2023-01-16 17:15:00.000000 UTC
up,active,2023-01-16 06:00:00 UTC
up,active,2023-01-16 18:00:00 UTC
{HIDDEN},inactive,2023-01-16 06:00:00 UTC
{HIDDEN},inactive,2023-01-16 18:00:00 UTC
"""
TIMEZONES = f"store_id,timezone_str\ns,America/Chicago\nup,UTC\n{HIDDEN},UTC\n"
HOSTILE_IDS = [
    "<script>alert(1)</script>",
    "\"'><img src=x onerror=alert(2)>",
    "$(touch /tmp/pwned)${7*7}",
    "</svg><svg onload=alert(3)>",
    "a&amp;b",
]


@dataclass
class FakeRuns:
    """Dagster as the API sees it, with run tags: launches recorded, runs found by tag."""

    runs: dict[str, RunInfo] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    launched: list[tuple[str | None, dict]] = field(default_factory=list)
    looked_up: list[str] = field(default_factory=list)
    times_out_after_creating: bool = False
    unreachable: bool = False

    def launch_report(self, as_of: str | None, tags: dict[str, str]) -> str:
        if self.unreachable:
            raise DagsterUnavailable("Dagster webserver at http://dagster.test is unreachable (ConnectError)")
        self.launched.append((as_of, tags))
        run_id = self.add(REPORT_JOB, "QUEUED", tags=tags)
        if self.times_out_after_creating:
            raise LaunchUnconfirmed("Dagster webserver at http://dagster.test did not answer within 10 s")
        return run_id

    def run_info(self, run_id: str) -> RunInfo | None:
        self.looked_up.append(run_id)
        return self.runs.get(run_id)

    def find_run(self, tags: dict[str, str], statuses) -> str | None:
        for run_id, run_tags in self.tags.items():
            if tags.items() <= run_tags.items() and (statuses is None or self.runs[run_id].status in statuses):
                return run_id
        return None

    def add(self, job_name: str, status: str, tags: dict | None = None) -> str:
        run_id = str(uuid.uuid4())
        self.runs[run_id] = RunInfo(job_name, status, None)
        self.tags[run_id] = dict(tags or {})
        return run_id

    def close(self) -> None:
        pass


@dataclass
class World:
    engine: object
    reports: Path
    dagster: FakeRuns
    finished_id: str
    tokens: dict[str, str | None]


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> tuple[Path, pl.DataFrame, dict[str, str | None]]:
    """The database every world starts from, made once: the report published and the tokens
    created (ingesting, reporting and hashing tokens again for each test cost ~0.4 s)."""
    folder = tmp_path_factory.mktemp("published")
    engine = open_database(sqlite_url(folder / "storemon.db"))
    files = [write_csv(folder / "in", "polls.csv", POLLS), write_csv(folder / "in", "tz.csv", TIMEZONES)]
    ingest_files(engine, files)
    result = build_report(engine)
    publish_current_report(engine, result, "report-1")
    tokens: dict[str, str | None] = {"no token": None, "bad": "smt_" + "x" * 43}
    for scope in ("read", "trigger", "admin"):
        tokens[scope] = create_token(engine, scope, scope)
    tokens["tenant"] = create_token(engine, "tenant", "trigger", frozenset(TENANT_STORES.split(",")))
    tokens["revoked"] = create_token(engine, "revoked", "admin")
    revoke_token(engine, "revoked")
    engine.dispose()
    return folder / "storemon.db", result.report, tokens


@pytest.fixture
def world(tmp_path, published) -> World:
    """A copy of the `published` database of its own, and a Dagster that has run one report."""
    database, report, tokens = published
    shutil.copyfile(database, tmp_path / "storemon.db")
    engine = open_database(sqlite_url(tmp_path / "storemon.db"))
    dagster = FakeRuns()
    finished_id = dagster.add(REPORT_JOB, "SUCCESS")
    write_report_text(report, tmp_path / "reports" / f"{finished_id}.csv")
    yield World(engine, tmp_path / "reports", dagster, finished_id, dict(tokens))
    engine.dispose()


def app_for(world: World, listen_host: str = "127.0.0.1"):
    app = create_app(
        dagster_url="http://dagster.test", reports_dir=world.reports, engine=world.engine, listen_host=listen_host
    )
    app.dependency_overrides[report_runs] = lambda: world.dagster
    return app


@pytest.fixture
def app(world):
    return app_for(world)


@pytest.fixture
def client(app):
    with TestClient(app) as test_client:
        yield test_client


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


# --- every route is protected or public on purpose ---------------------------------------------


def _calls(dependant) -> set:
    found = {dependant.call}
    for sub in dependant.dependencies:
        found |= _calls(sub)
    return found


def routes(app) -> list:
    """Every route as served (routers included), with its effective dependencies."""
    return list(iter_route_contexts(app.routes))


def unprotected_routes(app) -> list[str]:
    """Routes that are neither on the public list nor behind `authorize` (should be none)."""
    bad = []
    for route in routes(app):
        if route.path in PUBLIC_PATHS:
            continue
        dependant = getattr(route, "dependant", None)
        if dependant is None or authorize not in _calls(dependant):
            bad.append(f"{sorted(route.methods or [])} {route.path}")
    return bad


def test_every_route_is_public_by_name_or_behind_the_token_dependency(app):
    assert unprotected_routes(app) == []


def test_the_route_check_sees_a_route_added_without_the_dependency(app):
    @app.get("/leaky")
    def leaky() -> dict:
        return {}

    assert unprotected_routes(app) == ["['GET'] /leaky"]


# --- the matrix: every route x every kind of caller ----------------------------------------------

# Example values for the parameters a route requires; a new route with a required parameter not
# listed here fails the matrix until its author adds one.
EXAMPLE_PATH_VALUES = {"store_id": "s"}


def concrete_requests(app, world: World) -> list[tuple[str, str, dict]]:
    """(method, url, json body) for every protected route."""
    examples = {**EXAMPLE_PATH_VALUES}
    query_examples = {"report_id": world.finished_id, **EXAMPLE_PATH_VALUES}
    requests = []
    for route in routes(app):
        if route.path in PUBLIC_PATHS:
            continue
        url = route.path
        for name in re.findall(r"{(\w+)(?::\w+)?}", route.path):
            assert name in examples, f"add an example value for path parameter {name!r} of {route.path}"
            url = re.sub(r"{" + name + r"(?::\w+)?}", quote(examples[name], safe=""), url)
        query = {}
        for param in route.dependant.query_params:
            if param.field_info.is_required():
                assert param.name in query_examples, f"add an example for query parameter {param.name!r} of {url}"
                query[param.name] = query_examples[param.name]
        if query:
            url += "?" + "&".join(f"{k}={quote(v)}" for k, v in query.items())
        for method in sorted(route.methods):
            requests.append((method, url, {}))
    return requests


EXPECTED = {  # caller -> (status of a read, status of a trigger); "ok" = neither 401 nor 403
    "no token": (401, 401),
    "bad": (401, 401),
    "revoked": (401, 401),
    "read": ("ok", 403),
    "trigger": ("ok", "ok"),
    "admin": ("ok", "ok"),
    "tenant": ("ok", "ok"),
}


@pytest.mark.parametrize("caller", sorted(EXPECTED))
def test_every_route_answers_each_kind_of_caller_as_spec_10_says(app, world, client, caller):
    requests = concrete_requests(app, world)
    assert {m for m, _, _ in requests} >= {"GET", "POST"}
    seen = []
    for method, url, _ in requests:
        response = client.request(method, url, headers=bearer(world.tokens[caller]))
        expected = EXPECTED[caller][0 if method in ("GET", "HEAD") else 1]
        got = response.status_code if response.status_code in (401, 403) else "ok"
        seen.append((method, url, got))
        assert got == expected, f"{caller}: {method} {url} -> {response.status_code} {response.text[:200]}"
        if got == 401:
            assert response.headers["www-authenticate"] == "Bearer"
    assert len(seen) == len(requests)


def test_public_routes_answer_without_a_token_once_tokens_exist(client):
    for path in ("/health", "/", "/static/app.js", "/static/app.css", "/openapi.json"):
        assert client.get(path).status_code == 200, path


def test_a_revoked_token_is_refused_within_the_remembering_bound(app, world, client):
    assert client.get("/summary", headers=bearer(world.tokens["read"])).status_code == 200
    revoke_token(world.engine, "read")
    app.state.token_authority.forget()  # what TOKEN_TTL_SECONDS of waiting does
    assert client.get("/summary", headers=bearer(world.tokens["read"])).status_code == 401


# --- open and closed ---------------------------------------------------------------------------------


@pytest.fixture
def tokenless(tmp_path):
    engine = open_database(sqlite_url(tmp_path / "open.db"))
    yield engine
    engine.dispose()


def test_with_no_token_on_loopback_every_route_is_open_and_runs_name_the_client(tmp_path, tokenless):
    world = World(tokenless, tmp_path, FakeRuns(), "", {})
    with TestClient(app_for(world)) as client:
        assert client.get("/stores").status_code == 404  # open: no report yet, not 401
        response = client.post("/trigger_report")
        assert response.status_code == 200
    assert world.dagster.launched[0][1][REQUESTED_BY_TAG] == "open:testclient"


def test_with_no_token_on_another_address_every_protected_route_is_closed(tmp_path, tokenless):
    world = World(tokenless, tmp_path, FakeRuns(), "", {})
    with TestClient(app_for(world, listen_host="0.0.0.0")) as client:
        assert client.get("/stores").status_code == 401
        assert client.post("/trigger_report").status_code == 401
        assert client.get("/health").status_code == 200


def test_the_first_token_closes_an_open_api(tmp_path, tokenless):
    world = World(tokenless, tmp_path, FakeRuns(), "", {})
    app = app_for(world)
    with TestClient(app) as client:
        assert client.get("/stores").status_code == 404
        token = create_token(tokenless, "first", "read")
        app.state.token_authority.forget()
        assert client.get("/stores").status_code == 401
        assert client.get("/stores", headers=bearer(token)).status_code == 404


# --- tenants ----------------------------------------------------------------------------------------


def test_a_tenant_sees_only_its_stores_in_every_answer(app, world, client):
    headers = bearer(world.tokens["tenant"])
    for method, url, _ in concrete_requests(app, world):
        if method != "GET":
            continue
        response = client.get(url, headers=headers)
        assert HIDDEN not in response.text, url
    # ... and the store exists: an admin sees it (the check above can fail).
    admin = bearer(world.tokens["admin"])
    assert HIDDEN in client.get(f"/get_report?report_id={world.finished_id}", headers=admin).text
    assert HIDDEN in client.get("/stores?worst=10", headers=admin).text


@pytest.mark.parametrize(
    "template", ["/stores/{}", "/stores/{}/timeline.svg", "/store?store_id={}", "/store/timeline.svg?store_id={}"]
)
def test_a_store_outside_the_tenants_set_is_404_like_an_unknown_store(client, world, template):
    tenant, admin = bearer(world.tokens["tenant"]), bearer(world.tokens["admin"])
    assert client.get(template.format(HIDDEN), headers=admin).status_code == 200
    hidden = client.get(template.format(HIDDEN), headers=tenant)
    unknown = client.get(template.format("nobody"), headers=tenant)
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json()["detail"].replace(HIDDEN, "X") == unknown.json()["detail"].replace("nobody", "X")


def test_a_tenant_gets_the_reports_csv_with_only_its_rows(client, world):
    # A fleet-wide stale-data warning (it names the newest poll of any store) is not a tenant's.
    world.dagster.runs[world.finished_id] = RunInfo(REPORT_JOB, "SUCCESS", None, "stale data: T (...) is 4.0 days")
    response = client.get(f"/get_report?report_id={world.finished_id}", headers=bearer(world.tokens["tenant"]))
    assert response.headers["x-report-status"] == "Complete"
    frame = pl.read_csv(response.content, infer_schema=False)
    assert frame.get_column("store_id").to_list() == ["s", "up"]
    full = client.get(f"/get_report?report_id={world.finished_id}", headers=bearer(world.tokens["admin"]))
    assert "x-report-warning" not in response.headers and full.headers["x-report-warning"].startswith("stale data")
    # The tenant's lines are the full report's lines, byte for byte.
    assert set(response.text.splitlines()) < set(full.text.splitlines())


def test_a_tenants_summary_counts_its_stores_only(client, world):
    admin = client.get("/summary", headers=bearer(world.tokens["admin"])).json()
    tenant = client.get("/summary", headers=bearer(world.tokens["tenant"])).json()
    assert admin["stores"] == 3 and tenant["stores"] == 2
    # The 30-day share from daily values: HIDDEN (open around the clock, inactive at every poll) is
    # down on every one of its days, "up" up on every one; only the admin's share counts HIDDEN.
    assert tenant["uptime_share_last_30_days"] > admin["uptime_share_last_30_days"]
    # HIDDEN is inactive all week in UTC, around the clock: 168 h of downtime only the admin sees.
    assert admin["downtime_hours_last_week"] - tenant["downtime_hours_last_week"] == pytest.approx(168.0)


def test_a_tenants_30_day_share_is_computed_once_per_report_like_the_fleets(client, world, monkeypatch):
    import storemon_assets.history as history

    computed = []
    real = history.daily_history
    monkeypatch.setattr(history, "daily_history", lambda *a, **k: computed.append(1) or real(*a, **k))
    monkeypatch.setattr(history, "_UPTIME_SHARES", {})
    for _ in range(3):
        shares = [
            client.get("/summary", headers=bearer(world.tokens[name])).json()["uptime_share_last_30_days"]
            for name in ("tenant", "admin")
        ]
    assert len(computed) == 2  # one for the tenant's stores, one for the fleet; the rest remembered
    assert shares[0] > shares[1]  # and still each its own (HIDDEN counts for the admin only)


# --- cross-site --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}],
)
def test_a_cross_site_trigger_is_refused_and_launches_nothing(client, world, headers):
    response = client.post(
        "/trigger_report", headers={**headers, **bearer(world.tokens["admin"]), "Content-Type": "text/plain"}
    )
    assert response.status_code == 403 and "cross-site" in response.json()["detail"]
    assert world.dagster.launched == []


def test_the_page_and_scripts_may_trigger_and_a_post_with_no_body_is_valid(client, world):
    token = bearer(world.tokens["admin"])
    page = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    assert client.post("/trigger_report", headers={**token, **page}).status_code == 200
    assert client.post("/trigger_report", headers=token, content=b"").status_code == 200


def test_no_cors_allowance_is_given(client):
    response = client.options(
        "/trigger_report", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in response.headers


# --- trigger limits -------------------------------------------------------------------------------------


def test_identical_triggers_while_the_run_is_queued_get_its_id_and_launch_once(client, world):
    token = bearer(world.tokens["trigger"])
    ids = {client.post("/trigger_report", headers=token).json()["report_id"] for _ in range(100)}
    assert len(ids) == 1 and len(world.dagster.launched) == 1
    tags = world.dagster.launched[0][1]
    assert tags[REQUESTED_BY_TAG] == "trigger" and TRIGGER_KEY_TAG in tags and TRIGGER_ID_TAG in tags


def test_a_trigger_after_the_run_ended_or_for_another_t_or_new_data_launches_again(app, client, world, tmp_path):
    token = bearer(world.tokens["trigger"])
    first = client.post("/trigger_report", headers=token).json()["report_id"]
    other_t = client.post("/trigger_report", headers=token, json={"as_of": "2023-01-16T12:00:00Z"}).json()
    assert other_t["report_id"] != first
    ingest_files(
        world.engine,
        [write_csv(tmp_path / "more", "p.csv", "store_id,status,timestamp_utc\nup,active,2023-01-16 19:00:00 UTC\n")],
    )
    new_data = client.post("/trigger_report", headers=token).json()["report_id"]
    assert new_data != first
    world.dagster.runs[new_data] = RunInfo(REPORT_JOB, "SUCCESS", None)
    app.state.trigger_desk.recheck_seconds = 0  # what a second of waiting does
    assert client.post("/trigger_report", headers=token).json()["report_id"] not in (first, new_data)
    assert len(world.dagster.launched) == 4


def test_a_queued_identical_run_is_found_in_dagster_by_its_tag(app, client, world):
    token = bearer(world.tokens["trigger"])
    first = client.post("/trigger_report", headers=token).json()["report_id"]
    app.state.trigger_desk.forget()  # another API process, or this one restarted
    assert client.post("/trigger_report", headers=token).json()["report_id"] == first
    assert len(world.dagster.launched) == 1


def test_launches_beyond_the_callers_rate_are_429_with_retry_after(app, client, world):
    app.state.trigger_desk.limiter = RateLimiter(burst=3, per_minute=6)  # then one per 10 s
    token = bearer(world.tokens["trigger"])
    answers = [
        client.post("/trigger_report", headers=token, json={"as_of": f"2023-01-16T0{i}:00:00Z"}) for i in range(4)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert 1 <= int(answers[3].headers["retry-after"]) <= 10
    assert len(world.dagster.launched) == 3
    # Another caller has its own bucket.
    other = client.post(
        "/trigger_report", headers=bearer(world.tokens["admin"]), json={"as_of": "2023-01-16T05:00:00Z"}
    )
    assert other.status_code == 200


def test_a_launch_dagster_did_not_confirm_is_answered_with_the_run_it_created(client, world):
    world.dagster.times_out_after_creating = True
    response = client.post("/trigger_report", headers=bearer(world.tokens["trigger"]))
    assert response.status_code == 200
    assert response.json()["report_id"] in world.dagster.runs and len(world.dagster.launched) == 1


def test_an_unreachable_dagster_is_503_and_quotes_no_graphql(client, world):
    world.dagster.unreachable = True
    response = client.post("/trigger_report", headers=bearer(world.tokens["trigger"]))
    assert response.status_code == 503
    assert not re.search(r"mutation|query|\{", response.json()["detail"])


def test_an_unknown_report_id_is_remembered_briefly(client, world):
    unknown = str(uuid.uuid4())
    token = bearer(world.tokens["read"])
    assert [client.get(f"/get_report?report_id={unknown}", headers=token).status_code for _ in range(5)] == [404] * 5
    assert world.dagster.looked_up.count(unknown) == 1


def test_polling_random_ids_cannot_drive_one_dagster_request_each(client, world):
    token = bearer(world.tokens["read"])
    answers = [client.get(f"/get_report?report_id={uuid.uuid4()}", headers=token).status_code for _ in range(100)]
    assert set(answers) == {404, 429} and answers.count(404) < 50
    assert len(world.dagster.looked_up) == answers.count(404)


def test_polls_of_a_running_report_share_one_dagster_lookup_a_second(client, world):
    running = world.dagster.add(REPORT_JOB, sorted(RUNNING_STATES)[0])
    token = bearer(world.tokens["read"])
    for _ in range(20):
        assert client.get(f"/get_report?report_id={running}", headers=token).json() == {"status": "Running"}
    assert world.dagster.looked_up.count(running) <= 2  # the loop may straddle one second


# --- output hygiene ------------------------------------------------------------------------------------


def test_the_page_has_a_strict_policy_and_no_inline_script_or_style(client):
    response = client.get("/")
    policy = response.headers["content-security-policy"]
    assert policy == PAGE_POLICY and "'unsafe-inline'" not in policy and "script-src 'self'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", response.text)  # every script is a file
    assert "<style" not in response.text and " style=" not in response.text
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/../index.html").status_code == 404
    assert client.get("/static/nothing.js").status_code == 404


@pytest.fixture(scope="module")
def hostile_published(tmp_path_factory) -> Path:
    """A published report whose stores have hostile ids, made once; `hostile` serves a copy."""
    folder = tmp_path_factory.mktemp("hostile")
    engine = open_database(sqlite_url(folder / "hostile.db"))
    lines = ["store_id,status,timestamp_utc"]
    zones = ["store_id,timezone_str"]
    for store in HOSTILE_IDS:
        quoted = '"' + store.replace('"', '""') + '"'
        lines += [f"{quoted},inactive,2023-01-16 06:00:00 UTC", f"{quoted},active,2023-01-16 18:00:00 UTC"]
        zones.append(f"{quoted},UTC")
    ingest_files(
        engine,
        [write_csv(folder, "p.csv", "\n".join(lines) + "\n"), write_csv(folder, "z.csv", "\n".join(zones) + "\n")],
    )
    publish_current_report(engine, build_report(engine), "report-h")
    engine.dispose()  # the last connection closed: the whole database is in the one file
    return folder / "hostile.db"


@pytest.fixture
def hostile(tmp_path, hostile_published):
    """The hostile ids' published report in a database of this test's own (open API: no token)."""
    shutil.copyfile(hostile_published, tmp_path / "hostile.db")
    engine = open_database(sqlite_url(tmp_path / "hostile.db"))
    world = World(engine, tmp_path, FakeRuns(), "", {})
    with TestClient(app_for(world)) as client:
        yield client
    engine.dispose()


@pytest.mark.parametrize("store_id", HOSTILE_IDS)
def test_a_hostile_store_id_stays_text_in_json_and_svg(hostile, store_id):
    detail = hostile.get(f"/stores/{quote(store_id, safe='')}")
    assert detail.status_code == 200 and detail.headers["content-type"] == "application/json"
    assert detail.json()["store_id"] == store_id
    picture = hostile.get(detail.json()["timeline_svg"])
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/svg+xml"
    assert "script-src" not in picture.headers["content-security-policy"]  # default-src 'none': no script
    root = ElementTree.fromstring(picture.content)  # well-formed: the id did not break out
    tags = {element.tag.rsplit("}", 1)[-1] for element in root.iter()}
    assert not tags & {"script", "foreignObject", "img", "iframe"}
    assert not [a for e in root.iter() for a in e.attrib if a.lower().startswith("on")]
    assert any(store_id in (element.text or "") for element in root.iter())  # shown, as text
    listing = hostile.get("/stores?worst=10").json()
    assert store_id in [s["store_id"] for s in listing["stores"]]


def test_a_hostile_store_id_in_an_error_is_json_text(hostile):
    response = hostile.get(f"/stores/{quote('<script>nobody</script>', safe='')}")
    assert response.status_code == 404 and response.headers["content-type"] == "application/json"
    assert json.loads(response.text)["detail"].startswith("store '<script>nobody</script>'")


def test_the_pages_script_builds_no_html_from_data():
    # Store ids reach the page as JSON and are shown with textContent; no call that parses HTML.
    script = (Path(__file__).resolve().parent.parent / "storemon_assets" / "web" / "static" / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink


def test_last_used_is_written_in_the_background_not_per_request(app, world, client):
    token = bearer(world.tokens["read"])
    assert client.get("/summary", headers=token).status_code == 200
    assert find_token(world.engine, world.tokens["read"]).last_used_at_us is None  # not a write per request
    app.state.token_authority._used_written_at = float("-inf")  # what LAST_USED_WRITE_SECONDS of waiting does
    assert client.get("/summary", headers=token).status_code == 200
    deadline = time.monotonic() + 10
    while find_token(world.engine, world.tokens["read"]).last_used_at_us is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert find_token(world.engine, world.tokens["read"]).last_used_at_us is not None


def test_the_shipped_local_instance_caps_runs_and_api_reports(tmp_path):
    import dagster as dg

    shutil.copyfile(LOCAL_INSTANCE_CONFIG, tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 4
        assert queue.tag_concurrency_limits == [{"key": "storemon/api", "value": "trigger_report", "limit": 2}]
    finally:
        instance.dispose()


def test_status_now_and_incidents_name_and_count_only_a_tenants_stores(client, world):
    tenant, admin = bearer(world.tokens["tenant"]), bearer(world.tokens["admin"])
    everyone = client.get("/status", headers=admin).json()
    own = client.get("/status", headers=tenant).json()
    # 3 stores in the report, the tenant owns 2 of them (s and up); HIDDEN is down all week.
    assert sum(everyone["counts"][k] for k in ("up", "down", "closed", "no_data")) == 3
    assert sum(own["counts"][k] for k in ("up", "down", "closed", "no_data")) == 2
    assert HIDDEN in {s["store_id"] for s in everyone["stores"]}
    assert {s["store_id"] for s in own["stores"]} == {"s", "up"}
    assert everyone["counts"]["down"] - own["counts"]["down"] == 1  # HIDDEN's
    assert HIDDEN in {i["store_id"] for i in client.get("/incidents", headers=admin).json()["incidents"]}
    assert HIDDEN not in {i["store_id"] for i in client.get("/incidents", headers=tenant).json()["incidents"]}


@pytest.mark.parametrize("template", ["/stores/{}", "/store?store_id={}"])
def test_a_store_page_in_html_is_404_for_a_tenants_foreign_store_and_has_no_inline_style(client, world, template):
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    tenant, admin = {**bearer(world.tokens["tenant"]), **html}, {**bearer(world.tokens["admin"]), **html}
    shown = client.get(template.format(HIDDEN), headers=admin)
    assert shown.status_code == 200 and shown.headers["content-type"].startswith("text/html")
    assert shown.headers["content-security-policy"] == PAGE_POLICY
    assert "<style" not in shown.text and " style=" not in shown.text and "<script" not in shown.text
    assert client.get("/static/store.css").headers["content-type"].startswith("text/css")
    hidden = client.get(template.format(HIDDEN), headers=tenant)
    unknown = client.get(template.format("nobody"), headers=tenant)
    assert hidden.status_code == unknown.status_code == 404  # the same page as for a store that does not exist
    assert hidden.text.replace(HIDDEN, "X") == unknown.text.replace("nobody", "X")
    assert client.get(template.format("s"), headers=tenant).status_code == 200
