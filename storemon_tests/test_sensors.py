"""Sensors and the schedule, evaluated on a temporary Dagster instance with real resources."""

from __future__ import annotations

import json
import os
import time

import dagster as dg
import polars as pl

from storemon_assets.defs.assets.raw import ingest_landing_files
from storemon_assets.defs.assets.stores import store_schedules
from storemon_assets.defs.partitions import STORE_PARTITIONS_NAME
from storemon_assets.defs.schedules import hourly_report_schedule
from storemon_assets.defs.sensors import MAX_FILES_PER_RUN, landing_files_sensor, store_schedules_sensor
from storemon_tests.helpers import write_csv


def tick(sensor, instance, home, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=home.resources)
    return sensor(context)


def ingest(home, instance, *paths):
    config = {"ops": {"ingest_landing_files": {"config": {"files": [str(p) for p in paths]}}}}
    assert dg.materialize(
        [ingest_landing_files], resources=home.resources, instance=instance, run_config=config
    ).success


def polls_file(home, name, rows):
    text = "store_id,status,timestamp_utc\n" + "".join(f"{s},active,{t}\n" for s, t in rows)
    return write_csv(home.landing.folder, name, text)


# --- landing_files_sensor ------------------------------------------------------------------


def test_new_file_gives_one_run_keyed_by_its_content_and_adds_its_stores(home, instance):
    path = polls_file(home, "p1.csv", [("7", "2023-01-22 12:00:00 UTC"), ("007", "2023-01-22 12:00:00 UTC")])
    result = tick(landing_files_sensor, instance, home)
    [request] = result.run_requests
    assert request.run_key.startswith("ingest-") and len(request.run_key) == len("ingest-") + 64
    assert request.run_config["ops"]["ingest_landing_files"]["config"]["files"] == [str(path)]
    [add] = result.dynamic_partitions_requests
    assert add.partitions_def_name == STORE_PARTITIONS_NAME and sorted(add.partition_keys) == ["007", "7"]

    again = tick(landing_files_sensor, instance, home, cursor=result.cursor)
    assert again.run_requests == [] and again.dynamic_partitions_requests == []


def test_changed_file_is_requested_again_but_a_loaded_one_never_twice(home, instance):
    path = polls_file(home, "p1.csv", [("1", "2023-01-22 12:00:00 UTC")])
    first = tick(landing_files_sensor, instance, home)
    ingest(home, instance, path)
    # Touching the file changes its identity; the ledger knows its content: no run.
    os.utime(path, (time.time() + 5, time.time() + 5))
    touched = tick(landing_files_sensor, instance, home, cursor=first.cursor)
    assert touched.run_requests == []
    # Extending it changes its content: a new run with a new key.
    with path.open("a") as f:
        f.write("1,inactive,2023-01-22 13:00:00 UTC\n")
    extended = tick(landing_files_sensor, instance, home, cursor=touched.cursor)
    assert [r.run_key for r in extended.run_requests] != [r.run_key for r in first.run_requests]
    assert len(extended.run_requests) == 1


def test_bad_file_is_moved_aside_reported_and_gives_no_run(home, instance):
    home.landing.folder.mkdir(parents=True)
    write_csv(home.landing.folder, "weird.csv", "id,value\n1,2\n")
    result = tick(landing_files_sensor, instance, home)
    assert result.run_requests == []
    assert not (home.landing.folder / "weird.csv").exists()
    assert (home.landing.failed_folder / "weird.csv").exists()
    assert "unrecognised header" in (home.landing.failed_folder / "weird.csv.error.txt").read_text()
    [evaluation] = result.asset_events
    assert evaluation.check_name == "no_unreadable_files" and not evaluation.passed
    # Never retried: the next tick has nothing to do.
    assert tick(landing_files_sensor, instance, home, cursor=result.cursor).run_requests == []


def test_a_long_history_does_not_launch_a_flood_of_runs(home, instance):
    for n in range(MAX_FILES_PER_RUN + 30):
        polls_file(home, f"p{n:04d}.csv", [(f"s{n}", "2023-01-22 12:00:00 UTC")])
    first = tick(landing_files_sensor, instance, home)
    assert len(first.run_requests) == 1
    assert len(first.run_requests[0].run_config["ops"]["ingest_landing_files"]["config"]["files"]) == MAX_FILES_PER_RUN
    second = tick(landing_files_sensor, instance, home, cursor=first.cursor)
    assert len(second.run_requests[0].run_config["ops"]["ingest_landing_files"]["config"]["files"]) == 30
    assert len(json.loads(second.cursor)) == MAX_FILES_PER_RUN + 30


# --- store_schedules_sensor ----------------------------------------------------------------


def materialise_requested_partitions(home, instance, result):
    for request in result.run_requests:
        dg.materialize([store_schedules], resources=home.resources, instance=instance, tags=request.tags)


def covered(instance, result) -> set[str]:
    keys = list(instance.get_dynamic_partitions(STORE_PARTITIONS_NAME))
    stores = set()
    for request in result.run_requests:
        first = keys.index(request.tags["dagster/asset_partition_range_start"])
        last = keys.index(request.tags["dagster/asset_partition_range_end"])
        stores.update(keys[first : last + 1])
    return stores


def test_changed_hours_request_only_the_changed_stores(home, instance, sample_files):
    ingest(home, instance, *sample_files)
    stores = list(instance.get_dynamic_partitions(STORE_PARTITIONS_NAME))
    first = tick(store_schedules_sensor, instance, home)
    assert covered(instance, first) == set(stores)  # all new: one contiguous range
    assert len(first.run_requests) == 1
    materialise_requested_partitions(home, instance, first)
    assert len(instance.get_materialized_partitions(dg.AssetKey("store_schedules"))) == len(stores)

    settled = tick(store_schedules_sensor, instance, home, cursor=first.cursor)
    assert not getattr(settled, "run_requests", None)

    changed = [stores[3], stores[60]]
    hours = write_csv(
        home.root,
        "new_hours.csv",
        "store_id,dayOfWeek,start_time_local,end_time_local\n" + "".join(f"{s},0,10:00,11:00\n" for s in changed),
    )
    ingest(home, instance, hours)
    after = tick(store_schedules_sensor, instance, home, cursor=settled.cursor)
    assert covered(instance, after) == set(changed)
    # The same stale state asks again with the same run keys, so no duplicate run is launched.
    again = tick(store_schedules_sensor, instance, home, cursor=after.cursor)
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in after.run_requests]


def test_unchanged_feeds_skip_without_computing(home, instance, sample_files):
    ingest(home, instance, *sample_files)
    first = tick(store_schedules_sensor, instance, home)
    materialise_requested_partitions(home, instance, first)
    settled = tick(store_schedules_sensor, instance, home, cursor=first.cursor)
    skipped = tick(store_schedules_sensor, instance, home, cursor=settled.cursor)
    assert isinstance(skipped, dg.SkipReason) and "no feed changed" in skipped.skip_message


# --- the schedule --------------------------------------------------------------------------


def test_hourly_schedule_refreshes_the_report_at_the_top_of_each_hour(instance):
    assert hourly_report_schedule.cron_schedule == "0 * * * *"
    assert hourly_report_schedule.job_name == "report_job"
    assert hourly_report_schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    context = dg.build_schedule_context(instance=instance)
    [request] = hourly_report_schedule.evaluate_tick(context).run_requests
    assert request.run_config == {} or "ops" not in request.run_config


def test_per_store_partition_metadata_names_timezone_hours_and_intervals(home, instance, sample_files):
    ingest(home, instance, *sample_files)
    keys = list(instance.get_dynamic_partitions(STORE_PARTITIONS_NAME))
    result = dg.materialize(
        [store_schedules],
        resources=home.resources,
        instance=instance,
        tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[4]},
    )
    events = result.asset_materializations_for_node("store_schedules")
    assert [e.partition for e in events] == sorted(keys[:5])  # exactly one event per store
    metadata = events[0].metadata
    assert set(metadata) == {"timezone", "weekly_open_hours", "open_around_the_clock", "intervals", "latest_week"}
    assert metadata["intervals"].value.startswith("| day | opens | closes |")
    # A link to the store's current week, not numbers that would go stale (README: Store timelines).
    assert metadata["latest_week"].value == f"http://127.0.0.1:8000/stores/{events[0].partition}/timeline.svg"
    assert pl.Series([e.metadata["weekly_open_hours"].value for e in events]).is_between(0, 168).all()


def test_past_the_partition_limit_new_stores_get_no_partition_but_are_reported(home, instance, monkeypatch):
    monkeypatch.setenv("STOREMON_MAX_STORE_PARTITIONS", "2")
    path = polls_file(
        home,
        "p.csv",
        [("a", "2023-01-22 12:00:00 UTC"), ("b", "2023-01-22 12:00:00 UTC"), ("c", "2023-01-22 12:00:00 UTC")],
    )
    [add] = tick(landing_files_sensor, instance, home).dynamic_partitions_requests
    assert add.partition_keys == ["a", "b"]
    from storemon_assets.defs.assets.report import uptime_report

    config = {"ops": {"ingest_landing_files": {"config": {"files": [str(path)]}}}}
    dg.materialize(
        [ingest_landing_files, uptime_report], resources=home.resources, instance=instance, run_config=config
    )
    assert sorted(instance.get_dynamic_partitions(STORE_PARTITIONS_NAME)) == ["a", "b"]
    report = pl.read_csv(home.reports.folder / "combined_report.csv")
    assert report.get_column("store_id").to_list() == ["a", "b", "c"]


def test_a_file_still_being_written_waits_until_it_settles(home, instance):
    from storemon_assets.defs.resources import LandingFolder

    patient = {**home.resources, "landing": LandingFolder(path=home.landing.path, settle_seconds=30)}
    path = polls_file(home, "p.csv", [("1", "2023-01-22 12:00:00 UTC")])
    context = dg.build_sensor_context(instance=instance, resources=patient)
    assert landing_files_sensor(context).run_requests == []  # modified just now
    os.utime(path, (time.time() - 60, time.time() - 60))
    assert len(landing_files_sensor(dg.build_sensor_context(instance=instance, resources=patient)).run_requests) == 1
