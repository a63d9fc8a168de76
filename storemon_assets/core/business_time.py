"""Business time in UTC (SPEC §2 and §4), vectorised over all stores.

A store's weekly schedule lives in local wall-clock time; the report needs UTC instants. For
every store and local calendar date, each schedule row of that weekday opens at `date + start`
and closes at `date + end` (the next day's `end` when `end <= start`). Local times are turned
into UTC per date, so daylight-saving changes are honoured: an ambiguous local time takes the
earlier instant, a local time that does not exist takes the instant the clocks jump. The
intervals of a store are half-open and merged, so no time counts twice.

Special hours (SPEC §4a) travel in the same schedule frame, as rows with `special_date` set:
for that date they replace the store's weekly rows (a row without times closes it all day).
Every business-time computation takes the schedule, so each of them honours special hours.

All instants here are integers: microseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from storemon_assets.core.feeds import DEFAULT_TIMEZONE
from storemon_assets.core.tables import STORE_SCHEDULES

US_PER_MINUTE = 60_000_000
US_PER_HOUR = 60 * US_PER_MINUTE
US_PER_DAY = 24 * US_PER_HOUR

# A store's normalised weekly schedule: the columns of the store_schedules table.
SCHEDULE_SCHEMA = STORE_SCHEDULES.polars_schema

# The longest clock jump searched for when a local time does not exist. Real gaps are 30 min
# to 2 h; whole skipped days (Pacific/Apia, 2011-12-30) are covered too.
_MAX_GAP_MINUTES = 2 * 24 * 60


def weekly_schedule(
    hours: pl.DataFrame, timezones: pl.DataFrame, store_ids: pl.Series, special: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Each store's normalised schedule with the SPEC §2 defaults applied.

    `hours`: store_id, day_of_week, start_time_us, end_time_us (valid rows only).
    `timezones`: store_id, timezone_str (one row per store).
    `special`: store_id, local_date, start_time_us, end_time_us (SPEC §4a; times null on a
    closed row), or None for none.
    A store without hours rows gets `start == end == 00:00` on all seven days, which SPEC §4
    reads as 24 hours from each midnight: open around the clock (special rows do not count as
    hours). A store without a timezone uses DEFAULT_TIMEZONE. Returns SCHEDULE_SCHEMA: one row
    per (store, weekday, interval) with `special_date` null, and one per special-hours row
    with `special_date` its date and `day_of_week` that date's weekday.
    """
    stores = pl.DataFrame({"store_id": store_ids.cast(pl.String)}).unique()
    own_hours = hours.select("store_id", "day_of_week", "start_time_us", "end_time_us").join(
        stores, on="store_id", how="semi"
    )
    without_hours = stores.join(own_hours, on="store_id", how="anti")
    around_the_clock = without_hours.join(
        pl.DataFrame({"day_of_week": pl.Series(range(7), dtype=pl.Int8)}), how="cross"
    ).with_columns(pl.lit(0, pl.Int64).alias("start_time_us"), pl.lit(0, pl.Int64).alias("end_time_us"))
    parts = [own_hours.cast({"day_of_week": pl.Int8}), around_the_clock]
    if special is not None:
        parts.append(
            special.join(stores, on="store_id", how="semi").select(
                "store_id",
                (pl.col("local_date").dt.weekday() - 1).cast(pl.Int8).alias("day_of_week"),
                "start_time_us",
                "end_time_us",
                pl.col("local_date").alias("special_date"),
            )
        )
    rows = pl.concat(parts, how="diagonal_relaxed")
    if "special_date" not in rows.columns:
        rows = rows.with_columns(pl.lit(None, pl.Date).alias("special_date"))
    zone = timezones.select("store_id", pl.col("timezone_str").alias("timezone"))
    return (
        rows.join(zone, on="store_id", how="left")
        .with_columns(pl.col("timezone").fill_null(DEFAULT_TIMEZONE))
        .select(list(SCHEDULE_SCHEMA))
        .cast(SCHEDULE_SCHEMA)
        .unique()
        .sort("store_id", "special_date", "day_of_week", "start_time_us", "end_time_us", nulls_last=False)
    )


def weekly_rows(schedule: pl.DataFrame) -> pl.DataFrame:
    """The schedule's weekly rows (its special-hours rows left out)."""
    if "special_date" not in schedule.columns:
        return schedule
    return schedule.filter(pl.col("special_date").is_null())


def special_rows(schedule: pl.DataFrame) -> pl.DataFrame:
    """The schedule's special-hours rows (none when it has no `special_date` column)."""
    if "special_date" not in schedule.columns:
        return schedule.clear().with_columns(pl.lit(None, pl.Date).alias("special_date"))
    return schedule.filter(pl.col("special_date").is_not_null())


def utc_to_local(instants_us: pl.DataFrame, timezone_col: str = "timezone") -> pl.DataFrame:
    """Add `local` (naive local wall-clock datetime) for column `at_us` in each row's timezone."""
    return with_wall_clock(instants_us, {"at_us": "local"}, timezone_col)


def with_wall_clock(
    frame: pl.DataFrame, columns: dict[str, str], timezone_col: str = "timezone", keep_order: bool = True
) -> pl.DataFrame:
    """Add naive local wall-clock datetimes: for each `source: target`, the UTC microseconds in
    column `source` as the clock in each row's timezone showed them (one call per zone). The rows
    keep their order (callers hand sorted lists: /status is longest first) unless `keep_order` is
    False (a caller that sorts afterwards: the re-sort costs ~0.2 s at 5 M rows over 8 zones)."""
    parts = []
    indexed = frame.with_row_index("_row")
    for (zone,), part in indexed.partition_by(timezone_col, as_dict=True, maintain_order=True).items():
        parts.append(
            part.with_columns(
                pl.from_epoch(pl.col(source), time_unit="us")
                .dt.replace_time_zone("UTC")
                .dt.convert_time_zone(zone)
                .dt.replace_time_zone(None)
                .alias(target)
                for source, target in columns.items()
            )
        )
    if not parts:
        return frame.with_columns(pl.lit(None, pl.Datetime("us")).alias(target) for target in columns.values())
    joined = pl.concat(parts)
    return (joined.sort("_row") if keep_order and len(parts) > 1 else joined).drop("_row")


def local_to_utc_us(frame: pl.DataFrame, local_col: str, timezone_col: str = "timezone") -> pl.Series:
    """UTC microseconds for naive local datetimes, row by row in each row's timezone (SPEC §4).

    Ambiguous times (clocks go back) take the earlier instant. Times that do not exist (clocks
    go forward) take the instant of the jump: the UTC instant of the first local minute after
    them that exists, since every tz transition falls on a whole minute.
    """
    indexed = frame.select(pl.col(local_col).alias("local"), pl.col(timezone_col).alias("zone")).with_row_index()
    parts = []
    for (zone,), part in indexed.partition_by("zone", as_dict=True).items():
        part = part.with_columns(_localize(pl.col("local"), zone).alias("utc_us"))
        missing = part.filter(pl.col("utc_us").is_null())
        if missing.height:
            part = part.update(_jump_instants(missing, zone), on="index")
        parts.append(part.select("index", "utc_us"))
    if not parts:
        return pl.Series("utc_us", [], dtype=pl.Int64)
    return pl.concat(parts).sort("index").get_column("utc_us")


def _localize(local: pl.Expr, zone: str) -> pl.Expr:
    return local.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null").dt.epoch("us")


def _jump_instants(missing: pl.DataFrame, zone: str) -> pl.DataFrame:
    """For local times inside a spring-forward gap, the UTC instant at which the gap ends."""
    candidates = (
        missing.select("index", "local")
        .with_columns(pl.int_ranges(1, _MAX_GAP_MINUTES + 1).alias("step"))
        .explode("step")
        .with_columns((pl.col("local").dt.truncate("1m") + pl.duration(minutes=pl.col("step"))).alias("local"))
        .with_columns(_localize(pl.col("local"), zone).alias("utc_us"))
        .drop_nulls("utc_us")
    )
    return candidates.group_by("index").agg(pl.col("utc_us").sort_by("step").first())


def store_local_dates(frame: pl.DataFrame, first_col: str, last_col: str) -> pl.DataFrame:
    """Expand (store_id, first local date, last local date) into one row per date."""
    return (
        frame.select("store_id", pl.date_ranges(pl.col(first_col), pl.col(last_col)).alias("local_date"))
        .explode("local_date")
        .unique()
    )


def business_intervals_utc(schedule: pl.DataFrame, store_dates: pl.DataFrame) -> pl.DataFrame:
    """Merged UTC business intervals generated from the given (store_id, local_date) pairs.

    Each store's dates are expanded with that date's schedule rows, converted to UTC and
    merged: the date's special-hours rows when it has any (SPEC §4a: none open on a date whose
    only row is closed), else the weekly rows of its weekday. Intervals opened on other dates
    are not touched (an overnight opening still runs into a holiday). Returns store_id, open_us, close_us
    sorted by store and time: disjoint, half-open [open_us, close_us).
    """
    columns = ["store_id", "local_date", "start_time_us", "end_time_us", "timezone"]
    dated = store_dates.select("store_id", "local_date").with_columns(
        (pl.col("local_date").dt.weekday() - 1).cast(pl.Int8).alias("day_of_week")
    )
    weekly, special = weekly_rows(schedule), special_rows(schedule)
    if special.is_empty():
        rows = dated.join(weekly, on=["store_id", "day_of_week"], how="inner").select(columns)
    else:
        special = special.select(
            "store_id", pl.col("special_date").alias("local_date"), "start_time_us", "end_time_us", "timezone"
        )
        usual = dated.join(special, on=["store_id", "local_date"], how="anti")
        rows = pl.concat(
            [
                usual.join(weekly, on=["store_id", "day_of_week"], how="inner").select(columns),
                # A closed row has no times: its date joins, and opens nothing.
                dated.join(special, on=["store_id", "local_date"], how="inner").select(columns).drop_nulls(),
            ]
        )
    midnight = pl.col("local_date").cast(pl.Datetime("us"))
    overnight = pl.col("end_time_us") <= pl.col("start_time_us")
    rows = rows.with_columns(
        (midnight + pl.duration(microseconds=pl.col("start_time_us"))).alias("open_local"),
        (
            midnight
            + pl.duration(microseconds=pl.col("end_time_us"))
            + pl.duration(days=pl.when(overnight).then(1).otherwise(0))
        ).alias("close_local"),
    )
    intervals = rows.select(
        "store_id",
        local_to_utc_us(rows, "open_local").alias("open_us"),
        local_to_utc_us(rows, "close_local").alias("close_us"),
    ).filter(pl.col("close_us") > pl.col("open_us"))
    return merge_intervals(intervals)


def merge_intervals(intervals: pl.DataFrame) -> pl.DataFrame:
    """Union of each store's half-open intervals as disjoint, sorted intervals (store_id keeps
    the type it came with: the text id, or the integer key the report computes with)."""
    ordered = intervals.sort("store_id", "open_us", "close_us")
    reach_so_far = pl.col("close_us").cum_max().shift(1).over("store_id")
    starts_new_run = reach_so_far.is_null() | (pl.col("open_us") > reach_so_far)
    return (
        ordered.with_columns(starts_new_run.cum_sum().alias("_run"))
        .group_by("store_id", "_run", maintain_order=True)
        .agg(pl.col("open_us").min(), pl.col("close_us").max())
        .drop("_run")
        .cast({"open_us": pl.Int64, "close_us": pl.Int64})
    )


def store_zones(schedule: pl.DataFrame) -> pl.DataFrame:
    return schedule.select("store_id", "timezone").unique()


def weekly_open_hours(schedule: pl.DataFrame) -> pl.DataFrame:
    """Hours open per week on the store's wall clock (store_id, timezone, weekly_open_hours).

    Computed on a reference week read as if it were UTC (no DST), with the Sunday before it so
    that overnight rows wrap around the week; overlaps count once.
    """
    monday = dt.date(2024, 1, 1)
    week_start_us = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()) * 1_000_000
    week_end_us = week_start_us + 7 * US_PER_DAY
    stores = schedule.select("store_id", "timezone").unique()
    dates = stores.select(
        "store_id",
        pl.date_range(monday - dt.timedelta(days=1), monday + dt.timedelta(days=6)).implode().alias("local_date"),
    ).explode("local_date")
    wall_clock = weekly_rows(schedule).with_columns(pl.lit("UTC").alias("timezone"))
    intervals = business_intervals_utc(wall_clock, dates).with_columns(
        pl.col("open_us").clip(week_start_us, week_end_us), pl.col("close_us").clip(week_start_us, week_end_us)
    )
    totals = intervals.group_by("store_id").agg(
        ((pl.col("close_us") - pl.col("open_us")).sum() / US_PER_HOUR).alias("weekly_open_hours")
    )
    # A Sunday-only overnight row also spills into the following Monday, which is the same
    # wall-clock stretch as the Sunday-before spill counted above, so the total is exact.
    return stores.join(totals, on="store_id", how="left").with_columns(pl.col("weekly_open_hours").fill_null(0.0))
