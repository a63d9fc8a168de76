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

Stores are told apart by the column `store_id`: the opaque text id, or any one-to-one stand-in
for it. The report built from the database computes with the stores' small integer keys,
which group, sort and join several times faster than text, and maps them back to the ids at
the end (service.py); every function here keeps the type it is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from storemon_assets.core.business_time import (
    US_PER_DAY,
    US_PER_HOUR,
    US_PER_MINUTE,
    business_intervals_utc,
    store_zones,
    with_wall_clock,
)
from storemon_assets.core.feeds import DEFAULT_TIMEZONE
from storemon_assets.core.scalars import as_optional_int
from storemon_assets.core.tables import STORE_STATUS_INTERVALS, UPTIME_REPORT

REPORT_COLUMNS = tuple(UPTIME_REPORT.column_names)
UP, DOWN, NO_DATA = "up", "down", "no_data"
STATUSES = (UP, DOWN, NO_DATA)
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


def one_poll_per_instant(polls: pl.DataFrame) -> pl.DataFrame:
    """store_id, at_us, active: one row per (store, instant), sorted by store and time.

    SPEC §5.1: polls at one instant with different statuses count as one inactive poll.
    `polls` has store_id, polled_at_us and either `active` (bool) or `status` (text).
    Sorted with `active` last, false (inactive) comes first among polls at one instant, so the
    first of each run of equal (store, instant) is the one that counts. Input that is already
    in order (as the database returns it) costs a single pass.
    """
    if "active" not in polls.columns:
        polls = polls.with_columns((pl.col("status") == "active").alias("active"))
    ordered = polls.select("store_id", pl.col("polled_at_us").alias("at_us"), "active").sort(
        "store_id", "at_us", "active"
    )
    repeats = (pl.col("store_id") == pl.col("store_id").shift(1)) & (pl.col("at_us") == pl.col("at_us").shift(1))
    return ordered.filter(~repeats.fill_null(False))


def utc_days(points: pl.DataFrame, at_col: str = "at_us") -> pl.DataFrame:
    """store_id, utc_day (days since the epoch) of each instant, deduplicated."""
    days = points.select("store_id", pl.col(at_col).floordiv(US_PER_DAY).alias("utc_day"))
    # Points in store and time order (as read) repeat a day in runs: drop the repeats in one
    # pass before the general de-duplication.
    repeats = (pl.col("store_id") == pl.col("store_id").shift(1)) & (pl.col("utc_day") == pl.col("utc_day").shift(1))
    return days.filter(~repeats.fill_null(False)).unique()


def window_utc_days(store_ids: pl.Series, start_us: int, end_us: int) -> pl.DataFrame:
    """store_id, utc_day of every UTC day that [start_us, end_us] touches, for each store."""
    days = pl.DataFrame({"utc_day": pl.int_range(start_us // US_PER_DAY, end_us // US_PER_DAY + 1, eager=True)})
    return pl.DataFrame({"store_id": store_ids}).unique().join(days, how="cross")


def business_intervals_covering(schedule: pl.DataFrame, store_days: pl.DataFrame) -> pl.DataFrame:
    """Merged business intervals holding all business time of the given UTC days.

    `store_days`: store_id, utc_day. An interval containing instant x opens on x's local date
    or the day before (it closes at most 48 h after that midnight), and a local date is within
    a day of the UTC date (offsets stay within +-14 h), so the local dates utc_day - 2 ...
    utc_day + 1 cover every business instant of the day. Dates beyond that only add business
    time that is genuinely there, so answers stay exact.
    """
    offsets = pl.DataFrame({"_offset": pl.Series([-2, -1, 0, 1], dtype=pl.Int64)})
    dates = (
        store_days.join(offsets, how="cross")
        .select("store_id", (pl.col("utc_day") + pl.col("_offset")).cast(pl.Int32).cast(pl.Date).alias("local_date"))
        .unique()
    )
    return business_intervals_utc(schedule, dates)


def observations(polls: pl.DataFrame, business: pl.DataFrame) -> pl.DataFrame:
    """The polls taken during business time (SPEC §5.1), one per (store, instant).

    `polls`: as for `one_poll_per_instant`, already limited to instants at or before T.
    `business`: merged business intervals covering every poll's instant (see
    `business_intervals_covering`). Returns store_id, at_us, active sorted by store and time.
    """
    points = one_poll_per_instant(polls)
    located = points.join_asof(
        business, left_on="at_us", right_on="open_us", by="store_id", strategy="backward", check_sortedness=False
    )
    return located.filter(pl.col("at_us") < pl.col("close_us")).select(points.columns)


def polls_observations(polls: pl.DataFrame, schedule: pl.DataFrame) -> pl.DataFrame:
    """`observations` of any polls, with the business intervals their days need."""
    return observations(polls, business_intervals_covering(schedule, utc_days(polls, "polled_at_us")))


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
    # Rows are sorted by store, so "the same store's previous/next row" is a shifted row of the
    # same store: cheaper than grouping (`over`) on millions of observations.
    same_as_next = (pl.col("store_id") == pl.col("store_id").shift(-1)).fill_null(False)
    next_also_before = same_as_next & (pl.col("at_us").shift(-1) < start_us)
    obs = obs.sort("store_id", "at_us").filter((pl.col("at_us") >= start_us) | ~next_also_before)
    same_as_previous = pl.col("store_id") == pl.col("store_id").shift(1)
    previous_at = pl.when(same_as_previous).then(pl.col("at_us").shift(1))
    previous_active = pl.when(same_as_previous).then(pl.col("active").shift(1))
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
        pl.min_horizontal(pl.when(same_as_next).then(pl.col("start").shift(-1)), pl.col("hi")).alias("end_half_us"),
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
        keep_order=False,  # sorted below
    )
    return (
        local.with_columns(
            pl.col("start_local").dt.epoch("us").alias("start_local_us"),
            pl.col("end_local").dt.epoch("us").alias("end_local_us"),
        )
        .select(list(STATUS_INTERVAL_SCHEMA))
        .cast({name: dtype for name, dtype in STATUS_INTERVAL_SCHEMA.items() if name != "store_id"})
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


def report_from_observations(
    obs: pl.DataFrame,
    schedule: pl.DataFrame,
    store_ids: pl.Series,
    as_of_us: int,
    business: pl.DataFrame | None = None,
) -> UptimeReport:
    """The report as of T, and the status intervals behind it, from the observations that matter.

    `obs` (store_id, at_us, active) must hold every observation of the week before T (up to
    T) and each store's last observation before that week, its *carry-in*; earlier ones are
    allowed and change nothing, because a cell ends before the next observation. This is what
    lets a report read only the week (docs/uptime-logic.md §8). `store_ids`: the stores to
    report, those with a poll at or before T. `business`: merged business intervals covering
    the week for every one of them, when the caller has them already.
    """
    if store_ids.is_empty():
        return empty_uptime_report(as_of_us)
    polled = store_ids.unique().sort()
    start_us = as_of_us - WEEK.length_us
    if business is None:
        business = business_intervals_covering(schedule, window_utc_days(polled, start_us, as_of_us))
    intervals = status_intervals(obs, business, start_us, as_of_us)
    intervals = with_local_bounds(intervals, store_zones(schedule))

    exact = (
        pl.DataFrame({"store_id": polled})
        .with_columns(pl.col("store_id").is_in(obs.get_column("store_id").unique().implode()).alias("has_observations"))
        .join(window_sums(intervals, business, as_of_us), on="store_id", how="left")
        .fill_null(0)
    )
    return UptimeReport(as_of_us, round_report(exact), exact, intervals)


def compute_uptime(polls: pl.DataFrame, schedule: pl.DataFrame, as_of_us: int | None) -> UptimeReport:
    """The whole report as of T (default: the latest poll) from every poll given, and the
    status intervals behind it.

    `polls`: store_id, polled_at_us and `status` (text) or `active` (bool). `schedule`: from
    `weekly_schedule` for (at least) every polled store.
    """
    if as_of_us is None:
        as_of_us = as_optional_int(polls.get_column("polled_at_us").max())
    if as_of_us is None:
        return empty_uptime_report(None)
    polls = polls.filter(pl.col("polled_at_us") <= as_of_us)
    polled = polls.get_column("store_id").unique()
    return report_from_observations(polls_observations(polls, schedule), schedule, polled, as_of_us)


def _cents_half_away(half_us: pl.Expr, unit_us: int) -> pl.Expr:
    """Exact integer rounding of a non-negative duration to hundredths of `unit_us` (an integer)."""
    unit_half_us = 2 * unit_us
    return (half_us * 200 + unit_half_us) // (2 * unit_half_us)


def _round_half_away(half_us: pl.Expr, unit_us: int) -> pl.Expr:
    """Exact integer rounding of a non-negative duration to 2 decimals of `unit_us`."""
    # round(2): polars divides by multiplying with 1/100, which leaves 1.6400000000000001.
    return (_cents_half_away(half_us, unit_us) / 100).cast(pl.Float64).round(2)


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


def empty_uptime_report(as_of_us: int | None) -> UptimeReport:
    """The report when no store has a poll at or before T (or no poll was loaded at all)."""
    return UptimeReport(as_of_us, _empty_report(), pl.DataFrame(), pl.DataFrame(schema=STATUS_INTERVAL_SCHEMA))


def report_csv(report: pl.DataFrame) -> str:
    """The report as CSV text: SPEC §6 header, 2 decimals, sorted by store_id as strings."""
    return report.sort("store_id").write_csv(float_precision=2)
