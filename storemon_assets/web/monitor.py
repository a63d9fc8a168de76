"""`GET /incidents` and `GET /status` (SPEC §9): the current report's incidents and its stores by status
now. They read the tables the `store_incidents` asset stores beside the current report: a few
indexed reads, never Dagster. Both are behind the token (SPEC §10): a tenant token sees its own
stores only, counts included.
"""

from __future__ import annotations

from typing import Annotated, Literal

import polars as pl
from fastapi import APIRouter, Depends, Query

from storemon_assets.core.incidents import incident_frame, status_counts, status_frame
from storemon_assets.db.queries import store_incidents, store_status_now
from storemon_assets.web.access import Authorized, authorize, own_rows
from storemon_assets.web.current import NO_REPORT_YET, current_report, heading
from storemon_assets.web.database import Database
from storemon_assets.web.status import MAX_LISTED, Incident, IncidentList, StatusList, StoreStatus

router = APIRouter(dependencies=[Depends(authorize)])


@router.get(
    "/incidents",
    response_model=IncidentList,
    responses=NO_REPORT_YET,
    summary="Incidents of the current report (SPEC 9)",
)
def list_incidents(
    engine: Database,
    caller: Authorized,
    open: Annotated[bool | None, Query(description="true: only open incidents; false: only ended ones.")] = None,
) -> IncidentList:
    info = current_report(engine)
    incidents = own_rows(caller, store_incidents(engine, open_only=open is True))
    if open is False:
        incidents = incidents.filter(~pl.col("open"))
    return IncidentList(
        **heading(info),
        incidents=[Incident(**row) for row in incident_frame(incidents.head(MAX_LISTED)).iter_rows(named=True)],
    )


@router.get(
    "/status",
    response_model=StatusList,
    responses=NO_REPORT_YET,
    summary="Stores by status now: down, not reporting, ...",
)
def list_status(
    engine: Database,
    caller: Authorized,
    status: Annotated[
        list[Literal["up", "down", "closed", "no_data"]] | None, Query(description="Only stores with these statuses.")
    ] = None,
    not_reporting: Annotated[bool | None, Query(description="true: only stores not reporting.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 100,
) -> StatusList:
    info = current_report(engine)
    own = own_rows(caller, store_status_now(engine))  # read once: the counts are of all the caller's stores
    rows = own.filter(pl.col("status").is_in(status)) if status else own
    if not_reporting is not None:
        rows = rows.filter(pl.col("not_reporting") == not_reporting)
    matching = rows.height
    rows = rows.sort(["since_half_us", "store_id"], nulls_last=False).head(limit)
    return StatusList(
        **heading(info),
        counts=status_counts(own),
        matching=matching,
        stores=[StoreStatus(**row) for row in status_frame(rows, info["as_of_us"]).iter_rows(named=True)],
    )
