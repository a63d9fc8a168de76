"""From database to report: the one code path shared by the Dagster assets and the CLI."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from storemon_assets.business_time import weekly_schedule
from storemon_assets.database import LoadOutcome, load_feed, read_table
from storemon_assets.parsing import parse_timestamp_utc, read_feed_file
from storemon_assets.schema import BUSINESS_HOURS, REJECTED_ROWS, SQL_TABLES, STORE_STATUS_POLLS, STORE_TIMEZONES
from storemon_assets.uptime import UptimeReport, compute_uptime, report_csv

COMBINED_REPORT_NAME = "combined_report.csv"


@dataclass(frozen=True)
class ReportResult:
    uptime: UptimeReport
    rejected_rows_by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def report(self) -> pl.DataFrame:
        return self.uptime.report

    @property
    def store_count(self) -> int:
        return self.uptime.report.height

    @property
    def stores_without_observations(self) -> int:
        exact = self.uptime.exact
        return 0 if exact.is_empty() else exact.filter(~pl.col("has_observations")).height

    @property
    def as_of_iso(self) -> str | None:
        return format_instant(self.uptime.as_of_us)


def format_instant(at_us: int | None) -> str | None:
    if at_us is None:
        return None
    return pl.select(pl.from_epoch(pl.lit(at_us), time_unit="us").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")).item()


def parse_as_of(text: str | None) -> int | None:
    """`None`/'' -> latest poll (decided later); 'now' -> the current instant; else a timestamp."""
    if text is None or text.strip() == "":
        return None
    if text.strip().lower() == "now":
        return time.time_ns() // 1000
    value = pl.select(parse_timestamp_utc(pl.lit(text.strip()))).item()
    if value is None:
        raise ValueError(f"as-of time {text!r} is not a timestamp (expected e.g. 2023-01-25T18:13:22Z)")
    return value


def ingest_files(engine: sa.Engine, paths: Iterable[str | Path]) -> list[LoadOutcome]:
    """Parse and load each file; raises FeedFileError on the first unreadable file."""
    return [load_feed(engine, read_feed_file(path)) for path in paths]


def store_schedules(engine: sa.Engine, store_ids: pl.Series | None = None) -> pl.DataFrame:
    """Normalised weekly schedules of the given stores (default: every store any feed names)."""
    hours = read_table(engine, BUSINESS_HOURS)
    timezones = read_table(engine, STORE_TIMEZONES)
    if store_ids is None:
        store_ids = known_store_ids(engine)
    return weekly_schedule(hours, timezones, store_ids)


def known_store_ids(engine: sa.Engine) -> pl.Series:
    """Every store named by an accepted row of any feed."""
    with engine.connect() as conn:
        query = sa.union(
            *(sa.select(SQL_TABLES[spec.name].c.store_id) for spec in (STORE_STATUS_POLLS, BUSINESS_HOURS, STORE_TIMEZONES))
        )
        ids = [row[0] for row in conn.execute(query)]
    return pl.Series("store_id", ids, dtype=pl.String).sort()


def rejected_counts(engine: sa.Engine) -> dict[str, int]:
    table = SQL_TABLES[REJECTED_ROWS.name]
    counts = {kind: 0 for kind in ("polls", "hours", "timezones")}
    with engine.connect() as conn:
        counts.update(dict(conn.execute(sa.select(table.c.kind, sa.func.count()).group_by(table.c.kind)).all()))
    return counts


def build_report(engine: sa.Engine, as_of_us: int | None = None) -> ReportResult:
    """Compute the report as of T from what the database holds."""
    polls = read_table(engine, STORE_STATUS_POLLS)
    schedule = store_schedules(engine, polls.get_column("store_id").unique())
    uptime = compute_uptime(polls, schedule, as_of_us)
    return ReportResult(uptime, rejected_counts(engine))


def write_report_files(report: pl.DataFrame, reports_dir: Path, report_id: str | None) -> list[Path]:
    """Write `combined_report.csv` and, with an id, `<report_id>.csv`."""
    names = [COMBINED_REPORT_NAME] + ([f"{report_id}.csv"] if report_id else [])
    targets = [reports_dir / name for name in names]
    for target in targets:
        write_report_text(report, target)
    return targets


def write_report_text(report: pl.DataFrame, target: Path) -> None:
    """Write the report CSV so that readers never see a half-written file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.write_text(report_csv(report))
    temporary.replace(target)


def polled_store_ids(engine: sa.Engine, as_of_us: int | None) -> pl.Series:
    """Stores with a poll at or before T, straight from SQL (an independent count for checks)."""
    table = SQL_TABLES[STORE_STATUS_POLLS.name]
    query = sa.select(table.c.store_id).distinct()
    if as_of_us is not None:
        query = query.where(table.c.polled_at_us <= as_of_us)
    with engine.connect() as conn:
        return pl.Series("store_id", [row[0] for row in conn.execute(query)], dtype=pl.String)


def newest_poll_us(engine: sa.Engine) -> int | None:
    table = SQL_TABLES[STORE_STATUS_POLLS.name]
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(table.c.polled_at_us))).scalar()
