"""Sensors decide what to run; the assets do the work. Each sensor's description says what it
watches; docs/operations.md tells the landing folder's rules and the shards' clean-up."""

from __future__ import annotations

import json

import dagster as dg
import sqlalchemy as sa

from storemon_assets.db import queries
from storemon_assets.defs.assets.raw import LANDING_FOLDER, LOADED_FILE, IngestConfig, ingest_landing_files
from storemon_assets.defs.checks import failed_files_finding
from storemon_assets.defs.jobs import ingest_and_report_job, store_schedules_job
from storemon_assets.defs.partitions import STORE_PARTITIONS_NAME, new_store_partitions, partition_range_request
from storemon_assets.defs.resources import LandingFolder, ReportsFolder, StoremonDatabase, run_ending
from storemon_assets.defs.ui_metadata import check_evaluation
from storemon_assets.landing import BatchState, LandingCursor, LandingFile
from storemon_assets.publication import runs_whose_shards_go
from storemon_assets.service import schedule_refresh

MAX_FILES_PER_RUN = 100
MAX_RUN_BYTES = 256 * 2**20  # small files per run; a larger file goes alone beside them
MAX_RUN_RETRIES = 2  # re-runs of a run whose worker was lost (instance run retries)
MAX_RUN_SECONDS = 3_600  # run monitoring fails an ingest run still going after this
MAX_SCHEDULE_RUNS = 4
RUNNING = dg.DefaultSensorStatus.RUNNING
BATCH_TAG = "storemon/ingest_batch"


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
            # A run whose worker was lost is re-run by the instance (run_retries in dagster.yaml);
            # a step's own failure is not: the step already retried what was worth retrying.
            "dagster/max_retries": str(MAX_RUN_RETRIES),
            "dagster/retry_on_asset_or_op_failure": "false",
            # Run monitoring fails a run whose worker died unnoticed once it has run this long.
            "dagster/max_runtime": str(MAX_RUN_SECONDS),
        },
    )


def _new_store_partitions(
    context: dg.SensorEvaluationContext, engine: sa.Engine, cursor: LandingCursor
) -> list[dg.AddDynamicPartitionsRequest]:
    """Partitions for the stores the feeds name that have none yet, once per change of the feeds,
    whoever loaded them (a run, `storemon ingest`; queries.data_version: one aggregate query)."""
    feeds = "|".join(queries.data_version(engine))
    if feeds == cursor.feeds:
        return []
    cursor.feeds = feeds
    new = new_store_partitions(context.instance, set(queries.known_store_ids(engine).to_list()))
    if not new:
        return []
    context.log.info(f"{len(new)} new store partitions")
    return [dg.AddDynamicPartitionsRequest(partitions_def_name=STORE_PARTITIONS_NAME, partition_keys=new)]


@dg.sensor(
    job=ingest_and_report_job,
    minimum_interval_seconds=15,
    default_status=RUNNING,
    description="Ingests each new or changed complete CSV in the landing folder, then refreshes the report; "
    "adds the partitions of new stores.",
)
def landing_files_sensor(context: dg.SensorEvaluationContext, database: StoremonDatabase, landing: LandingFolder):
    cursor = LandingCursor.parse(context.cursor)
    runs: dict[str, list[dg.RunRecord]] = {}  # of the cursor's batches, by run key, newest first: one look-up
    if cursor.batches:
        for record in context.instance.get_run_records(dg.RunsFilter(tags={BATCH_TAG: list(cursor.batches)})):
            runs.setdefault(record.dagster_run.tags[BATCH_TAG], []).append(record)
    states = {key: BatchState.of_last_run(*run_ending(context.instance, r[0])) for key, r in runs.items()}
    tick = landing.tick(
        cursor, states, lambda key: _failure_of(context.instance, runs[key]), MAX_RUN_BYTES, MAX_FILES_PER_RUN
    )
    for message in tick.moved:
        context.log.error(f"moved aside: {message}")
    for key, files in tick.requests.items():
        context.log.info(f"{len(files)} file(s), {sum(f.size for f in files):,} bytes, in run key {key}")
    run_requests = [_batch_request(key, files) for key, files in tick.requests.items()]

    asset_events = []
    if tick.moved:  # files went to failed/: the no_unreadable_files check says so now
        finding, metadata = failed_files_finding(landing)
        asset_events.append(check_evaluation(LANDING_FOLDER, "no_unreadable_files", finding, **metadata))
    partitions = _new_store_partitions(context, database.engine(), cursor)
    return dg.SensorResult(
        run_requests=run_requests,
        asset_events=asset_events,
        dynamic_partitions_requests=partitions,
        cursor=cursor.dump(),
        skip_reason=None if run_requests or asset_events or partitions else "no new files",
    )


@dg.sensor(
    job=store_schedules_job,
    minimum_interval_seconds=30,
    default_status=RUNNING,
    description="Materialises the store partitions whose hours, special hours or timezone changed, and new stores.",
)
def store_schedules_sensor(context: dg.SensorEvaluationContext, database: StoremonDatabase):
    keys = list(context.instance.get_dynamic_partitions(STORE_PARTITIONS_NAME))
    cursor = json.loads(context.cursor) if context.cursor else {}
    refresh = schedule_refresh(database.engine(), keys, cursor, MAX_SCHEDULE_RUNS)
    if refresh is None:
        return dg.SkipReason("no feed changed since the last check")
    if refresh.runs:
        context.log.info(f"{refresh.stale_stores} stale store partitions in {len(refresh.runs)} run(s)")
    return dg.SensorResult(
        run_requests=[partition_range_request(key, first, last) for key, (first, last) in refresh.runs.items()],
        cursor=json.dumps(refresh.cursor),
        skip_reason=None if refresh.runs else "every store partition is current",
    )


def _report_shards_sensor(status: dg.DagsterRunStatus) -> dg.SensorDefinition:
    # Every run of the code location is watched, not only the report jobs: the report asset can
    # also be materialised from the UI, in an asset job.
    @dg.run_status_sensor(
        run_status=status,
        name=f"report_shards_after_{status.value.lower()}",
        default_status=RUNNING,
        description=f"After a run ends as {status.value}, deletes the report's intermediate files (.shards/<run id>) "
        "of it and of the runs it re-executed, unless the instance's run retries will run it again.",
    )
    def discard_report_shards(context: dg.RunStatusSensorContext, reports: ReportsFolder):
        run = context.dagster_run
        record = context.instance.get_run_record_by_id(run.run_id)
        ended_at = record.end_time if record else None
        for run_id in runs_whose_shards_go(
            run.run_id, run.status.value, run.tags, context.instance.run_retries_enabled, ended_at
        ):
            reports.discard_shards(run_id)

    return discard_report_shards


REPORT_SHARDS_SENSORS = [
    _report_shards_sensor(status)
    for status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
]
