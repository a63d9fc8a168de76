"""Uptime and downtime from sparse polls (SPEC §3 and §5), vectorised over all stores.

The rule: only polls taken during business time are *observations*; every instant of business
time takes the status of the nearest observation (ties to the earlier one); uptime is the
business time whose status is active, downtime the rest. See docs/uptime-logic.md.

How it is computed without a loop: each observation owns the stretch of the time line
between the midpoints to its neighbours (its "cell"), so the status can only change at the
midpoint between two neighbouring observations of different status. Cutting each store's
business time in the week before T at those points gives its *status intervals*: when it was
up and when it was down. The report is those intervals summed per window (every window ends at
T), so the timeline and the report cannot disagree. Cells tile the whole line, so uptime +
downtime equals the business time in the window exactly.

Midpoints of two microsecond timestamps can fall on half a microsecond, so interval bounds and
sums are kept in integer *half-microseconds* and only divided when the report is rounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from storemon_assets.core.business_time import (
    US_PER_DAY,
    US_PER_HOUR,
    US_PER_MINUTE,
    business_intervals_utc,
    local_dates_around,
    store_local_dates,
    store_zones,
    with_wall_clock,
)
from storemon_assets.core.feeds import DEFAULT_TIMEZONE
from storemon_assets.core.tables import STORE_STATUS_INTERVALS, UPTIME_REPORT

REPORT_COLUMNS = tuple(UPTIME_REPORT.column_names)
UP, DOWN, NO_DATA = "up", "down", "no_data"
# A store's status intervals: the columns of the store_status_intervals table.
STATUS_INTERVAL_SCHEMA = STORE_STATUS_INTERVALS.polars_schema
_NEVER = -(2**62)  # "before any instant": where a store's first run of statuses begins


@dataclass(frozen=True)
class Window:
    name: str  # hour, day, week
    length_us: int
    unit_us: int  # the report's unit for this window: minutes or hours


WINDOWS = (
    Window("hour", US_PER_HOUR, US_PER_MINUTE),
    Window("day", US_PER_DAY, US_PER_HOUR),
    Window("week", 7 * US_PER_DAY, US_PER_HOUR),
)
WEEK = WINDOWS[-1]


@dataclass(frozen=True)
class UptimeReport:
    as_of_us: int | None
    report: pl.DataFrame  # REPORT_COLUMNS, values rounded to 2 decimals
    exact: pl.DataFrame  # store_id, has_observations, {up,down,business}_{window}_half_us
    # STATUS_INTERVAL_SCHEMA: each reported store's business time in the week before T, by status
    intervals: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=STATUS_INTERVAL_SCHEMA))


def observations(polls: pl.DataFrame, schedule: pl.DataFrame, as_of_us: int) -> pl.DataFrame:
    """Polls at or before T taken during business time; one row per (store, instant).

    Polls at one instant with different statuses count as one inactive poll.
    Returns store_id, at_us, active (bool), sorted by store and time.
    """
    polls = polls.filter(pl.col("polled_at_us") <= as_of_us).select(
        "store_id", pl.col("polled_at_us").alias("at_us"), (pl.col("status") == "active").alias("active")
    )
    polls = polls.group_by("store_id", "at_us").agg(pl.col("active").all())
    # Any interval containing an instant opens on the instant's local date or the day before.
    dates = local_dates_around(polls.select("store_id", "at_us").unique(), store_zones(schedule), 1, 0)
    intervals = business_intervals_utc(schedule, dates)
    return _inside_intervals(polls.sort("store_id", "at_us"), intervals)


def _inside_intervals(points: pl.DataFrame, intervals: pl.DataFrame) -> pl.DataFrame:
    located = points.join_asof(
        intervals, left_on="at_us", right_on="open_us", by="store_id", strategy="backward", check_sortedness=False
    )
    return located.filter(pl.col("at_us") < pl.col("close_us")).select(points.columns)


def window_business_intervals(schedule: pl.DataFrame, store_ids: pl.Series, as_of_us: int) -> pl.DataFrame:
    """Merged business intervals covering the week window [T - 7 d, T) of each store."""
    start_us = as_of_us - WEEK.length_us
    stores = pl.DataFrame({"store_id": store_ids}).unique()
    # Dates from the day before the window starts (overnight rows) to the day T falls on.
    span = pl.concat(
        [stores.with_columns(pl.lit(start_us).alias("at_us")), stores.with_columns(pl.lit(as_of_us).alias("at_us"))]
    )
    dates = local_dates_around(span, store_zones(schedule), 1, 0)
    spans = dates.group_by("store_id").agg(
        pl.col("local_date").min().alias("first"), pl.col("local_date").max().alias("last")
    )
    return business_intervals_utc(schedule, store_local_dates(spans, "first", "last"))


def status_intervals(obs: pl.DataFrame, business: pl.DataFrame, start_us: int, end_us: int) -> pl.DataFrame:
    """Each store's business time in [start_us, end_us) cut into merged up/down intervals.

    `obs`: store_id, at_us, active (sorted by store and time); `business`: merged business
    intervals of every store to describe. Status changes only at the midpoint between two
    neighbouring observations of different status (the boundary of their cells), so an
    interval starts where business time opens or where the status changes inside it, and ends
    at the next such point or where business time closes. Boundaries are integer
    half-microseconds (a midpoint of two microsecond instants is their sum in half-µs), so the
    intervals sum exactly. A store without observations gets its business time as "no_data".
    Returns STATUS_INTERVAL_SCHEMA sorted by store and start.
    """
    clipped = clip_half_us(business, start_us, end_us)
    # Only the observations in the window and the last one before it decide statuses in it.
    obs = obs.sort("store_id", "at_us").filter(
        (pl.col("at_us") >= start_us)
        | (pl.col("at_us") == pl.col("at_us").filter(pl.col("at_us") < start_us).max().over("store_id"))
    )
    previous_at = pl.col("at_us").shift(1).over("store_id")
    previous_active = pl.col("active").shift(1).over("store_id")
    # Where each run of equal statuses begins; the store's first run reaches back without limit.
    changes = (
        obs.with_columns((pl.col("at_us") + previous_at).fill_null(_NEVER).alias("change"))
        .filter(previous_active.is_null() | (pl.col("active") != previous_active))
        .select("store_id", "change", "active")
    )
    opens = clipped.select("store_id", pl.col("lo").alias("start"), "hi")
    inside = (
        changes.filter(pl.col("change") > _NEVER)
        .join_asof(clipped, left_on="change", right_on="lo", by="store_id", strategy="backward", check_sortedness=False)
        .filter((pl.col("change") > pl.col("lo")) & (pl.col("change") < pl.col("hi")))
        .select("store_id", pl.col("change").alias("start"), "hi")
    )
    pieces = (
        pl.concat([opens, inside])
        .sort("store_id", "start")
        .join_asof(
            changes, left_on="start", right_on="change", by="store_id", strategy="backward", check_sortedness=False
        )
    )
    return pieces.select(
        "store_id",
        pl.col("start").alias("start_half_us"),
        pl.min_horizontal(pl.col("start").shift(-1).over("store_id"), pl.col("hi")).alias("end_half_us"),
        pl.when(pl.col("active"))
        .then(pl.lit(UP))
        .when(~pl.col("active"))
        .then(pl.lit(DOWN))
        .otherwise(pl.lit(NO_DATA))
        .alias("status"),
    )


def with_local_bounds(intervals: pl.DataFrame, zones: pl.DataFrame) -> pl.DataFrame:
    """Add each interval's bounds on the store's wall clock (microseconds, rounded down).

    `zones`: store_id, timezone. Returns STATUS_INTERVAL_SCHEMA.
    """
    local = with_wall_clock(
        intervals.join(zones, on="store_id", how="left").with_columns(
            pl.col("timezone").fill_null(DEFAULT_TIMEZONE),
            (pl.col("start_half_us") // 2).alias("start_us"),
            (pl.col("end_half_us") // 2).alias("end_us"),
        ),
        {"start_us": "start_local", "end_us": "end_local"},
    )
    return (
        local.with_columns(
            pl.col("start_local").dt.epoch("us").alias("start_local_us"),
            pl.col("end_local").dt.epoch("us").alias("end_local_us"),
        )
        .select(list(STATUS_INTERVAL_SCHEMA))
        .cast(STATUS_INTERVAL_SCHEMA)
        .sort("store_id", "start_half_us")
    )


def clip_half_us(business: pl.DataFrame, start_us: int, end_us: int) -> pl.DataFrame:
    """Business intervals clipped to [start_us, end_us), as store_id, lo, hi in half-microseconds."""
    return (
        business.select(
            "store_id",
            (pl.max_horizontal("open_us", pl.lit(start_us)) * 2).alias("lo"),
            (pl.min_horizontal("close_us", pl.lit(end_us)) * 2).alias("hi"),
        )
        .filter(pl.col("hi") > pl.col("lo"))
        .sort("store_id", "lo")
    )


def window_sums(intervals: pl.DataFrame, business: pl.DataFrame, as_of_us: int) -> pl.DataFrame:
    """Per store and window: business, up and down time in half-microseconds.

    Up and down are the store's status intervals clipped to each window (every window ends at
    T, so only the start moves); business time comes from the business intervals on their own,
    so the invariant up + down = business checks one against the other.
    """

    def inside(lo: pl.Expr, hi: pl.Expr, window: Window) -> pl.Expr:
        return (hi - pl.max_horizontal(lo, pl.lit(2 * (as_of_us - window.length_us)))).clip(lower_bound=0)

    start, end, status = pl.col("start_half_us"), pl.col("end_half_us"), pl.col("status")
    sums = intervals.group_by("store_id").agg(
        *(
            inside(start, end, w).filter(status == kind).sum().alias(f"{name}_{w.name}_half_us")
            for w in WINDOWS
            for name, kind in (("up", UP), ("down", DOWN))
        )
    )
    business_sums = (
        clip_half_us(business, as_of_us - WEEK.length_us, as_of_us)
        .group_by("store_id")
        .agg(inside(pl.col("lo"), pl.col("hi"), w).sum().alias(f"business_{w.name}_half_us") for w in WINDOWS)
    )
    return business_sums.join(sums, on="store_id", how="full", coalesce=True)


def compute_uptime(polls: pl.DataFrame, schedule: pl.DataFrame, as_of_us: int | None) -> UptimeReport:
    """The whole report as of T (default: the latest poll), and the status intervals behind it.

    `polls`: store_id, polled_at_us, status. `schedule`: from `weekly_schedule` for (at least)
    every polled store.
    """
    if as_of_us is None:
        as_of_us = polls.get_column("polled_at_us").max() if polls.height else None
    if as_of_us is None:
        return UptimeReport(None, _empty_report(), pl.DataFrame(), pl.DataFrame(schema=STATUS_INTERVAL_SCHEMA))
    polled = polls.filter(pl.col("polled_at_us") <= as_of_us).get_column("store_id").unique().sort()
    obs = observations(polls.filter(pl.col("store_id").is_in(polled.implode())), schedule, as_of_us)
    business = window_business_intervals(schedule, polled, as_of_us)
    intervals = status_intervals(obs, business, as_of_us - WEEK.length_us, as_of_us)
    intervals = with_local_bounds(intervals, store_zones(schedule))

    exact = (
        pl.DataFrame({"store_id": polled})
        .with_columns(pl.col("store_id").is_in(obs.get_column("store_id").unique().implode()).alias("has_observations"))
        .join(window_sums(intervals, business, as_of_us), on="store_id", how="left")
        .fill_null(0)
    )
    return UptimeReport(as_of_us, round_report(exact), exact, intervals)


def _round_half_away(half_us: pl.Expr, unit_us: int) -> pl.Expr:
    """Exact integer rounding of a non-negative duration to 2 decimals of `unit_us`."""
    unit_half_us = 2 * unit_us
    cents = (half_us * 200 + unit_half_us) // (2 * unit_half_us)
    return (cents / 100).cast(pl.Float64)


def round_report(exact: pl.DataFrame) -> pl.DataFrame:
    columns = [pl.col("store_id")]
    for kind, source in (("uptime", "up"), ("downtime", "down")):
        for window in WINDOWS:
            columns.append(
                _round_half_away(pl.col(f"{source}_{window.name}_half_us"), window.unit_us).alias(
                    f"{kind}_last_{window.name}"
                )
            )
    return exact.select(columns).select(REPORT_COLUMNS).sort("store_id")


def _empty_report() -> pl.DataFrame:
    return pl.DataFrame(schema=UPTIME_REPORT.polars_schema)


def report_csv(report: pl.DataFrame) -> str:
    """The report as CSV text: SPEC §6 header, 2 decimals, sorted by store_id as strings."""
    return report.sort("store_id").write_csv(float_precision=2)
