"""Sensors: they decide what to run when data arrives; the assets do the work.

landing_files_sensor
    Watches the landing folder. A new or changed file (by modification time and size) whose
    content hash is not in the ledger is checked (header, rows) and requested for ingestion,
    with the report refreshed in the same run. Run key = the files' content hashes, so each
    file is ingested exactly once; the ledger is the second guard. The stores a file names
    become store partitions in the same tick. A file that cannot be read is moved to failed/
    with its error beside it, reported as a failed check on `landing_folder`, and never
    retried. At most MAX_FILES_PER_RUN files go into one run and one run is requested per
    tick, so a folder with a long history does not launch a flood of runs.

store_schedules_sensor
    After the raw feeds change, compares each store's stored schedule with the one the raw
    feeds give now and requests the stale partitions (new stores, changed hours or timezone)
    in at most MAX_SCHEDULE_RUNS runs over contiguous partition ranges.
"""

import hashlib
import json
from pathlib import Path

import dagster as dg
import polars as pl
import sqlalchemy as sa

from storemon_assets.core.parsing import FeedFileError, parse_feed_bytes
from storemon_assets.core.staleness import fingerprint, partition_ranges, stale_store_ids
from storemon_assets.core.tables import STORE_SCHEDULES
from storemon_assets.db.queries import feed_versions, is_loaded, read_table, read_weekly_schedules
from storemon_assets.defs.assets.raw import LANDING_FOLDER, IngestConfig, ingest_landing_files
from storemon_assets.defs.checks import failed_files_finding
from storemon_assets.defs.jobs import ingest_and_report_job, store_schedules_job
from storemon_assets.defs.partitions import STORE_PARTITIONS_NAME, new_store_partitions, store_partitions
from storemon_assets.defs.resources import LandingFolder, StoremonDatabase

MAX_FILES_PER_RUN = 100
MAX_SCHEDULE_RUNS = 4
RUNNING = dg.DefaultSensorStatus.RUNNING


def _identity(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_mtime_ns}-{stat.st_size}"


@dg.sensor(
    job=ingest_and_report_job,
    minimum_interval_seconds=15,
    default_status=RUNNING,
    description="Ingests each new or changed CSV in the landing folder exactly once, then refreshes the report.",
)
def landing_files_sensor(context: dg.SensorEvaluationContext, database: StoremonDatabase, landing: LandingFolder):
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    engine = database.engine()
    batch: list[tuple[Path, str]] = []
    store_ids: set[str] = set()
    failed: list[str] = []
    for path in landing.settled_csv_files():
        identity = _identity(path)
        if seen.get(path.name) == identity:
            continue
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if is_loaded(engine, digest):
            seen[path.name] = identity
            continue
        try:
            feed = parse_feed_bytes(data, path)
        except FeedFileError as exc:
            landing.move_aside(path, str(exc))
            context.log.error(f"moved aside: {exc}")
            failed.append(str(exc))
            seen.pop(path.name, None)
            continue
        if len(batch) == MAX_FILES_PER_RUN:
            break  # the rest waits for the next tick
        batch.append((path, digest))
        store_ids.update(feed.rows.get_column("store_id").unique().to_list())
        seen[path.name] = identity

    asset_events = []
    if failed:
        finding, metadata = failed_files_finding(landing)
        asset_events.append(
            dg.AssetCheckEvaluation(
                asset_key=LANDING_FOLDER,
                check_name="no_unreadable_files",
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                description=finding.summary,
                metadata=metadata,
            )
        )
    run_requests = []
    partitions_requests = []
    if batch:
        digests = sorted(d for _, d in batch)
        run_key = "ingest-" + (
            digests[0] if len(digests) == 1 else hashlib.sha256("".join(digests).encode()).hexdigest()
        )
        run_requests.append(
            dg.RunRequest(
                run_key=run_key,
                run_config=dg.RunConfig(
                    ops={ingest_landing_files.op.name: IngestConfig(files=[str(p) for p, _ in batch])}
                ),
                tags={"storemon/files": ", ".join(p.name for p, _ in batch)[:200]},
            )
        )
        new_stores = new_store_partitions(context.instance, store_ids)
        if new_stores:
            partitions_requests.append(store_partitions.build_add_request(new_stores))
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=partitions_requests,
        asset_events=asset_events,
        cursor=json.dumps(seen, sort_keys=True),
        skip_reason=None if run_requests or asset_events else "no new files",
    )


def stale_partitions(engine: sa.Engine, partition_keys: list[str]) -> tuple[pl.Series, pl.DataFrame]:
    """Stale store ids among the partitions, and the schedule the raw feeds give them now."""
    derived = read_weekly_schedules(engine, pl.Series("store_id", partition_keys, dtype=pl.String))
    return stale_store_ids(derived, read_table(engine, STORE_SCHEDULES)), derived


@dg.sensor(
    job=store_schedules_job,
    minimum_interval_seconds=30,
    default_status=RUNNING,
    description="Materialises the store partitions whose hours or timezone changed, and new stores.",
)
def store_schedules_sensor(context: dg.SensorEvaluationContext, database: StoremonDatabase):
    engine = database.engine()
    keys = list(context.instance.get_dynamic_partitions(STORE_PARTITIONS_NAME))
    state = f"{json.dumps(feed_versions(engine), sort_keys=True)}-{len(keys)}"
    cursor = json.loads(context.cursor) if context.cursor else {}
    if cursor.get("state") == state and not cursor.get("pending"):
        return dg.SkipReason("no feed changed since the last check")
    stale, derived = stale_partitions(engine, keys)
    if stale.is_empty():
        return dg.SensorResult(
            cursor=json.dumps({"state": state, "pending": False}), skip_reason="every store partition is current"
        )
    version = fingerprint(derived, stale)  # same stale content -> same run keys -> no duplicate runs
    run_requests = [
        dg.RunRequest(
            run_key=f"schedules-{version}-{first}-{last}",
            tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
        )
        for first, last in partition_ranges(keys, set(stale.to_list()), MAX_SCHEDULE_RUNS)
    ]
    context.log.info(f"{stale.len()} stale store partitions in {len(run_requests)} run(s)")
    return dg.SensorResult(run_requests=run_requests, cursor=json.dumps({"state": state, "pending": True}))
