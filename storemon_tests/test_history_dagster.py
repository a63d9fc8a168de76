"""The daily-values asset, its refresh sensor and the retention job, with real resources on a
temporary SQLite database."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import polars as pl

from storemon_assets.core.daily import refresh_ranges
from storemon_assets.db.history import stored_daily_count
from storemon_assets.defs.history import daily_uptime_sensor, retention_job, store_daily_uptime
from storemon_assets.defs.raw import ingest_landing_files
from storemon_assets.service import COMBINED_REPORT_NAME
from storemon_tests.helpers import at, write_csv

D = dt.date.fromisoformat
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def test_refresh_ranges_are_the_current_dates_and_those_around_late_polls_merged_and_clipped():
    # T 2023-01-25 18:12 UTC: local current and previous dates lie in 01-23 .. 01-26. A file
    # with polls on 01-19 .. 01-20 adds 01-17 .. 01-21; one with polls on 01-24 adds 01-22 ..
    # 01-25, which merges with the current range; one whose polls reach beyond T counts up to T.
    files = pl.DataFrame(
        {
            "first_poll_us": [at("2023-01-19 03:00"), at("2023-01-24 10:00"), at("2023-01-22 23:00")],
            "last_poll_us": [at("2023-01-20 05:00"), at("2023-01-24 11:00"), at("2023-01-30 00:00")],
        }
    )
    t = at("2023-01-25 18:12")
    assert refresh_ranges(t, files[:1], D("2023-01-01"), D("2023-12-31")) == [
        (D("2023-01-17"), D("2023-01-21")),
        (D("2023-01-23"), D("2023-01-26")),
    ]
    assert refresh_ranges(t, files[1:2], D("2023-01-01"), D("2023-12-31")) == [(D("2023-01-22"), D("2023-01-26"))]
    # 01-22 23:00 - 2 days = 01-20, merged with the current range (adjacent dates merge).
    assert refresh_ranges(t, files[2:], D("2023-01-01"), D("2023-12-31")) == [(D("2023-01-20"), D("2023-01-26"))]
    assert refresh_ranges(t, files[:0], D("2023-01-01"), D("2023-01-24")) == [(D("2023-01-23"), D("2023-01-24"))]


def test_the_daily_refresh_waits_for_a_loaded_file_or_an_hour_of_moving_t():
    """history.daily_refresh without Dagster: files loaded after the cursor's watermark always
    refresh; T moving alone refreshes once REFRESH_EVERY_SECONDS (3,600) passed; a schedule file
    asks for the last 90 dates."""
    from storemon_assets.history import daily_refresh

    t = at("2023-01-25 18:12")
    arrivals = pl.DataFrame(
        {
            "kind": ["polls", "hours"],
            "ingested_at_us": [100, 200],
            "first_poll_us": [at("2023-01-19 03:00"), None],
            "last_poll_us": [at("2023-01-20 05:00"), None],
        }
    )
    span = (D("2022-01-01"), D("2023-12-31"))
    polls_only = daily_refresh(t, arrivals[:1], {}, now=0.0, first_partition=span[0], today=span[1])
    assert polls_only is not None and (polls_only.polls_files, polls_only.other_files) == (1, 0)
    assert polls_only.ranges == [(D("2023-01-17"), D("2023-01-21")), (D("2023-01-23"), D("2023-01-26"))]
    cursor = polls_only.cursor(now=1_000.0)
    assert cursor == {"as_of_us": t, "ingested_until_us": 100, "requested_at": 1_000.0}
    assert daily_refresh(t, arrivals[:1], cursor, 99_999.0, *span) is None  # same file, same T
    later = t + 60_000_000
    assert daily_refresh(later, arrivals[:1], cursor, 4_599.0, *span) is None  # 3,599 s < 3,600 s
    assert daily_refresh(later, arrivals[:1], cursor, 4_600.0, *span).watermark_us == 100  # an hour passed
    hours = daily_refresh(t, arrivals, cursor, 1_001.0, *span)  # only the hours file is new
    # 2023-01-25 - 91 days = 2022-10-26 .. 01-26 (schedule changed: the last 90 dates and more)
    assert (hours.polls_files, hours.other_files, hours.watermark_us) == (0, 1, 200)
    assert hours.ranges == [(D("2022-10-26"), D("2023-01-26"))]


def materialise_dates(home, instance, first: str, last: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [store_daily_uptime],
        resources=home.resources,
        instance=instance,
        tags={RANGE_START: first, RANGE_END: last},
    )


def test_a_range_of_dates_is_one_run_storing_every_store_day_and_a_second_run_computes_nothing(
    home, sample_files, instance
):
    home.drop(*sample_files)
    assert dg.materialize([ingest_landing_files], resources=home.resources, instance=instance).success
    first = materialise_dates(home, instance, "2023-01-18", "2023-01-25")
    assert first.success
    materialisations = first.asset_materializations_for_node(store_daily_uptime.op.name)
    assert sorted(m.partition for m in materialisations) == [f"2023-01-{d}" for d in range(18, 26)]
    metadata = materialisations[0].metadata
    # 100 stores x 8 dates, all days started before T (2023-01-25 18:12 UTC, past midnight everywhere).
    assert metadata["store_days"].value == metadata["rows_computed"].value == 800
    assert 90 < metadata["fleet_uptime_pct"].value <= 100  # the sample's stores are mostly up
    assert isinstance(metadata["fleet_uptime_by_date"], dg.MarkdownMetadataValue)  # a table in the UI, not text
    engine = home.database.engine()
    assert stored_daily_count(engine) == 800
    again = materialise_dates(home, instance, "2023-01-18", "2023-01-25")
    metadata = again.asset_materializations_for_node(store_daily_uptime.op.name)[0].metadata
    assert (metadata["rows_computed"].value, metadata["rows_already_holding"].value) == (0, 800)


def test_the_sensor_asks_for_the_current_dates_then_only_for_late_polls(home, sample_files, instance):
    home.drop(*sample_files)
    assert dg.materialize([ingest_landing_files], resources=home.resources, instance=instance).success

    def evaluate(cursor):
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=home.resources)
        return daily_uptime_sensor(context)

    first = evaluate(None)
    # T = 2023-01-25 18:12:56 UTC. The sample's hours and timezones files are new too, so every
    # date may have changed: the last 90 dates, clipped to the first partition (2023-01-01),
    # up to 01-26 (the current local dates lie in 01-23 .. 01-26).
    assert [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in first.run_requests] == [("2023-01-01", "2023-01-26")]
    assert isinstance(evaluate(first.cursor), dg.SkipReason)  # nothing new
    # A late file with one poll on 01-19: only the dates around it, plus the current ones.
    late = write_csv(
        home.landing.folder, "late.csv", "store_id,status,timestamp_utc\nx,active,2023-01-19 12:00:00 UTC\n"
    )
    assert dg.materialize(
        [ingest_landing_files],
        resources=home.resources,
        instance=instance,
        run_config={"ops": {ingest_landing_files.op.name: {"config": {"files": [str(late)]}}}},
    ).success
    later = evaluate(first.cursor)
    assert [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in later.run_requests] == [
        ("2023-01-17", "2023-01-20"),
        ("2023-01-23", "2023-01-26"),
    ]
    assert json.loads(later.cursor)["as_of_us"] == json.loads(first.cursor)["as_of_us"]
    # New business hours change every date's business time: the last 90 dates (T's UTC date
    # 01-25 - 91 = 2022-10-26, clipped to the first partition 2023-01-01) to 01-26.
    hours = write_csv(
        home.landing.folder, "hours2.csv", "store_id,dayOfWeek,start_time_local,end_time_local\nx,0,09:00,17:00\n"
    )
    assert dg.materialize(
        [ingest_landing_files],
        resources=home.resources,
        instance=instance,
        run_config={"ops": {ingest_landing_files.op.name: {"config": {"files": [str(hours)]}}}},
    ).success
    after_hours = evaluate(later.cursor)
    assert [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in after_hours.run_requests] == [
        ("2023-01-01", "2023-01-26")
    ]


def test_the_retention_job_keeps_polls_when_retention_is_off_and_deletes_old_run_reports(home, instance, monkeypatch):
    import os
    import time

    monkeypatch.setenv("STOREMON_RETENTION_DAYS", "0")
    home.reports.folder.mkdir(parents=True)
    old = write_csv(home.reports.folder, "old-run.csv", "store_id\n")
    combined = write_csv(home.reports.folder, COMBINED_REPORT_NAME, "store_id\n")
    long_ago = time.time() - 40 * 86_400
    for path in (old, combined):
        os.utime(path, (long_ago, long_ago))
    result = retention_job.execute_in_process(resources=home.resources, instance=instance)
    assert result.success
    assert not old.exists() and combined.exists()
