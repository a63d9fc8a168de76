"""POST /trigger_report and GET /get_report (SPEC §7): a report is a Dagster run, its id the run id.

`trigger_report` launches a run of the current report's job, or with `as_of` an as-of report
(api/runs.py says which job and config). The GraphQL calls block: `trigger_report` is a plain
function FastAPI runs in its thread pool, and `get_report` hands only its call to Dagster to
that pool. A poll of a run that has ended is answered from memory and the reports folder, on
the event loop.

The endpoints get Dagster (`report_runs`), the reports folder (`reports_folder`) and the
finished runs as FastAPI dependencies, so tests swap in a fake run client with
`app.dependency_overrides` and check the HTTP contract without starting Dagster.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field

from storemon_assets import settings
from storemon_assets.api.runs import (
    FAILED_STATES,
    RUNNING_STATES,
    DagsterRefused,
    DagsterUnavailable,
    FinishedRuns,
    ReportRuns,
)
from storemon_assets.core.instants import parse_as_of
from storemon_assets.names import REPORT_PRODUCING_JOBS

RUN_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
CSV_EXAMPLE = "store_id,uptime_last_hour,uptime_last_day,uptime_last_week,downtime_last_hour,downtime_last_day,downtime_last_week\n"


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


Runs = Annotated[ReportRuns, Depends(report_runs)]
ReportsDir = Annotated[Path, Depends(reports_folder)]
Finished = Annotated[FinishedRuns, Depends(finished_runs)]

router = APIRouter()


def _unavailable(exc: DagsterUnavailable) -> HTTPException:
    return HTTPException(status_code=503, detail=str(exc))


@router.post(
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
        try:  # the GraphQL call blocks: off the event loop
            run = await run_in_threadpool(runs.run_info, report_id)
        except DagsterUnavailable as exc:
            raise _unavailable(exc) from exc
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
    return Response(
        content=path.read_bytes(),
        media_type="text/csv",
        headers={
            "X-Report-Status": "Complete",
            "Content-Disposition": f'attachment; filename="storemon-report-{report_id}.csv"',
        },
    )


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
