"""Per-store partitions: each store's normalised weekly schedule.

A partition holds what never goes stale with time: the store's weekly hours with the defaults
applied and its timezone resolved. UTC business time for any dates is derived from it when a
report needs it, so the hourly path never re-materialises thousands of partitions. One run
refreshes any number of stores (single-run backfill policy) and records exactly one event per
store, carrying that store's own metadata.
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
from storemon_assets.ui_metadata import table_schema

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def _clock(us: pl.Expr) -> pl.Expr:
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
            _clock(pl.col("start_time_us")),
            _clock(pl.col("end_time_us")),
        ).alias("line"),
    )
    tables = lines.group_by("store_id").agg(pl.col("line").str.join("\n"))
    return {store: "| day | opens | closes |\n| --- | --- | --- |\n" + body for store, body in tables.iter_rows()}


@dg.asset(
    partitions_def=store_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[RAW_BUSINESS_HOURS, RAW_STORE_TIMEZONES],
    group_name="stores",
    kinds={"polars", "sql"},
    output_required=False,
    metadata={"dagster/column_schema": table_schema(STORE_SCHEDULES), "table": STORE_SCHEDULES.name},
)
def store_schedules(context: dg.AssetExecutionContext, database: StoremonDatabase):
    """Each store's weekly schedule in local time: hours rows merged with the defaults
    (no rows = open around the clock) and its timezone (America/Chicago when missing).
    Materialised only for stores that are new or whose hours or timezone changed."""
    engine = database.engine()
    keys = pl.Series("store_id", context.partition_keys, dtype=pl.String)
    schedule = derive_store_schedules(engine, keys)
    replace_store_schedules(engine, schedule, keys.to_list())
    tables = schedule_tables(schedule)
    for store in weekly_open_hours(schedule).sort("store_id").iter_rows(named=True):
        hours = store["weekly_open_hours"]
        yield dg.AssetMaterialization(
            asset_key=context.asset_key,
            partition=store["store_id"],
            metadata={
                "timezone": store["timezone"],
                "weekly_open_hours": round(hours, 2),
                "open_around_the_clock": hours >= 168,
                "intervals": dg.MetadataValue.md(tables[store["store_id"]]),
            },
        )
    context.log.info(f"refreshed the schedules of {len(keys)} stores")
