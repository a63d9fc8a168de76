"""Incidents and status now as the API shows them (SPEC §9): the JSON models and the conversions
from the stored tables (`store_incidents`, `store_status_now`), shared by `/incidents`, `/status`
and each store's page."""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, Field

from storemon_assets.core.incidents import incident_frame, status_frame
from storemon_assets.db.queries import store_incidents, store_status_now
from storemon_assets.web.current import ReportHeading

MAX_LISTED = 10_000


class StatusNow(BaseModel):
    status: Literal["up", "down", "closed", "no_data"] = Field(
        description="At T: up or down (inside business time), closed (outside it) or no_data (no observation)."
    )
    since_utc: str | None = Field(description="Since when, ISO-8601 UTC; null: longer than the week (or no data).")
    since_local: str | None = Field(description="The same instant on the store's wall clock, with its UTC offset.")
    open_now: bool = Field(description="Inside its business time at T.")
    newest_poll_utc: str | None = Field(description="Its newest poll at or before T, ISO-8601 UTC.")
    newest_poll_age_minutes: float | None = Field(description="T minus its newest poll, in minutes.")
    not_reporting: bool = Field(
        description="Open at T and silent for longer than STOREMON_STALE_AFTER_MINUTES: its status is a guess."
    )


class StoreStatus(StatusNow):
    store_id: str


class Incident(BaseModel):
    store_id: str
    started_utc: str = Field(description="First down instant, ISO-8601 UTC (the week's start if down then).")
    ended_utc: str | None = Field(description="First up instant after it; null while open.")
    started_local: str = Field(description="The start on the store's wall clock, with its UTC offset.")
    ended_local: str | None = Field(
        description="The end on the store's wall clock, with its UTC offset; null while open."
    )
    downtime_minutes: float = Field(description="Its down business time in the week, minutes (2 decimals).")
    open: bool


class IncidentList(ReportHeading):
    incidents: list[Incident] = Field(description="Sorted by store, then start.")


class StatusList(ReportHeading):
    counts: dict[str, int] = Field(description="Stores per status now, and stores not reporting.")
    matching: int = Field(
        description="Stores that match the filters; more than `stores` holds when `limit` cut the list."
    )
    stores: list[StoreStatus] = Field(description="The stores asked for: longest first (oldest since), then by id.")


def store_status_and_incidents(engine: sa.Engine, store_id: str, as_of_us: int) -> tuple[dict | None, list[dict]]:
    """One store's status now (None before the incidents were first refreshed) and incidents, as JSON fields."""
    status = store_status_now(engine, store_id)
    now = status_frame(status, as_of_us).drop("store_id").row(0, named=True) if status.height else None
    return now, incident_frame(store_incidents(engine, store_id)).to_dicts()
