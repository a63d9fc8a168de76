"""Publishing the current report (SPEC §6): only forward in T, the CSV and the database's current
report together or not at all, and no temporary or shard file left behind on any exit path."""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import sqlite3
import time
import uuid
from types import SimpleNamespace

import dagster as dg
import polars as pl
import pytest
import sqlalchemy as sa

import storemon_assets.run_retries as run_retries
from storemon_assets.core.instants import format_instant
from storemon_assets.db.queries import current_report_info, current_report_rows
from storemon_assets.defs.raw import ingest_landing_files
from storemon_assets.defs.report import report_shards_sensor, uptime_report
from storemon_assets.defs.resources import ReportsFolder
from storemon_assets.names import AUTO_RETRY_RUN_TAG, WILL_RETRY_TAG
from storemon_assets.publication import shard_folder
from storemon_assets.run_retries import UNTAGGED_FAILURE_SECONDS
from storemon_assets.service import COMBINED_REPORT_NAME
from storemon_assets.settings import sqlite_url
from storemon_tests.conftest import StoremonHome
from storemon_tests.helpers import at, sample_materialised

# The sample's newest poll is 2023-01-25 18:12:56.113981 UTC: the current report's default T.
NEWEST_POLL = "2023-01-25T18:12:56.113981Z"
# An older T, as a slow run would have fixed it before a newer run published.
OLDER_T = "2023-01-25T12:00:00Z"
# Dagster's tags on a re-execution (a run retry, or "re-execute from failure"): the run it
# re-executes and the first run of the chain, whose step results a retry from failure reads.
PARENT_RUN_TAG, ROOT_RUN_TAG = "dagster/parent_run_id", "dagster/root_run_id"


def combined(home) -> pathlib.Path:
    return home.reports.folder / COMBINED_REPORT_NAME


def report_run(home, instance, monkeypatch, as_of: str = "", raise_on_error: bool = True, shards: int = 1):
    """One run of the current report's asset, with T fixed by STOREMON_AS_OF (empty: the newest poll)."""
    monkeypatch.setenv("STOREMON_AS_OF", as_of)
    return dg.materialize(
        [uptime_report],
        resources=home.resources,
        instance=instance,
        selection=list(uptime_report.keys),
        run_config={"ops": {"uptime_report": {"config": {"shards": shards}}}},
        raise_on_error=raise_on_error,
    )


@pytest.fixture(scope="module")
def loaded_database(tmp_path_factory, migrated_sqlite) -> pathlib.Path:
    """The database after the ingest asset loaded the sample files, made once per module (a run
    costs ~0.25 s); `loaded` gives each test a copy of its own."""
    run = sample_materialised(tmp_path_factory.mktemp("loaded"), migrated_sqlite, [ingest_landing_files])
    database = run.home.root / "storemon.db"
    with contextlib.closing(sqlite3.connect(database)) as conn:  # the whole database into the file
        assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0  # not busy: checkpointed
    return database


@pytest.fixture
def loaded(tmp_path, loaded_database):
    """A home whose database holds the sample files as the ingest asset loaded them (nothing published)."""
    return StoremonHome.in_folder(tmp_path, loaded_database)


def leftovers(home) -> list[str]:
    """Every temporary or intermediate file in the reports folder (names starting with a dot; the
    folder of every run's intermediate files, `.shards`, is one of them once a run left its own)."""
    found = [p for p in home.reports.folder.rglob(".*") if not (p.name == ".shards" and not any(p.iterdir()))]
    return sorted(str(p.relative_to(home.reports.folder)) for p in found)


def test_an_older_report_never_replaces_a_newer_published_one(loaded, instance, monkeypatch):
    newer = report_run(loaded, instance, monkeypatch)
    published_csv = combined(loaded).read_text()
    engine = loaded.database.engine()
    assert format_instant(current_report_info(engine)["as_of_us"]) == NEWEST_POLL

    # A slow run that fixed an older T finishes after the newer one was published.
    older = report_run(loaded, instance, monkeypatch, as_of=OLDER_T)
    assert older.success  # its report is valid for its T, and kept under its id ...
    assert loaded.reports.report_path(older.run_id).exists()
    assert loaded.reports.report_path(older.run_id).read_text() != published_csv
    # ... but the published report (CSV, tables, latest materialisation) stays the newer one.
    assert combined(loaded).read_text() == published_csv
    info = current_report_info(engine)
    assert (info["report_id"], format_instant(info["as_of_us"])) == (newer.run_id, NEWEST_POLL)
    latest = instance.get_latest_materialization_event(dg.AssetKey("uptime_report"))
    assert latest.run_id == newer.run_id
    assert not older.asset_materializations_for_node("uptime_report")
    assert leftovers(loaded) == []

    # The same T again is not older: it is published (a re-run after a correction of the data).
    again = report_run(loaded, instance, monkeypatch, as_of=NEWEST_POLL)
    assert current_report_info(engine)["report_id"] == again.run_id


def fail_writes_of_temporaries(monkeypatch):
    """The reports folder is full by the time the report is written: every write of a report CSV
    (under its temporary name) fails with ENOSPC, half-way."""
    real_write_text = pathlib.Path.write_text

    def full_disk(self, data, *args, **kwargs):
        if self.name.endswith(".tmp") and ".csv." in self.name:
            real_write_text(self, data[: len(data) // 2], *args, **kwargs)  # what fitted
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real_write_text(self, data, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", full_disk)


def test_a_full_reports_folder_changes_nothing_published_and_leaves_no_file_behind(loaded, instance, monkeypatch):
    first = report_run(loaded, instance, monkeypatch, as_of=OLDER_T)
    published_csv = combined(loaded).read_text()
    engine = loaded.database.engine()
    published_rows = current_report_rows(engine)

    fail_writes_of_temporaries(monkeypatch)
    failed = report_run(loaded, instance, monkeypatch, raise_on_error=False, shards=2)
    assert not failed.success
    # The database still names the previous run as current, with its rows; the CSV is the same.
    assert current_report_info(engine)["report_id"] == first.run_id
    assert current_report_rows(engine).equals(published_rows)
    assert combined(loaded).read_text() == published_csv
    # Neither the half-written temporary files nor the failed run's shard files are left.
    assert leftovers(loaded) == []


def test_temporaries_and_shards_of_killed_runs_are_swept_at_the_next_start(loaded, instance, monkeypatch):
    reports = loaded.reports.folder
    # What a run killed half-way leaves: a half-written report and its intermediate step results
    # (its run unknown to the instance, or long over).
    stale = [reports / ".combined_report.csv.4242.tmp", reports / ".5c0ffee.csv.4242.tmp"]
    killed_shards = reports / ".shards" / "00000000-dead-4bad-8bad-000000000000"
    killed_shards.mkdir(parents=True)
    (killed_shards / "plan_report_shards__as_of_us.json").write_text("1")
    an_hour_ago = time.time() - 3600
    for path in [*stale, killed_shards]:
        if path.suffix:
            path.write_text("store_id,uptime_last_hour\n1,")
        os.utime(path, (an_hour_ago, an_hour_ago))
    # A temporary file being written right now by another process is left alone, and so are the
    # step results a run of another Dagster instance is writing into the same folder right now.
    fresh = reports / ".combined_report.csv.4343.tmp"
    fresh.write_text("store_id")
    elsewhere = reports / ".shards" / "11111111-0the-4r00-8ins-000000000000"
    elsewhere.mkdir()

    report_run(loaded, instance, monkeypatch)
    assert leftovers(loaded) == [fresh.name, ".shards"]
    assert elsewhere.is_dir() and not killed_shards.exists()


@pytest.mark.parametrize("failing_shards", [1, 2])
def test_a_run_failing_before_it_publishes_removes_its_own_shards(loaded, instance, monkeypatch, failing_shards):
    # Issue 20 row 6: a run failed before its publishing step left `.shards/<run>` behind until
    # the next run's start. Its step results go as it ends now, through the run failure sensor:
    # with one of two shard steps failing, also those the other one wrote after it (the executor
    # runs the other shards on).
    import storemon_assets.defs.report as report

    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        if len(calls) <= failing_shards:
            raise RuntimeError("the database went away")
        return real(*args, **kwargs)

    real = report.build_report_shard
    monkeypatch.setattr(report, "build_report_shard", broken)
    failed = report_run(loaded, instance, monkeypatch, raise_on_error=False, shards=2)
    assert not failed.success
    shard_steps = [e for e in failed.all_events if "compute_report_shard" in (e.step_key or "")]
    assert sum(e.is_step_failure for e in shard_steps) == failing_shards
    assert sum(e.is_step_success for e in shard_steps) == 2 - failing_shards
    tick_shards_sensor(loaded, instance)
    assert not shard_folder(loaded.reports.folder, failed.run_id).exists()
    assert leftovers(loaded) == []


@pytest.mark.parametrize(
    ("status", "tags", "expected"),
    [
        ("FAILURE", {WILL_RETRY_TAG: "false"}, ["r"]),  # failed for good
        ("FAILURE", {}, ["r"]),  # no run retries on the instance: no tag, no retry
        ("FAILURE", {WILL_RETRY_TAG: "true"}, []),  # the retry reads its step results
        ("FAILURE", {WILL_RETRY_TAG: "true", PARENT_RUN_TAG: "p", ROOT_RUN_TAG: "p"}, []),  # ... and its parent's
        ("CANCELED", {}, ["r"]),
        ("CANCELED", {WILL_RETRY_TAG: "true"}, ["r"]),  # only a failed run is retried
        ("CANCELED", {PARENT_RUN_TAG: "p", ROOT_RUN_TAG: "p"}, ["r", "p"]),  # a canceled retry ends the chain
        ("SUCCESS", {PARENT_RUN_TAG: "p", ROOT_RUN_TAG: "p"}, ["r", "p"]),  # a retry that published
        ("SUCCESS", {PARENT_RUN_TAG: "p2", ROOT_RUN_TAG: "p1"}, ["r", "p2", "p1"]),  # the second retry of p1
        ("FAILURE", {WILL_RETRY_TAG: "false", PARENT_RUN_TAG: "p2", ROOT_RUN_TAG: "p1"}, ["r", "p2", "p1"]),
    ],
)
def test_the_shards_that_go_when_a_run_ends(tmp_path, status, tags, expected):
    # With run retries on, every failed run is tagged will_retry true or false; the same answers.
    retries_enabled = status != "FAILURE" or WILL_RETRY_TAG in tags
    for enabled in (retries_enabled, False):
        reports = ReportsFolder(path=str(tmp_path / str(enabled)))
        with dg.DagsterInstance.ephemeral(settings={"run_retries": {"enabled": enabled}}) as instance:
            for run in retried_chain(instance, status, tags):
                shard_folder(reports.folder, run.run_id).mkdir(parents=True)
            assert sorted(reports.sweep_shards(instance)) == sorted(f".shards/{r}" for r in expected)


def re_execution(run_id: str, parent: str, root: str, tags: dict | None = None, **fields) -> dg.DagsterRun:
    """A run re-executing `parent` (the chain's first run: `root`) as Dagster creates one: the
    chain in its fields and in its tags, by which Dagster finds a run's group."""
    chain = {PARENT_RUN_TAG: parent, ROOT_RUN_TAG: root}
    fields.setdefault("job_name", "report_job")
    return dg.DagsterRun(
        run_id=run_id, parent_run_id=parent, root_run_id=root, tags={**(tags or {}), **chain}, **fields
    )


def retried_chain(instance, status: str, tags: dict) -> list[dg.DagsterRun]:
    """Run "r", ended with `status` and `tags`, and the runs it re-executes (its tags' parent and
    root): each failed, tagged to be retried, and tagged with its retry's id, as Dagster's retry
    daemon leaves them."""
    root, parent = tags.get(ROOT_RUN_TAG), tags.get(PARENT_RUN_TAG)
    ids = list(dict.fromkeys(r for r in (root, parent, "r") if r))
    runs = []
    for run_id, retry_id in zip(ids, [*ids[1:], None], strict=True):
        ended = {"status": dg.DagsterRunStatus.FAILURE, "tags": {WILL_RETRY_TAG: "true", AUTO_RETRY_RUN_TAG: retry_id}}
        if retry_id is None:
            ended = {"status": dg.DagsterRunStatus(status), "tags": tags}
        run = (
            re_execution(run_id, runs[-1].run_id, root, **ended)
            if runs
            else dg.DagsterRun("report_job", run_id, **ended)
        )
        runs.append(instance.add_run(run))
    assert len(instance.get_run_group("r")[1]) == len(ids)  # the whole chain is one group
    return runs


@pytest.mark.parametrize(("retries_enabled", "just_ended", "a_minute_later"), [(True, [], ["r"]), (False, ["r"], [])])
def test_a_failed_run_not_yet_tagged_keeps_its_shards_when_it_may_be_retried(
    tmp_path, monkeypatch, retries_enabled, just_ended, a_minute_later
):
    # Dagster stores the run's failure, then tags dagster/will_retry: a sensor reading the run in
    # between must not delete what the retry will read (the next report run's sweep removes it).
    # Untagged a minute after it ended, it failed for good (run_retries.UNTAGGED_FAILURE_SECONDS).
    reports = ReportsFolder(path=str(tmp_path))
    with dg.DagsterInstance.ephemeral(settings={"run_retries": {"enabled": retries_enabled}}) as instance:
        run = instance.add_run(dg.DagsterRun(job_name="report_job", run_id="r"))
        monkeypatch.setattr(instance, "add_run_tags", lambda run_id, tags: None)  # the moment before the tag
        instance.report_run_failed(run)
        assert WILL_RETRY_TAG not in instance.get_run_by_id("r").tags
        shard_folder(reports.folder, "r").mkdir(parents=True)
        assert reports.sweep_shards(instance) == [f".shards/{r}" for r in just_ended]
        later = time.time() + UNTAGGED_FAILURE_SECONDS
        monkeypatch.setattr(run_retries, "time", SimpleNamespace(time=lambda: later))
        assert reports.sweep_shards(instance) == [f".shards/{r}" for r in a_minute_later]


def test_a_retry_created_between_the_sweeps_two_reads_keeps_the_shards_it_reads(tmp_path):
    # Dagster's retry daemon creates the retry, then tags the failed run with its id. A sweep that
    # read the run group before and the failed run's tags after must not take the failed run's
    # shards: the retry, not started yet, re-executes from the failure and reads them.
    reports = ReportsFolder(path=str(tmp_path))
    with dg.DagsterInstance.ephemeral(settings={"run_retries": {"enabled": True}}) as instance:
        instance.add_run(
            dg.DagsterRun(
                job_name="report_job", run_id="r1", status=dg.DagsterRunStatus.FAILURE, tags={WILL_RETRY_TAG: "true"}
            )
        )
        shard_folder(reports.folder, "r1").mkdir(parents=True)
        assert reports.sweep_shards(instance) == []  # to be retried
        group_of = instance.get_run_group

        def daemon_acts_after_the_group_was_read(run_id):
            group = group_of(run_id)
            if not instance.has_run("r2"):
                instance.add_run(re_execution("r2", "r1", "r1"))
                instance.add_run_tags("r1", {AUTO_RETRY_RUN_TAG: "r2"})
            return group

        instance.get_run_group = daemon_acts_after_the_group_was_read
        assert reports.sweep_shards(instance) == []
        assert shard_folder(reports.folder, "r1").is_dir()
        instance.get_run_group = group_of
        instance.report_run_canceled(instance.get_run_by_id("r2"))  # the retry ends the chain
        assert reports.sweep_shards(instance) == [".shards/r1"]


def tick_shards_sensor(home, instance) -> None:
    """One evaluation of the shards sensor, as the sensor daemon would make it."""
    report_shards_sensor(dg.build_sensor_context(instance=instance, resources={"reports": home.reports}))


@pytest.mark.parametrize("max_retries", [0, 1])
def test_with_run_retries_the_sensor_removes_the_shards_once_the_chain_ends(loaded, monkeypatch, max_retries):
    # Issue 20 row 6: with the instance's run retries on (both shipped dagster.yaml), the steps
    # keep a failed run's shards for its retry. Failed for good (max_retries 0): the shards
    # sensor removes them. To be retried (max_retries 1): they stay, until the retry, here
    # canceled before it ran a step, ends the chain: the shards sensor then removes both runs'.
    import storemon_assets.defs.report as report

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(report, "build_report_shard", broken)
    retries = {"run_retries": {"enabled": True, "max_retries": max_retries}}
    with dg.DagsterInstance.ephemeral(settings=retries) as instance:
        failed = report_run(loaded, instance, monkeypatch, raise_on_error=False, shards=2)
        assert not failed.success
        run = instance.get_run_by_id(failed.run_id)
        assert run.tags[WILL_RETRY_TAG] == str(max_retries > 0).lower()
        shards = shard_folder(loaded.reports.folder, failed.run_id)
        assert shards.is_dir()  # the steps left them: a retry may read them

        tick_shards_sensor(loaded, instance)
        assert shards.is_dir() == (max_retries > 0)
        if not max_retries:
            assert leftovers(loaded) == []
            return

        retry = instance.add_run(  # as the retry daemon creates it, and tags the failed run with its id
            re_execution(str(uuid.uuid4()), failed.run_id, failed.run_id, tags=run.tags, job_name=run.job_name)
        )
        instance.add_run_tags(failed.run_id, {AUTO_RETRY_RUN_TAG: retry.run_id})
        shard_folder(loaded.reports.folder, retry.run_id).mkdir(parents=True)  # as its first step would
        tick_shards_sensor(loaded, instance)  # the retry has not ended: it reads the failed run's shards
        assert shards.is_dir() and shard_folder(loaded.reports.folder, retry.run_id).is_dir()
        instance.report_run_canceled(retry)
        tick_shards_sensor(loaded, instance)
        assert leftovers(loaded) == []


def test_a_commit_that_fails_after_the_csv_was_switched_puts_the_previous_csv_back(loaded, instance, monkeypatch):
    first = report_run(loaded, instance, monkeypatch, as_of=OLDER_T)
    published_csv = combined(loaded).read_text()
    engine = loaded.database.engine()

    def refuse(_conn):
        raise sa.exc.OperationalError("COMMIT", {}, Exception("disk I/O error"))

    sa.event.listen(engine, "commit", refuse)
    try:
        failed = report_run(loaded, instance, monkeypatch, raise_on_error=False)
    finally:
        sa.event.remove(engine, "commit", refuse)
    assert not failed.success
    tick_shards_sensor(loaded, instance)
    assert current_report_info(engine)["report_id"] == first.run_id
    assert combined(loaded).read_text() == published_csv
    assert leftovers(loaded) == []


def test_a_csv_switched_by_a_run_killed_before_its_commit_is_put_right_at_the_next_start(loaded, instance, monkeypatch):
    from storemon_assets.publication import reconcile_combined_report

    first = report_run(loaded, instance, monkeypatch, as_of=OLDER_T)
    published_csv = combined(loaded).read_text()
    # Killed between the rename and the commit: the CSV is the new one, the database the old one.
    combined(loaded).write_text(published_csv.replace("\n", "\n", 1) + "killed,1,1,1,1,1,1\n")
    assert reconcile_combined_report(loaded.database.engine(), loaded.reports.folder) is True
    assert combined(loaded).read_text() == published_csv
    assert loaded.reports.report_path(first.run_id).read_text() == published_csv
    assert reconcile_combined_report(loaded.database.engine(), loaded.reports.folder) is False  # nothing to do


def test_no_report_without_polls_replaces_a_published_one(loaded, instance, monkeypatch):
    report_run(loaded, instance, monkeypatch)
    published_csv = combined(loaded).read_text()
    # T before the first poll: a report of no store, older than the published one.
    report_run(loaded, instance, monkeypatch, as_of="2000-01-01T00:00:00Z")
    assert combined(loaded).read_text() == published_csv
    assert pl.read_csv(combined(loaded)).height == 100
    assert current_report_info(loaded.database.engine())["as_of_us"] == at("2023-01-25 18:12:56.113981")


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_database_compares_and_replaces_in_one_transaction(dialect, tmp_path):
    from storemon_assets.core.tables import STORE_STATUS_INTERVALS
    from storemon_assets.db.engine import open_database
    from storemon_assets.db.loading import CurrentReport, replace_current_report
    from storemon_tests.conftest import fresh_postgres_engine

    engine = fresh_postgres_engine() if dialect == "postgresql" else open_database(sqlite_url(tmp_path / "s.db"))
    no_intervals = pl.DataFrame(schema=STORE_STATUS_INTERVALS.polars_schema)

    def current(report_id: str, as_of: str) -> CurrentReport:
        report = pl.DataFrame({"store_id": [report_id]}).with_columns(
            pl.lit(1.0).alias(c) for c in ("uptime_last_hour", "uptime_last_day", "uptime_last_week")
        )
        report = report.with_columns(
            pl.lit(0.0).alias(c) for c in ("downtime_last_hour", "downtime_last_day", "downtime_last_week")
        )
        return CurrentReport(report_id, at(as_of), report, no_intervals, 0)

    switched = []
    try:
        assert replace_current_report(engine, current("newer", "2023-01-25 20:30"), lambda: switched.append("newer"))
        assert not replace_current_report(
            engine, current("older", "2023-01-25 19:10"), lambda: switched.append("older")
        )
        assert switched == ["newer"]  # the CSV is switched only by the publication that commits
        assert current_report_info(engine)["report_id"] == "newer"
        assert current_report_rows(engine).get_column("store_id").to_list() == ["newer"]
        assert replace_current_report(engine, current("same", "2023-01-25 20:30"))  # not older: replaces
        assert current_report_info(engine)["report_id"] == "same"
    finally:
        engine.dispose()


def test_a_really_full_reports_folder_changes_nothing_published(home, sample_files, instance, monkeypatch, small_disk):

    home.reports = ReportsFolder(path=str(small_disk.folder))
    home.drop(*sample_files)
    assert dg.materialize([ingest_landing_files], resources=home.resources, instance=instance).success
    first = report_run(home, instance, monkeypatch, as_of=OLDER_T)
    published_csv = combined(home).read_text()
    small_disk.fill()

    failed = report_run(home, instance, monkeypatch, raise_on_error=False)  # newer T, nowhere to write it
    assert not failed.success
    tick_shards_sensor(home, instance)
    assert current_report_info(home.database.engine())["report_id"] == first.run_id
    assert combined(home).read_text() == published_csv
    # No half-written file, nor what the failed run had stored for its next steps.
    assert leftovers(home) == []
    (small_disk.folder / "filler").unlink()
    assert report_run(home, instance, monkeypatch).success
    assert leftovers(home) == []
