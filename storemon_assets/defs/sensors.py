"""Sensors: they decide what to run when data arrives; the assets do the work.

landing_files_sensor
    Watches the landing folder and does O(header) work per file: `stat`, the last byte, one
    streaming hash and the first bytes (to recognise the feed); parsing, loading and store
    partitions happen in the run. A file is taken once it is complete (settled, ending with a
    newline) and its content hash is not in the ledger. Runs take a bounded amount of data
    (core/ingest_batches.py) and one runs at a time, so a backlog drains over several runs. A
    file still not in the ledger after its run ended is tried again with backoff, up to
    MAX_ATTEMPTS runs, then moved to failed/ with the run's error; files that cannot be read
    (unknown header, symbolic links, files left unfinished) go there at once. Everything in
    failed/ fails the `no_unreadable_files` check of `landing_folder`.

store_schedules_sensor
    After the raw feeds change, compares each store's stored schedule with the one the raw
    feeds give now and requests the stale partitions (new stores, changed hours, special hours
    or timezone)
    in at most MAX_SCHEDULE_RUNS runs over contiguous partition ranges.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass

import dagster as dg
import polars as pl
import sqlalchemy as sa

from storemon_assets import settings
from storemon_assets.core.ingest_batches import MAX_ATTEMPTS, choose_batch, retry_delay_seconds
from storemon_assets.core.parsing import FeedFileError, header_kind
from storemon_assets.core.staleness import fingerprint, partition_ranges, stale_store_ids
from storemon_assets.core.tables import STORE_SCHEDULES
from storemon_assets.db.queries import feed_versions, loaded_hashes, read_table, read_weekly_schedules
from storemon_assets.defs.assets.raw import LANDING_FOLDER, IngestConfig, ingest_landing_files
from storemon_assets.defs.checks import failed_files_finding
from storemon_assets.defs.jobs import ingest_and_report_job, store_schedules_job
from storemon_assets.defs.partitions import STORE_PARTITIONS_NAME
from storemon_assets.defs.resources import LandingFile, LandingFolder, NotALandingFile, StoremonDatabase

MAX_FILES_PER_RUN = 100
MAX_RUN_BYTES = 256 * 2**20  # small files per run; a larger file goes alone beside them
HASH_SECONDS_PER_TICK = 2.5  # a tick stops starting new hashes after this (limit: 60 s)
MAX_RUN_SECONDS = 3_600  # run monitoring fails an ingest run still going after this
MAX_SCHEDULE_RUNS = 4
RUNNING = dg.DefaultSensorStatus.RUNNING
BATCH_TAG = "storemon/ingest_batch"
REFUSED = (
    "refused unread: not a regular file (a symbolic link, a folder or a device); only regular files "
    "directly inside the landing folder are read"
)


@dataclass
class WaitingFile:
    """A landing file whose content is not in the ledger yet."""

    identity: str
    sha256: str
    size: int
    attempts: int = 0  # runs that ended without loading it
    retry_at: float = 0.0
    batch: str | None = None  # run key of the batch it is in, while that run has not ended
    runs: tuple[str, ...] = ()


@dataclass
class LandingCursor:
    """The sensor's memory: identities of files already loaded, and the files still waiting."""

    loaded: dict[str, str]
    waiting: dict[str, WaitingFile]

    @classmethod
    def parse(cls, text: str | None) -> LandingCursor:
        data = json.loads(text) if text else {}
        if data.get("version") != 2:  # an older cursor: look at every file again (the ledger decides)
            return cls({}, {})
        waiting = {n: WaitingFile(**{**w, "runs": tuple(w["runs"])}) for n, w in data["waiting"].items()}
        return cls(data["loaded"], waiting)

    def dump(self) -> str:
        waiting = {name: asdict(w) for name, w in self.waiting.items()}
        return json.dumps({"version": 2, "loaded": self.loaded, "waiting": waiting}, sort_keys=True)

    def knows(self, file: LandingFile) -> bool:
        """Loaded or waiting as it is now, or in a batch whose run has not ended (looked at after)."""
        waiting = self.waiting.get(file.name)
        if waiting is not None and (waiting.batch or waiting.identity == file.identity):
            return True
        return self.loaded.get(file.name) == file.identity

    def batches(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for name, waiting in self.waiting.items():
            if waiting.batch:
                found.setdefault(waiting.batch, []).append(name)
        return found


def _run_error(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    """The run's own error, short: the innermost cause of its first failed step, else its failure message."""
    for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        error = record.dagster_event.step_failure_data.error if record.dagster_event else None
        while error is not None and error.cause is not None:
            error = error.cause
        if error is not None:
            return error.message.strip().splitlines()[0][:300]
    for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE):
        if record.dagster_event and record.dagster_event.message:
            return record.dagster_event.message.strip().splitlines()[0][:300]
    return f"the run ended as {run.status.value} without loading the file"


def _follow_up_batches(
    context: dg.SensorEvaluationContext,
    engine: sa.Engine,
    landing: LandingFolder,
    cursor: LandingCursor,
    present: dict[str, LandingFile],
    moved: list[str],
) -> tuple[bool, dict[str, list[str]]]:
    """Settle the batches whose run ended. Returns whether a batch is still queued or running,
    and the batches without a run yet (to be asked for again)."""
    batches = cursor.batches()
    if not batches:
        return False, {}
    runs = context.instance.get_runs(dg.RunsFilter(tags={BATCH_TAG: list(batches)}))
    latest = {}
    for run in runs:  # newest first
        latest.setdefault(run.tags[BATCH_TAG], run)
    ended = {key: run for key, run in latest.items() if run.is_finished}
    names = [n for key in ended for n in batches[key]]
    loaded = loaded_hashes(engine, [cursor.waiting[n].sha256 for n in names])
    now = time.time()
    for key, run in ended.items():
        for name in batches.pop(key):
            waiting = cursor.waiting.pop(name)
            file = present.get(name)
            if waiting.sha256 in loaded:
                cursor.loaded[name] = waiting.identity
            elif file is None or file.identity != waiting.identity:
                continue  # moved aside by the run, deleted, or changed: looked at afresh
            else:
                waiting.attempts += 1
                waiting.batch, waiting.runs = None, (*waiting.runs, run.run_id)
                if waiting.attempts < MAX_ATTEMPTS:
                    waiting.retry_at = now + retry_delay_seconds(waiting.attempts, settings.ingest_retry_seconds())
                    cursor.waiting[name] = waiting
                    context.log.warning(f"{name}: not loaded by run {run.run_id} ({run.status.value}); trying again")
                    continue
                error = (
                    f"{name}: not loaded after {waiting.attempts} runs ({', '.join(waiting.runs)}); "
                    f"the last one said: {_run_error(context.instance, run)}"
                )
                landing.move_aside(file.path, error)
                moved.append(error)
    without_run = {key: names for key, names in batches.items() if key not in latest}
    for names in without_run.values():
        for name in [n for n in names if n not in present]:
            del cursor.waiting[name]  # gone before its run was created: nothing to run
    without_run = {key: [n for n in names if n in present] for key, names in without_run.items()}
    return bool(batches), {key: names for key, names in without_run.items() if names}


def _look_at_new_files(
    engine: sa.Engine,
    landing: LandingFolder,
    cursor: LandingCursor,
    files: list[LandingFile],
    moved: list[str],
) -> None:
    """Complete files not seen in this form before: hash, header, ledger (hashing time-boxed)."""
    now = time.time()
    started = time.monotonic()
    candidates: list[tuple[LandingFile, str]] = []
    for file in files:
        if cursor.knows(file) or not landing.is_settled(file, now):
            continue
        if time.monotonic() - started > HASH_SECONDS_PER_TICK:
            break  # the rest waits for the next tick
        try:
            sha256 = _examine(landing, file, now)
        except FileNotFoundError:
            continue  # gone since the folder was listed
        except (FeedFileError, OSError) as exc:  # unreadable (permissions, say): one file, not the tick
            known = isinstance(exc, FeedFileError | NotALandingFile)
            message = str(exc if known else FeedFileError.unreadable(file.name, exc))
            landing.move_aside(file.path, message)
            moved.append(message)
            continue
        if sha256 is not None:
            candidates.append((file, sha256))
    loaded = loaded_hashes(engine, [sha for _, sha in candidates])
    for file, sha in candidates:
        cursor.waiting.pop(file.name, None)
        cursor.loaded.pop(file.name, None)
        if sha in loaded:
            cursor.loaded[file.name] = file.identity
        else:
            cursor.waiting[file.name] = WaitingFile(file.identity, sha, file.size)


def _examine(landing: LandingFolder, file: LandingFile, now: float) -> str | None:
    """The content hash of a complete file with a known header; None while it is unfinished.
    Raises FeedFileError for a file to move aside."""
    if not landing.is_complete(file, now):
        if file.size == 0 and landing.is_stalled(file, now):
            raise FeedFileError(
                f"{file.name}: empty and unchanged for {landing.incomplete_after_seconds:g} s; "
                "if it is complete, drop it again with its header and rows"
            )
        return None
    inspection = landing.inspect(file)
    header_kind(inspection.head, file.name, whole_file=file.size <= len(inspection.head))
    return inspection.sha256


def _batch_request(key: str, files: list[LandingFile]) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=key,
        run_config=dg.RunConfig(ops={ingest_landing_files.op.name: IngestConfig(files=[str(f.path) for f in files])}),
        tags={
            BATCH_TAG: key,
            "storemon/files": ", ".join(f.name for f in files)[:200],
            # This sensor retries files itself, with backoff; run monitoring fails a run whose
            # worker died unnoticed once it has run this long, and the sensor then retries.
            "dagster/max_retries": "0",
            "dagster/max_runtime": str(MAX_RUN_SECONDS),
        },
    )


@dg.sensor(
    job=ingest_and_report_job,
    minimum_interval_seconds=15,
    default_status=RUNNING,
    description="Ingests each new or changed complete CSV in the landing folder, retrying failed runs, "
    "then refreshes the report.",
)
def landing_files_sensor(context: dg.SensorEvaluationContext, database: StoremonDatabase, landing: LandingFolder):
    cursor = LandingCursor.parse(context.cursor)
    engine = database.engine()
    moved: list[str] = []
    files, refused = landing.scan()
    for path in refused:
        message = f"{path.name}: {REFUSED}"
        landing.move_aside(path, message)
        moved.append(message)
    present = {f.name: f for f in files}
    cursor.loaded = {n: i for n, i in cursor.loaded.items() if n in present}
    cursor.waiting = {n: w for n, w in cursor.waiting.items() if n in present or w.batch}

    in_flight, without_run = _follow_up_batches(context, engine, landing, cursor, present, moved)
    _look_at_new_files(engine, landing, cursor, files, moved)
    for message in moved:
        context.log.error(f"moved aside: {message}")

    # Asked again while no run exists for them (Dagster skips a run key it has launched already).
    run_requests = [_batch_request(key, [present[n] for n in names]) for key, names in without_run.items()]
    if not in_flight:
        now = time.time()
        ready = sorted(
            (present[n] for n, w in cursor.waiting.items() if n in present and w.retry_at <= now),
            key=lambda f: (f.mtime_ns, f.name),
        )
        names = choose_batch([(f.name, f.size) for f in ready], MAX_RUN_BYTES, MAX_FILES_PER_RUN)
        if names:
            attempts = sorted(f"{cursor.waiting[n].sha256}:{cursor.waiting[n].attempts}" for n in names)
            key = "ingest-" + hashlib.sha256(" ".join(attempts).encode()).hexdigest()
            for name in names:
                cursor.waiting[name].batch = key
            run_requests.append(_batch_request(key, [present[n] for n in names]))

    asset_events = []
    if moved:
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
    return dg.SensorResult(
        run_requests=run_requests,
        asset_events=asset_events,
        cursor=cursor.dump(),
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
    description="Materialises the store partitions whose hours, special hours or timezone changed, and new stores.",
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
