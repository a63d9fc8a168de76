"""Incidents and each store's status now (SPEC §9), from the report's status intervals.

An *incident* is a maximal stretch of a store's down business time in the week before T with no
up business time between its parts: closed time in between does not end it. It is read straight
off the status intervals (core/uptime.py), which already cut the week's business time at every
status change, so the incident list agrees with the timeline and with the report by
construction: a store's incidents' down time, summed, is its `downtime_last_week` exactly.

It starts at its first down instant (the week's start if the store was down then) and ends at
the first up instant after it, the start of the next up interval; a store still down at T (even
if it closed since) has an *open* incident.

*Status now* is what a person asks first: is the store up, down, closed, or do we know nothing,
since when, and is it still reporting. "Inside business time at T" comes from the store's
schedule (the same business-time functions as the report, so special hours count too); a store
inside its business time whose newest poll is more than the stale limit before T is *not
reporting*: its status is then a guess.

Bounds are integer half-microseconds like the intervals'; they are rounded down to the
microsecond only when shown.
"""

from __future__ import annotations

import polars as pl

from storemon_assets.core.business_time import US_PER_MINUTE, store_zones, with_wall_clock
from storemon_assets.core.feeds import DEFAULT_TIMEZONE
from storemon_assets.core.instants import UTC_TEXT, format_instant, wall_clock_text
from storemon_assets.core.scalars import as_int
from storemon_assets.core.tables import STORE_INCIDENTS, STORE_STATUS_NOW
from storemon_assets.core.uptime import DOWN, NO_DATA, UP, business_intervals_covering, window_utc_days

CLOSED = "closed"
NOW_STATUSES = (UP, DOWN, CLOSED, NO_DATA)
INCIDENT_SCHEMA = STORE_INCIDENTS.polars_schema
STATUS_NOW_SCHEMA = STORE_STATUS_NOW.polars_schema
INCIDENT_CSV_COLUMNS = ("store_id", "started_utc", "ended_utc", "downtime_minutes", "open")


def incidents_from_intervals(intervals: pl.DataFrame) -> pl.DataFrame:
    """Every store's incidents in the week before T, from its status intervals.

    `intervals`: STORE_STATUS_INTERVALS columns (any order). Up and down intervals alternate
    once `no_data` (a store without observations) is left out, apart from runs of one status
    split by closed time: a run of down intervals is one incident, and the interval after its
    last one, if any, is up and ends it. Returns INCIDENT_SCHEMA sorted by store and start.
    """
    known = intervals.filter(pl.col("status") != NO_DATA).sort("store_id", "start_half_us")
    same_store_before = pl.col("store_id") == pl.col("store_id").shift(1)
    same_store_after = (pl.col("store_id") == pl.col("store_id").shift(-1)).fill_null(False)
    is_down = pl.col("status") == DOWN
    starts_incident = is_down & ~(same_store_before & (pl.col("status").shift(1) == DOWN)).fill_null(False)
    rows = known.with_columns(
        starts_incident.cum_sum().alias("_incident"),
        # The next interval of the same store: after an incident's last down interval, the up one ending it.
        pl.when(same_store_after).then(pl.col("start_half_us").shift(-1)).alias("_next_start"),
        pl.when(same_store_after).then(pl.col("start_local_us").shift(-1)).alias("_next_local"),
    ).filter(is_down)
    incidents = rows.group_by("_incident", maintain_order=True).agg(
        pl.col("store_id").first(),
        pl.col("start_half_us").first().alias("started_half_us"),
        pl.col("_next_start").last().alias("ended_half_us"),
        (pl.col("end_half_us") - pl.col("start_half_us")).sum().alias("downtime_half_us"),
        pl.col("start_local_us").first().alias("started_local_us"),
        pl.col("_next_local").last().alias("ended_local_us"),
    )
    return (
        incidents.with_columns(pl.col("ended_half_us").is_null().alias("open"))
        .select(list(INCIDENT_SCHEMA))
        .cast(INCIDENT_SCHEMA)
        .sort("store_id", "started_half_us")
    )


def open_at(schedule: pl.DataFrame, store_ids: pl.Series, at_us: int) -> pl.DataFrame:
    """store_id, timezone, open_now: whether each store is inside its business time at `at_us`
    (half-open intervals: open at the opening instant, closed at the closing one)."""
    stores = (
        pl.DataFrame({"store_id": store_ids})
        .unique()
        .join(store_zones(schedule), on="store_id", how="left")
        .with_columns(pl.col("timezone").fill_null(DEFAULT_TIMEZONE))
        .sort("store_id")
    )
    business = business_intervals_covering(schedule, window_utc_days(stores.get_column("store_id"), at_us, at_us))
    inside = business.filter((pl.col("open_us") <= at_us) & (at_us < pl.col("close_us"))).select("store_id").unique()
    return stores.with_columns(pl.col("store_id").is_in(inside.get_column("store_id").implode()).alias("open_now"))


def status_now(
    intervals: pl.DataFrame,
    incidents: pl.DataFrame,
    open_now: pl.DataFrame,
    newest_polls: pl.DataFrame,
    as_of_us: int,
    stale_after_us: int,
) -> pl.DataFrame:
    """Each store's status at T, since when, the age of its newest poll, and not reporting.

    `intervals`: the week's status intervals; `incidents`: from `incidents_from_intervals`;
    `open_now`: store_id, timezone, open_now for every store to describe (see `open_at`); `newest_polls`:
    store_id, newest_poll_us (its newest poll at or before T, observation or not).

    - `closed`: outside business time at T, since the end of its last business time in the week
      (null: closed all week). A closed store is never "not reporting" (nobody expects polls).
    - `no_data`: open, but the store has no observation at all (its intervals are `no_data`).
    - `down`: open, and its open incident's start is since when.
    - `up`: open, up since its last incident of the week ended (else since its first business
      time in the week).
    Returns STATUS_NOW_SCHEMA sorted by store.
    """
    known = intervals.filter(pl.col("status") != NO_DATA)
    last = known.group_by("store_id").agg(
        pl.col("status").sort_by("start_half_us").last().alias("_last_status"),
        pl.col("start_half_us").min().alias("_first_start"),
    )
    business_end = intervals.group_by("store_id").agg(pl.col("end_half_us").max().alias("_business_end"))
    open_incident = incidents.filter(pl.col("open")).select("store_id", pl.col("started_half_us").alias("_down_since"))
    last_ended = (
        incidents.filter(~pl.col("open")).group_by("store_id").agg(pl.col("ended_half_us").max().alias("_up_since"))
    )
    frame = (
        open_now.join(last, on="store_id", how="left")
        .join(business_end, on="store_id", how="left")
        .join(open_incident, on="store_id", how="left")
        .join(last_ended, on="store_id", how="left")
        .join(newest_polls.select("store_id", "newest_poll_us"), on="store_id", how="left")
    )
    status = (
        pl.when(~pl.col("open_now"))
        .then(pl.lit(CLOSED))
        .when(pl.col("_last_status").is_null())
        .then(pl.lit(NO_DATA))
        .otherwise(pl.col("_last_status"))
    )
    since = (
        pl.when(pl.col("status") == CLOSED)
        .then(pl.col("_business_end"))
        .when(pl.col("status") == DOWN)
        .then(pl.col("_down_since"))
        .when(pl.col("status") == UP)
        .then(pl.coalesce("_up_since", "_first_start"))
    )
    silent = pl.col("newest_poll_us").is_null() | (pl.col("newest_poll_us") < as_of_us - stale_after_us)
    return (
        frame.with_columns(status.alias("status"))
        .with_columns(
            since.alias("since_half_us"),
            (pl.col("open_now") & silent).alias("not_reporting"),
        )
        .select(list(STATUS_NOW_SCHEMA))
        .cast(STATUS_NOW_SCHEMA)
        .sort("store_id")
    )


def half_us_text(half_us: pl.Expr) -> pl.Expr:
    """Half-microseconds -> ISO-8601 UTC with microseconds and Z (rounded down), as SPEC §9 writes instants."""
    return pl.from_epoch(half_us // 2, time_unit="us").dt.strftime(UTC_TEXT)


def minutes_2dp(half_us: pl.Expr) -> pl.Expr:
    """Exact half-microseconds -> minutes rounded to 2 decimals, half away from zero (as the report rounds)."""
    unit_half_us = 2 * US_PER_MINUTE
    cents = (half_us * 200 + unit_half_us) // (2 * unit_half_us)
    return (cents / 100).cast(pl.Float64).round(2)


def incidents_csv(incidents: pl.DataFrame) -> str:
    """SPEC §9's CSV: store_id,started_utc,ended_utc,downtime_minutes,open, sorted by store then start;
    an open incident has an empty ended_utc and open `true`."""
    rows = incidents.sort("store_id", "started_half_us").select(
        "store_id",
        half_us_text(pl.col("started_half_us")).alias("started_utc"),
        half_us_text(pl.col("ended_half_us")).alias("ended_utc"),
        minutes_2dp(pl.col("downtime_half_us")).alias("downtime_minutes"),
        pl.when(pl.col("open")).then(pl.lit("true")).otherwise(pl.lit("false")).alias("open"),
    )
    return rows.select(INCIDENT_CSV_COLUMNS).write_csv(float_precision=2)


def status_counts(status: pl.DataFrame) -> dict[str, int]:
    """Stores per status now (up, down, closed, no_data), and how many are not reporting, of
    these STORE_STATUS_NOW rows: the API's /status counts and the incidents asset's metadata."""
    counts = dict.fromkeys(NOW_STATUSES, 0)
    counts.update(dict(status.group_by("status").len().iter_rows()))
    return {**counts, "not_reporting": as_int(status["not_reporting"].sum())}


def stale_warning(as_of_us: int | None, newest_poll_us: int | None, stale_after_us: int) -> str | None:
    """A warning when T is more than the stale limit after the newest poll loaded (e.g. `as_of: now`
    on old data): then every open store's status is a guess. None when the data is fresh."""
    if as_of_us is None or newest_poll_us is None or as_of_us - newest_poll_us <= stale_after_us:
        return None
    hours = (as_of_us - newest_poll_us) / (60 * US_PER_MINUTE)
    age = f"{hours:,.1f} hours" if hours < 48 else f"{hours / 24:,.1f} days"
    return (
        f"stale data: T ({format_instant(as_of_us)}) is {age} after the newest poll loaded "
        f"({format_instant(newest_poll_us)}); statuses at T are guesses until new polls arrive"
    )


def no_data_warning(as_of_us: int | None, newest_poll_us: int | None, stores: int) -> str | None:
    """A warning when polls are loaded but the report as of T has no store (a T before the data,
    a mistyped year, say): an empty report, not a fleet with nothing to report. None otherwise."""
    if as_of_us is None or newest_poll_us is None or stores:
        return None
    return (
        f"no data: no store was polled at or before T ({format_instant(as_of_us)}), so the report is "
        f"empty; the newest poll loaded is at {format_instant(newest_poll_us)}"
    )


def status_frame(status: pl.DataFrame, as_of_us: int) -> pl.DataFrame:
    """STORE_STATUS_NOW rows as they are shown (the API's StoreStatus fields, the UI's lists)."""
    with_local = with_wall_clock(
        status.with_columns((pl.col("since_half_us") // 2).alias("_since_us")), {"_since_us": "_since_local"}
    )
    return with_local.select(
        "store_id",
        "status",
        half_us_text(pl.col("since_half_us")).alias("since_utc"),
        wall_clock_text(pl.col("_since_local").dt.epoch("us"), pl.col("_since_us")).alias("since_local"),
        "open_now",
        pl.from_epoch("newest_poll_us", time_unit="us").dt.strftime(UTC_TEXT).alias("newest_poll_utc"),
        ((as_of_us - pl.col("newest_poll_us")) / US_PER_MINUTE).round(2).alias("newest_poll_age_minutes"),
        "not_reporting",
    )


def incident_frame(incidents: pl.DataFrame) -> pl.DataFrame:
    """STORE_INCIDENTS rows as they are shown (the API's Incident fields)."""
    return incidents.select(
        "store_id",
        half_us_text(pl.col("started_half_us")).alias("started_utc"),
        half_us_text(pl.col("ended_half_us")).alias("ended_utc"),
        wall_clock_text(pl.col("started_local_us"), pl.col("started_half_us") // 2).alias("started_local"),
        wall_clock_text(pl.col("ended_local_us"), pl.col("ended_half_us") // 2).alias("ended_local"),
        minutes_2dp(pl.col("downtime_half_us")).alias("downtime_minutes"),
        "open",
    )
