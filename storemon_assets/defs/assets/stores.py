"""Per-store partitions: each store's weekly schedule, what never goes stale with time (UTC
business time is derived from it when a report needs it)."""

import dagster as dg
import polars as pl

from storemon_assets import settings
from storemon_assets.core.summaries import schedule_figures
from storemon_assets.core.tables import STORE_SCHEDULES
from storemon_assets.db.loading import replace_store_schedules
from storemon_assets.db.queries import read_weekly_schedules
from storemon_assets.defs.assets.raw import RAW_BUSINESS_HOURS, RAW_SPECIAL_HOURS, RAW_STORE_TIMEZONES
from storemon_assets.defs.partitions import store_partitions
from storemon_assets.defs.resources import StoremonDatabase
from storemon_assets.defs.ui_metadata import table_metadata, ui_metadata
from storemon_assets.web import timeline_path


@dg.asset(
    partitions_def=store_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[RAW_BUSINESS_HOURS, RAW_STORE_TIMEZONES, RAW_SPECIAL_HOURS],
    group_name="stores",
    kinds={"polars", "sql"},
    output_required=False,
    metadata=table_metadata(STORE_SCHEDULES),
)
def store_schedules(context: dg.AssetExecutionContext, database: StoremonDatabase):
    """Each store's weekly schedule in local time: hours rows merged with the defaults
    (no rows = open around the clock) and its timezone (the SPEC's default zone when missing).
    Materialised only for stores that are new or whose hours or timezone changed."""
    engine = database.engine()
    keys = pl.Series("store_id", context.partition_keys, dtype=pl.String)
    schedule = read_weekly_schedules(engine, keys)
    replace_store_schedules(engine, schedule, keys.to_list())
    api_url = settings.api_url()
    for store_id, figures in schedule_figures(schedule).items():
        # A link, not the numbers: the page always shows the current report's week, while this
        # metadata only changes when the schedule does.
        week = {"latest_week": dg.MetadataValue.url(api_url + timeline_path(store_id))}
        yield dg.AssetMaterialization(context.asset_key, partition=store_id, metadata=ui_metadata(figures) | week)
    # One line per run for the console; each partition's own event stays in the event log.
    context.log.info(f"refreshed the schedules of {len(keys)} stores, {keys.min()} to {keys.max()}")
