"""The uptime report: `combined_report.csv`, plus a copy per run under the run id."""

import dagster as dg
import polars as pl
from pydantic import Field

from storemon_assets import settings
from storemon_assets.assets.raw import RAW_BUSINESS_HOURS, RAW_STORE_STATUS, RAW_STORE_TIMEZONES
from storemon_assets.reporting import ReportResult, build_report, parse_as_of, write_report_files
from storemon_assets.resources import ReportsFolder, StoremonDatabase
from storemon_assets.ui_metadata import markdown_table
from storemon_assets.uptime import REPORT_COLUMNS

REPORT_SCHEMA = dg.TableSchema(
    columns=[dg.TableColumn("store_id", "text", description="Store identifier, sorted as a string.")]
    + [
        dg.TableColumn(
            name,
            "float64",
            description=f"{'Up' if name.startswith('up') else 'Down'}time during business hours in the "
            f"last {name.rsplit('_', 1)[1]}, in {'minutes' if name.endswith('hour') else 'hours'} (2 decimals).",
        )
        for name in REPORT_COLUMNS[1:]
    ]
)

UPTIME_BANDS = [(0, 50), (50, 80), (80, 95), (95, 99), (99, 100.0001)]


class ReportConfig(dg.Config):
    as_of: str = Field(
        default="",
        description="Report time T (ISO-8601 UTC, or 'now'). Empty: STOREMON_AS_OF, else the latest poll.",
    )


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


def report_metadata(result: ReportResult, paths: list) -> dict:
    return {
        "as_of": result.as_of_iso or "(no polls loaded)",
        "stores": result.store_count,
        "stores_without_observations": result.stores_without_observations,
        "rejected_rows": sum(result.rejected_rows_by_kind.values()),
        **{f"rejected_{kind}_rows": n for kind, n in result.rejected_rows_by_kind.items()},
        "dagster/row_count": result.store_count,
        "dagster/column_schema": REPORT_SCHEMA,
        "preview": markdown_table(result.report),
        "weekly_uptime_distribution": markdown_table(weekly_uptime_distribution(result.report)),
        "combined_report": dg.MetadataValue.path(str(paths[0])),
        "run_report": dg.MetadataValue.path(str(paths[-1])),
    }


@dg.asset(
    deps=[RAW_STORE_STATUS, RAW_BUSINESS_HOURS, RAW_STORE_TIMEZONES],
    group_name="report",
    kinds={"polars", "csv"},
    description="Uptime and downtime of every polled store during its business hours over the last hour, "
    "day and week before T (docs/uptime-logic.md). Derives each store's schedule with the same code as "
    "the store partitions, so it never reads a partition that lags behind the raw feeds.",
)
def uptime_report(
    context: dg.AssetExecutionContext, config: ReportConfig, database: StoremonDatabase, reports: ReportsFolder
) -> dg.MaterializeResult:
    try:
        as_of_us = parse_as_of(config.as_of or settings.as_of_setting())
    except ValueError as exc:
        raise dg.Failure(description=str(exc)) from exc
    result = build_report(database.engine(), as_of_us)
    paths = write_report_files(result.report, reports.folder, context.run.run_id)
    context.log.info(f"report as of {result.as_of_iso}: {result.store_count} stores, written to {paths[0]}")
    return dg.MaterializeResult(metadata=report_metadata(result, paths))
