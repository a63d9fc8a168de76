"""Dagster resources (the database, the landing folder and the reports folder), and the executor.

Each one is configuration plus a few methods; swapping SQLite for PostgreSQL is a different
`url`. Defaults come from the STOREMON_* environment variables (see settings.py).
"""

import shutil
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from storemon_assets import settings
from storemon_assets.db.engine import open_database
from storemon_assets.landing import LandingFolderRules
from storemon_assets.names import AUTO_RETRY_RUN_TAG
from storemon_assets.publication import (
    read_step_result,
    shard_folder,
    sweep_reports_folder,
    sweep_shards,
    write_step_result,
)
from storemon_assets.run_retries import ended_for_good
from storemon_assets.worker import celery_executor

_engine_for = lru_cache(maxsize=8)(open_database)  # one engine per URL and process, upgraded once


class StoremonDatabase(dg.ConfigurableResource):
    """The storemon database (SQLAlchemy URL: SQLite by default, PostgreSQL supported)."""

    url: str

    def engine(self) -> sa.Engine:
        return _engine_for(self.url)

    @property
    def display_url(self) -> str:
        return sa.make_url(self.url).render_as_string(hide_password=True)


class LandingFolder(LandingFolderRules, dg.ConfigurableResource):
    """The landing folder (STOREMON_DATA_DIR) and how patient its rules are (storemon_assets/landing.py)."""

    path: str
    settle_seconds: float = 2.0
    last_line_settle_seconds: float = 30.0
    incomplete_after_seconds: float = 600.0


class ReportsFolder(dg.ConfigurableResource):
    """Where `combined_report.csv` and each run's `<run id>.csv` are written."""

    path: str

    @property
    def folder(self) -> Path:
        return Path(self.path)

    def report_path(self, report_id: str) -> Path:
        return self.folder / f"{report_id}.csv"

    def discard_shards(self, run_id: str) -> None:
        """Delete a run's intermediate files (its report was published, or failed for good)."""
        shutil.rmtree(shard_folder(self.folder, run_id), ignore_errors=True)

    def sweep(self, instance: dg.DagsterInstance, engine: sa.Engine) -> list[str]:
        """What runs killed or failed before left behind, swept at a report run's start (names;
        publication.sweep_reports_folder): the shards go once their run group has ended."""
        return sweep_reports_folder(engine, self.folder, lambda run_id: _run_group_has_ended(instance, run_id))

    def sweep_shards(self, instance: dg.DagsterInstance) -> list[str]:
        """The intermediate files of every run whose run group has ended for good (publication.sweep_shards)."""
        return sweep_shards(self.folder, lambda run_id: _run_group_has_ended(instance, run_id))


def _run_group_has_ended(instance: dg.DagsterInstance, run_id: str) -> bool | None:
    """Whether every run of `run_id`'s group has ended for good (run_retries.ended_for_good;
    None for a run the instance does not know)."""
    try:
        group = instance.get_run_group(run_id)
    except dg.DagsterRunNotFoundError:
        return None
    if group is None:
        return None
    ids = {run.run_id for run in group[1]}
    records = instance.get_run_records(dg.RunsFilter(run_ids=list(ids)))
    # Dagster creates a retry, then tags the failed run with its id: a tag naming a run the group
    # read did not hold means the retry came between the two reads, and will read these shards.
    retries = {r.dagster_run.tags.get(AUTO_RETRY_RUN_TAG) for r in records} - ids - {None}
    if any(instance.has_run(retry) for retry in retries):
        return False
    return all(ended_for_good(*run_ending(instance, r)) for r in records)


def run_ending(instance: dg.DagsterInstance, record: dg.RunRecord) -> tuple[str, Mapping[str, str], bool, float | None]:
    """What run_retries.ended_for_good reads of a run: its status name and tags, whether the
    instance has run retries on, and when the run ended."""
    run = record.dagster_run
    return run.status.value, run.tags, instance.run_retries_enabled, record.end_time


class ReportShardsIOManager(dg.ConfigurableIOManager):
    """Keeps the report's intermediate step results (the shard plan, each shard's exact sums) in
    `<reports folder>/.shards/<run id>/` (publication.write_step_result), where every step can read
    them: the reports folder is the one place every worker already shares, not Dagster's default
    storage on the local disk of whichever machine ran the step. Not Dagster's FilesystemIOManager
    on that folder: it pickles in place, and a step Celery hands to a second worker (acks_late,
    storemon_assets/worker.py) may be written by two at once; these writes are renamed into place."""

    reports_path: str  # the ReportsFolder's path (a plain value, so sensors' contexts can hold it)

    def _where(self, context: dg.OutputContext) -> tuple[Path, str]:
        run_id, *names = context.get_identifier()  # `<step key>, <output>[, <mapping key>]`
        return shard_folder(Path(self.reports_path), run_id), "__".join(names)

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        write_step_result(*self._where(context), obj)

    def load_input(self, context: dg.InputContext):
        return read_step_result(*self._where(context.upstream_output))


def default_resources() -> dict[str, dg.ConfigurableResource]:
    # A URL set in the environment reaches Dagster as an EnvVar, read when a run starts, so a
    # password in it is never stored in run config or shown in the UI.
    database_url = (
        dg.EnvVar(settings.DATABASE_URL.name) if settings.is_set(settings.DATABASE_URL) else settings.database_url()
    )
    reports = ReportsFolder(path=str(settings.reports_dir()))
    return {
        "database": StoremonDatabase(url=database_url),
        "landing": LandingFolder(
            path=str(settings.landing_dir()), last_line_settle_seconds=settings.last_line_settle_seconds()
        ),
        "reports": reports,
        REPORT_SHARDS_IO_MANAGER: ReportShardsIOManager(reports_path=reports.path),
    }


REPORT_SHARDS_IO_MANAGER = "report_shards_io_manager"


def selected_executor() -> dg.ExecutorDefinition:
    """Where a run's steps execute: `STOREMON_EXECUTOR` (settings.py; docs/deployment.md)."""
    name = settings.executor_name()
    if name == "celery":
        return celery_executor()
    # Steps are short; unless asked for, a process per step would cost more than the work.
    return dg.multiprocess_executor if name == "multiprocess" else dg.in_process_executor
