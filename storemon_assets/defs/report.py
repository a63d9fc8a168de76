"""The current report, its status intervals and incidents: one graph-backed asset (plan T and
store shards, a step per shard, a step that checks and publishes all three in one transaction),
its jobs and hourly schedule, the sensor that deletes its intermediate files, and as-of reports
(the report for a chosen T, a run of its own job that publishes nothing). Each output's
description says what it is; docs/deployment.md tells the shards and executors,
docs/operations.md the publication order and the shards' clean-up, docs/architecture.md
("Running it the Dagster way") the as-of reports."""

import time

import dagster as dg
import polars as pl
from pydantic import Field

from storemon_assets import settings
from storemon_assets.core import quality
from storemon_assets.core.instants import as_of_instant, format_instant, parse_as_of
from storemon_assets.core.shards import StoreShard
from storemon_assets.core.tables import (
    CURRENT_REPORT,
    STORE_INCIDENTS,
    STORE_STATUS_INTERVALS,
    STORE_STATUS_NOW,
    UPTIME_REPORT,
)
from storemon_assets.db.queries import store_shards
from storemon_assets.defs.raw import RAW_ASSETS, ingest_landing_files
from storemon_assets.defs.resources import REPORT_SHARDS_IO_MANAGER, ReportsFolder, StoremonDatabase
from storemon_assets.defs.ui_metadata import check_result, row_count, table_metadata, ui_metadata, user_errors
from storemon_assets.names import AS_OF_REPORT_JOB, AS_OF_REPORT_OP, AS_OF_TAG, INGEST_AND_REPORT_JOB, REPORT_JOB
from storemon_assets.progress import peak_rss_mib
from storemon_assets.service import (
    PollReads,
    build_report_shard,
    check_report,
    checked_report,
    combine_report_shards,
    incidents_figures,
    interval_figures,
    publish_report,
    published_figures,
    report_figures,
    report_incidents,
    report_time_us,
    write_report_text,
)

RAW_FEEDS = [key for key, _ in RAW_ASSETS.values()]


class ReportShardsConfig(dg.Config):
    shards: int = Field(
        default=0,
        ge=0,
        description="Store shards to fan out over, one step each. 0: STOREMON_REPORT_SHARDS (default 1).",
    )


@dg.op(
    ins={key.path[-1]: dg.In(dg.Nothing) for key in RAW_FEEDS},  # runs after the feeds were loaded
    out={
        "shards": dg.DynamicOut(dict, io_manager_key=REPORT_SHARDS_IO_MANAGER),
        "as_of_us": dg.Out(io_manager_key=REPORT_SHARDS_IO_MANAGER),
    },
    description="Fix T once for the whole report and cut the stores into ranges, one step per range.",
)
def plan_report_shards(
    context: dg.OpExecutionContext, config: ReportShardsConfig, database: StoremonDatabase, reports: ReportsFolder
):
    engine = database.engine()
    swept = reports.sweep(context.instance, engine)
    if swept:
        context.log.info(f"swept what earlier runs left in the reports folder: {', '.join(swept)}")
    with user_errors():  # a T or shard count that cannot be used fails the run saying why
        as_of_us = report_time_us(engine, parse_as_of(settings.as_of_setting()))
        shards = store_shards(engine, config.shards or settings.report_shards())
    context.log.info(f"report as of {format_instant(as_of_us) or '(no polls)'} over {len(shards)} store shard(s)")
    yield dg.Output(as_of_us, output_name="as_of_us", metadata={"peak_rss_mib": peak_rss_mib()})
    for shard in shards:
        yield dg.DynamicOutput(shard.to_dict(), mapping_key=shard.mapping_key, output_name="shards")


@dg.op(
    out={
        "exact": dg.Out(pl.DataFrame, io_manager_key=REPORT_SHARDS_IO_MANAGER),
        "intervals": dg.Out(pl.DataFrame, io_manager_key=REPORT_SHARDS_IO_MANAGER),
        "work": dg.Out(dict, io_manager_key=REPORT_SHARDS_IO_MANAGER),
    },
    description="One shard's stores as of T: exact business, up and down time and the status intervals "
    "behind them (reads only their polls: the week and each store's carry-in).",
)
def compute_report_shard(context: dg.OpExecutionContext, database: StoremonDatabase, shard: dict, as_of_us):
    started = time.perf_counter()
    stores = StoreShard.from_dict(shard)
    result = build_report_shard(database.engine(), as_of_us, stores, store_daily=True)  # the refresh's dates too
    seconds = time.perf_counter() - started
    context.log.info(f"{stores.mapping_key}: {result.store_count} stores in {seconds:.2f} s")
    metadata = {"stores": result.store_count, "polls_read": result.reads.polls_read, "peak_rss_mib": peak_rss_mib()}
    yield dg.Output(
        result.uptime.exact, output_name="exact", metadata=metadata | {"compute_seconds": round(seconds, 3)}
    )
    yield dg.Output(result.uptime.intervals, output_name="intervals")
    # What the combined report's metadata adds up: the polls read and the seconds spent.
    yield dg.Output({"reads": vars(result.reads), "compute_seconds": seconds}, output_name="work")


@dg.op(
    # The three assets' outputs, then one per report check (the graph asset maps them below).
    out={
        name: dg.Out(dg.Nothing, is_required=False)
        for name in ["report", "intervals", "incidents", *quality.REPORT_CHECKS]
    },
    description="Combine the shards, run the blocking checks, then publish: combined_report.csv and the "
    "database's current report (rows, status intervals, incidents and status now) together, unless a report "
    "with a newer T is already published.",
)
def publish_uptime_report(
    context: dg.OpExecutionContext,
    database: StoremonDatabase,
    reports: ReportsFolder,
    as_of_us,
    exact_parts: list[pl.DataFrame],
    interval_parts: list[pl.DataFrame],
    work: list[dict],
):
    engine, run_id = database.engine(), context.run.run_id
    try:
        started = time.perf_counter()
        reads = [PollReads(**w["reads"]) for w in work]
        result = combine_report_shards(engine, as_of_us, exact_parts, interval_parts, reads)
        compute_seconds = sum(w["compute_seconds"] for w in work) + time.perf_counter() - started
        findings, stale = check_report(engine, result)
        for name, finding in findings.items():
            lists = {k: str(v) for k, v in finding.details.items() if isinstance(v, list) and v}
            yield check_result(finding, blocking=quality.REPORT_CHECKS[name][0], check_name=name, **lists)
        failed = quality.blocking_failures(findings)
        if failed:
            raise dg.Failure(description=f"report not published, blocking checks failed: {failed}")
        incidents = report_incidents(engine, result)  # SPEC 9: published with the report, in its transaction
        publication = publish_report(engine, reports.folder, result, run_id, incidents)
    finally:
        # Whatever ended the step, the run's intermediate files go, unless the instance's run
        # retries may re-execute the run from this step, reading them: then report_shards_sensor
        # deletes them once the run group ended with no retry to come (run_retries.ended_for_good;
        # docs/operations.md).
        if not context.instance.run_retries_enabled:
            reports.discard_shards(run_id)
    if not publication.published:
        # Like an as-of report: kept under its id, no materialisation (the latest stays the newer one).
        context.log.warning(
            f"report as of {result.as_of_iso} not published: the published report is newer "
            f"(as of {format_instant(publication.published_as_of_us)}); kept only as {publication.run_copy.name}"
        )
        return
    context.log.info(f"report as of {result.as_of_iso}: {result.store_count} stores, written to {publication.combined}")
    if stale:  # e.g. STOREMON_AS_OF=now on old data: every status at T is a guess (docs/monitor.md)
        context.log.warning(stale)
    # The figures are plotted across materialisations (the asset's Overview, Metadata and Plots).
    page = {"timelines_page": dg.MetadataValue.url(settings.api_url() + "/")}
    figures = published_figures(result, publication, compute_seconds, stale)
    run = {"shards": len(exact_parts), "peak_rss_mib": peak_rss_mib()}
    yield dg.Output(None, "report", metadata=ui_metadata(figures) | page | run | row_count(result.report))
    yield dg.Output(
        None, "intervals", metadata=ui_metadata(interval_figures(result)) | page | row_count(result.uptime.intervals)
    )
    incidents_rows = row_count(incidents.incidents) if incidents else {}
    yield dg.Output(None, "incidents", metadata=ui_metadata(incidents_figures(incidents)) | incidents_rows)


@dg.config_mapping
def _report_config(config: ReportShardsConfig) -> dict:
    """Run config `ops: {uptime_report: {config: {shards: N}}}` reaches the planning step."""
    return {plan_report_shards.name: {"config": {"shards": config.shards}}}


@dg.graph_multi_asset(
    name=UPTIME_REPORT.name,
    group_name="report",
    ins={key.path[-1]: dg.AssetIn(key=key, dagster_type=dg.Nothing) for key in RAW_FEEDS},
    outs={
        UPTIME_REPORT.name: dg.AssetOut(
            kinds={"polars", "csv"},
            is_required=False,
            description="The current report: uptime and downtime of every polled store during its business "
            "hours over the last hour, day and week before T, the latest poll or STOREMON_AS_OF "
            "(docs/uptime-logic.md). Reports for another T are runs of as_of_report_job and never replace "
            "this one. Fans out over store shards (STOREMON_REPORT_SHARDS), one step each, then one step "
            "combines them. Derives each store's schedule with the same code as the store partitions, so it "
            "never reads a partition that lags behind the raw feeds. Nothing is published when a blocking "
            "check fails.",
            metadata=table_metadata(UPTIME_REPORT, stored_in=CURRENT_REPORT),  # the current report's rows
        ),
        STORE_STATUS_INTERVALS.name: dg.AssetOut(
            kinds={"polars", "sql"},
            is_required=False,
            description=f"{STORE_STATUS_INTERVALS.description} Computed with uptime_report, shard by shard, from the "
            "same observations (docs/uptime-logic.md §10); replaced, in one transaction, whenever the current report "
            "is published (not by as-of reports). The API's /stores pages read it.",
            metadata=table_metadata(STORE_STATUS_INTERVALS),
        ),
        STORE_INCIDENTS.name: dg.AssetOut(
            kinds={"polars", "sql"},
            is_required=False,
            description=f"{STORE_INCIDENTS.description} Stored in the report's transaction beside table "
            f"{STORE_STATUS_NOW.name}, which holds: {STORE_STATUS_NOW.description[0].lower()}"
            f"{STORE_STATUS_NOW.description[1:]} The alerts sensor evaluates after each materialisation "
            "(docs/monitor.md).",
            metadata=table_metadata(STORE_INCIDENTS),
        ),
    },
    check_specs=[
        dg.AssetCheckSpec(name, asset=UPTIME_REPORT.name, blocking=blocking, description=description)
        for name, (blocking, description) in quality.REPORT_CHECKS.items()
    ],
    config=_report_config,
    can_subset=False,
)
def uptime_report(**raw_feeds):
    shards, as_of_us = plan_report_shards(**raw_feeds)
    exact, intervals, work = shards.map(lambda shard: compute_report_shard(shard, as_of_us))
    published = publish_uptime_report(as_of_us, exact.collect(), intervals.collect(), work.collect())
    return {
        UPTIME_REPORT.name: published.report,
        STORE_STATUS_INTERVALS.name: published.intervals,
        STORE_INCIDENTS.name: published.incidents,
    } | {  # the graph's output of each check: `<asset>_<check>` (graph-backed assets' rule)
        f"{UPTIME_REPORT.name}_{name}": getattr(published, name) for name in quality.REPORT_CHECKS
    }


report_job = dg.define_asset_job(
    REPORT_JOB,
    selection=dg.AssetSelection.assets(uptime_report),
    description="Refresh the uptime report and its incidents.",
)
ingest_and_report_job = dg.define_asset_job(
    INGEST_AND_REPORT_JOB,
    selection=dg.AssetSelection.assets(ingest_landing_files, uptime_report),
    description="The main job (make run): load new files from the landing folder, then refresh the uptime "
    "report and its incidents.",
)
hourly_report_schedule = dg.ScheduleDefinition(
    name="hourly_report_schedule",
    job=report_job,
    cron_schedule="0 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Refreshes the uptime report at the top of every hour (the seed system's hourly precomputation).",
)


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Deletes the report's intermediate files (.shards/<run id>) of every run whose run group has ended "
    "with no retry to come: a run that failed before publishing, was canceled, or ran with the instance's run "
    "retries on.",
)
def report_shards_sensor(context: dg.SensorEvaluationContext, reports: ReportsFolder):
    swept = reports.sweep_shards(context.instance)
    return dg.SkipReason(f"deleted {', '.join(swept)}" if swept else "no intermediate files of an ended run")


class AsOfReportConfig(dg.Config):
    as_of: str = Field(description="Report time T: ISO-8601 (UTC unless an offset is given), or 'now'.")


@dg.op(
    name=AS_OF_REPORT_OP,
    description="The uptime report as of the configured T, written only to <run id>.csv: never to "
    "combined_report.csv, and no materialisation of uptime_report. The report's blocking checks run first.",
)
def as_of_report(
    context: dg.OpExecutionContext, config: AsOfReportConfig, database: StoremonDatabase, reports: ReportsFolder
) -> dg.Output:
    with user_errors():
        as_of_us = parse_as_of(as_of_instant(config.as_of))  # 'now' fixed once, an empty T refused
    result, (findings, stale), compute_seconds = checked_report(database.engine(), as_of_us)
    failed = quality.blocking_failures(findings)
    if failed:
        raise dg.Failure(description=f"report not written, blocking checks failed: {failed}")
    path = reports.report_path(context.run.run_id)
    write_report_text(result.report, path)
    if context.run.tags.get(AS_OF_TAG) != result.as_of_iso:  # e.g. launched from the UI's launchpad
        context.instance.add_run_tags(context.run.run_id, {AS_OF_TAG: result.as_of_iso})
    context.log.info(f"as-of report as of {result.as_of_iso}: {result.store_count} stores, written to {path}")
    if stale:  # e.g. as_of "now" on old data, as for the current report
        context.log.warning(stale)
    figures = report_figures(result, compute_seconds, stale) | {"report": dg.MetadataValue.path(str(path))}
    return dg.Output(None, metadata=figures)


@dg.job(
    name=AS_OF_REPORT_JOB,
    description="An as-of report: the uptime report for a chosen T, written only to <run id>.csv. "
    "The published report (combined_report.csv, uptime_report) stays the current one.",
)
def as_of_report_job():
    as_of_report()
