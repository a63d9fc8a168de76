"""Daily values (SPEC §8) as a daily-partitioned asset (docs/history.md, "In Dagster")."""

import datetime as dt
import time

import dagster as dg

from storemon_assets import settings
from storemon_assets.core.daily import fleet_uptime_by_date
from storemon_assets.core.instants import format_instant, parse_as_of
from storemon_assets.core.tables import STORE_DAILY_PACKED, STORE_DAILY_UPTIME
from storemon_assets.defs.assets.raw import RAW_BUSINESS_HOURS, RAW_STORE_STATUS, RAW_STORE_TIMEZONES
from storemon_assets.defs.partitions import daily_partitions
from storemon_assets.defs.resources import StoremonDatabase
from storemon_assets.defs.ui_metadata import row_count, table_metadata, ui_metadata, user_errors
from storemon_assets.history import daily_history
from storemon_assets.progress import peak_rss_mib


@dg.asset(
    name=STORE_DAILY_UPTIME.name,
    group_name="history",
    kinds={"polars", "sql"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[RAW_STORE_STATUS, RAW_BUSINESS_HOURS, RAW_STORE_TIMEZONES],
    description="Each store's business, uptime and downtime minutes per local calendar date (SPEC §8, "
    "docs/history.md): the part of the day before T, split by the nearest observation, DST-exact. One partition "
    "per date, all stores; a backfill of any range is one run. Rows that already hold for T are kept, the rest "
    "computed and stored (packed, table store_daily_packed).",
)
def store_daily_uptime(context: dg.AssetExecutionContext, database: StoremonDatabase) -> dg.MaterializeResult:
    keys = context.partition_keys
    first, last = dt.date.fromisoformat(keys[0]), dt.date.fromisoformat(keys[-1])
    engine = database.engine()
    started = time.perf_counter()
    with user_errors():
        as_of_us = parse_as_of(settings.as_of_setting())
    history = daily_history(engine, as_of_us, first_date=first, last_date=last, write=True)
    seconds = time.perf_counter() - started
    context.log.info(
        f"{first}..{last} as of {format_instant(history.as_of_us)}: {history.computed_rows:,} store-days computed, "
        f"{history.stored_rows:,} held already, in {seconds:.1f} s"
    )
    figures = history.figures() | {"compute_seconds": round(seconds, 3), "peak_rss_mib": peak_rss_mib()}
    by_date = {"fleet_uptime_by_date": fleet_uptime_by_date(history.values).tail(40)}
    # Stored packed: a row per date and shard of stores (docs/history.md).
    table = table_metadata(STORE_DAILY_UPTIME, stored_in=STORE_DAILY_PACKED) | row_count(history.values)
    return dg.MaterializeResult(metadata=ui_metadata(figures | by_date) | table)
