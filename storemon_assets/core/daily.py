"""Daily values (SPEC §8): business, up and down time per store and local calendar date.

A store's local date D runs from local midnight of D to local midnight of D + 1, turned into
UTC per date exactly as business hours are (SPEC §4: an ambiguous midnight is the earlier
instant, one that does not exist is the instant the clocks jump), so a spring-forward day has
23 hours and a fall-back day 25. The values of D are those of the part of the day before T,
split by the nearest observation exactly as the report splits its windows (SPEC §5,
observations from any date): the store's status intervals (core/uptime.py) over the range of
days, cut at the days' boundaries and summed. Everything stays in integer half-microseconds
until a CSV is written, so the days of a week sum exactly to the business time of that week.

Besides the sums, each day gets `final_from_us`: an instant from which later observations can
no longer change that day's values (they can only come after T). An observation after the
day's end that is already known ends the day's dependence on later ones (any later one is
farther from every instant of the day); otherwise, with the store's last observation `c`
before the day's end, a later observation `f` is nearer to an instant x of the day than c only
when f < 2x - c, so none at or after 2 * day_end - c ever is. Stored values whose
`final_from_us` is at or before both T and the T they were computed at hold for that T too
(db/daily.py relies on it; docs/history.md).
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import TypeVar

import polars as pl

from storemon_assets.core.business_time import US_PER_DAY, US_PER_MINUTE, local_to_utc_us, store_zones, utc_to_local
from storemon_assets.core.feeds import DEFAULT_TIMEZONE
from storemon_assets.core.scalars import as_int
from storemon_assets.core.tables import STORE_DAILY_UPTIME
from storemon_assets.core.uptime import (
    DOWN,
    UP,
    _cents_half_away,
    _round_half_away,
    business_intervals_covering,
    polls_observations,
    status_intervals,
    window_utc_days,
)

DAILY_CSV_COLUMNS = ("store_id", "date_local", "business_minutes", "uptime_minutes", "downtime_minutes")
SLA_CSV_COLUMNS = ("store_id", "month", "business_hours", "uptime_hours", "downtime_hours", "uptime_pct")
# The exact values of one (store, local date): the stored table's columns less its bookkeeping.
DAILY_VALUES_SCHEMA = STORE_DAILY_UPTIME.subset(
    "store_id", "local_date", "business_half_us", "up_half_us", "down_half_us", "final_from_us"
)
DAY_SCHEMA = {"store_id": pl.String, "local_date": pl.Date, "day_start_us": pl.Int64, "day_end_us": pl.Int64}


def requested_dates(zones: pl.DataFrame, as_of_us: int, days: int) -> pl.DataFrame:
    """store_id, first_date, last_date: each store's local dates whose day meets [T - days, T).

    A day meets the window when it starts before T and ends after T - days: the first is the
    local date of the instant T - days, the last that of the instant just before T.
    """
    # Both instants are the same for every store: converted once per time zone.
    per_zone = zones.select("timezone").unique()
    start = utc_to_local(per_zone.with_columns(pl.lit(as_of_us - days * US_PER_DAY).alias("at_us")))
    end = utc_to_local(per_zone.with_columns(pl.lit(as_of_us - 1).alias("at_us")))
    dates = start.select("timezone", pl.col("local").dt.date().alias("first_date")).join(
        end.select("timezone", pl.col("local").dt.date().alias("last_date")), on="timezone"
    )
    return zones.join(dates, on="timezone").select("store_id", "first_date", "last_date")


def local_days(zones: pl.DataFrame, ranges: pl.DataFrame) -> pl.DataFrame:
    """DAY_SCHEMA: each store's local dates first_date..last_date with their UTC bounds.

    `zones`: store_id, timezone; `ranges`: store_id, first_date, last_date. Midnights become
    UTC by the SPEC §4 rules (business_time.local_to_utc_us), so days tile the time line.
    """
    dates = ranges.select("store_id", pl.date_ranges("first_date", "last_date").alias("local_date")).explode(
        "local_date"
    )
    dates = dates.drop_nulls("local_date").join(zones, on="store_id", how="left")
    dates = dates.with_columns(pl.col("timezone").fill_null(DEFAULT_TIMEZONE))
    if dates.is_empty():
        return pl.DataFrame(schema=DAY_SCHEMA)
    bounds = dates.with_columns(
        pl.col("local_date").cast(pl.Datetime("us")).alias("_start"),
        (pl.col("local_date") + dt.timedelta(days=1)).cast(pl.Datetime("us")).alias("_end"),
    )
    return (
        bounds.with_columns(
            local_to_utc_us(bounds, "_start").alias("day_start_us"),
            local_to_utc_us(bounds, "_end").alias("day_end_us"),
        )
        .select(list(DAY_SCHEMA))
        .cast({"local_date": pl.Date})
        .sort("store_id", "local_date")
    )


def daily_values(obs: pl.DataFrame, business: pl.DataFrame, days: pl.DataFrame, as_of_us: int) -> pl.DataFrame:
    """DAILY_VALUES_SCHEMA for every day in `days` (the part before T).

    `obs`: store_id, at_us, active sorted by store and time: every observation up to T from the
    last one before the first day's start (the carry-in) to the first one after the last day's
    end (when there is one); others may be present and change nothing. `business`: merged
    business intervals covering the days. `days`: DAY_SCHEMA, each store's dates contiguous.
    The store_id column keeps the type it is given (text ids or integer keys).
    """
    key_type = days.schema["store_id"]
    schema = DAILY_VALUES_SCHEMA | {"store_id": key_type}
    if days.is_empty():
        return pl.DataFrame(schema=schema)
    start_us = as_int(days.get_column("day_start_us").min())
    end_us = min(as_of_us, as_int(days.get_column("day_end_us").max()))
    intervals = status_intervals(obs, business, start_us, end_us) if end_us > start_us else None
    return daily_values_from_intervals(intervals, obs, days)


def daily_values_from_intervals(intervals: pl.DataFrame | None, obs: pl.DataFrame, days: pl.DataFrame) -> pl.DataFrame:
    """daily_values from status intervals that cover the days up to T (store_id, start_half_us,
    end_half_us, status; more may be present: each day sums only its own part), e.g. the
    report's for its week: a cut-and-sum, no second computation of the intervals. `obs` as for
    daily_values (the observations the intervals were made from)."""
    schema = DAILY_VALUES_SCHEMA | {"store_id": days.schema["store_id"]}
    if days.is_empty():
        return pl.DataFrame(schema=schema)
    sums = _sums_per_day(intervals, days) if intervals is not None and intervals.height else None
    values = days.select("store_id", "local_date", "day_start_us", "day_end_us")
    if sums is not None:
        values = values.join(sums, on=["store_id", "local_date"], how="left")
    values = values.with_columns(
        pl.col(name).fill_null(0).cast(pl.Int64) if name in values.columns else pl.lit(0, pl.Int64).alias(name)
        for name in ("business_half_us", "up_half_us", "down_half_us")
    )
    return _with_final_from(values, obs).select(list(schema)).cast(schema).sort("store_id", "local_date")


def _sums_per_day(intervals: pl.DataFrame, days: pl.DataFrame) -> pl.DataFrame:
    """Status intervals cut at the days' bounds and summed per (store, date), half-µs.

    Each interval is located by the day holding its start and the day holding its last instant
    (as-of joins on the day starts); most lie in one day, the others are repeated over the days
    they span and clipped to each.
    """
    indexed = days.with_columns(
        pl.int_range(pl.len()).over("store_id").alias("_day"),
        (pl.col("day_start_us") * 2).alias("_lo"),
        (pl.col("day_end_us") * 2).alias("_hi"),
    ).sort("store_id", "_lo")
    starts = indexed.select("store_id", "_lo", pl.col("_day").alias("_first"))
    lasts = indexed.select("store_id", pl.col("_lo").alias("_last_lo"), pl.col("_day").alias("_last"))
    located = (
        intervals.sort("store_id", "start_half_us")
        .join_asof(starts, left_on="start_half_us", right_on="_lo", by="store_id", check_sortedness=False)
        .with_columns((pl.col("end_half_us") - 1).alias("_end_probe"))
        .sort("store_id", "_end_probe")
        .join_asof(lasts, left_on="_end_probe", right_on="_last_lo", by="store_id", check_sortedness=False)
        .drop_nulls("_last")
        .with_columns(pl.col("_first").fill_null(0))
    )
    pieces = (
        located.select(
            "store_id",
            "start_half_us",
            "end_half_us",
            "status",
            pl.int_ranges("_first", pl.col("_last") + 1).alias("_day"),
        )
        .explode("_day")
        .join(indexed.select("store_id", "_day", "local_date", "_lo", "_hi"), on=["store_id", "_day"])
        .with_columns(
            (pl.min_horizontal("end_half_us", "_hi") - pl.max_horizontal("start_half_us", "_lo"))
            .clip(lower_bound=0)
            .alias("_length")
        )
    )
    length, status = pl.col("_length"), pl.col("status")
    return pieces.group_by("store_id", "local_date").agg(
        length.sum().alias("business_half_us"),
        length.filter(status == UP).sum().alias("up_half_us"),
        length.filter(status == DOWN).sum().alias("down_half_us"),
    )


def _with_final_from(values: pl.DataFrame, obs: pl.DataFrame) -> pl.DataFrame:
    """Add final_from_us (see the module's docstring); null when the store has no observation."""
    points = obs.select("store_id", "at_us").sort("store_id", "at_us")
    ordered = values.sort("store_id", "day_end_us")
    following = ordered.join_asof(
        points.rename({"at_us": "_next"}),
        left_on="day_end_us",
        right_on="_next",
        by="store_id",
        strategy="forward",
        check_sortedness=False,
    )
    previous = following.join_asof(
        points.rename({"at_us": "_previous"}),
        left_on="day_end_us",
        right_on="_previous",
        by="store_id",
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,
    )
    return previous.with_columns(
        pl.min_horizontal("_next", 2 * pl.col("day_end_us") - pl.col("_previous")).alias("final_from_us")
    )


# --- what users read: minutes and hours with 2 decimals ------------------------------------


def round_minutes(half_us: pl.Expr) -> pl.Expr:
    """Half-µs as minutes with 2 decimals, half away from zero (exact integer rounding)."""
    return _round_half_away(half_us, US_PER_MINUTE)


# Minutes as exact decimals with 2 places: the same text in a CSV as the rounded floats, which
# polars writes 5x slower (formatting each float to a precision; docs/history.md).
_CSV_CENTS, _ONE_CENT = pl.Decimal(20, 0), pl.lit(decimal.Decimal("0.01"))
_Frame = TypeVar("_Frame", pl.DataFrame, pl.LazyFrame)


def iso_dates(dates: pl.Series) -> pl.Expr:
    """The column `dates` as ISO text: each date of its span formatted once, and gathered by
    each value's offset in the span. 90 days of the fleet are 1.2 M values of ~91 dates, which
    a CSV writer would format one by one. The span is known beforehand, so a
    streamed write stays streamed (bounds taken inside the plan made it hold the whole column)."""
    first, last = dates.min(), dates.max()
    if not isinstance(first, dt.date) or not isinstance(last, dt.date):  # no dates
        return pl.col(dates.name).cast(pl.String)
    text = pl.date_range(first, last, eager=True).dt.to_string("%Y-%m-%d")
    return pl.lit(text).gather((pl.col(dates.name) - pl.lit(first)).dt.total_days())


def daily_csv_frame(values: _Frame, *, decimals: bool = False) -> _Frame:
    """The SPEC §8 CSV's rows from exact values (text store ids) sorted by store then date, as
    daily_history and daily_values give them (or a lazy frame of them, for a file written as the
    rows are made). Minutes are floats with 2 decimals, or with `decimals` exact decimals (what
    a CSV file is written from)."""

    def minutes(name: str) -> pl.Expr:
        if decimals:
            return _cents_half_away(pl.col(name), US_PER_MINUTE).cast(_CSV_CENTS) * _ONE_CENT
        return round_minutes(pl.col(name))

    return values.select(
        "store_id",
        # A file writes dates as ISO text itself (or is given them as text: iso_dates).
        pl.col("local_date").alias("date_local")
        if decimals
        else pl.col("local_date").cast(pl.String).alias("date_local"),
        minutes("business_half_us").alias("business_minutes"),
        minutes("up_half_us").alias("uptime_minutes"),
        minutes("down_half_us").alias("downtime_minutes"),
    )


def monthly_sla(values: pl.DataFrame, month: str) -> pl.DataFrame:
    """SLA_CSV_COLUMNS per store from the exact daily values of one local month (`YYYY-MM`).

    Hours with 2 decimals, half away from zero. uptime_pct = uptime / (uptime + downtime) * 100
    from the exact sums, 2 decimals; a store with no observed business time that month (uptime
    + downtime = 0, e.g. closed all month or never observed) gets an empty uptime_pct: there is
    nothing to measure, and 0 % or 100 % would both claim something (docs/history.md).
    """
    sums = values.group_by("store_id").agg(
        pl.col("business_half_us").sum(), pl.col("up_half_us").sum(), pl.col("down_half_us").sum()
    )
    observed = pl.col("up_half_us") + pl.col("down_half_us")
    # Percent to 2 decimals exactly: cents of a percent = up * 10000 / observed, half away from zero.
    cents = (pl.col("up_half_us") * 20_000 + observed) // (2 * observed)
    return sums.sort("store_id").select(
        "store_id",
        pl.lit(month).alias("month"),
        _round_half_away(pl.col("business_half_us"), 60 * US_PER_MINUTE).alias("business_hours"),
        _round_half_away(pl.col("up_half_us"), 60 * US_PER_MINUTE).alias("uptime_hours"),
        _round_half_away(pl.col("down_half_us"), 60 * US_PER_MINUTE).alias("downtime_hours"),
        pl.when(observed > 0).then((cents / 100).round(2)).alias("uptime_pct"),
    )


def month_dates(month: str) -> tuple[dt.date, dt.date]:
    """First and last date of `YYYY-MM`; ValueError with a message a user can act on."""
    try:
        first = dt.datetime.strptime(month.strip(), "%Y-%m").date()
    except ValueError:
        raise ValueError(f"--month {month!r} is not a month (expected YYYY-MM, e.g. 2023-01)") from None
    following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return first, following - dt.timedelta(days=1)


def uptime_share(values: pl.DataFrame) -> float | None:
    """Uptime / (uptime + downtime) summed over the values given, 0-1, unrounded (None: nothing observed)."""
    up = as_int(values.get_column("up_half_us").sum())
    observed = up + as_int(values.get_column("down_half_us").sum())
    return up / observed if observed else None


def fleet_uptime_pct(values: pl.DataFrame) -> float | None:
    """All stores' uptime over uptime + downtime in the values given, in % (None: nothing observed)."""
    share = uptime_share(values)
    return round(share * 100, 2) if share is not None else None


def fleet_uptime_by_date(values: pl.DataFrame) -> pl.DataFrame:
    """date (text), stores, fleet_uptime_pct: per local date, the stores with values and all
    stores' uptime over uptime + downtime that date, in % (NaN where nothing was observed)."""
    per_date = (
        values.group_by("local_date")
        .agg(pl.col("up_half_us").sum(), pl.col("down_half_us").sum(), pl.len().alias("stores"))
        .sort("local_date")
    )
    return per_date.select(
        pl.col("local_date").cast(pl.String).alias("date"),
        "stores",
        (pl.col("up_half_us") / (pl.col("up_half_us") + pl.col("down_half_us")) * 100)
        .round(2)
        .alias("fleet_uptime_pct"),
    )


def daily_from_polls(polls: pl.DataFrame, schedule: pl.DataFrame, as_of_us: int, ranges: pl.DataFrame) -> pl.DataFrame:
    """Daily values of the given dates from every poll given (the whole history in memory):
    for small data sets and tests; the database path reads only what it needs (history.py).

    `polls`: store_id, polled_at_us, status or active; `ranges`: store_id, first_date, last_date.
    """
    polls = polls.filter(pl.col("polled_at_us") <= as_of_us)
    days = local_days(store_zones(schedule), ranges).filter(pl.col("day_start_us") < as_of_us)
    if days.is_empty():
        return pl.DataFrame(schema=DAILY_VALUES_SCHEMA)
    obs = polls_observations(polls, schedule)
    start_us = as_int(days.get_column("day_start_us").min())
    end_us = as_int(days.get_column("day_end_us").max())
    business = business_intervals_covering(schedule, window_utc_days(days.get_column("store_id"), start_us, end_us))
    return daily_values(obs, business, days, as_of_us)


def refreshed_dates(zones: pl.DataFrame, as_of_us: int) -> pl.DataFrame:
    """store_id, first_date, last_date: the dates an hourly refresh at T asks for
    (`refresh_ranges` without late files: UTC date(T) - 2 ... date(T) + 1) that each store has
    before T: from UTC date(T) - 2 to the local date of the instant just before T."""
    first = utc_date(as_of_us) - dt.timedelta(days=2)
    return requested_dates(zones, as_of_us, 1).select(
        "store_id", pl.lit(first).alias("first_date"), pl.max_horizontal(pl.lit(first), "last_date").alias("last_date")
    )


def current_daily_values(
    obs: pl.DataFrame, intervals: pl.DataFrame, zones: pl.DataFrame, as_of_us: int
) -> pl.DataFrame:
    """DAILY_VALUES_SCHEMA of the dates a refresh at T would compute (`refreshed_dates`), from
    what a report as of T holds: its observations (the week before T and each store's
    carry-in) and its status intervals of [T - 7 days, T]. Those days start after T - 4 days,
    inside the week, so every instant of them that counts has its nearest observation among
    `obs`, and so has final_from_us (the first observation after the day, or the last before
    its end): the values equal `daily_values` of the same days, with no poll read again.
    """
    days = local_days(zones, refreshed_dates(zones, as_of_us)).filter(pl.col("day_start_us") < as_of_us)
    return daily_values_from_intervals(intervals, obs, days)


def utc_date(at_us: int) -> dt.date:
    """The UTC calendar date of an instant (microseconds since 1970)."""
    return (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=at_us)).date()


def refresh_ranges(
    as_of_us: int,
    late_files: pl.DataFrame,
    first_partition: dt.date,
    last_partition: dt.date,
    schedule_changed: bool = False,
) -> list[tuple[dt.date, dt.date]]:
    """The date ranges a refresh re-materialises: the current and previous local date of every
    store at T, and the dates around each newly loaded polls file's polls (`late_files`:
    first_poll_us, last_poll_us), merged and clipped to the partitions that exist. A new hours
    or timezones file (`schedule_changed`) changes every date: the last 90 are asked for.

    A local date is within a day of the UTC date (offsets stay within +-14 h), so the current
    and previous local dates lie in UTC date(T) - 2 ... date(T) + 1, and a poll's own date and
    the one before it (whose last instants may be nearest to it) in date(poll) - 2 ... + 1.
    A row depending on a poll further away is not lost: it no longer holds (history.py) and is
    computed wherever it is read, until a backfill of its date stores it again.
    """

    day = dt.timedelta(days=1)
    wanted = [(utc_date(as_of_us) - (91 if schedule_changed else 2) * day, utc_date(as_of_us) + day)]
    for first_us, last_us in late_files.select("first_poll_us", "last_poll_us").drop_nulls().iter_rows():
        wanted.append((utc_date(first_us) - 2 * day, utc_date(min(last_us, as_of_us)) + day))
    merged: list[list[dt.date]] = []
    for first, last in sorted(wanted):
        first, last = max(first, first_partition), min(last, last_partition)
        if first > last:
            continue
        if merged and first <= merged[-1][1] + day:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return [(first, last) for first, last in merged]
