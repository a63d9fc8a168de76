"""Incidents of the current report and each store's status now (SPEC §9, core/incidents.py).

Materialised in the same runs as the report, right after it: it reads the status intervals the
report just published, so it costs a read of them, one seek per store for its newest poll and the
stores' business time at T. The alerts sensor (defs/sensors.py) evaluates after each of its
materialisations.
"""

import time

import dagster as dg
import polars as pl

from storemon_assets import settings
from storemon_assets.core.incidents import status_counts
from storemon_assets.core.instants import format_instant
from storemon_assets.core.tables import STORE_INCIDENTS, STORE_STATUS_INTERVALS, STORE_STATUS_NOW
from storemon_assets.defs.resources import StoremonDatabase
from storemon_assets.defs.ui_metadata import markdown_table, table_schema
from storemon_assets.service import refresh_incidents


def _shown(frame: pl.DataFrame, bound: str, per_us: int = 2) -> pl.DataFrame:
    """Instants (half-microseconds, or microseconds with per_us=1) as UTC text, for a preview."""
    return frame.with_columns(
        pl.from_epoch(pl.col(bound) // per_us, time_unit="us").dt.strftime("%Y-%m-%d %H:%M:%SZ").alias(bound)
    )


@dg.asset(
    name=STORE_INCIDENTS.name,
    group_name="report",
    deps=[dg.AssetKey(STORE_STATUS_INTERVALS.name)],
    kinds={"polars", "sql"},
    description="Incidents of the current report (stretches of a store's down business time in the week "
    "before T; closed time does not end one) and each store's status at T: up, down, closed or no data, "
    "since when, and not reporting (open, newest poll older than STOREMON_STALE_AFTER_MINUTES). Read off "
    "store_status_intervals, so each store's incidents sum to its downtime_last_week; stored in the tables "
    f"{STORE_INCIDENTS.name} and {STORE_STATUS_NOW.name}. The alerts sensor evaluates after each refresh.",
    metadata={"dagster/column_schema": table_schema(STORE_INCIDENTS), "table": STORE_INCIDENTS.name},
)
def store_incidents(context: dg.AssetExecutionContext, database: StoremonDatabase) -> dg.MaterializeResult:
    started = time.perf_counter()
    current = refresh_incidents(database.engine(), settings.stale_after_minutes())
    seconds = time.perf_counter() - started
    still_open = current.incidents.filter(pl.col("open"))
    down = current.status.filter(pl.col("status") == "down").join(
        still_open.select("store_id", "started_half_us", "downtime_half_us"), on="store_id", how="left"
    )
    counts = status_counts(current.status)
    context.log.info(
        f"{current.incidents.height} incidents ({still_open.height} open) as of {format_instant(current.as_of_us)}; "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
    )
    longest_down = down.sort("downtime_half_us", descending=True).select(
        "store_id", "started_half_us", (pl.col("downtime_half_us") / 120_000_000).round(1).alias("minutes_down")
    )
    return dg.MaterializeResult(
        metadata={
            "as_of": format_instant(current.as_of_us) or "(no report published)",
            "incidents": current.incidents.height,
            "open_incidents": still_open.height,
            **counts,
            "dagster/row_count": current.incidents.height,
            "down_now": markdown_table(_shown(longest_down, "started_half_us"), max_rows=20),
            "not_reporting_now": markdown_table(
                _shown(
                    current.status.filter(pl.col("not_reporting")).select("store_id", "status", "newest_poll_us"),
                    "newest_poll_us",
                    per_us=1,
                ),
                max_rows=20,
            ),
            "compute_seconds": round(seconds, 3),
            "status_table": STORE_STATUS_NOW.name,
        }
    )
