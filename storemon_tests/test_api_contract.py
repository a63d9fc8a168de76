"""The HTTP contract of the trigger + poll API (SPEC §7), with a fake run client in place of
Dagster (`app.dependency_overrides`). What lives in Dagster itself (runs really produce the
CLI's CSV, failure reasons from real events, concurrency) is in test_api.py, end to end."""

from __future__ import annotations

import json
import re
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from storemon_assets.api import create_app
from storemon_assets.api.reports import report_runs
from storemon_assets.api.runs import (
    FAILED_STATES,
    RUNNING_STATES,
    DagsterRefused,
    DagsterRuns,
    DagsterUnavailable,
    RunInfo,
    data_warning,
    failure_reason,
)
from storemon_assets.core.instants import parse_as_of
from storemon_assets.db.engine import open_database
from storemon_assets.local_servers import free_port
from storemon_assets.names import AS_OF_REPORT_JOB, DATA_WARNING_LABEL, INGEST_JOB, REPORT_JOB, REPORT_PRODUCING_JOBS
from storemon_assets.settings import sqlite_url
from storemon_tests.helpers import examples

CSV = "store_id,uptime_last_hour,uptime_last_day,uptime_last_week,downtime_last_hour,downtime_last_day,downtime_last_week\n"


@dataclass
class FakeRuns:
    """Dagster as the API sees it: runs by id (and their tags), and a record of every launch (its as_of)."""

    runs: dict[str, RunInfo] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    launched: list[str | None] = field(default_factory=list)
    looked_up: list[str] = field(default_factory=list)
    unreachable: bool = False
    refuses: bool = False

    def launch_report(self, as_of: str | None, tags: dict[str, str] | None = None) -> str:
        self._check_reachable()
        if self.refuses:
            raise DagsterRefused("JobNotFoundError", "report_job not found")
        self.launched.append(as_of)
        run_id = self.add(REPORT_JOB, "QUEUED")
        self.tags[run_id] = dict(tags or {})
        return run_id

    def find_run(self, tags: dict[str, str], statuses) -> str | None:
        self._check_reachable()
        for run_id, run_tags in self.tags.items():
            if tags.items() <= run_tags.items() and (statuses is None or self.runs[run_id].status in statuses):
                return run_id
        return None

    def run_info(self, run_id: str) -> RunInfo | None:
        self._check_reachable()
        self.looked_up.append(run_id)
        return self.runs.get(run_id)

    def add(self, job_name: str, status: str, error: str | None = None) -> str:
        run_id = str(uuid.uuid4())
        self.runs[run_id] = RunInfo(job_name, status, error)
        return run_id

    def _check_reachable(self) -> None:
        if self.unreachable:
            raise DagsterUnavailable("Dagster webserver at http://dagster.test is unreachable (ConnectError)")


@pytest.fixture
def dagster() -> FakeRuns:
    return FakeRuns()


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def client(dagster: FakeRuns, reports: Path, tmp_path: Path):
    # An open API (no token, loopback): the access rules are test_access_api.py's.
    app = create_app(dagster_url="http://dagster.test", reports_dir=reports, database_url=sqlite_url(tmp_path / "s.db"))
    app.dependency_overrides[report_runs] = lambda: dagster
    with TestClient(app) as test_client:
        yield test_client


def get_report(client: TestClient, report_id: str, path: str = "/get_report"):
    return client.get(path, params={"report_id": report_id})


# --- POST /trigger_report ----------------------------------------------------------------


def test_trigger_launches_one_report_run_and_answers_with_its_id(client, dagster):
    response = client.post("/trigger_report")
    assert response.status_code == 200
    assert response.json() == {"report_id": next(iter(dagster.runs))}
    assert dagster.launched == [None]  # T left to the run: the latest poll


@pytest.mark.parametrize(
    ("body", "as_of"), [(None, None), ({}, None), ({"as_of": None}, None), ({"as_of": "  "}, None)]
)
def test_trigger_without_as_of_leaves_t_to_the_run(client, dagster, body, as_of):
    assert client.post("/trigger_report", json=body).status_code == 200
    assert dagster.launched == [as_of]


@pytest.mark.parametrize("as_of", ["2023-01-24T00:00:00Z", " 2023-01-24 00:00:00 UTC "])
def test_trigger_passes_a_valid_as_of_to_the_run_as_its_instant(client, dagster, as_of):
    assert client.post("/trigger_report", json={"as_of": as_of}).status_code == 200
    assert dagster.launched == ["2023-01-24T00:00:00.000000Z"]


def test_trigger_fixes_now_at_the_request(client, dagster):
    before = time.time()
    assert client.post("/trigger_report", json={"as_of": "now"}).status_code == 200
    launched_us = parse_as_of(dagster.launched[0])
    assert before * 1e6 - 1 <= launched_us <= time.time() * 1e6 + 1


def test_bad_as_of_is_422_and_launches_no_run(client, dagster):
    response = client.post("/trigger_report", json={"as_of": "next thursday"})
    assert response.status_code == 422
    assert "is not a timestamp" in response.json()["detail"]
    assert dagster.launched == []


def test_a_misspelt_field_is_422_and_launches_no_run(client, dagster):
    # A new-user trial sent {"asof": ...}: it ran the current report instead, silently.
    response = client.post("/trigger_report", json={"asof": "2023-01-24T00:00:00Z"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "asof"] and error["msg"] == "Extra inputs are not permitted"
    assert dagster.launched == []
    # Many long unknown keys: the answer names ten, each cut short (no error echoes the request).
    flood = client.post("/trigger_report", json={f"{i:04d}" + "k" * 1_000: 1 for i in range(12)})
    assert flood.status_code == 422 and len(flood.json()["detail"]) == 10 and len(flood.content) < 3_000


def test_two_identical_triggers_give_one_id_and_two_different_ones_two(client, dagster):
    # SPEC §10: while an identical report is queued or running, its id answers (test_access_api.py has more).
    ids = {client.post("/trigger_report").json()["report_id"] for _ in range(2)}
    assert len(ids) == 1 and dagster.launched == [None]
    other = client.post("/trigger_report", json={"as_of": "2023-01-24T00:00:00Z"}).json()["report_id"]
    assert other not in ids and len(dagster.launched) == 2


# --- GET /get_report ---------------------------------------------------------------------


@pytest.mark.parametrize("status", sorted(RUNNING_STATES))
def test_a_queued_or_running_run_is_running(client, dagster, status):
    report_id = dagster.add(REPORT_JOB, status)
    response = get_report(client, report_id)
    assert response.status_code == 200
    assert response.json() == {"status": "Running"}  # no "error" key while running


def test_a_failed_run_is_failed_with_its_reason(client, dagster):
    report_id = dagster.add(REPORT_JOB, "FAILURE", "as-of time 2020-01-01 is before the first poll")
    assert get_report(client, report_id).json() == {
        "status": "Failed",
        "error": "as-of time 2020-01-01 is before the first poll",
    }


@pytest.mark.parametrize("status", sorted(FAILED_STATES))
def test_a_failed_run_without_a_reason_names_its_end_state(client, dagster, status):
    report_id = dagster.add(REPORT_JOB, status)
    assert get_report(client, report_id).json() == {"status": "Failed", "error": f"the run ended as {status}"}


@pytest.mark.parametrize("job_name", sorted(REPORT_PRODUCING_JOBS))
def test_a_finished_run_serves_its_csv_with_complete_header(client, dagster, reports, job_name):
    report_id = dagster.add(job_name, "SUCCESS")
    (reports / f"{report_id}.csv").write_text(CSV + "s1,60.0,24.0,168.0,0.0,0.0,0.0\n")
    response = get_report(client, report_id)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["x-report-status"] == "Complete"
    assert response.headers["content-disposition"] == f'attachment; filename="storemon-report-{report_id}.csv"'
    assert response.text == CSV + "s1,60.0,24.0,168.0,0.0,0.0,0.0\n"
    assert "x-report-warning" not in response.headers  # nothing to warn of


def test_a_finished_report_with_a_data_warning_sends_it_beside_the_csv(client, dagster, reports):
    report_id = dagster.add(AS_OF_REPORT_JOB, "SUCCESS")
    warning = "no data: no store was polled at or before T (2022-01-01T00:00:00.000000Z), so the report is empty"
    dagster.runs[report_id] = RunInfo(AS_OF_REPORT_JOB, "SUCCESS", None, warning)
    (reports / f"{report_id}.csv").write_text(CSV)
    response = get_report(client, report_id)
    assert response.headers["x-report-status"] == "Complete" and response.headers["x-report-warning"] == warning
    assert response.text == CSV
    # Whatever the metadata held, the header is one line of printable ASCII (never a 500).
    odd = dagster.add(AS_OF_REPORT_JOB, "SUCCESS")
    dagster.runs[odd] = RunInfo(AS_OF_REPORT_JOB, "SUCCESS", None, "stale:\n T\u00e9 \x00 " + "x" * 900)
    (reports / f"{odd}.csv").write_text(CSV)
    header = get_report(client, odd).headers["x-report-warning"]
    assert header.startswith("stale: T? ? xxx") and len(header) == 500


def test_a_finished_run_whose_file_is_missing_is_failed_naming_the_file_not_its_server_path(client, dagster):
    report_id = dagster.add(REPORT_JOB, "SUCCESS")
    response = get_report(client, report_id)
    assert response.json() == {
        "status": "Failed",
        "error": f"the run succeeded but its report file {report_id}.csv is missing from the reports folder",
    }


def test_a_failure_reason_names_files_relative_to_the_configured_folders(client, dagster, reports):
    # What a report run on a full disk says (an OSError naming its file), as Dagster hands it on.
    reason = f"[Errno 28] No space left on device: '{reports}/.combined_report.csv.4242.tmp'"
    report_id = dagster.add(REPORT_JOB, "FAILURE", reason)
    assert get_report(client, report_id).json()["error"] == (
        "[Errno 28] No space left on device: '<reports folder>/.combined_report.csv.4242.tmp'"
    )


def test_report_id_is_trimmed(client, dagster):
    report_id = dagster.add(REPORT_JOB, "STARTED")
    assert get_report(client, f"  {report_id}\n").json() == {"status": "Running"}


def test_unknown_id_is_404(client):
    response = get_report(client, "00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.json()["detail"] == "no report with id 00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize("report_id", ["not-a-report-id", "", "../etc/passwd", "00000000-0000-0000-0000-00000000000Z"])
def test_malformed_id_is_404_without_asking_dagster(client, dagster, report_id):
    dagster.unreachable = True  # proves Dagster is not consulted: that would be a 503
    response = get_report(client, report_id)
    assert response.status_code == 404
    assert "report ids are the UUIDs /trigger_report returns" in response.json()["detail"]


def test_a_long_malformed_id_is_cut_short_in_the_message(client):
    detail = get_report(client, "x" * 500).json()["detail"]
    assert f"{'x' * 80!r}" in detail and "x" * 81 not in detail


def test_a_run_of_another_job_is_404_not_a_report(client, dagster):
    run_id = dagster.add(INGEST_JOB, "SUCCESS")
    response = get_report(client, run_id)
    assert response.status_code == 404
    assert response.json()["detail"] == f"{run_id} is a Dagster run of ingest_job, not a report"


def test_missing_report_id_is_422(client):
    assert client.get("/get_report").status_code == 422


# --- Dagster unreachable or refusing -------------------------------------------------------


def test_unreachable_dagster_is_503_on_both_endpoints(client, dagster):
    dagster.unreachable = True
    for response in (client.post("/trigger_report"), get_report(client, str(uuid.uuid4()))):
        assert response.status_code == 503
        assert "is unreachable" in response.json()["detail"]


def test_dagster_refusing_the_launch_is_502(client, dagster):
    dagster.refuses = True
    response = client.post("/trigger_report")
    assert response.status_code == 502
    assert response.json()["detail"].startswith("Dagster refused the request: JobNotFoundError")


# --- trailing slashes, documentation --------------------------------------------------------


def test_trailing_slashes_work_without_a_redirect(client, dagster):
    triggered = client.post("/trigger_report/", follow_redirects=False)
    assert triggered.status_code == 200
    report_id = triggered.json()["report_id"]
    polled = get_report(client, report_id, path="/get_report/")
    assert polled.status_code == 200 and polled.json() == {"status": "Running"}
    assert get_report(client, "nope", path="/get_report/").status_code == 404


def test_openapi_documents_both_endpoints_once(client):
    spec = client.get("/openapi.json").json()
    # The trigger/poll pair once each (no trailing-slash twins), beside the store pages.
    assert set(spec["paths"]) == {
        "/trigger_report",
        "/get_report",
        "/summary",
        "/stores",
        "/stores/{store_id}",
        "/stores/{store_id}/timeline.svg",
        "/store",  # the query forms, for ids no path carries
        "/store/timeline.svg",
        "/incidents",
        "/status",
        "/health",
    }
    assert client.get("/docs").status_code == 200


# --- failure reasons from Dagster's GraphQL events ------------------------------------------


def test_failure_reason_is_the_innermost_cause_of_each_failed_step():
    wrapped = {
        "message": "dagster._core.errors.DagsterExecutionStepExecutionError: Error occurred while executing op",
        "cause": {
            "message": "dagster._core.definitions.events.Failure: as-of time is in the future\nstack",
            "cause": None,
        },
    }
    events = [
        {"__typename": "ExecutionStepFailureEvent", "error": wrapped},
        {"__typename": "ExecutionStepFailureEvent", "error": wrapped},  # the same reason counts once
        {"__typename": "RunFailureEvent", "message": "Execution of run for report_job failed."},
    ]
    assert failure_reason(events) == "as-of time is in the future"


def test_failure_reason_falls_back_to_the_last_run_message():
    events = [
        {"__typename": "RunFailureEvent", "message": "first"},
        {"__typename": "RunCanceledEvent", "message": "Run canceled by user"},
    ]
    assert failure_reason(events) == "Run canceled by user"
    assert failure_reason([]) is None


# --- inputs fuzzed against the real client with nothing listening (no runs are launched) ----

offline = TestClient(
    create_app(
        dagster_url=f"http://127.0.0.1:{free_port()}",
        reports_dir=Path("/nonexistent"),
        engine=open_database(sqlite_url(Path(tempfile.mkdtemp(prefix="storemon-offline-")) / "s.db")),
    )
)


@settings(max_examples=examples(150), deadline=None)
@given(
    body=st.none()
    | st.dictionaries(st.sampled_from(["as_of", "x", ""]), st.none() | st.text(max_size=40) | st.integers())
)
def test_trigger_report_never_answers_500(body):
    response = offline.post("/trigger_report", json=body)
    assert response.status_code in (422, 503), response.text


@settings(max_examples=examples(150), deadline=None)
@given(report_id=st.text(max_size=80))
def test_get_report_offline_never_answers_500(report_id):
    response = offline.get("/get_report", params={"report_id": report_id})
    assert response.status_code in (404, 503), response.text


def test_the_real_client_reports_an_unreachable_dagster_as_503():
    for response in (
        offline.post("/trigger_report"),
        offline.get("/get_report", params={"report_id": str(uuid.uuid4())}),
    ):
        assert response.status_code == 503
        assert "is unreachable or did not answer within 10 s" in response.json()["detail"]


class FakeDagsterServer:
    """Dagster's GraphQL endpoint as `DagsterRuns` meets it (an httpx transport): one code
    location holding `jobs`; it records each request's GraphQL variables and answers launches
    with a run id."""

    def __init__(
        self, jobs=(REPORT_JOB, AS_OF_REPORT_JOB), launch_answer: dict | None = None, launch_times_out: bool = False
    ):
        self.jobs = jobs
        self.launch_answer = launch_answer
        self.launch_times_out = launch_times_out  # the run is created, the answer never comes
        self.launched: list[dict] = []
        self.created: dict[str, dict[str, str]] = {}  # run id -> tags

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if "repositoriesOrError" in body["query"]:
            repository = {"name": "__repository__", "location": {"name": "storemon"}, "pipelines": []}
            repository["pipelines"] = [{"name": job} for job in self.jobs]
            data = {"repositoriesOrError": {"__typename": "RepositoryConnection", "nodes": [repository]}}
        elif "runsOrError" in body["query"]:  # every run is still queued here
            wanted = {t["key"]: t["value"] for t in body["variables"]["filter"]["tags"]}
            found = [run_id for run_id, tags in self.created.items() if wanted.items() <= tags.items()]
            data = {"runsOrError": {"__typename": "Runs", "results": [{"runId": r} for r in found[-1:]]}}
        else:
            params = body["variables"]["executionParams"]
            self.launched.append(params)
            answer = self.launch_answer or {"__typename": "LaunchRunSuccess", "run": {"runId": str(uuid.uuid4())}}
            if answer["__typename"] == "LaunchRunSuccess":
                self.created[answer["run"]["runId"]] = {
                    t["key"]: t["value"] for t in params["executionMetadata"]["tags"]
                }
            if self.launch_times_out:
                raise httpx.ReadTimeout("no answer", request=request)
            data = {"launchRun": answer}
        return httpx.Response(200, json={"data": data})


def test_the_real_client_launches_the_current_report_or_an_as_of_report_as_its_own_job():
    """No `as_of`: a run of report_job (publishes combined_report.csv). With one: a run of
    as_of_report_job (writes only its own CSV), T fixed to an ISO instant and shown as a run tag."""
    server = FakeDagsterServer()
    runs = DagsterRuns("http://dagster.test", transport=httpx.MockTransport(server))
    runs.launch_report(None)
    runs.launch_report("2023-01-24 01:00:00+01:00")
    t = "2023-01-24T00:00:00.000000Z"
    selector = {"repositoryLocationName": "storemon", "repositoryName": "__repository__"}
    assert server.launched == [
        {
            "selector": selector | {"jobName": REPORT_JOB},
            "runConfigData": {},
            "executionMetadata": {"tags": [{"key": "storemon/api", "value": "trigger_report"}]},
        },
        {
            "selector": selector | {"jobName": AS_OF_REPORT_JOB},
            "runConfigData": {"ops": {"as_of_report": {"config": {"as_of": t}}}},
            "executionMetadata": {
                "tags": [{"key": "storemon/api", "value": "trigger_report"}, {"key": "storemon/as_of", "value": t}]
            },
        },
    ]


def test_the_real_client_reports_a_job_dagster_does_not_have_as_502(tmp_path):
    engine = open_database(sqlite_url(tmp_path / "s.db"))
    app = create_app(dagster_url="http://dagster.test", reports_dir=tmp_path, engine=engine)
    app.state.report_runs = DagsterRuns(
        "http://dagster.test", transport=httpx.MockTransport(FakeDagsterServer(jobs=()))
    )
    response = TestClient(app).post("/trigger_report")
    assert response.status_code == 502
    assert response.json() == {
        "detail": "Dagster refused the request: JobNotFoundError No jobs with the name `report_job` exist"
    }


def test_the_real_client_passes_on_dagster_refusing_a_launch():
    refusal = {"__typename": "RunConfigValidationInvalid", "errors": [{"message": "bad as_of"}, {"message": "x"}]}
    server = FakeDagsterServer(launch_answer=refusal)
    runs = DagsterRuns("http://dagster.test", transport=httpx.MockTransport(server))
    with pytest.raises(DagsterRefused, match="^RunConfigValidationInvalid bad as_of; x$"):
        runs.launch_report(None)


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("[Errno 111] refused"),
        httpx.ReadTimeout("no words a message-matcher would know"),  # by type, not by text
        httpx.RemoteProtocolError("peer closed connection"),
    ],
)
def test_the_real_client_knows_dagster_is_unreachable_by_the_error_type(error):
    def fail(request):
        raise error

    runs = DagsterRuns("http://dagster.test", timeout=2, transport=httpx.MockTransport(fail))
    for call in (lambda: runs.launch_report(None), lambda: runs.run_info(str(uuid.uuid4()))):
        with pytest.raises(
            DagsterUnavailable, match=f"unreachable or did not answer within 2 s .{type(error).__name__}."
        ):
            call()


def test_the_real_client_takes_an_answer_that_is_not_graphql_as_unavailable():
    runs = DagsterRuns(
        "http://dagster.test", transport=httpx.MockTransport(lambda r: httpx.Response(502, text="<html>"))
    )
    with pytest.raises(DagsterUnavailable, match="HTTPStatusError"):
        runs.run_info(str(uuid.uuid4()))


# --- issue 9 row 8: finished runs answered from memory; bounded bodies and echoes -----------------


def test_a_finished_report_is_looked_up_in_dagster_only_once(client, dagster, reports):
    # Every poll used to ask Dagster again: ~32 requests/s, p95 over a second at concurrency 20.
    report_id = dagster.add(REPORT_JOB, "SUCCESS")
    (reports / f"{report_id}.csv").write_text(CSV)
    assert [get_report(client, report_id).status_code for _ in range(3)] == [200, 200, 200]
    dagster.unreachable = True  # a finished report is still served while Dagster is away
    assert get_report(client, report_id).text == CSV
    assert dagster.looked_up == [report_id]


def test_a_running_run_is_looked_up_at_most_once_a_second_until_it_ends(client, dagster, reports):
    # Pollers of a running report share one Dagster look-up per RUNNING_SECONDS (SPEC §10 limits).
    report_id = dagster.add(REPORT_JOB, "STARTED")
    assert get_report(client, report_id).json() == get_report(client, report_id).json() == {"status": "Running"}
    assert dagster.looked_up == [report_id]
    dagster.runs[report_id] = RunInfo(REPORT_JOB, "FAILURE", "database is locked")
    client.app.state.run_lookups.running.clear()  # what a second of waiting does
    assert get_report(client, report_id).json() == get_report(client, report_id).json()
    assert get_report(client, report_id).json() == {"status": "Failed", "error": "database is locked"}
    assert dagster.looked_up == [report_id] * 2  # ended: never asked again


def test_an_unknown_id_is_asked_for_again_once_forgotten(client, dagster):
    report_id = str(uuid.uuid4())
    assert get_report(client, report_id).status_code == get_report(client, report_id).status_code == 404
    assert dagster.looked_up == [report_id]  # remembered as unknown for UNKNOWN_ID_SECONDS
    client.app.state.run_lookups.unknown.clear()
    assert get_report(client, report_id).status_code == 404
    assert dagster.looked_up == [report_id] * 2  # it may be a run Dagster had not listed yet


def test_a_huge_request_body_is_refused_unread(client, dagster):
    body = b'{"as_of": "' + b"9" * 10_000_000 + b'"}'
    response = client.post("/trigger_report", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413 and len(response.content) < 200
    assert dagster.launched == []


def test_a_chunked_request_body_over_the_limit_is_refused(client, dagster):
    chunks = (b'{"as_of": "' if n == 0 else b"9" * 4096 for n in range(10))
    response = client.post("/trigger_report", content=chunks, headers={"content-type": "application/json"})
    assert response.status_code == 413 and dagster.launched == []


@pytest.mark.parametrize(
    "body",
    [
        {"as_of": "9" * 10_000},  # parsed by storemon: "as-of time '999...'... is not a timestamp"
        {"as_of": ["x" * 10_000]},  # refused by the request model, which echoes its input
        {"as_of": {"deep": "y" * 10_000}},
    ],
)
def test_a_refusal_quotes_at_most_a_short_excerpt_of_the_request(client, dagster, body):
    response = client.post("/trigger_report", json=body)
    assert response.status_code == 422
    assert len(response.content) < 400, response.text
    assert dagster.launched == []


# --- the API's own documentation pages, offline ---------------------------------------------


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_documentation_pages_load_everything_from_the_api_itself(client, page):
    html = client.get(page)
    assert html.status_code == 200
    sources = re.findall(r"""(?:src|href)=["']?([^"' >]+)""", html.text) + re.findall(
        r"""url: ['"]([^'"]+)""", html.text
    )
    assert sources and all(source.startswith("/") for source in sources), sources  # no CDN, no internet
    for source in sources:
        assert client.get(source).status_code == 200, source
    assert "swagger-ui-bundle.js" in html.text or "redoc.standalone.js" in html.text


@pytest.mark.parametrize("path", ["/summary/", "/stores/", "/get_report/?report_id=x"])
def test_a_trailing_slash_is_answered_not_redirected(client, path):
    response = client.get(path, follow_redirects=False)
    assert response.status_code not in (301, 302, 307, 308)
    assert response.json()["detail"]  # the same answer as without the slash (here: nothing published)


def test_the_real_client_answers_a_launch_dagster_did_not_confirm_with_the_run_it_created(tmp_path):
    """The launch is sent, Dagster creates the run, the answer times out: the run is found by
    its storemon/trigger_id tag and its id answered (SPEC §10: never a failure for a created run)."""
    server = FakeDagsterServer(launch_times_out=True)
    engine = open_database(sqlite_url(tmp_path / "s.db"))
    app = create_app(dagster_url="http://dagster.test", reports_dir=tmp_path, engine=engine)
    app.state.report_runs = DagsterRuns("http://dagster.test", transport=httpx.MockTransport(server))
    response = TestClient(app).post("/trigger_report")
    assert response.status_code == 200, response.text
    assert list(server.created) == [response.json()["report_id"]] and len(server.launched) == 1
    tags = server.created[response.json()["report_id"]]
    assert tags["storemon/requested_by"] == "open:testclient" and "storemon/trigger_id" in tags


def test_the_data_warning_is_read_off_the_runs_event_metadata():
    """An as-of report's step output or the current report's materialisation carries it (the
    label service.report_figures writes); other metadata, and events without any, are passed by."""
    events = [
        {"__typename": "RunStartEvent"},
        {"__typename": "ExecutionStepOutputEvent", "metadataEntries": [{"label": "stores"}]},
        {
            "__typename": "MaterializationEvent",
            "metadataEntries": [{"label": "as_of", "text": "2026-12-07"}, {"label": DATA_WARNING_LABEL, "text": "w"}],
        },
    ]
    assert data_warning(events) == "w"
    assert data_warning(events[:2]) is None
