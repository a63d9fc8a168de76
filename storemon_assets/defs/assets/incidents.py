"""What the `store_incidents` asset shows: the current report's incidents and each store's status now
(SPEC §9, core/incidents.py).

The asset is an output of the report (defs/assets/report.py): the step that publishes the report
computes them from the status intervals it holds and stores them in the same transaction, so the
incidents, the timelines and the report always describe the same T. The alerts sensor
(defs/alerts.py) evaluates after each of its materialisations.
"""

import dagster as dg
import polars as pl

from storemon_assets.core.incidents import status_counts
from storemon_assets.core.instants import format_instant
from storemon_assets.core.tables import STORE_INCIDENTS, STORE_STATUS_NOW
from storemon_assets.defs.ui_metadata import markdown_table, table_schema
from storemon_assets.service import Incidents

INCIDENTS_OUT = dg.AssetOut(
    kinds={"polars", "sql"},
    is_required=False,
    description="Incidents of the current report (stretches of a store's down business time in the week before T; "
    "closed time does not end one) and each store's status at T: up, down, closed or no data, since when, and "
    "not reporting (open, newest poll older than STOREMON_STALE_AFTER_MINUTES). Read off the status intervals, "
    f"so each store's incidents sum to its downtime_last_week; stored in {STORE_INCIDENTS.name} and "
    f"{STORE_STATUS_NOW.name} with the report, in one transaction. The alerts sensor evaluates after each "
    "materialisation (docs/monitor.md).",
    metadata={"dagster/column_schema": table_schema(STORE_INCIDENTS), "table": STORE_INCIDENTS.name},
)


def _shown(frame: pl.DataFrame, column: str, per_us: int = 2) -> pl.DataFrame:
    """Instants (half-microseconds, or microseconds with per_us=1) as UTC text, for a preview."""
    return frame.with_columns(
        pl.from_epoch(pl.col(column) // per_us, time_unit="us").dt.strftime("%Y-%m-%d %H:%M:%SZ").alias(column)
    )


def incidents_metadata(current: Incidents | None) -> dict:
    """Counts per status now (plotted across materialisations), and who is down and not reporting."""
    if current is None:
        return {"as_of": "(no polls loaded)"}
    still_open = current.incidents.filter(pl.col("open"))
    down = (
        current.status.filter(pl.col("status") == "down")
        .join(still_open.select("store_id", "started_half_us", "downtime_half_us"), on="store_id", how="left")
        .sort("downtime_half_us", descending=True)
        .select(
            "store_id", "started_half_us", (pl.col("downtime_half_us") / 120_000_000).round(1).alias("minutes_down")
        )
    )
    silent = current.status.filter(pl.col("not_reporting")).select("store_id", "status", "newest_poll_us")
    return {
        "as_of": format_instant(current.as_of_us),
        "incidents": current.incidents.height,
        "open_incidents": still_open.height,
        **status_counts(current.status),
        "dagster/row_count": current.incidents.height,
        "down_now": markdown_table(_shown(down, "started_half_us"), max_rows=20),
        "not_reporting_now": markdown_table(_shown(silent, "newest_poll_us", per_us=1), max_rows=20),
        "status_table": STORE_STATUS_NOW.name,
    }
