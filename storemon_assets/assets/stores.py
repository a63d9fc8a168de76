"""Per-store partitions: each store's normalised weekly schedule.

A partition holds what never goes stale with time: the store's weekly hours with the defaults
applied and its timezone resolved. UTC business time for any dates is derived from it when a
report needs it, so the hourly path never re-materialises thousands of partitions.
"""


import dagster as dg
import polars as pl

from storemon_assets.assets.raw import RAW_BUSINESS_HOURS, RAW_STORE_TIMEZONES
from storemon_assets.business_time import weekly_open_hours
from storemon_assets.database import replace_store_schedules
from storemon_assets.partitions import store_partitions
from storemon_assets.reporting import store_schedules as derive_store_schedules
from storemon_assets.resources import StoremonDatabase
from storemon_assets.schema import STORE_SCHEDULES
from storemon_assets.ui_metadata import markdown_table, table_schema


def _time(us: int) -> str:
    seconds = us // 1_000_000
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}" + (f":{seconds % 60:02d}" if seconds % 60 else "")


@dg.asset(
    partitions_def=store_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[RAW_BUSINESS_HOURS, RAW_STORE_TIMEZONES],
    group_name="stores",
    kinds={"polars", "sql"},
    metadata={"dagster/column_schema": table_schema(STORE_SCHEDULES), "table": STORE_SCHEDULES.name},
)
def store_schedules(context: dg.AssetExecutionContext, database: StoremonDatabase) -> dg.MaterializeResult:
    """Each store's weekly schedule in local time, defaults applied, timezone resolved."""
    engine = database.engine()
    keys = pl.Series("store_id", context.partition_keys, dtype=pl.String)
    schedule = derive_store_schedules(engine, keys)
    replace_store_schedules(engine, schedule, keys.to_list())
    open_hours = weekly_open_hours(schedule)
    metadata: dict = {"stores": len(keys), "dagster/row_count": schedule.height}
    if len(keys) == 1:
        store = open_hours.row(0, named=True)
        rows = schedule.select(
            "day_of_week",
            pl.col("start_time_us").map_elements(_time, return_dtype=pl.String).alias("opens"),
            pl.col("end_time_us").map_elements(_time, return_dtype=pl.String).alias("closes"),
        )
        metadata |= {
            "timezone": store["timezone"],
            "weekly_open_hours": round(store["weekly_open_hours"], 2),
            "open_around_the_clock": store["weekly_open_hours"] >= 168,
            "intervals": markdown_table(rows, max_rows=30),
        }
    else:
        metadata |= {
            "stores_open_around_the_clock": open_hours.filter(pl.col("weekly_open_hours") >= 168).height,
            "median_weekly_open_hours": round(open_hours.get_column("weekly_open_hours").median() or 0.0, 2),
            "sample": markdown_table(open_hours.sort("store_id")),
        }
    return dg.MaterializeResult(metadata=metadata)
