"""The asset graph, materialised with real resources on a temporary SQLite database."""

from __future__ import annotations

import importlib
import pkgutil

import dagster as dg
import polars as pl
import pytest

import storemon_assets.defs as defs_package
from storemon_assets.core.tables import (
    CURRENT_REPORT,
    REJECTED_ROWS,
    SPECIAL_HOURS,
    STORE_INCIDENTS,
    STORE_SCHEDULES,
    STORE_STATUS_INTERVALS,
    STORE_STATUS_NOW,
    UPTIME_REPORT,
)
from storemon_assets.core.uptime import REPORT_COLUMNS
from storemon_assets.db.queries import current_report_info, current_report_rows, read_table
from storemon_assets.defs.definitions import defs
from storemon_assets.defs.partitions import STORE_PARTITIONS_NAME
from storemon_assets.defs.raw import ingest_landing_files
from storemon_assets.defs.report import as_of_report_job, uptime_report
from storemon_assets.defs.resources import StoremonDatabase
from storemon_assets.defs.stores import store_schedules
from storemon_assets.service import COMBINED_REPORT_NAME, build_report
from storemon_assets.settings import sqlite_url
from storemon_tests.helpers import add_store_partitions, sample_materialised, write_csv


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory, migrated_sqlite):
    """One run of the ingest and report assets on the sample files (a fresh database, a fresh
    instance), made once per module for the tests that only read what it did: its events, report
    files and tables (a run on the sample costs ~0.3-0.5 s). Tests that run again, or change the
    database, make their own."""
    root = tmp_path_factory.mktemp("sample_run")
    return sample_materialised(root, migrated_sqlite, [ingest_landing_files, uptime_report])


def test_definitions_load_with_every_asset_job_sensor_and_schedule():
    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    assert keys == {
        "landing_folder",
        "raw_store_status",
        "raw_business_hours",
        "raw_store_timezones",
        "raw_special_hours",
        "store_schedules",
        "uptime_report",
        "store_status_intervals",
        "store_incidents",
        "store_daily_uptime",
    }
    for job in ("ingest_and_report_job", "ingest_job", "report_job", "store_schedules_job", "as_of_report_job"):
        assert defs.resolve_job_def(job) is not None
    # The raw feeds' warnings run in one step after the load (one read of each table), not a step each.
    assert {node.name for node in defs.resolve_job_def("ingest_job").graph.node_defs} == {
        "ingest_landing_files",
        "raw_feed_checks",
    }
    # Sensors and the schedule run without a click.
    assert defs.resolve_sensor_def("landing_files_sensor").default_status == dg.DefaultSensorStatus.RUNNING
    assert defs.resolve_sensor_def("landing_files_sensor").job_name == "ingest_and_report_job"  # named, not imported
    assert defs.resolve_sensor_def("store_schedules_sensor").default_status == dg.DefaultSensorStatus.RUNNING
    assert defs.resolve_schedule_def("hourly_report_schedule").default_status == dg.DefaultScheduleStatus.RUNNING
    graph = defs.resolve_asset_graph()
    checks = {f"{k.asset_key.to_user_string()}:{k.name}" for k in graph.asset_check_keys}
    assert {
        "uptime_report:every_polled_store_reported",
        "landing_folder:no_unreadable_files",
        "raw_store_status:rejected_rows_share",
    } <= checks
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert groups == {"raw", "stores", "report", "history"}


def test_definitions_list_everything_the_defs_modules_define():
    """definitions.py loads the assets and checks of the modules it names and lists the jobs,
    schedules and sensors by hand (a list costs nothing to load; Dagster's own autoloading,
    dg.load_from_defs_folder, costs ~0.13 s a process and needs the source tree's pyproject.toml):
    a definition left out (or a module not named) fails here."""
    asset_job = type(dg.define_asset_job("probe"))  # not a JobDefinition until resolved
    kinds = (dg.AssetSpec, dg.AssetsDefinition, dg.AssetChecksDefinition, dg.JobDefinition, asset_job)
    kinds += (dg.SensorDefinition, dg.ScheduleDefinition)
    found = {}
    for module in pkgutil.iter_modules(defs_package.__path__):
        for name, value in vars(importlib.import_module(f"{defs_package.__name__}.{module.name}")).items():
            if isinstance(value, kinds):
                found[f"{module.name}.{name}"] = value
    assert (
        len({id(value) for value in found.values()}) == 22
    )  # a new job, schedule or sensor: list it in definitions.py; any new definition: count it here

    def identity(value) -> object:  # the module loaders hand Dagster copies: assets and checks go by key
        if isinstance(value, dg.AssetSpec):
            return value.key
        if isinstance(value, dg.AssetsDefinition):
            return frozenset(value.keys) | frozenset(value.check_keys)
        return id(value)

    definitions = [*defs.assets, *defs.asset_checks, *defs.jobs, *defs.schedules, *defs.sensors]
    registered = {identity(value) for value in definitions}
    assert [name for name, value in found.items() if identity(value) not in registered] == []


def test_an_assets_column_schema_and_description_are_its_tables_declaration():
    """What the UI's asset page shows of a table comes from core/tables.py alone: each column's
    name, polars type and description, in order, and the table's description."""
    spec = defs.resolve_asset_graph().get(dg.AssetKey("raw_special_hours"))
    columns = spec.metadata["dagster/column_schema"].columns
    assert [(c.name, c.type, c.description) for c in columns] == [
        (c.name, str(c.dtype), c.description) for c in SPECIAL_HOURS.columns
    ]
    assert [c.type for c in columns] == ["String", "Date", "Int64", "Int64", "String"]
    assert columns[1].constraints.nullable is False  # local_date: no special row without its date
    assert spec.description.startswith(SPECIAL_HOURS.description)
    assert spec.metadata["table"] == SPECIAL_HOURS.name
    # The report, a CSV file, is declared the same way; its current rows are table current_report.
    report = defs.resolve_asset_graph().get(dg.AssetKey(UPTIME_REPORT.name))
    assert [c.name for c in report.metadata["dagster/column_schema"].columns] == UPTIME_REPORT.column_names
    assert report.metadata["table"] == CURRENT_REPORT.name


def test_materialising_the_graph_writes_the_report_and_its_run_copy(sample_run):
    home, result = sample_run.home, sample_run.result
    report_path = home.reports.folder / COMBINED_REPORT_NAME
    run_copy = home.reports.report_path(result.run_id)
    assert report_path.read_text() == run_copy.read_text()
    report = pl.read_csv(report_path, schema_overrides={"store_id": pl.String})
    assert tuple(report.columns) == REPORT_COLUMNS
    assert report.height == 100  # the sample's 100 stores, all polled
    assert report.get_column("store_id").is_sorted()

    metadata = result.asset_materializations_for_node("uptime_report")[0].metadata
    assert metadata["stores"].value == 100
    assert metadata["as_of"].value.startswith("2023-01-25T18:")
    assert metadata["rejected_polls_rows"].value == 2  # the two bad rows planted in the sample
    # Shown as what they are: tables rendered as markdown, the files as paths.
    assert isinstance(metadata["preview"], dg.MarkdownMetadataValue)
    assert isinstance(metadata["weekly_uptime_distribution"], dg.MarkdownMetadataValue)
    assert isinstance(metadata["combined_report"], dg.PathMetadataValue)
    # Every sample store becomes a store partition at the landing sensor's next tick (on an
    # instance of its own: the module's run stays as the run left it, for the other readers).
    with dg.DagsterInstance.ephemeral() as other:
        add_store_partitions(home, other)
        assert len(other.get_dynamic_partitions(STORE_PARTITIONS_NAME)) == 100


def test_rerunning_ingestion_loads_nothing_twice(home, sample_files, instance):
    home.drop(*sample_files)
    first = dg.materialize([ingest_landing_files], resources=home.resources, instance=instance)
    second = dg.materialize([ingest_landing_files], resources=home.resources, instance=instance)
    first_events = first.asset_materializations_for_node("ingest_landing_files")
    second_events = second.asset_materializations_for_node("ingest_landing_files")
    assert [e.metadata["rows_loaded"].value for e in second_events] == [0, 0, 0, 0]  # one per feed
    assert [e.metadata["files_loaded"].value for e in second_events] == ["none (unchanged)"] * 4
    assert all(isinstance(e.metadata["files_loaded"], dg.MarkdownMetadataValue) for e in first_events)
    # Unchanged tables keep their data version, so nothing downstream looks stale.
    assert [e.tags["dagster/data_version"] for e in first_events] == [
        e.tags["dagster/data_version"] for e in second_events
    ]
    rejected = read_table(home.database.engine(), REJECTED_ROWS)
    assert rejected.height == 2


def test_unreadable_file_is_moved_aside_and_fails_the_run_after_loading_the_rest(home, sample_files, instance):
    home.drop(*sample_files)
    bad = write_csv(home.landing.folder, "orders.csv", "order_id,amount\n1,2\n")
    result = dg.materialize([ingest_landing_files], resources=home.resources, instance=instance, raise_on_error=False)
    assert not result.success
    assert len(result.asset_materializations_for_node("ingest_landing_files")) == 4  # the four feeds' tables
    moved = home.landing.failed_folder / "orders.csv"
    assert moved.exists() and not bad.exists()
    error = moved.with_name("orders.csv.error.txt").read_text()
    assert "orders.csv: unrecognised header 'order_id,amount'" in error


def test_store_partitions_hold_each_stores_weekly_schedule(home, sample_files, instance):
    home.drop(*sample_files)
    dg.materialize([ingest_landing_files], resources=home.resources, instance=instance)
    add_store_partitions(home, instance)
    stores = sorted(instance.get_dynamic_partitions(STORE_PARTITIONS_NAME))[:3]
    result = dg.materialize(
        [store_schedules],
        resources=home.resources,
        instance=instance,
        partition_key=stores[0],
    )
    metadata = result.asset_materializations_for_node("store_schedules")[0].metadata
    assert metadata["timezone"].value.startswith(("America/", "Pacific/", "Asia/"))
    assert 0 < metadata["weekly_open_hours"].value <= 168
    stored = read_table(home.database.engine(), STORE_SCHEDULES)
    assert stored.get_column("store_id").unique().to_list() == [stores[0]]


def test_database_url_selects_the_engine(tmp_path):

    database = StoremonDatabase(url=sqlite_url(tmp_path / "x.db"))
    assert database.engine().dialect.name == "sqlite"
    assert (tmp_path / "x.db").exists()


def test_a_polls_only_delivery_still_refreshes_the_report(home, sample_files, instance):
    # Regression: with skippable raw outputs, Dagster skipped the report when only one feed
    # had new files. Every ingest run now records all three raw tables.
    home.drop(*sample_files)
    assert dg.materialize([ingest_landing_files, uptime_report], resources=home.resources, instance=instance).success
    new = write_csv(
        home.landing.folder,
        "late_polls.csv",
        "store_id,status,timestamp_utc\nbrand-new-store,inactive,2023-01-25 18:30:00 UTC\n",
    )
    result = dg.materialize(
        [ingest_landing_files, uptime_report],
        resources=home.resources,
        instance=instance,
        run_config={"ops": {"ingest_landing_files": {"config": {"files": [new.name]}}}},
    )
    assert result.success
    report = pl.read_csv(home.reports.folder / COMBINED_REPORT_NAME, schema_overrides={"store_id": pl.String})
    # The new poll moved T to 18:30; the new store (24x7, Chicago) was down for its last hour.
    assert report.filter(pl.col("store_id") == "brand-new-store").get_column("downtime_last_hour").to_list() == [60.0]


def test_the_report_run_publishes_the_status_intervals_of_the_same_report(home, sample_files, instance):
    home.drop(*sample_files)
    result = dg.materialize([ingest_landing_files, uptime_report], resources=home.resources, instance=instance)
    assert result.success
    engine = home.database.engine()
    info = current_report_info(engine)
    assert info["report_id"] == result.run_id and info["stores"] == 100
    # The table holds what the report computed, and its rows are the CSV's.
    expected = build_report(engine)
    stored = read_table(engine, STORE_STATUS_INTERVALS).sort("store_id", "start_half_us")
    assert stored.equals(expected.uptime.intervals.select(stored.columns).sort("store_id", "start_half_us"))
    csv = pl.read_csv(home.reports.folder / COMBINED_REPORT_NAME, schema_overrides={"store_id": pl.String})
    assert current_report_rows(engine).sort("store_id").equals(csv)
    intervals = result.asset_materializations_for_node("uptime_report")
    metadata = {m.asset_key.to_user_string(): m.metadata for m in intervals}
    assert metadata["store_status_intervals"]["dagster/row_count"].value == stored.height
    assert metadata["uptime_report"]["timelines_page"].value == "http://127.0.0.1:8000/"

    # A report for another T (an as-of run) leaves the timelines (and what the API shows) alone.
    as_of = as_of_report_job.execute_in_process(
        run_config={"ops": {"as_of_report": {"config": {"as_of": "2023-01-24T00:00:00Z"}}}},
        resources=home.resources,
        instance=instance,
    )
    assert as_of.success
    assert current_report_info(engine)["report_id"] == result.run_id
    assert read_table(engine, STORE_STATUS_INTERVALS).sort("store_id", "start_half_us").equals(stored)
    latest = instance.get_latest_materialization_event(dg.AssetKey("store_status_intervals"))
    assert latest.run_id == result.run_id


def test_report_and_raw_feeds_record_numbers_the_ui_plots_across_materialisations(sample_run):
    result = sample_run.result
    plotted = (dg.IntMetadataValue, dg.FloatMetadataValue)  # what the asset's Plots tab draws
    report = {
        key: value.value
        for m in result.asset_materializations_for_node("uptime_report")
        if m.asset_key.to_user_string() == "uptime_report"
        for key, value in m.metadata.items()
        if isinstance(value, plotted)
    }
    assert set(report) >= {
        "stores",
        "fleet_uptime_pct_week",
        "stores_under_95_pct_week",
        "stores_under_80_pct_week",
        "stores_without_observations",
        "polls_in_week",
        "rejected_rows",
        "compute_seconds",
    }
    # The sample's T is its newest poll, 2023-01-25 18:12:56.113981 UTC; 15,424 of its 17,640
    # accepted polls fall in [T - 7 d, T) (counted from the file by string comparison).
    assert report["polls_in_week"] == 15424
    assert report["rejected_rows"] == 2
    assert 0 < report["fleet_uptime_pct_week"] <= 100
    assert report["stores_under_80_pct_week"] <= report["stores_under_95_pct_week"] <= 100
    assert report["compute_seconds"] > 0

    raw = {
        e.asset_key.to_user_string(): e.metadata for e in result.asset_materializations_for_node("ingest_landing_files")
    }
    assert raw["raw_store_status"]["rows_loaded"].value == 17640
    # 2 of the 17,642 poll rows read were rejected: 0.0113 % -> 0.01.
    assert raw["raw_store_status"]["rejected_share_pct"] == dg.FloatMetadataValue(0.01)
    assert raw["raw_business_hours"]["rejected_share_pct"] == dg.FloatMetadataValue(0.0)


def test_the_report_run_refreshes_incidents_that_sum_to_its_downtime(sample_run):
    result = sample_run.result
    engine = sample_run.home.database.engine()
    incidents = read_table(engine, STORE_INCIDENTS)
    status = read_table(engine, STORE_STATUS_NOW)
    report = current_report_rows(engine)
    assert status.height == report.height == 100  # every reported store has a status now
    # One path: each store's incidents, in hours, are its downtime_last_week (rounded to 0.01 h there).
    summed = incidents.group_by("store_id").agg((pl.col("downtime_half_us").sum() / 7_200_000_000).alias("hours"))
    both = report.join(summed, on="store_id", how="left").with_columns(pl.col("hours").fill_null(0.0))
    assert both.filter((pl.col("hours") - pl.col("downtime_last_week")).abs() > 0.005).is_empty()
    [metadata] = [
        m.metadata
        for m in result.asset_materializations_for_node("uptime_report")
        if m.asset_key.to_user_string() == "store_incidents"
    ]
    assert metadata["incidents"].value == incidents.height > 0
    assert metadata["open_incidents"].value == incidents.get_column("open").sum()
    counted = sum(metadata[f"stores_{s}_now"].value for s in ("up", "down", "closed", "no_data"))
    assert counted == 100
    assert metadata["stores_down_now"].value == status.filter(pl.col("status") == "down").height
    assert metadata["stores_not_reporting"].value == status.get_column("not_reporting").sum()
    # The previews, as the API's /status shows them: the store down longest first, since when.
    down = status.filter(pl.col("status") == "down").sort("since_half_us")
    assert isinstance(metadata["down_now"], dg.MarkdownMetadataValue)
    preview = metadata["down_now"].value.splitlines()
    assert preview[0].split("|")[1:4] == [" store_id ", " since_utc ", " since_local "], preview[0]
    assert down.height > 0 and preview[2].startswith(f"| {down['store_id'][0]} | ")


def test_a_report_far_after_the_newest_poll_warns_that_its_statuses_are_guesses(
    home, sample_files, instance, monkeypatch
):
    home.drop(*sample_files)
    # T = the newest poll: fresh, no warning. (First: a report older than the published one is not
    # published, SPEC §6, so it would record no materialisation after the one as of now.)
    fresh = dg.materialize([ingest_landing_files, uptime_report], resources=home.resources, instance=instance)
    monkeypatch.setenv("STOREMON_AS_OF", "now")  # the sample's polls are from January 2023
    result = dg.materialize([uptime_report], resources=home.resources, instance=instance)
    assert result.success
    metadata = result.asset_materializations_for_node("uptime_report")[0].metadata
    warning = metadata["stale_data_warning"].value
    assert warning.startswith("stale data: T (") and "days after the newest poll loaded (2023-01-" in warning
    assert "stale_data_warning" not in fresh.asset_materializations_for_node("uptime_report")[0].metadata
