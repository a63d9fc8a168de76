"""Uptime and downtime from sparse polls (SPEC §3 and §5), vectorised over all stores.

The rule: only polls taken during business time are *observations*; every instant of business
time takes the status of the nearest observation (ties to the earlier one); uptime is the
business time whose status is active, downtime the rest. See docs/uptime-logic.md.

How it is computed without a loop: each observation owns the stretch of the time line
between the midpoints to its neighbours (its "cell"). With B(x) = business time in the window
before x, an observation's share of business time is B(right midpoint) - B(left midpoint), and
B is read off the store's merged, window-clipped business intervals with an as-of join. Cells
tile the whole line, so uptime + downtime equals the business time in the window exactly.

Midpoints of two microsecond timestamps can fall on half a microsecond, so sums are kept in
integer *half-microseconds* and only divided when the report is rounded.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from storemon_assets.core.business_time import (
    US_PER_DAY,
    US_PER_HOUR,
    US_PER_MINUTE,
    business_intervals_utc,
    local_dates_around,
    store_local_dates,
    store_zones,
)
from storemon_assets.core.tables import UPTIME_REPORT

REPORT_COLUMNS = tuple(UPTIME_REPORT.column_names)


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


def window_sums(obs: pl.DataFrame, intervals: pl.DataFrame, start_us: int, end_us: int) -> pl.DataFrame:
    """Per store: business, up and down time (half-microseconds) inside [start_us, end_us).

    `obs`: store_id, at_us, active, sorted; `intervals`: merged business intervals.
    Stores without observations are absent from the result.
    """
    clipped = (
        intervals.with_columns(
            (pl.max_horizontal("open_us", pl.lit(start_us)) * 2).alias("lo"),
            (pl.min_horizontal("close_us", pl.lit(end_us)) * 2).alias("hi"),
        )
        .filter(pl.col("hi") > pl.col("lo"))
        .with_columns((pl.col("hi") - pl.col("lo")).alias("length"))
        .with_columns((pl.col("length").cum_sum().over("store_id") - pl.col("length")).alias("before"))
        .select("store_id", "lo", "hi", "before", "length")
        .sort("store_id", "lo")
    )
    totals = clipped.group_by("store_id").agg(pl.col("length").sum().alias("business"))

    # Observations that matter: those in the window and the last one before it.
    obs = obs.sort("store_id", "at_us").filter(
        (pl.col("at_us") >= start_us)
        | (pl.col("at_us") == pl.col("at_us").filter(pl.col("at_us") < start_us).max().over("store_id"))
    )
    # Each observation's cell runs from the midpoint with its predecessor to the midpoint
    # with its successor; in half-microseconds a midpoint is simply the sum of two instants.
    cells = (
        obs.with_columns(
            (pl.col("at_us") + pl.col("at_us").shift(1).over("store_id")).alias("cell_start"),
            (pl.col("at_us") + pl.col("at_us").shift(-1).over("store_id")).alias("cell_end"),
        )
        .join(totals, on="store_id", how="left")
        .with_columns(pl.col("business").fill_null(0))
    )
    cells = cells.with_columns(
        _business_before(cells, clipped, "cell_start").alias("b_start"),
        _business_before(cells, clipped, "cell_end").alias("b_end"),
    ).with_columns(pl.col("b_start").fill_null(0), pl.col("b_end").fill_null(pl.col("business")))
    share = pl.col("b_end") - pl.col("b_start")
    return cells.group_by("store_id").agg(
        pl.col("business").first(),
        share.filter(pl.col("active")).sum().alias("up"),
        share.filter(~pl.col("active")).sum().alias("down"),
    )


def _business_before(cells: pl.DataFrame, clipped: pl.DataFrame, point_col: str) -> pl.Series:
    """B(x): business time of the store inside the window before instant x (half-µs).

    Null where x itself is null (the first cell starts, and the last ends, at infinity).
    """
    points = (
        cells.select("store_id", pl.col(point_col).alias("x"))
        .with_row_index()
        .filter(pl.col("x").is_not_null())
        .sort("store_id", "x")
    )
    located = points.join_asof(
        clipped, left_on="x", right_on="lo", by="store_id", strategy="backward", check_sortedness=False
    )
    located = located.with_columns(
        (pl.col("before") + pl.min_horizontal(pl.col("x") - pl.col("lo"), pl.col("length"))).fill_null(0).alias("b")
    )  # no interval opens before x: B(x) = 0
    full = pl.DataFrame({"index": pl.Series(range(cells.height), dtype=pl.UInt32)}).join(
        located.select("index", "b"), on="index", how="left"
    )
    return full.sort("index").get_column("b")


def compute_uptime(polls: pl.DataFrame, schedule: pl.DataFrame, as_of_us: int | None) -> UptimeReport:
    """The whole report as of T (default: the latest poll).

    `polls`: store_id, polled_at_us, status. `schedule`: from `weekly_schedule` for (at least)
    every polled store.
    """
    if as_of_us is None:
        as_of_us = polls.get_column("polled_at_us").max() if polls.height else None
    if as_of_us is None:
        return UptimeReport(None, _empty_report(), pl.DataFrame())
    polled = polls.filter(pl.col("polled_at_us") <= as_of_us).get_column("store_id").unique().sort()
    obs = observations(polls.filter(pl.col("store_id").is_in(polled.implode())), schedule, as_of_us)
    intervals = window_business_intervals(schedule, polled, as_of_us)

    exact = pl.DataFrame({"store_id": polled}).with_columns(
        pl.col("store_id").is_in(obs.get_column("store_id").unique().implode()).alias("has_observations")
    )
    for window in WINDOWS:
        sums = window_sums(obs, intervals, as_of_us - window.length_us, as_of_us).rename(
            {k: f"{k}_{window.name}_half_us" for k in ("business", "up", "down")}
        )
        exact = exact.join(sums, on="store_id", how="left")
    exact = exact.fill_null(0)
    return UptimeReport(as_of_us, round_report(exact), exact)


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
