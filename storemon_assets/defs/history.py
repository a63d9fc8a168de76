"""The store history: daily values (SPEC §8) as a daily-partitioned asset, its job and refresh
sensor, and the retention job and schedule (docs/history.md, "In Dagster" and "Retention")."""

import datetime as dt
import json
import time

import dagster as dg

from storemon_assets import settings
from storemon_assets.core.daily import fleet_uptime_by_date
from storemon_assets.core.instants import format_instant, parse_as_of
from storemon_assets.core.tables import STORE_DAILY_PACKED, STORE_DAILY_UPTIME
from storemon_assets.db.history import ledger_arrivals
from storemon_assets.defs.partitions import DAILY_PARTITIONS_START, daily_partitions, partition_range_request
from storemon_assets.defs.raw import RAW_BUSINESS_HOURS, RAW_STORE_STATUS, RAW_STORE_TIMEZONES
from storemon_assets.defs.resources import ReportsFolder, StoremonDatabase
from storemon_assets.defs.ui_metadata import row_count, table_metadata, ui_metadata, user_errors
from storemon_assets.history import daily_history, daily_refresh, retention
from storemon_assets.names import DAILY_UPTIME_JOB, RETENTION_JOB
from storemon_assets.progress import peak_rss_mib
from storemon_assets.service import report_time_us


@dg.asset(
    name=STORE_DAILY_UPTIME.name,
    group_name="history",
    kinds={"polars", "sql"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[RAW_STORE_STATUS, RAW_BUSINESS_HOURS, RAW_STORE_TIMEZONES],
    description=f"{STORE_DAILY_UPTIME.description} Exact across DST changes (SPEC §8). One partition per date, all "
    "stores; a backfill of any range is one run. Rows that already hold for T are kept, the rest computed and "
    f"stored (packed, table {STORE_DAILY_PACKED.name}).",
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


daily_uptime_job = dg.define_asset_job(
    DAILY_UPTIME_JOB,
    selection=dg.AssetSelection.assets(store_daily_uptime),
    description="Materialise a range of daily partitions (one run: the asset reads every date of the range).",
)


@dg.sensor(
    job=daily_uptime_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Refreshes the daily partitions that can have changed: the current and previous dates, and the "
    "dates around polls that arrived late. Never the whole history.",
)
def daily_uptime_sensor(context: dg.SensorEvaluationContext, database: StoremonDatabase):
    engine = database.engine()
    cursor = json.loads(context.cursor) if context.cursor else {}
    try:
        as_of_us = report_time_us(engine, parse_as_of(settings.as_of_setting()))
    except ValueError as exc:
        return dg.SkipReason(f"{settings.AS_OF.name}: {exc}")
    if as_of_us is None:
        return dg.SkipReason("no polls loaded")
    today = dt.date.fromisoformat(daily_partitions.get_last_partition_key())
    first_partition = dt.date.fromisoformat(DAILY_PARTITIONS_START)
    now = time.time()
    refresh = daily_refresh(as_of_us, ledger_arrivals(engine), cursor, now, first_partition, today)
    if refresh is None:
        return dg.SkipReason("no file loaded and T refreshed within the hour")
    run_requests = [
        partition_range_request(f"daily-{as_of_us}-{refresh.watermark_us}-{first}-{last}", str(first), str(last))
        for first, last in refresh.ranges
    ]
    context.log.info(
        f"T {format_instant(as_of_us)}, {refresh.polls_files} new polls file(s), {refresh.other_files} other(s): "
        + ", ".join(f"{first}..{last}" for first, last in refresh.ranges)
    )
    return dg.SensorResult(run_requests=run_requests, cursor=json.dumps(refresh.cursor(now)))


@dg.op(
    description="Prune polls older than STOREMON_RETENTION_DAYS, then run reports older than STOREMON_REPORT_KEEP_DAYS."
)
def prune_history(context: dg.OpExecutionContext, database: StoremonDatabase, reports: ReportsFolder) -> None:
    with user_errors():
        days, keep_days = settings.retention_days(), settings.report_keep_days()
    for line in retention(database.engine(), reports.folder, days, keep_days):
        context.log.info(line)


@dg.job(name=RETENTION_JOB, description="Retention: prune old polls (daily values stored first) and old run reports.")
def retention_job():
    prune_history()


retention_schedule = dg.ScheduleDefinition(
    name="retention_schedule",
    job=retention_job,
    cron_schedule="17 3 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily at 03:17 UTC: retention (STOREMON_RETENTION_DAYS, STOREMON_REPORT_KEEP_DAYS).",
)
