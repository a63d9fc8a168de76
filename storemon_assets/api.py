"""The trigger + poll HTTP API over Dagster runs (SPEC §7), served by `storemon api`.

Every report is a real Dagster run, launched through the webserver's GraphQL API, and its id is
the run id: a run of `report_job` (the current report, which also refreshes
`combined_report.csv`), or with `as_of` a run of `as_of_report_job`, which writes only
`<report_id>.csv` and leaves the published report alone. FastAPI is used because the contract
is small and typed: the request and response models give validation and the OpenAPI page at
/docs for free. The Dagster GraphQL client is synchronous: `trigger_report` is a plain function
that FastAPI runs in its thread pool, and `get_report` hands only its call to Dagster to that
pool. Every call to Dagster has a timeout; an unreachable Dagster is a 503 that says so.

The endpoints get Dagster (`report_runs`) and the reports folder (`reports_folder`) as FastAPI
dependencies, so tests swap in a fake run client with `app.dependency_overrides` and check the
HTTP contract without starting Dagster.

A run that has ended never changes, so the API asks Dagster about a run only until it ends
(`FinishedRuns`); polls of a finished report are answered from memory and the reports folder
on the event loop. Request bodies are limited to MAX_BODY_BYTES, and no answer echoes more
than a short excerpt of what it was sent.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Protocol
from urllib.parse import urlparse

import dagster as dg
import httpx
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from storemon_assets import settings
from storemon_assets.core.instants import parse_as_of
from storemon_assets.core.parsing import EXCERPT_CHARS, excerpt
from storemon_assets.defs.as_of_report import AS_OF_TAG, AsOfReportConfig, as_of_instant, as_of_report
from storemon_assets.defs.jobs import REPORT_PRODUCING_JOBS, as_of_report_job, report_job
from storemon_assets.web.routes import router as store_pages

RUNNING_STATES = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "MANAGED", "CANCELING"}
FAILED_STATES = {"FAILURE", "CANCELED"}
DAGSTER_TIMEOUT_SECONDS = 10
RUN_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

RUN_QUERY = """
query StoremonRun($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      jobName
      status
      eventConnection {
        events {
          __typename
          ... on ExecutionStepFailureEvent { error { message cause { message cause { message } } } }
          ... on RunFailureEvent { message }
          ... on RunCanceledEvent { message }
        }
      }
    }
    ... on RunNotFoundError { message }
    ... on PythonError { message }
  }
}
"""


MAX_BODY_BYTES = 16 * 1024  # a trigger body is a few dozen bytes
FINISHED_STATES = FAILED_STATES | {"SUCCESS"}


class DagsterUnavailable(RuntimeError):
    """Dagster could not be reached, or did not answer in time."""


@dataclass(frozen=True)
class RunInfo:
    job_name: str
    status: str
    error: str | None


def _user_message(message: str) -> str:
    """'dagster._core...Failure: as-of time ...' -> 'as-of time ...'."""
    first = message.strip().splitlines()[0] if message.strip() else message
    return re.sub(r"^[\w.]*(?:Error|Exception|Failure): ", "", first).strip()


class ReportRuns(Protocol):
    """What the API needs from Dagster: launch a report run, look a run up."""

    def launch_report(self, as_of: str | None) -> str:
        """Start a report run (T = `as_of`, or the default); return its run id."""
        ...

    def run_info(self, run_id: str) -> RunInfo | None:
        """The run's job, status and failure reason; None if Dagster has no such run."""
        ...


class DagsterRuns:
    """The Dagster webserver, as far as reports are concerned (the real `ReportRuns`)."""

    def __init__(self, url: str, timeout: float = DAGSTER_TIMEOUT_SECONDS):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _client(self) -> DagsterGraphQLClient:
        parsed = urlparse(self.url)
        return DagsterGraphQLClient(
            parsed.hostname or "127.0.0.1",
            port_number=parsed.port,
            use_https=parsed.scheme == "https",
            timeout=int(self.timeout),
            path_prefix=parsed.path.rstrip("/"),
        )

    def launch_report(self, as_of: str | None) -> str:
        """The current report (`report_job`), or with `as_of` an as-of report (`as_of_report_job`),
        its T fixed at the moment of the request ('now' included) and named in a run tag."""
        job, run_config, tags = report_job.name, None, {"storemon/api": "trigger_report"}
        if as_of:
            instant = as_of_instant(as_of)
            job = as_of_report_job.name
            run_config = dg.RunConfig(ops={as_of_report.name: AsOfReportConfig(as_of=instant)}).to_config_dict()
            tags[AS_OF_TAG] = instant
        try:
            return self._client().submit_job_execution(job, run_config=run_config, tags=tags)
        except DagsterGraphQLClientError as exc:
            if _is_connection_problem(exc):
                raise DagsterUnavailable(self._unreachable(exc)) from exc
            raise
        except Exception as exc:  # requests/gql transport errors and timeouts
            raise DagsterUnavailable(self._unreachable(exc)) from exc

    def run_info(self, run_id: str) -> RunInfo | None:
        try:
            response = httpx.post(
                f"{self.url}/graphql", json={"query": RUN_QUERY, "variables": {"runId": run_id}}, timeout=self.timeout
            )
            response.raise_for_status()
            run = response.json()["data"]["runOrError"]
        except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
            raise DagsterUnavailable(self._unreachable(exc)) from exc
        if run["__typename"] == "RunNotFoundError":
            return None
        if run["__typename"] != "Run":
            raise DagsterUnavailable(f"Dagster could not look up run {run_id}: {run.get('message', run['__typename'])}")
        return RunInfo(run["jobName"], run["status"], _failure_reason(run["eventConnection"]["events"]))

    def _unreachable(self, exc: Exception) -> str:
        return f"Dagster webserver at {self.url} is unreachable or did not answer within {self.timeout:g} s ({type(exc).__name__})"


class FinishedRuns:
    """Runs that have ended, as Dagster last described them (a finished run never changes), so
    polls of a finished report do not ask Dagster again. The least recently used are forgotten
    beyond `size` (they are then asked for once more)."""

    def __init__(self, size: int = 10_000):
        self.size = size
        self._runs: OrderedDict[str, RunInfo] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, run_id: str) -> RunInfo | None:
        with self._lock:
            run = self._runs.get(run_id)
            if run is not None:
                self._runs.move_to_end(run_id)
            return run

    def remember(self, run_id: str, run: RunInfo) -> None:
        if run.status not in FINISHED_STATES:
            return
        with self._lock:
            self._runs[run_id] = run
            self._runs.move_to_end(run_id)
            while len(self._runs) > self.size:
                self._runs.popitem(last=False)


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` is refused with 413, whether announced
    by Content-Length or streamed in chunks, before it is read into memory."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            return await JSONResponse(status_code=413, content={"detail": self._too_large})(scope, receive, send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(status_code=413, detail=self._too_large)
            return message

        await self.app(scope, limited_receive, send)

    @property
    def _too_large(self) -> str:
        return f"request body larger than {self.max_bytes:,} bytes"


def _bounded_errors(errors) -> list[dict]:
    """Validation errors with every echoed input cut to a short excerpt."""
    bounded = []
    for error in errors:
        error = dict(error)
        if "input" in error and not isinstance(error["input"], int | float | bool | None):
            text = error["input"] if isinstance(error["input"], str) else repr(error["input"])
            error["input"] = text if len(text) <= EXCERPT_CHARS else excerpt(text)
        error.pop("ctx", None)  # may hold the input again
        bounded.append(error)
    return bounded


def _is_connection_problem(exc: DagsterGraphQLClientError) -> bool:
    text = " ".join(str(a) for a in exc.args)
    return any(word in text for word in ("Connection", "connect", "Timeout", "timed out", "Max retries"))


def _root_cause(error: dict) -> str:
    """The innermost message of a Python error chain ("Error occurred while executing op" wraps it)."""
    while error.get("cause"):
        error = error["cause"]
    return _user_message(error.get("message") or "")


def _failure_reason(events: list[dict]) -> str | None:
    step_errors = [
        _root_cause(e["error"]) for e in events if e["__typename"] == "ExecutionStepFailureEvent" and e.get("error")
    ]
    if step_errors:
        return "; ".join(dict.fromkeys(step_errors))
    run_messages = [
        e["message"] for e in events if e["__typename"] in ("RunFailureEvent", "RunCanceledEvent") and e.get("message")
    ]
    return run_messages[-1] if run_messages else None


# --- the HTTP layer -------------------------------------------------------------------------


class TriggerRequest(BaseModel):
    as_of: str | None = Field(
        default=None,
        description="Report time T: ISO-8601 (UTC unless an offset is given) or 'now'. Given, the report is an "
        "as-of report: written only under its id, never replacing combined_report.csv. Default: the current "
        "report (T = the latest poll, or STOREMON_AS_OF), which also refreshes combined_report.csv.",
        examples=["2023-01-25T18:00:00Z"],
    )


class TriggerResponse(BaseModel):
    report_id: str = Field(description="Id of the report: the Dagster run id.")


class ReportStatus(BaseModel):
    status: Literal["Running", "Failed"]
    error: str | None = Field(default=None, description="Why the run failed (only when status is Failed).")


class ErrorDetail(BaseModel):
    detail: str


CSV_EXAMPLE = "store_id,uptime_last_hour,uptime_last_day,uptime_last_week,downtime_last_hour,downtime_last_day,downtime_last_week\n"


# The dependencies are `async` only so that FastAPI calls them on the event loop instead of
# sending each through its thread pool.
async def report_runs(request: Request) -> ReportRuns:
    """Dependency: the app's Dagster run client (tests override it with a fake)."""
    return request.app.state.report_runs


async def reports_folder(request: Request) -> Path:
    """Dependency: where report runs write `<report_id>.csv`."""
    return request.app.state.reports_dir


async def finished_runs(request: Request) -> FinishedRuns:
    """Dependency: what the API remembers of runs that have ended."""
    return request.app.state.finished_runs


Runs = Annotated[ReportRuns, Depends(report_runs)]
ReportsDir = Annotated[Path, Depends(reports_folder)]
Finished = Annotated[FinishedRuns, Depends(finished_runs)]


def create_app(
    dagster_url: str | None = None, reports_dir: Path | None = None, database_url: str | None = None
) -> FastAPI:
    app = FastAPI(
        title="storemon",
        version="0.1.0",
        description="Trigger an uptime report (a Dagster run) and poll for its CSV; see the fleet, the worst "
        "stores and when each store was up or down (the page at /). Report semantics: docs/uptime-logic.md.",
    )
    app.state.report_runs = DagsterRuns(dagster_url or settings.dagster_url())
    app.state.reports_dir = reports_dir or settings.reports_dir()
    # The store pages (web/routes.py) read the storemon database, not Dagster.
    app.state.database_url = database_url or settings.database_url()
    app.include_router(store_pages)
    app.state.finished_runs = FinishedRuns()
    app.add_middleware(BodyLimit)

    def unavailable(exc: DagsterUnavailable) -> HTTPException:
        return HTTPException(status_code=503, detail=str(exc))

    @app.post(
        "/trigger_report",
        response_model=TriggerResponse,
        responses={422: {"model": ErrorDetail}, 503: {"model": ErrorDetail}},
        summary="Start a report run",
    )
    def trigger_report(runs: Runs, request: TriggerRequest | None = None) -> TriggerResponse:
        """Launches a run of the report job in Dagster and answers at once with its id."""
        as_of = (request.as_of.strip() if request and request.as_of else None) or None
        if as_of:
            try:
                parse_as_of(as_of)
            except ValueError as exc:
                raise HTTPException(status_code=422, detail=str(exc)) from exc
        try:
            return TriggerResponse(report_id=runs.launch_report(as_of))
        except DagsterUnavailable as exc:
            raise unavailable(exc) from exc

    @app.get(
        "/get_report",
        response_model=ReportStatus,
        response_model_exclude_none=True,
        responses={
            200: {
                "description": '`{"status": "Running"}` while queued or running; the CSV (header '
                '`X-Report-Status: Complete`) when done; `{"status": "Failed", "error": ...}` if it failed.',
                "content": {"text/csv": {"example": CSV_EXAMPLE}},
            },
            404: {"model": ErrorDetail},
            503: {"model": ErrorDetail},
        },
        summary="Poll a report",
    )
    async def get_report(
        runs: Runs,
        reports: ReportsDir,
        finished: Finished,
        report_id: Annotated[str, Query(description="The id /trigger_report returned.")],
    ):
        report_id = report_id.strip()
        if not RUN_ID.match(report_id):
            raise HTTPException(
                status_code=404,
                detail=f"unknown report id {report_id[:80]!r}: report ids are the UUIDs /trigger_report returns",
            )
        run = finished.get(report_id)
        if run is None:
            try:  # the GraphQL client blocks: off the event loop
                run = await run_in_threadpool(runs.run_info, report_id)
            except DagsterUnavailable as exc:
                raise unavailable(exc) from exc
            if run is not None:
                finished.remember(report_id, run)
        if run is None:
            raise HTTPException(status_code=404, detail=f"no report with id {report_id}")
        if run.job_name not in REPORT_PRODUCING_JOBS:
            raise HTTPException(status_code=404, detail=f"{report_id} is a Dagster run of {run.job_name}, not a report")
        if run.status in RUNNING_STATES:
            return ReportStatus(status="Running")
        if run.status in FAILED_STATES:
            return ReportStatus(status="Failed", error=run.error or f"the run ended as {run.status}")
        path = reports / f"{report_id}.csv"
        if not path.exists():
            return ReportStatus(status="Failed", error=f"the run succeeded but its report file {path} is missing")
        return Response(
            content=path.read_bytes(),
            media_type="text/csv",
            headers={
                "X-Report-Status": "Complete",
                "Content-Disposition": f'attachment; filename="storemon-report-{report_id}.csv"',
            },
        )

    # Trailing slashes work too (no redirect: clients like curl do not follow one by default).
    app.add_api_route(
        "/trigger_report/", trigger_report, methods=["POST"], include_in_schema=False, response_model=TriggerResponse
    )
    app.add_api_route(
        "/get_report/",
        get_report,
        methods=["GET"],
        include_in_schema=False,
        response_model=ReportStatus,
        response_model_exclude_none=True,
    )

    @app.exception_handler(RequestValidationError)
    def bounded_validation_error(_request, exc: RequestValidationError):
        return JSONResponse(status_code=422, content={"detail": jsonable_encoder(_bounded_errors(exc.errors()))})

    @app.exception_handler(DagsterGraphQLClientError)
    def dagster_refused(_request, exc: DagsterGraphQLClientError):  # e.g. job not found in the location
        return JSONResponse(
            status_code=502, content={"detail": f"Dagster refused the request: {' '.join(map(str, exc.args))}"}
        )

    return app
