"""Small builders so that tests read like the SPEC's examples."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from hypothesis import settings

from storemon_assets.core.business_time import weekly_schedule
from storemon_assets.core.parsing import parse_time_of_day_us, parse_timestamp_utc
from storemon_assets.core.uptime import UptimeReport, compute_uptime

# The SPEC's worked example as a report row: store "s", open Monday 09:00-12:00 Chicago, active
# 10:14 and inactive 11:15 local, T = 12:00 local. Up 104.5 min (09:00 to the 10:44:30
# midpoint), down 75.5 min: 104.5 / 60 = 1.7416.. h -> 1.74, 75.5 / 60 = 1.2583.. h -> 1.26;
# the last hour (11:00-12:00 local, after the midpoint) all down, in minutes.
WORKED_EXAMPLE_ROW = {
    "store_id": "s",
    "uptime_last_hour": 0.0,
    "uptime_last_day": 1.74,
    "uptime_last_week": 1.74,
    "downtime_last_hour": 60.0,
    "downtime_last_day": 1.26,
    "downtime_last_week": 1.26,
}


def write_csv(folder: Path, name: str, text: str) -> Path:
    """Write one feed file as a delivery would (creating its folder); returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def at(text: str) -> int:
    """'2023-01-16 16:14' (UTC) -> microseconds since the epoch."""
    return pl.select(parse_timestamp_utc(pl.lit(text))).item()


def example_report(
    polls: list[tuple[str, str, str]],
    hours: list[tuple[str, int, str, str]] = (),
    timezones: dict[str, str] | None = None,
    as_of: str | None = None,
) -> UptimeReport:
    """polls: (store, 'YYYY-MM-DD HH:MM[:SS]' UTC, status); hours: (store, day, start, end)."""
    poll_frame = pl.DataFrame(
        {
            "store_id": [p[0] for p in polls],
            "polled_at_us": [at(p[1]) for p in polls],
            "status": [p[2] for p in polls],
        },
        schema={"store_id": pl.String, "polled_at_us": pl.Int64, "status": pl.String},
    )
    hours_frame = pl.DataFrame(
        {
            "store_id": [h[0] for h in hours],
            "day_of_week": [h[1] for h in hours],
            "start": [h[2] for h in hours],
            "end": [h[3] for h in hours],
        },
        schema={"store_id": pl.String, "day_of_week": pl.Int8, "start": pl.String, "end": pl.String},
    ).select(
        "store_id",
        "day_of_week",
        parse_time_of_day_us(pl.col("start")).alias("start_time_us"),
        parse_time_of_day_us(pl.col("end")).alias("end_time_us"),
    )
    tz_frame = pl.DataFrame(
        {"store_id": list((timezones or {}).keys()), "timezone_str": list((timezones or {}).values())},
        schema={"store_id": pl.String, "timezone_str": pl.String},
    )
    schedule = weekly_schedule(hours_frame, tz_frame, poll_frame.get_column("store_id"))
    return compute_uptime(poll_frame, schedule, at(as_of) if as_of else None)


def row(report: UptimeReport, store_id: str) -> dict:
    """The rounded report row of one store."""
    rows = report.report.filter(pl.col("store_id") == store_id).to_dicts()
    assert len(rows) == 1, f"expected one row for {store_id!r}, got {rows}"
    return rows[0]


def exact(report: UptimeReport, store_id: str) -> dict:
    """Exact sums of one store, converted from half-microseconds to seconds."""
    values = report.exact.filter(pl.col("store_id") == store_id).to_dicts()[0]
    return {k.removesuffix("_half_us"): v / 2_000_000 for k, v in values.items() if k.endswith("_half_us")}


MINUTE, HOUR = 60, 3600


def add_store_partitions(home, instance):
    """What the daemon does with the landing sensor's partition requests."""
    import dagster as dg

    from storemon_assets.defs.sensors import landing_files_sensor

    context = dg.build_sensor_context(instance=instance, resources=home.resources)
    for request in landing_files_sensor(context).dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))


def examples(full: int) -> int:
    """A property test's example count: `full` under Hypothesis's default profile, scaled by the
    loaded one's max_examples / 100 (`make test-fast` loads "fast", conftest.py: a quarter)."""
    return max(1, full * settings.default.max_examples // 100)
