"""The store-schedules sensor and the schedule, on a temporary Dagster instance with real resources
(the landing sensor: test_landing.py)."""

from __future__ import annotations

import dagster as dg
import polars as pl

from storemon_assets.core.staleness import new_store_partitions
from storemon_assets.defs.partitions import STORE_PARTITIONS_NAME
from storemon_assets.defs.raw import ingest_landing_files
from storemon_assets.defs.report import hourly_report_schedule
from storemon_assets.defs.stores import store_schedules
from storemon_tests.helpers import add_store_partitions, write_csv


def tick(instance, home, cursor=None):
    """One tick of store_schedules_sensor, its partition requests applied as the daemon applies them."""
    return add_store_partitions(home, instance, cursor)


def ingest(home, instance, *paths):
    """Deliver the files to the landing folder and run the ingest job on them."""
    config = {"ops": {"ingest_landing_files": {"config": {"files": [str(p) for p in home.drop(*paths)]}}}}
    assert dg.materialize(
        [ingest_landing_files], resources=home.resources, instance=instance, run_config=config
    ).success


POLLS_HEADER = "store_id,status,timestamp_utc\n"


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
    first = tick(instance, home)
    stores = list(instance.get_dynamic_partitions(STORE_PARTITIONS_NAME))
    assert sorted(first.dynamic_partitions_requests[0].partition_keys) == stores  # added in that tick, sorted
    assert len(stores) == 100 and covered(instance, first) == set(stores)  # all new: one contiguous range
    assert len(first.run_requests) == 1
    materialise_requested_partitions(home, instance, first)
    assert len(instance.get_materialized_partitions(dg.AssetKey("store_schedules"))) == len(stores)

    settled = tick(instance, home, cursor=first.cursor)
    assert not getattr(settled, "run_requests", None)

    changed = [stores[3], stores[60]]
    hours = write_csv(
        home.root,
        "new_hours.csv",
        "store_id,dayOfWeek,start_time_local,end_time_local\n" + "".join(f"{s},0,10:00,11:00\n" for s in changed),
    )
    ingest(home, instance, hours)
    after = tick(instance, home, cursor=settled.cursor)
    assert covered(instance, after) == set(changed)
    # The same stale state asks again with the same run keys, so no duplicate run is launched.
    again = tick(instance, home, cursor=after.cursor)
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in after.run_requests]


def test_unchanged_feeds_skip_without_computing(home, instance, sample_files):
    ingest(home, instance, *sample_files)
    first = tick(instance, home)
    materialise_requested_partitions(home, instance, first)
    settled = tick(instance, home, cursor=first.cursor)
    skipped = tick(instance, home, cursor=settled.cursor)
    assert isinstance(skipped, dg.SkipReason) and "no feed changed" in skipped.skip_message


# --- new stores get their partitions from the same sensor (issue 16 item 3) -----------------


def test_the_stores_a_run_loaded_get_their_partitions_once(home, instance):
    ingest(home, instance, write_csv(home.root, "p1.csv", POLLS_HEADER + "7,active,2023-01-22 12:00:00 UTC\n"))
    first = tick(instance, home)
    [partitions] = first.dynamic_partitions_requests
    assert list(partitions.partition_keys) == ["7"]
    assert list(instance.get_dynamic_partitions(STORE_PARTITIONS_NAME)) == ["7"]
    assert covered(instance, first) == {"7"}  # and its schedule, in the same tick
    again = tick(instance, home, cursor=first.cursor)  # its run still pending
    assert not getattr(again, "dynamic_partitions_requests", None)  # asked once


def test_stores_loaded_by_storemon_ingest_get_their_partitions_too(home, instance, tmp_path):
    # Issue 16 item 3: they appeared only after the next report run.
    from storemon_assets.core.parsing import read_feed_file
    from storemon_assets.db.loading import load_feed

    engine = home.database.engine()
    load_feed(engine, read_feed_file(write_csv(tmp_path, "tz.csv", "store_id,timezone_str\ncli-store,UTC\n")))
    tick(instance, home)
    assert list(instance.get_dynamic_partitions(STORE_PARTITIONS_NAME)) == ["cli-store"]


def test_past_the_partition_limit_new_stores_get_no_partition_but_are_reported(home, instance, monkeypatch):
    from storemon_assets.defs.report import uptime_report

    monkeypatch.setenv("STOREMON_MAX_STORE_PARTITIONS", "2")
    rows = "".join(f"{s},active,2023-01-22 12:00:00 UTC\n" for s in ("a", "b", "c"))
    files = [str(p) for p in home.drop(write_csv(home.root, "p.csv", POLLS_HEADER + rows))]
    config = {"ops": {"ingest_landing_files": {"config": {"files": files}}}}
    dg.materialize(
        [ingest_landing_files, uptime_report], resources=home.resources, instance=instance, run_config=config
    )
    tick(instance, home)
    assert sorted(instance.get_dynamic_partitions(STORE_PARTITIONS_NAME)) == ["a", "b"]
    report = pl.read_csv(home.reports.folder / "combined_report.csv")
    assert report.get_column("store_id").to_list() == ["a", "b", "c"]


def test_new_store_partitions_stop_at_the_limit():
    # 3 partitions of a limit of 4: one more, the first in sort order; 2 left out.
    assert new_store_partitions(["b", "x", "a", "c", "y"], ["x", "y", "z"], 4) == (["a"], 2)
    assert new_store_partitions(["a"], ["x", "y", "z", "w", "v"], 4) == ([], 1)  # already past it
    assert new_store_partitions(["x", "y"], ["x", "y"], 4) == ([], 0)


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
    add_store_partitions(home, instance)
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
