"""Small human-readable summaries of schedules and reports, for the UI's metadata: markdown
tables, and the fleet's numbers the UI plots across materialisations."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from storemon_assets.core.business_time import weekly_open_hours

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
    """A markdown table of each store's weekly intervals, then its special-hours dates (SPEC
    §4a: a date with no times is closed), keyed by store id."""
    if "special_date" not in schedule.columns:
        schedule = schedule.with_columns(pl.lit(None, pl.Date).alias("special_date"))
    weekday = pl.col("day_of_week").replace_strict(list(range(7)), WEEKDAYS, return_dtype=pl.String)
    lines = schedule.sort("store_id", "special_date", "day_of_week", "start_time_us", nulls_last=False).select(
        "store_id",
        pl.format(
            "| {} | {} | {} |",
            pl.coalesce(pl.col("special_date").dt.to_string("%Y-%m-%d"), weekday),
            pl.coalesce(clock_text(pl.col("start_time_us")), pl.lit("closed")),
            pl.coalesce(clock_text(pl.col("end_time_us")), pl.lit("")),
        ).alias("line"),
    )
    tables = lines.group_by("store_id", maintain_order=True).agg(pl.col("line").str.join("\n"))
    return {store: "| day | opens | closes |\n| --- | --- | --- |\n" + body for store, body in tables.iter_rows()}


def schedule_figures(schedule: pl.DataFrame) -> dict[str, dict[str, object]]:
    """What a store's partition shows, per store in id order: its timezone, weekly open hours,
    whether it is open around the clock, and its intervals (schedule_tables)."""
    tables = schedule_tables(schedule)
    return {
        store["store_id"]: {
            "timezone": store["timezone"],
            "weekly_open_hours": round(store["weekly_open_hours"], 2),
            "open_around_the_clock": store["weekly_open_hours"] >= 168,
            "intervals": Markdown(tables[store["store_id"]]),
        }
        for store in weekly_open_hours(schedule).sort("store_id").iter_rows(named=True)
    }


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


# --- numbers the UI plots across materialisations -------------------------------------------

UPTIME_THRESHOLDS_PCT = (95, 80)


@dataclass(frozen=True)
class FleetWeek:
    """The fleet's last week, from the report's exact sums (half-microseconds, no rounding).

    `uptime_pct` is weighted by business time: all stores' uptime over all stores' uptime +
    downtime, so a store open 80 hours a week counts twice as much as one open 40. Only stores
    with observed business time in the week count (a store without observations has neither).
    """

    uptime_pct: float | None  # None: no store had observed business time in the week
    stores_observed: int
    stores_under_pct: dict[int, int]  # threshold % -> stores whose weekly uptime is below it


def fleet_week(exact: pl.DataFrame) -> FleetWeek:
    up, down = pl.col("up_week_half_us"), pl.col("down_week_half_us")
    if exact.is_empty():
        return FleetWeek(None, 0, {t: 0 for t in UPTIME_THRESHOLDS_PCT})
    observed = exact.filter(up + down > 0)
    # Below t % exactly, in integers: up / (up + down) < t / 100  <=>  100 * up < t * (up + down).
    under = observed.select(
        (100 * up < threshold * (up + down)).sum().alias(str(threshold)) for threshold in UPTIME_THRESHOLDS_PCT
    ).row(0, named=True)
    totals = observed.select(up.sum().alias("up"), (up + down).sum().alias("all")).row(0, named=True)
    return FleetWeek(
        share_pct(totals["up"] or 0, totals["all"] or 0),
        observed.height,
        {int(threshold): int(count) for threshold, count in under.items()},
    )


def share_pct(part: int, whole: int) -> float | None:
    """`part / whole` in percent, rounded to 2 decimals; None when there is no whole."""
    return round(100 * part / whole, 2) if whole else None


def polls_in_window(polls: pl.DataFrame, as_of_us: int | None, length_us: int) -> int:
    """Polls with `T - length <= timestamp < T`, the window the report covers (SPEC §3)."""
    if as_of_us is None:
        return 0
    at = pl.col("polled_at_us")
    return polls.filter((at >= as_of_us - length_us) & (at < as_of_us)).height


# --- markdown tables ---------------------------------------------------------------------------


class Markdown(str):
    """Text written in markdown: the Dagster UI renders it (defs/ui_metadata.py); elsewhere it is text."""


def markdown_list(items: Iterable[str], empty: str = "none") -> Markdown:
    """One `- item` line per item, or `empty` when there is none."""
    return Markdown("\n".join(f"- {item}" for item in items) or empty)


def markdown_cell(value: object) -> str:
    """A value as a markdown table shows it: floats with 2 decimals, as the report CSV writes them
    (`7.52`, not the binary float's `7.5200000000000005`); text with `|` and line breaks escaped."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def markdown_table(frame: pl.DataFrame, max_rows: int = 10) -> Markdown:
    """The first `max_rows` rows of a frame as a markdown table, with a note when cut."""
    head = frame.head(max_rows)
    if head.width == 0:
        return Markdown("_(empty)_")
    lines = [
        "| " + " | ".join(markdown_cell(c) for c in head.columns) + " |",
        "| " + " | ".join("---" for _ in head.columns) + " |",
    ]
    lines += ["| " + " | ".join(markdown_cell(v) for v in values) + " |" for values in head.iter_rows()]
    if frame.height > max_rows:
        lines.append(f"\n_{max_rows} of {frame.height} rows_")
    return Markdown("\n".join(lines))
