"""Per-store partitions: each store's weekly schedule, what never goes stale with time (UTC
business time is derived from it when a report needs it), the job that materialises a range of
them and the sensor that adds the partitions of new stores and asks for those whose feeds changed."""

import json

import dagster as dg
import polars as pl

from storemon_assets import settings
from storemon_assets.core.summaries import schedule_figures
from storemon_assets.core.tables import STORE_SCHEDULES
from storemon_assets.db.loading import replace_store_schedules
from storemon_assets.db.queries import read_weekly_schedules
from storemon_assets.defs.partitions import STORE_PARTITIONS_NAME, partition_range_request, store_partitions
from storemon_assets.defs.raw import RAW_BUSINESS_HOURS, RAW_SPECIAL_HOURS, RAW_STORE_TIMEZONES
from storemon_assets.defs.resources import StoremonDatabase
from storemon_assets.defs.ui_metadata import table_metadata, ui_metadata
from storemon_assets.names import STORE_SCHEDULES_JOB
from storemon_assets.service import schedule_refresh
from storemon_assets.web import timeline_path

MAX_SCHEDULE_RUNS = 4


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


store_schedules_job = dg.define_asset_job(
    STORE_SCHEDULES_JOB,
    selection=dg.AssetSelection.assets(store_schedules),
    description="Materialise the store partitions named in the run (one run for any number of stores).",
)


@dg.sensor(
    job=store_schedules_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds a partition for each new store, whoever loaded it (up to STOREMON_MAX_STORE_PARTITIONS), and "
    "materialises the store partitions that are new or whose hours, special hours or timezone changed.",
)
def store_schedules_sensor(context: dg.SensorEvaluationContext, database: StoremonDatabase):
    keys = list(context.instance.get_dynamic_partitions(STORE_PARTITIONS_NAME))
    cursor = json.loads(context.cursor) if context.cursor else {}
    limit = settings.max_store_partitions()
    refresh = schedule_refresh(database.engine(), keys, cursor, MAX_SCHEDULE_RUNS, limit)
    if refresh is None:
        return dg.SkipReason("no feed changed since the last check")
    if refresh.left_out:
        context.log.warning(
            f"store partition limit {limit} reached: {refresh.left_out} stores get no partition (they are still reported)"
        )
    if refresh.runs:
        context.log.info(
            f"{refresh.stale_stores} store partitions to refresh ({len(refresh.new_stores)} new) in {len(refresh.runs)} run(s)"
        )
    return dg.SensorResult(
        run_requests=[partition_range_request(key, first, last) for key, (first, last) in refresh.runs.items()],
        # Added by the daemon before it launches the runs, which cover the new partitions.
        dynamic_partitions_requests=[store_partitions.build_add_request(refresh.new_stores)]
        if refresh.new_stores
        else [],
        cursor=json.dumps(refresh.cursor),
        skip_reason=None if refresh.runs or refresh.new_stores else "every store partition is current",
    )
