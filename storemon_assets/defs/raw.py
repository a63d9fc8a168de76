"""The four raw feeds: the landing folder where their CSV files arrive, the run that loads them
into the database, the sensor that watches the folder (docs/operations.md, "The landing folder"),
and the checks on what was loaded (warnings: the report stays right, thanks to the SPEC's
defaults, but a user should fix the input)."""

import dagster as dg
from pydantic import Field

from storemon_assets import settings
from storemon_assets.core import quality
from storemon_assets.core.feeds import HOURS, POLLS, SPECIAL, TIMEZONES
from storemon_assets.core.ingest_batches import retry_delay_seconds
from storemon_assets.core.summaries import markdown_list
from storemon_assets.core.tables import BUSINESS_HOURS, SPECIAL_HOURS, STORE_STATUS_POLLS, STORE_TIMEZONES
from storemon_assets.db import queries
from storemon_assets.defs.resources import LandingFolder, StoremonDatabase, run_ending
from storemon_assets.defs.ui_metadata import check_evaluation, check_result, table_metadata, ui_metadata
from storemon_assets.landing import BatchState, LandingCursor, LandingFile
from storemon_assets.names import INGEST_AND_REPORT_JOB, INGEST_JOB
from storemon_assets.service import (
    FileIngested,
    ingest_file,
    lost_weekdays_finding,
    raw_feed_findings,
    run_feed_figures,
)

LANDING_FOLDER = dg.AssetKey("landing_folder")
LOADED_FILE = "loaded_file"  # metadata of the observation logged for each file a run loaded
BATCH_TAG = "storemon/ingest_batch"  # on each ingest run: its batch's run key
MAX_STEP_RETRIES = 4  # retries of a transient database error: five attempts over ~7.5 min at 30 s
MAX_RUN_RETRIES = 2  # re-runs of a run whose worker was lost (run_retries in dagster.yaml)
MAX_RUN_SECONDS = 3_600  # run monitoring fails an ingest run still going after this (a worker died unnoticed)
RAW_STORE_STATUS = dg.AssetKey("raw_store_status")
RAW_BUSINESS_HOURS = dg.AssetKey("raw_business_hours")
RAW_STORE_TIMEZONES = dg.AssetKey("raw_store_timezones")
RAW_SPECIAL_HOURS = dg.AssetKey("raw_special_hours")

# Each feed's asset and the table it is (the table's description is the asset's).
RAW_ASSETS = {
    POLLS: (RAW_STORE_STATUS, STORE_STATUS_POLLS),
    HOURS: (RAW_BUSINESS_HOURS, BUSINESS_HOURS),
    TIMEZONES: (RAW_STORE_TIMEZONES, STORE_TIMEZONES),
    SPECIAL: (RAW_SPECIAL_HOURS, SPECIAL_HOURS),
}


landing_folder = dg.AssetSpec(
    LANDING_FOLDER,
    description="The folder (STOREMON_DATA_DIR) where CSV files of any of the four feeds arrive, "
    "recognised by their header. Watched by the landing_files_sensor; files that cannot be read "
    "are moved to its failed/ subfolder with the error beside them.",
    group_name="raw",
    kinds={"csv"},
)


class IngestConfig(dg.Config):
    files: list[str] = Field(
        default_factory=list,
        description="CSV files directly inside the landing folder (a name alone means one there); any other path "
        "fails the run unread. Empty: every CSV in the landing folder whose content was never loaded.",
    )


NO_STORE_LOST_WEEKDAYS = "no_store_lost_weekdays"


@dg.multi_asset(
    name="ingest_landing_files",
    specs=[
        dg.AssetSpec(
            key,
            description=f"{spec.description} Table `{spec.name}`, loaded from CSV files recognised by their header.",
            group_name="raw",
            kinds={"csv", "sql"},
            deps=[LANDING_FOLDER],
            metadata=table_metadata(spec),
        )
        for key, spec in RAW_ASSETS.values()
    ],
    check_specs=[
        dg.AssetCheckSpec(
            NO_STORE_LOST_WEEKDAYS,
            asset=RAW_BUSINESS_HOURS,
            description="No hours file loaded took from a store a weekday it had (SPEC 1: a store's rows must not "
            "be split across files; an accidental split looks like this). Evaluated by each run that loads hours.",
        )
    ],
    # Only so that a run loading no hours file may leave the check's last result standing (a
    # warning stays visible until hours arrive again): the function loads every file whatever
    # is selected, and records each selected raw table.
    can_subset=True,
)
def ingest_landing_files(
    context: dg.AssetExecutionContext, config: IngestConfig, database: StoremonDatabase, landing: LandingFolder
):
    """Load new CSV files, each in one transaction (docs/operations.md, "The landing folder"). An
    unreadable file goes to `failed/` and fails the run once the others are loaded; a database
    error is retried with backoff. Each file loaded is logged as an observation of
    `landing_folder`, which tells the sensor what a failed run had done."""
    engine = database.engine()
    paths = [landing.folder / p for p in config.files] or landing.csv_files()
    # Named files (the sensor's batches) are deliveries; the whole folder (make run, the UI's
    # materialise) is only looked at again: hours it holds never undo a newer delivery (SPEC §1).
    delivered = bool(config.files)
    done: list[FileIngested] = []
    failures: list[str] = []
    for path in paths:
        file = ingest_file(engine, path, read=landing.open_complete, delivered=delivered)
        if file.database_error is not None:
            if not file.transient:
                raise file.database_error
            delay = retry_delay_seconds(context.retry_number + 1, settings.ingest_retry_seconds())
            context.log.warning(f"{file.describe()}; retrying in {delay:g} s")
            raise dg.RetryRequested(max_retries=MAX_STEP_RETRIES, seconds_to_wait=delay) from file.database_error
        if file.unreadable is not None:
            failures.append(file.unreadable)
            landing.move_aside(path, file.unreadable)  # if it is in the landing folder
            context.log.error(file.unreadable)
        elif file.outcome is None:
            context.log.warning(f"{file.describe()}; the sensor will look again")
        else:
            done.append(file)
            context.log.info(file.describe())
            context.log_event(dg.AssetObservation(asset_key=LANDING_FOLDER, metadata={LOADED_FILE: path.name}))

    counts = queries.table_counts(engine, [spec for _, spec in RAW_ASSETS.values()])
    versions = queries.feed_versions(engine)
    # Each raw asset is its table: every run records all four as they now are. The data
    # version only changes when files of that feed were loaded, so an unchanged feed does not
    # make its downstream assets look stale (and the report step is never skipped).
    for kind, (key, spec) in RAW_ASSETS.items():
        if key in context.selected_asset_keys:
            table = {"dagster/row_count": counts[spec.name], "database": database.display_url}
            metadata = ui_metadata(run_feed_figures(done, kind)) | table
            yield dg.MaterializeResult(
                asset_key=key, data_version=dg.DataVersion(versions.get(kind, "empty")), metadata=metadata
            )
    lost = lost_weekdays_finding(done)  # a warning naming, per hours file, the stores it took weekdays from
    if lost is not None:  # a run that loaded no hours leaves the last result standing
        yield check_result(lost, check_name=NO_STORE_LOST_WEEKDAYS, **lost.details)
    if failures:
        raise dg.Failure(
            allow_retries=False,
            description=f"{len(failures)} file(s) could not be ingested and were moved aside: " + "; ".join(failures),
            metadata=ui_metadata({"errors": markdown_list(failures)}),
        )


ingest_job = dg.define_asset_job(
    INGEST_JOB, selection=dg.AssetSelection.assets(ingest_landing_files), description="Load landing files."
)


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(name, asset=RAW_ASSETS[kind][0], description=description)
        for (kind, name), description in quality.RAW_FEED_CHECKS.items()
    ],
    can_subset=True,
)
def raw_feed_checks(context: dg.AssetCheckExecutionContext, database: StoremonDatabase):
    """The raw feeds' warnings in one step, from one read of each table (service.raw_feed_findings)."""
    for (kind, name), finding in raw_feed_findings(database.engine()).items():
        key = RAW_ASSETS[kind][0]
        if dg.AssetCheckKey(key, name) in context.selected_asset_check_keys:
            yield check_result(finding, asset_key=key, check_name=name, **finding.details)


@dg.asset_check(asset=LANDING_FOLDER, description="No file in the landing folder failed ingestion.")
def no_unreadable_files(landing: LandingFolder) -> dg.AssetCheckResult:
    finding = landing.failed_finding()
    return check_result(finding, **finding.details)


def _failure_of(instance: dg.DagsterInstance, records: list[dg.RunRecord]) -> tuple[set[str], str]:
    """What a failed batch's runs (newest first) did, from one read of each run's events: the names
    of the files they loaded or found loaded (the observations they logged), and why the batch
    failed: the last run's own error, short (the innermost cause of its last failed step, else its
    failure message)."""
    runs = [record.dagster_run for record in records]
    loaded: set[str] = set()
    step_error, run_error = None, f"the run ended as {runs[0].status.value} without loading the file"
    kinds = {dg.DagsterEventType.ASSET_OBSERVATION, dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
    for run in runs:
        for entry in instance.all_logs(run.run_id, of_type=kinds):
            event = entry.dagster_event
            if entry.asset_observation is not None and LOADED_FILE in entry.asset_observation.metadata:
                loaded.add(str(entry.asset_observation.metadata[LOADED_FILE].value))
            elif run is runs[0] and event is not None and event.is_step_failure:
                step_error = event.step_failure_data.error
            elif run is runs[0] and event is not None and event.message:
                run_error = event.message
    while step_error is not None and step_error.cause is not None:
        step_error = step_error.cause
    error = (step_error.message if step_error is not None else run_error).strip().splitlines()[0][:300]
    return loaded, f"not loaded by run {runs[0].run_id} ({runs[0].status.value}, {len(runs)} attempt(s)): {error}"


def _batch_request(key: str, files: list[LandingFile]) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=key,
        run_config=dg.RunConfig(ops={ingest_landing_files.op.name: IngestConfig(files=[f.name for f in files])}),
        tags={
            BATCH_TAG: key,
            "storemon/files": ", ".join(f.name for f in files)[:200],
            # Not on a step's own failure: the step already retried what was worth retrying.
            "dagster/max_retries": str(MAX_RUN_RETRIES),
            "dagster/retry_on_asset_or_op_failure": "false",
            "dagster/max_runtime": str(MAX_RUN_SECONDS),
        },
    )


@dg.sensor(
    job_name=INGEST_AND_REPORT_JOB,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Ingests each new or changed complete CSV in the landing folder, then refreshes the report.",
)
def landing_files_sensor(context: dg.SensorEvaluationContext, landing: LandingFolder):
    cursor = LandingCursor.parse(context.cursor)
    runs: dict[str, list[dg.RunRecord]] = {}  # of the cursor's batches, by run key, newest first: one look-up
    if cursor.batches:
        for record in context.instance.get_run_records(dg.RunsFilter(tags={BATCH_TAG: list(cursor.batches)})):
            runs.setdefault(record.dagster_run.tags[BATCH_TAG], []).append(record)
    states = {key: BatchState.of_last_run(*run_ending(context.instance, r[0])) for key, r in runs.items()}
    tick = landing.tick(cursor, states, lambda key: _failure_of(context.instance, runs[key]))
    for message in tick.moved:
        context.log.error(f"moved aside: {message}")
    for key, files in tick.requests.items():
        context.log.info(f"{len(files)} file(s), {sum(f.size for f in files):,} bytes, in run key {key}")
    run_requests = [_batch_request(key, files) for key, files in tick.requests.items()]

    asset_events = []
    if tick.moved:  # files went to failed/: the no_unreadable_files check says so now
        finding = landing.failed_finding()
        asset_events.append(check_evaluation(LANDING_FOLDER, "no_unreadable_files", finding, **finding.details))
    return dg.SensorResult(
        run_requests=run_requests,
        asset_events=asset_events,
        cursor=cursor.dump(),
        skip_reason=None if run_requests or asset_events else "no new files",
    )
