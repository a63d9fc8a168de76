"""Small human-readable summaries of schedules and reports, for the UI's metadata."""

from __future__ import annotations

import polars as pl

UPTIME_BANDS = [(0, 50), (50, 80), (80, 95), (95, 99), (99, 100.0001)]


WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def clock_text(us: pl.Expr) -> pl.Expr:
    """Microseconds after midnight as HH:MM, or HH:MM:SS when there are seconds."""
    seconds = us // 1_000_000
    hh = (seconds // 3600).cast(pl.String).str.zfill(2)
    mm = (seconds // 60 % 60).cast(pl.String).str.zfill(2)
    ss = (seconds % 60).cast(pl.String).str.zfill(2)
    return pl.when(seconds % 60 == 0).then(pl.format("{}:{}", hh, mm)).otherwise(pl.format("{}:{}:{}", hh, mm, ss))


def schedule_tables(schedule: pl.DataFrame) -> dict[str, str]:
    """A markdown table of each store's weekly intervals, keyed by store id."""
    lines = schedule.sort("store_id", "day_of_week", "start_time_us").select(
        "store_id",
        pl.format(
            "| {} | {} | {} |",
            pl.col("day_of_week").replace_strict(list(range(7)), WEEKDAYS, return_dtype=pl.String),
            clock_text(pl.col("start_time_us")),
            clock_text(pl.col("end_time_us")),
        ).alias("line"),
    )
    tables = lines.group_by("store_id").agg(pl.col("line").str.join("\n"))
    return {store: "| day | opens | closes |\n| --- | --- | --- |\n" + body for store, body in tables.iter_rows()}


def weekly_uptime_distribution(report: pl.DataFrame) -> pl.DataFrame:
    """How many stores fall in each band of weekly uptime %, among stores with business time."""
    up, down = pl.col("uptime_last_week"), pl.col("downtime_last_week")
    shares = report.filter(up + down > 0).select((up / (up + down) * 100).alias("pct"))
    rows = [
        {
            "weekly_uptime": f"{low}-{min(high, 100):g}%",
            "stores": shares.filter((pl.col("pct") >= low) & (pl.col("pct") < high)).height,
        }
        for low, high in UPTIME_BANDS
    ]
    return pl.DataFrame(rows)
