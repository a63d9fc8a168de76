"""The store pages of the HTTP API: the fleet, the worst stores, one store's week, its picture,
and the web page at `/` that shows them (with its script and style under /static/).

The page shell, its static files and /health are public (`public_router`); every other route
is behind the token dependency (`router`, web/access.py), and a tenant's token sees only its
stores: the fleet summary and the worst stores are computed over them, any other store is 404.

They read the storemon database directly (the current report's rows and status intervals,
published by the report run), never Dagster: a page costs a few indexed reads. The database
comes in as a FastAPI dependency (`web/database.py`): the app's `ReaderDatabase`, or the engine given to `create_app`.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from importlib import resources
from typing import Annotated, Literal

import polars as pl
import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from storemon_assets.core.access import Caller
from storemon_assets.core.business_time import US_PER_MINUTE, special_rows, weekly_rows
from storemon_assets.core.incidents import half_us_text, stale_warning
from storemon_assets.core.instants import format_instant, wall_clock_text
from storemon_assets.core.summaries import WEEKDAYS, clock_text
from storemon_assets.core.timelines import day_rows
from storemon_assets.core.uptime import NO_DATA
from storemon_assets.db.queries import (
    current_report_rows,
    fleet_totals,
    newest_poll_us,
    store_status_intervals,
    store_weekly_schedule,
    stores_without_observations,
    worst_stores,
)
from storemon_assets.history import daily_history, uptime_share_of_last_days
from storemon_assets.settings import stale_after_minutes
from storemon_assets.web import PATH_ID_MAX_CHARS, QUERY_ID_MAX_CHARS, timeline_path
from storemon_assets.web.access import Authorized, authorize, not_found_for
from storemon_assets.web.current import NO_REPORT_YET, ReportHeading, current_report, heading
from storemon_assets.web.database import Database
from storemon_assets.web.pictures import TimelinePictures
from storemon_assets.web.status import Incident, StatusNow, store_status_and_incidents
from storemon_assets.web.store_page import render_store_page, wants_html
from storemon_assets.web.timeline import timeline_svg

MAX_WORST = 1000


# --- the models: what the JSON looks like (and the OpenAPI page shows) ------------------------


class ReportRow(BaseModel):
    """One row of the report, the CSV's columns (minutes for the hour, hours for day and week)."""

    store_id: str
    uptime_last_hour: float
    uptime_last_day: float
    uptime_last_week: float
    downtime_last_hour: float
    downtime_last_day: float
    downtime_last_week: float


class Span(BaseModel):
    start_utc: str = Field(description="ISO-8601 UTC instant, inclusive (rounded down to the microsecond).")
    end_utc: str = Field(description="ISO-8601 UTC instant, exclusive (rounded down to the microsecond).")
    start_local: str = Field(description="The same instant on the store's wall clock, with its UTC offset.")
    end_local: str = Field(description="The same instant on the store's wall clock, with its UTC offset.")
    hours: float = Field(description="Length in hours (exact, from half-microsecond bounds).")


class StatusInterval(Span):
    status: Literal["up", "down"]


class OpeningHours(BaseModel):
    day_of_week: int = Field(description="0 = Monday ... 6 = Sunday.")
    day: str
    opens: str = Field(description="Local wall-clock time, HH:MM[:SS].")
    closes: str = Field(description="Local wall-clock time; at or before `opens` means the next day.")


class SpecialHours(BaseModel):
    date: str = Field(description="The store's local calendar date, YYYY-MM-DD.")
    opens: str | None = Field(description="Local wall-clock time, HH:MM[:SS]; null: closed all that date.")
    closes: str | None = Field(description="Local wall-clock time; at or before `opens` means the next day.")


class DailyValue(BaseModel):
    """One local date of a store (SPEC §8): the part of the day before T, in minutes (2 decimals)."""

    date: str = Field(description="The store's local calendar date, YYYY-MM-DD.")
    business_minutes: float
    uptime_minutes: float
    downtime_minutes: float
    uptime_share: float | None = Field(
        description="Uptime / (uptime + downtime), 0-1, 4 decimals; null when nothing was observed that day."
    )


class StoreDetail(BaseModel):
    store_id: str
    timezone: str = Field(description="IANA timezone used (the default one when the store has none).")
    schedule: list[OpeningHours] = Field(description="Weekly opening hours (no rows in the feed: open 24x7).")
    special_hours: list[SpecialHours] = Field(
        description="Dates whose hours replace the weekly ones (holidays, closures, short days), oldest first."
    )
    as_of: str = Field(description="The report's T, ISO-8601 UTC.")
    report_id: str
    report: ReportRow
    intervals: list[StatusInterval] = Field(
        description="Business time in the week before T, cut where the status changes, in time order."
    )
    no_data: list[Span] = Field(
        description="Business time with no observation to take a status from (a store with no observation at all)."
    )
    timeline_svg: str = Field(description="Path of the picture of this week.")
    daily: list[DailyValue] = Field(
        default_factory=list, description="The last 90 local dates before T, oldest first (docs/history.md)."
    )
    status_now: StatusNow | None = Field(
        default=None, description="Up, down, closed or no data at T, since when; null before incidents were computed."
    )
    incidents: list[Incident] = Field(default=[], description="Its incidents in the week before T (SPEC 9).")


class WorstStores(ReportHeading):
    stores: list[ReportRow] = Field(description="Most downtime last week first; ties by store id.")


class FleetSummary(ReportHeading):
    published_at: str
    stores: int
    stores_without_observations: int
    uptime_hours_last_week: float
    downtime_hours_last_week: float
    uptime_share_last_week: float | None = Field(description="Uptime / (uptime + downtime) over all stores, 0-1.")
    stores_below_95_percent: int = Field(description="Stores with business time last week and uptime under 95 %.")
    stores_below_80_percent: int
    uptime_share_last_30_days: float | None = Field(
        default=None,
        description="Uptime / (uptime + downtime) over all stores' dates of the last 30 days before T, 0-1 "
        "(daily values; null when nothing was observed).",
    )
    stale_warning: str | None = Field(
        default=None,
        description="Set when T is more than STOREMON_STALE_AFTER_MINUTES after the newest poll: statuses are guesses.",
    )


# --- dependencies ---------------------------------------------------------------------------


StoreId = Annotated[str, Path(description="The store's id, as in the report.", max_length=PATH_ID_MAX_CHARS)]
StoreIdQuery = Annotated[
    str, Query(description="The store's id, as in the report: any id.", max_length=QUERY_ID_MAX_CHARS)
]
TIMELINE_RESPONSES = {
    200: {"content": {"image/svg+xml": {}}, "description": "The week before T, one row per local day."},
    404: {"description": "Unknown store, or no report published yet."},
}


def _stale_warning(engine: sa.Engine, info: dict) -> str | None:
    """The stale-data warning of the current report (T far after the newest poll), or None."""
    return stale_warning(info["as_of_us"], newest_poll_us(engine), stale_after_minutes() * US_PER_MINUTE)


def _report_row(engine: sa.Engine, store_id: str) -> dict:
    rows = current_report_rows(engine, store_id)
    if rows.is_empty():
        raise HTTPException(status_code=404, detail=f"store {store_id[:80]!r} is not in the current report")
    return rows.row(0, named=True)


def _spans(intervals: pl.DataFrame) -> pl.DataFrame:
    start_us, end_us = pl.col("start_half_us") // 2, pl.col("end_half_us") // 2
    return intervals.select(
        half_us_text(pl.col("start_half_us")).alias("start_utc"),
        half_us_text(pl.col("end_half_us")).alias("end_utc"),
        wall_clock_text(pl.col("start_local_us"), start_us).alias("start_local"),
        wall_clock_text(pl.col("end_local_us"), end_us).alias("end_local"),
        ((pl.col("end_half_us") - pl.col("start_half_us")) / 7_200_000_000).alias("hours"),
        "status",
    )


# --- the routes ------------------------------------------------------------------------------

public_router = APIRouter()
router = APIRouter(dependencies=[Depends(authorize)])

STATIC_FILES = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "store.css": "text/css; charset=utf-8",  # the store pages' (web/store_page.py)
    "strip.css": "text/css; charset=utf-8",  # the 90-day strip, on both pages
}


@public_router.get("/", include_in_schema=False, response_class=HTMLResponse)
def web_page() -> HTMLResponse:
    """The page: trigger a report, watch it, download it; the fleet and its worst stores."""
    return HTMLResponse(resources.files("storemon_assets.web").joinpath("index.html").read_text())


@public_router.get("/static/{name}", include_in_schema=False)
def static_file(name: str) -> Response:
    """The page's script and style (served files: the Content-Security-Policy forbids inline ones)."""
    if name not in STATIC_FILES:
        raise HTTPException(status_code=404, detail="no such file")
    content = resources.files("storemon_assets.web").joinpath("static", name).read_bytes()
    return Response(content, media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})


@public_router.get("/health", summary="Liveness: the API answers (no token needed)")
def health() -> dict:
    return {"status": "ok"}


# Trailing slashes answer too (the app does not redirect: curl and others would not follow).
@router.get("/summary/", include_in_schema=False, response_model=FleetSummary)
@router.get(
    "/summary",
    response_model=FleetSummary,
    responses=NO_REPORT_YET,
    summary="The fleet in the current report",
)
def fleet_summary(engine: Database, caller: Authorized) -> FleetSummary:
    info = current_report(engine)
    stale = _stale_warning(engine, info)
    totals = fleet_totals(engine, caller.stores)
    if caller.is_tenant:  # the counts of its stores only
        info = info | {
            "stores": totals["stores"],
            "stores_without_observations": stores_without_observations(engine, caller.stores),
        }
    open_hours = totals["uptime_hours"] + totals["downtime_hours"]
    return FleetSummary(
        **heading(info),
        published_at=format_instant(info["published_at_us"]),
        stores=info["stores"],
        stores_without_observations=info["stores_without_observations"],
        uptime_hours_last_week=round(totals["uptime_hours"], 2),
        downtime_hours_last_week=round(totals["downtime_hours"], 2),
        uptime_share_last_week=round(totals["uptime_hours"] / open_hours, 4) if open_hours else None,
        stores_below_95_percent=totals["below_95"],
        stores_below_80_percent=totals["below_80"],
        # The fleet's uptime share of the last 30 dates; a tenant's, over its stores only.
        uptime_share_last_30_days=uptime_share_of_last_days(engine, info["as_of_us"], 30, caller.stores),
        stale_warning=stale,
    )


@router.get("/stores/", include_in_schema=False, response_model=WorstStores)
@router.get(
    "/stores",
    response_model=WorstStores,
    responses=NO_REPORT_YET,
    summary="The stores with the most downtime last week",
)
def list_worst_stores(
    engine: Database,
    caller: Authorized,
    worst: Annotated[int, Query(ge=1, le=MAX_WORST, description="How many stores, most downtime first.")] = 20,
) -> WorstStores:
    info = current_report(engine)
    rows = worst_stores(engine, worst, caller.stores)
    return WorstStores(
        **heading(info),
        stores=[ReportRow(**row) for row in rows.iter_rows(named=True)],
    )


# Store ids are opaque text and may hold a `/`: both routes take the rest of the path, and the
# picture's route comes first, so `<id>/timeline.svg` is never read as a store id. Ids no path can
# carry (`.`, `..`, `<id>/timeline.svg`, over 200 characters) have the query forms below.
@router.get(
    "/stores/{store_id:path}/timeline.svg",
    response_class=Response,
    responses=TIMELINE_RESPONSES,
    summary="One store's week as a picture",
)
async def store_timeline_svg(request: Request, engine: Database, caller: Authorized, store_id: StoreId) -> Response:
    return await _timeline(request, engine, caller, store_id)


@router.get(
    "/stores/{store_id:path}",
    response_model=StoreDetail,
    responses={404: {"description": "Unknown store, or no report published yet."}},
    summary="One store: schedule, report row and when it was up or down last week",
)
def store_detail(engine: Database, caller: Authorized, store_id: StoreId, request: Request, response: Response):
    """JSON, or the store's HTML page for a browser (content negotiation on Accept)."""
    return _negotiated(engine, caller, store_id, request, response)


@router.get(
    "/store/timeline.svg",
    response_class=Response,
    responses=TIMELINE_RESPONSES,
    summary="One store's week as a picture, for any id (the id as a query parameter)",
)
async def store_timeline_svg_by_query(
    request: Request, engine: Database, caller: Authorized, store_id: StoreIdQuery
) -> Response:
    return await _timeline(request, engine, caller, store_id)


@router.get(
    "/store",
    response_model=StoreDetail,
    responses={404: {"description": "Unknown store, or no report published yet."}},
    summary="One store, for any id (the id as a query parameter: `.`, `..`, or one ending in /timeline.svg)",
)
def store_detail_by_query(
    engine: Database, caller: Authorized, store_id: StoreIdQuery, request: Request, response: Response
):
    return _negotiated(engine, caller, store_id, request, response)


async def _timeline(request: Request, engine: sa.Engine, caller: Caller, store_id: str) -> Response:
    """The picture, drawn once per report and store (web/pictures.py): the routes are `async` so
    that a request waiting for its turn to draw holds no worker thread."""
    not_found_for(caller, store_id)
    info = await run_in_threadpool(current_report, engine)
    pictures: TimelinePictures = request.app.state.timeline_pictures
    picture = await pictures.get_or_draw(info["report_id"], store_id, lambda: _draw_timeline(engine, store_id, info))
    return Response(
        picture,
        media_type="image/svg+xml",
        headers={"Cache-Control": "no-cache"},  # the next report replaces it
    )


def _draw_timeline(engine: sa.Engine, store_id: str, info: dict) -> bytes:
    _report_row(engine, store_id)
    schedule = store_weekly_schedule(engine, store_id)
    rows = day_rows(store_status_intervals(engine, store_id), schedule, info["as_of_us"])
    as_of = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=info["as_of_us"])
    title = f"store {store_id} · {schedule.get_column('timezone')[0]} · week before {as_of:%Y-%m-%d %H:%M} UTC"
    return timeline_svg(rows, title)


def _negotiated(engine: sa.Engine, caller: Caller, store_id: str, request: Request, response: Response):
    """The store's JSON, or its HTML page when the client prefers HTML (a browser's navigation)."""
    as_html = wants_html(request.headers.get("accept"))
    response.headers["Vary"] = "Accept"
    try:
        not_found_for(caller, store_id)
        info = current_report(engine)
        detail = _detail(engine, store_id, info)
    except HTTPException as exc:
        if not as_html:
            raise
        page = f"<!doctype html><title>storemon</title><p>{escape(str(exc.detail))}</p><p><a href='/'>storemon</a>"
        return HTMLResponse(page, status_code=exc.status_code, headers={"Vary": "Accept"})
    if as_html:
        page = render_store_page(detail.model_dump(), _stale_warning(engine, info))
        return HTMLResponse(page, headers={"Vary": "Accept", "Cache-Control": "no-cache"})
    return detail


def _detail(engine: sa.Engine, store_id: str, info: dict) -> StoreDetail:
    row = _report_row(engine, store_id)
    schedule = store_weekly_schedule(engine, store_id)
    spans = _spans(store_status_intervals(engine, store_id))
    status_now, incidents = store_status_and_incidents(engine, store_id, info["as_of_us"])
    times = (clock_text(pl.col("start_time_us")), clock_text(pl.col("end_time_us")))
    return StoreDetail(
        store_id=store_id,
        timezone=schedule.get_column("timezone")[0],
        schedule=[
            OpeningHours(day_of_week=day, day=WEEKDAYS[day], opens=opens, closes=closes)
            for day, opens, closes in weekly_rows(schedule).select("day_of_week", *times).iter_rows()
        ],
        special_hours=[
            SpecialHours(date=date.isoformat(), opens=opens, closes=closes)
            for date, opens, closes in special_rows(schedule)
            .sort("special_date")
            .select("special_date", *times)
            .iter_rows()
        ],
        **heading(info),
        report=ReportRow(**row),
        intervals=[StatusInterval(**s) for s in spans.filter(pl.col("status") != NO_DATA).iter_rows(named=True)],
        no_data=[Span(**s) for s in spans.filter(pl.col("status") == NO_DATA).drop("status").iter_rows(named=True)],
        timeline_svg=timeline_path(store_id),
        daily=store_daily_values(engine, store_id, info["as_of_us"]),
        status_now=StatusNow(**status_now) if status_now else None,
        incidents=[Incident(**i) for i in incidents],
    )


def store_daily_values(engine: sa.Engine, store_id: str, as_of_us: int, days: int = 90) -> list[DailyValue]:
    """The store's daily values of the last `days` dates before T (stored where they hold)."""
    values = daily_history(engine, as_of_us, days=days, store_id=store_id).csv_frame()
    observed = pl.col("uptime_minutes") + pl.col("downtime_minutes")
    shares = values.select(
        pl.col("date_local").alias("date"),
        "business_minutes",
        "uptime_minutes",
        "downtime_minutes",
        pl.when(observed > 0).then((pl.col("uptime_minutes") / observed).round(4)).alias("uptime_share"),
    )
    return [DailyValue(**row) for row in shares.iter_rows(named=True)]
