"""From database to report: the one code path shared by the Dagster assets, the CLI and the API."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from storemon_assets.core.instants import format_instant
from storemon_assets.core.parsing import read_feed_file
from storemon_assets.core.tables import STORE_STATUS_POLLS
from storemon_assets.core.uptime import UptimeReport, compute_uptime, report_csv
from storemon_assets.db.loading import LoadOutcome, load_feed
from storemon_assets.db.queries import read_table, read_weekly_schedules, rejected_counts

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


def ingest_files(engine: sa.Engine, paths: Iterable[str | Path]) -> list[LoadOutcome]:
    """Parse and load each file; raises FeedFileError on the first unreadable file."""
    return [load_feed(engine, read_feed_file(path)) for path in paths]


def build_report(engine: sa.Engine, as_of_us: int | None = None) -> ReportResult:
    """Compute the report as of T from what the database holds."""
    polls = read_table(engine, STORE_STATUS_POLLS)
    schedule = read_weekly_schedules(engine, polls.get_column("store_id").unique())
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
