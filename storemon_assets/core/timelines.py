"""A store's week as a picture needs it in local days: what to draw on each row.

The status intervals (core/uptime.py) are UTC; a reader thinks in the store's days. Here they
are laid on the store's wall clock, one row per local date from the date the week window
starts on to the date T falls on, and cut at local midnights. Business time from the store's
schedule is laid out the same way, for the shading behind the statuses (it shows the opening
hours outside the window too). On the night clocks fall back, the repeated hour is drawn
twice over the same stretch of the row; the UTC bounds in the API tell the two apart.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from storemon_assets.core.business_time import (
    US_PER_DAY,
    US_PER_HOUR,
    business_intervals_utc,
    store_local_dates,
    with_wall_clock,
)
from storemon_assets.core.uptime import WEEK

_EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class DayRows:
    """What one store's timeline shows, in local wall-clock hours of each local date."""

    dates: list[dt.date]  # one row each, oldest first
    statuses: pl.DataFrame  # local_date, from_hour, to_hour, status
    business: pl.DataFrame  # local_date, from_hour, to_hour: the schedule's opening hours
    window_start: tuple[dt.date, float]  # where the week window opens: (date, hour)
    window_end: tuple[dt.date, float]  # T


def split_at_midnights(frame: pl.DataFrame, start_col: str, end_col: str) -> pl.DataFrame:
    """Cut wall-clock spans [start, end) (microseconds since 1970-01-01 local) at local
    midnights: one row per (span, local date) with the hours it covers on that date."""
    days = frame.with_columns(
        pl.int_ranges(pl.col(start_col) // US_PER_DAY, (pl.col(end_col) - 1) // US_PER_DAY + 1).alias("_day")
    ).explode("_day")
    midnight = pl.col("_day") * US_PER_DAY
    return days.with_columns(
        (pl.lit(_EPOCH) + pl.duration(days=pl.col("_day"))).alias("local_date"),
        ((pl.max_horizontal(pl.col(start_col), midnight) - midnight) / US_PER_HOUR).alias("from_hour"),
        ((pl.min_horizontal(pl.col(end_col), midnight + US_PER_DAY) - midnight) / US_PER_HOUR).alias("to_hour"),
    ).drop("_day")


def day_rows(intervals: pl.DataFrame, schedule: pl.DataFrame, as_of_us: int) -> DayRows:
    """The rows of one store's timeline for the week before T.

    `intervals`: the store's status intervals (STORE_STATUS_INTERVALS columns); `schedule`: its
    weekly schedule (STORE_SCHEDULES columns; one timezone).
    """
    zone = schedule.get_column("timezone")[0]
    # The window [T - 7 d, T) on the wall clock; its last instant decides the last row's date.
    opens, last_instant, closes = with_wall_clock(
        pl.DataFrame({"at_us": [as_of_us - WEEK.length_us, as_of_us - 1, as_of_us], "timezone": [zone] * 3}),
        {"at_us": "local"},
    ).get_column("local")
    first, last = opens.date(), last_instant.date()
    dates = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]

    statuses = split_at_midnights(intervals, "start_local_us", "end_local_us").select(
        "local_date", "from_hour", "to_hour", "status"
    )
    # Business time on the rows' dates, from the day before (an overnight opening reaches in).
    store_dates = store_local_dates(
        pl.DataFrame(
            {"store_id": [schedule.get_column("store_id")[0]], "first": [first - dt.timedelta(days=1)], "last": [last]}
        ),
        "first",
        "last",
    )
    opening = with_wall_clock(
        business_intervals_utc(schedule, store_dates).with_columns(pl.lit(zone).alias("timezone")),
        {"open_us": "open_local", "close_us": "close_local"},
    ).select(pl.col("open_local").dt.epoch("us"), pl.col("close_local").dt.epoch("us"))
    business = (
        split_at_midnights(opening, "open_local", "close_local")
        .filter(pl.col("local_date").is_between(first, last) & (pl.col("to_hour") > pl.col("from_hour")))
        .select("local_date", "from_hour", "to_hour")
    )

    return DayRows(
        dates,
        statuses,
        business,
        (first, _hour_of(opens)),
        (last, _hour_of(closes) if closes.date() == last else 24.0),
    )


def _hour_of(moment: dt.datetime) -> float:
    return moment.hour + moment.minute / 60 + moment.second / 3600 + moment.microsecond / 3.6e9
