"""The store-schedules sensor and the schedule, on a temporary Dagster instance with real resources
(the landing sensor: test_landing.py)."""

from __future__ import annotations

import dagster as dg
import polars as pl

from storemon_assets.defs.partitions import STORE_PARTITIONS_NAME
from storemon_assets.defs.raw import ingest_landing_files
from storemon_assets.defs.report import hourly_report_schedule
from storemon_assets.defs.stores import store_schedules, store_schedules_sensor
from storemon_tests.helpers import add_store_partitions, write_csv


def tick(sensor, instance, home, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=home.resources)
    return sensor(context)


def ingest(home, instance, *paths):
    """Deliver the files to the landing folder and run the ingest job on them; the landing
    sensor then adds the partitions of their stores."""
    config = {"ops": {"ingest_landing_files": {"config": {"files": [str(p) for p in home.drop(*paths)]}}}}
    assert dg.materialize(
        [ingest_landing_files], resources=home.resources, instance=instance, run_config=config
    ).success
    add_store_partitions(home, instance)


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


def test_schedules_are_compared_again_only_after_the_feeds_or_partitions_changed_or_while_runs_are_pending():
    from storemon_assets.core.staleness import schedules_check_due, schedules_state

    state = schedules_state({"hours": "v1", "timezones": "v1"}, 3)
    assert state == schedules_state({"timezones": "v1", "hours": "v1"}, 3)  # order of the feeds does not matter
    assert state != schedules_state({"hours": "v2", "timezones": "v1"}, 3)  # an hours file was loaded
    assert state != schedules_state({"hours": "v1", "timezones": "v1"}, 4)  # a store partition was added
    assert schedules_check_due({}, state)  # first tick
    assert not schedules_check_due({"state": state, "pending": False}, state)
    assert schedules_check_due({"state": state, "pending": True}, state)  # runs asked for: look again
    assert schedules_check_due({"state": "older", "pending": False}, state)
