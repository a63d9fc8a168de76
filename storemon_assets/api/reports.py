"""POST /trigger_report and GET /get_report (SPEC §7): a report is a Dagster run, its id the run id.

`trigger_report` launches a run of the current report's job, or with `as_of` an as-of report
(api/runs.py says which job and config). The GraphQL calls block: `trigger_report` is a plain
function FastAPI runs in its thread pool, and `get_report` hands only its call to Dagster to
that pool. A poll of a run that has ended is answered from memory and the reports folder, on
the event loop.

The endpoints get Dagster (`report_runs`), the reports folder (`reports_folder`) and the
finished runs as FastAPI dependencies, so tests swap in a fake run client with
`app.dependency_overrides` and check the HTTP contract without starting Dagster.

Access (SPEC §10, docs/access.md): both routes are behind the token dependency; a trigger goes
through the trigger desk (api/triggers.py: coalescing, rate limit, idempotent launch); a poll of
an id the API has not seen end is looked up in Dagster at most once a second (running), not
again for a while (unknown: `UNKNOWN_ID_SECONDS`), and within a per-caller rate; a tenant's CSV
holds only its stores' rows.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Annotated, Literal

import polars as pl
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from storemon_assets import settings
from storemon_assets.api.runs import (
    FAILED_STATES,
    RUNNING_STATES,
    DagsterRefused,
    DagsterUnavailable,
    FinishedRuns,
    ReportRuns,
    RunInfo,
)
from storemon_assets.api.triggers import RateLimited, TriggerDesk
from storemon_assets.core.access import Caller, ExpiringCache, RateLimiter, retry_after_header
from storemon_assets.core.instants import parse_as_of
from storemon_assets.db.queries import data_version
from storemon_assets.names import REPORT_PRODUCING_JOBS
from storemon_assets.web.access import Authorized, authorize, own_rows
from storemon_assets.web.database import DatabaseIfAny

RUN_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
CSV_EXAMPLE = "store_id,uptime_last_hour,uptime_last_day,uptime_last_week,downtime_last_hour,downtime_last_day,downtime_last_week\n"


class TriggerRequest(BaseModel):
    # A misspelt field ("asof") is a 422, not a current report the caller did not ask for.
    model_config = ConfigDict(extra="forbid")

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


RUNNING_SECONDS = 1.0  # a running report's status is asked of Dagster at most once a second
UNKNOWN_ID_SECONDS = 10.0  # an id Dagster does not know is not asked for again for this long
LOOKUP_BURST, LOOKUPS_PER_MINUTE = 30, 600  # per caller, for ids the API does not know the answer of


class RunLookups:
    """Polls between a trigger and the run's end: a running run is looked up at most once per
    RUNNING_SECONDS for all pollers, an unknown id is remembered as unknown for UNKNOWN_ID_SECONDS
    (10 000 at most), and the look-ups a caller causes are rate-limited, so polling random ids
    cannot drive one Dagster request each."""

    def __init__(self):
        self.running: ExpiringCache[str, RunInfo] = ExpiringCache(RUNNING_SECONDS, size=10_000)
        self.unknown: ExpiringCache[str, None] = ExpiringCache(UNKNOWN_ID_SECONDS, size=10_000)
        self.limiter = RateLimiter(LOOKUP_BURST, LOOKUPS_PER_MINUTE)

    async def run_info(self, runs: ReportRuns, run_id: str, caller: Caller) -> RunInfo | None:
        known, run = self.running.get(run_id)
        if known:
            return run
        if self.unknown.get(run_id)[0]:
            return None
        wait = self.limiter.acquire(caller.name)
        if wait > 0:
            raise RateLimited(wait, "too many look-ups of reports")
        run = await run_in_threadpool(runs.run_info, run_id)  # the GraphQL call blocks: off the loop
        if run is None:
            self.unknown.put(run_id, None)
        elif run.status in RUNNING_STATES:
            self.running.put(run_id, run)
        return run


# --- dependencies (`async` only so that FastAPI calls them on the event loop instead of sending
# each through its thread pool) ----------------------------------------------------------------


async def report_runs(request: Request) -> ReportRuns:
    """Dependency: the app's Dagster run client (tests override it with a fake)."""
    return request.app.state.report_runs


async def reports_folder(request: Request) -> Path:
    """Dependency: where report runs write `<report_id>.csv`."""
    return request.app.state.reports_dir


async def finished_runs(request: Request) -> FinishedRuns:
    """Dependency: what the API remembers of runs that have ended."""
    return request.app.state.finished_runs


async def trigger_desk(request: Request) -> TriggerDesk:
    """Dependency: coalescing and rate limits of triggers (api/triggers.py)."""
    return request.app.state.trigger_desk


async def run_lookups(request: Request) -> RunLookups:
    """Dependency: what the API remembers of runs not yet ended, and of unknown ids."""
    return request.app.state.run_lookups


Runs = Annotated[ReportRuns, Depends(report_runs)]
ReportsDir = Annotated[Path, Depends(reports_folder)]
Finished = Annotated[FinishedRuns, Depends(finished_runs)]
Desk = Annotated[TriggerDesk, Depends(trigger_desk)]
Lookups = Annotated[RunLookups, Depends(run_lookups)]

router = APIRouter(dependencies=[Depends(authorize)])


def _too_many(exc: RateLimited) -> HTTPException:
    return HTTPException(status_code=429, detail=str(exc), headers={"Retry-After": retry_after_header(exc.retry_after)})


def tenant_rows(csv: bytes, caller: Caller) -> bytes:
    """The report CSV with only the caller's stores' rows (and the header), each line as it was."""
    frame = pl.read_csv(io.BytesIO(csv), infer_schema=False)  # every value kept as its text
    return own_rows(caller, frame).write_csv().encode()


def _unavailable(exc: DagsterUnavailable) -> HTTPException:
    return HTTPException(status_code=503, detail=str(exc))


@router.post(
    "/trigger_report",
    response_model=TriggerResponse,
    responses={
        422: {"model": ErrorDetail},
        429: {"model": ErrorDetail, "description": "Too many runs started by this caller: see Retry-After."},
        503: {"model": ErrorDetail},
    },
    summary="Start a report run",
)
def trigger_report(
    runs: Runs, caller: Authorized, desk: Desk, engine: DatabaseIfAny, request: TriggerRequest | None = None
) -> TriggerResponse:
    """Launches a run of the report job in Dagster and answers at once with its id; while an
    identical report (same T, same data) is queued or running, answers that run's id instead."""
    as_of = (request.as_of.strip() if request and request.as_of else None) or None
    if as_of:
        try:
            parse_as_of(as_of)
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
    try:
        return TriggerResponse(
            report_id=desk.trigger(runs, as_of, caller, lambda: data_version(engine) if engine is not None else ())
        )
    except RateLimited as exc:
        raise _too_many(exc) from exc
    except DagsterUnavailable as exc:
        raise _unavailable(exc) from exc
    except DagsterRefused as exc:  # e.g. the job is not in the code location
        raise HTTPException(status_code=502, detail=f"Dagster refused the request: {exc}") from exc


@router.get(
    "/get_report",
    response_model=ReportStatus,
    response_model_exclude_none=True,
    responses={
        200: {
            "description": '`{"status": "Running"}` while queued or running; the CSV (header '
            "`X-Report-Status: Complete`, and `X-Report-Warning` when its T is far after the newest poll "
            'or before every poll) when done; `{"status": "Failed", "error": ...}` if it failed.',
            "content": {"text/csv": {"example": CSV_EXAMPLE}},
        },
        404: {"model": ErrorDetail},
        429: {"model": ErrorDetail, "description": "Too many look-ups of unknown ids by this caller."},
        503: {"model": ErrorDetail},
    },
    summary="Poll a report",
)
async def get_report(
    runs: Runs,
    reports: ReportsDir,
    finished: Finished,
    lookups: Lookups,
    caller: Authorized,
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
        try:
            run = await lookups.run_info(runs, report_id, caller)
        except DagsterUnavailable as exc:
            raise _unavailable(exc) from exc
        except RateLimited as exc:
            raise _too_many(exc) from exc
        if run is not None:
            finished.remember(report_id, run)
    if run is None:
        raise HTTPException(status_code=404, detail=f"no report with id {report_id}")
    if run.job_name not in REPORT_PRODUCING_JOBS:
        raise HTTPException(status_code=404, detail=f"{report_id} is a Dagster run of {run.job_name}, not a report")
    if run.status in RUNNING_STATES:
        return ReportStatus(status="Running")
    if run.status in FAILED_STATES:
        error = without_server_paths(run.error, reports) if run.error else f"the run ended as {run.status}"
        return ReportStatus(status="Failed", error=error)
    path = reports / f"{report_id}.csv"
    if not path.exists():
        return ReportStatus(
            status="Failed",
            error=f"the run succeeded but its report file {path.name} is missing from the reports folder",
        )
    content = path.read_bytes()
    return Response(
        content=tenant_rows(content, caller) if caller.is_tenant else content,
        media_type="text/csv",
        headers={
            "X-Report-Status": "Complete",
            "Content-Disposition": f'attachment; filename="storemon-report-{report_id}.csv"',
            # An empty report (T before every poll) or one of guesses (T long after): docs/monitor.md.
            # Fleet-wide (it names the newest poll of any store), so not for a tenant's rows.
            **({"X-Report-Warning": header_text(run.warning)} if run.warning and not caller.is_tenant else {}),
        },
    )


def header_text(text: str) -> str:
    """`text` as an HTTP header value: one line, printable ASCII, at most 500 characters (a
    header that is not is a 500 for the whole answer)."""
    line = "".join(c if " " <= c <= "~" else "?" for c in " ".join(text.split()))
    return line[:500]


def without_server_paths(text: str, reports: Path) -> str:
    """A message for a client with the configured folders' absolute paths written relative to them
    (`<reports folder>/x.csv`): a run's failure names files where the server keeps them, and a
    client has no business with the server's layout (issue 20 row 14)."""
    folders = {
        "reports folder": reports,
        "landing folder": settings.landing_dir(),
        "data folder": settings.data_home(),
        "storemon home": settings.storemon_home(),
    }
    for label, folder in sorted(folders.items(), key=lambda item: -len(str(item[1]))):  # the deepest first
        for form in {str(folder), str(folder.resolve())}:
            text = text.replace(form.rstrip("/") + "/", f"<{label}>/").replace(form, f"<{label}>")
    return text


# Trailing slashes work too (no redirect: clients like curl do not follow one by default).
router.add_api_route(
    "/trigger_report/", trigger_report, methods=["POST"], include_in_schema=False, response_model=TriggerResponse
)
router.add_api_route(
    "/get_report/",
    get_report,
    methods=["GET"],
    include_in_schema=False,
    response_model=ReportStatus,
    response_model_exclude_none=True,
)
