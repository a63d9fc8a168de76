"""Incidents and status now (SPEC §9), read off the report's status intervals.

The stores are in UTC and open 09:00-12:00 every day unless said otherwise, so every bound can be
checked by eye. T = Friday 2023-01-20 11:00 UTC: the week is [Fri 13 11:00, Fri 20 11:00), whose
business time is Jan 13 11-12 (60 min), Jan 14-19 09-12 (6 x 180 min) and Jan 20 09-11 (120 min).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from storemon_assets.core.business_time import US_PER_MINUTE, weekly_schedule
from storemon_assets.core.generate import generate_feeds
from storemon_assets.core.incidents import (
    incident_frame,
    incidents_csv,
    incidents_from_intervals,
    no_data_warning,
    open_at,
    stale_warning,
    status_counts,
    status_frame,
    status_now,
)
from storemon_assets.core.parsing import parse_feed_bytes
from storemon_assets.core.uptime import compute_uptime
from storemon_tests.helpers import at, example_report

T = "2023-01-20 11:00"
NINE_TO_NOON = [(day, "09:00", "12:00") for day in range(7)]
STALE_AFTER_US = 120 * US_PER_MINUTE


def hours_of(store: str, rows=NINE_TO_NOON) -> list[tuple[str, int, str, str]]:
    return [(store, day, start, end) for day, start, end in rows]


STORES = {
    # up until the 10:30 midpoint on the 16th, down through the night to the 10:30 midpoint on the 17th,
    # up again until the 11:00 midpoint on the 18th (between 17th 11:00 active and 19th 11:00 inactive),
    # then down to T.
    "s": [
        ("2023-01-16 10:00", "active"),
        ("2023-01-16 11:00", "inactive"),
        ("2023-01-17 10:00", "inactive"),
        ("2023-01-17 11:00", "active"),
        ("2023-01-19 11:00", "inactive"),
    ],
    "w": [("2023-01-10 10:00", "inactive")],  # down all week, from before it
    "n": [("2023-01-19 20:00", "active")],  # polled only outside business hours: no observation
    "u": [("2023-01-20 10:45", "active")],  # up, polled 15 min before T
    "c": [("2023-01-19 13:30", "inactive")],  # open 13:00-14:00 only: closed at T
}


def example(as_of: str = T):
    polls = [(store, when, status) for store, rows in STORES.items() for when, status in rows]
    hours = [row for store in ("s", "w", "n", "u") for row in hours_of(store)]
    hours += hours_of("c", [(day, "13:00", "14:00") for day in range(7)])
    zones = {store: "UTC" for store in STORES}
    report = example_report(polls, hours, zones, as_of=as_of)
    schedule = weekly_schedule(
        pl.DataFrame(
            [(s, d, int(a[:2]) * 60 * US_PER_MINUTE, int(b[:2]) * 60 * US_PER_MINUTE) for s, d, a, b in hours],
            schema={"store_id": pl.String, "day_of_week": pl.Int8, "start_time_us": pl.Int64, "end_time_us": pl.Int64},
            orient="row",
        ),
        pl.DataFrame({"store_id": list(zones), "timezone_str": list(zones.values())}),
        pl.Series(list(STORES)),
    )
    return report, schedule


def newest_polls(as_of: str = T) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "store_id": list(STORES),
            "newest_poll_us": [
                max((at(w) for w, _ in rows if at(w) <= at(as_of)), default=None) for rows in STORES.values()
            ],
        }
    )


def test_closed_time_between_down_stretches_does_not_end_an_incident():
    report, _ = example()
    rows = pl.read_csv(incidents_csv(incidents_from_intervals(report.intervals)).encode(), infer_schema=False)
    assert rows.filter(pl.col("store_id") == "s").rows() == [
        # Jan 16 10:30-12:00 (90 min) + Jan 17 09:00-10:30 (90 min) = 180 min; the night between is closed.
        ("s", "2023-01-16T10:30:00.000000Z", "2023-01-17T10:30:00.000000Z", "180.00", "false"),
        # Jan 18 11:00-12:00 (60) + Jan 19 09:00-12:00 (180) + Jan 20 09:00-11:00 (120) = 360 min, down at T.
        ("s", "2023-01-18T11:00:00.000000Z", None, "360.00", "true"),
    ]


def test_a_store_down_since_before_the_week_starts_at_the_week_and_closed_ones_at_their_first_down_instant():
    report, _ = example()
    rows = pl.read_csv(incidents_csv(incidents_from_intervals(report.intervals)).encode(), infer_schema=False)
    assert rows.filter(pl.col("store_id").is_in(["w", "c"])).rows() == [
        # Open 13:00-14:00: the week's first down instant is Jan 13 13:00; 7 days x 60 min (13th to 19th).
        ("c", "2023-01-13T13:00:00.000000Z", None, "420.00", "true"),
        # Open at the week's start (Jan 13 11:00): 60 + 6 x 180 + 120 = 1260 min.
        ("w", "2023-01-13T11:00:00.000000Z", None, "1260.00", "true"),
    ]
    assert rows.filter(pl.col("store_id").is_in(["n", "u"])).is_empty()  # no data, and never down


def test_the_csv_has_the_spec_header_and_sorts_by_store_then_start():
    report, _ = example()
    text = incidents_csv(incidents_from_intervals(report.intervals))
    assert text.splitlines()[0] == "store_id,started_utc,ended_utc,downtime_minutes,open"
    stores = [line.split(",")[0] for line in text.splitlines()[1:]]
    assert stores == ["c", "s", "s", "w"]


def test_status_now_up_down_closed_no_data_since_when_and_not_reporting():
    report, schedule = example()
    incidents = incidents_from_intervals(report.intervals)
    open_now = open_at(schedule, pl.Series(list(STORES)), at(T))
    status = status_now(report.intervals, incidents, open_now, newest_polls(), at(T), STALE_AFTER_US)
    got = {r["store_id"]: r for r in status.to_dicts()}
    assert {s: (r["status"], r["open_now"], r["not_reporting"]) for s, r in got.items()} == {
        "s": ("down", True, True),  # newest poll Jan 19 11:00: 24 h before T > 120 min
        "w": ("down", True, True),  # silent for 10 days
        "n": ("no_data", True, True),  # its polls are all outside business hours, the newest 15 h before T
        "u": ("up", True, False),  # polled 15 min before T
        "c": ("closed", False, False),  # nobody expects polls from a closed store
    }
    assert got["s"]["since_half_us"] == 2 * at("2023-01-18 11:00")  # its open incident's start
    assert got["w"]["since_half_us"] == 2 * at("2023-01-13 11:00")  # the week's start: down longer than that
    assert got["u"]["since_half_us"] == 2 * at("2023-01-13 11:00")  # no incident this week
    assert got["c"]["since_half_us"] == 2 * at("2023-01-19 14:00")  # its last closing before T
    assert got["s"]["newest_poll_us"] == at("2023-01-19 11:00")
    assert status_counts(status) == {"up": 1, "down": 2, "closed": 1, "no_data": 1, "not_reporting": 3}


def test_up_since_the_last_incident_ended():
    report, schedule = example("2023-01-17 11:30")  # s recovered at the Jan 17 10:30 midpoint
    incidents = incidents_from_intervals(report.intervals)
    status = status_now(
        report.intervals,
        incidents,
        open_at(schedule, pl.Series(["s"]), at("2023-01-17 11:30")),
        newest_polls("2023-01-17 11:30"),
        at("2023-01-17 11:30"),
        STALE_AFTER_US,
    )
    assert status.row(0, named=True) == {
        "store_id": "s",
        "status": "up",
        "since_half_us": 2 * at("2023-01-17 10:30"),
        "open_now": True,
        "timezone": "UTC",
        "newest_poll_us": at("2023-01-17 11:00"),
        "not_reporting": False,  # polled at 11:00, 30 min before T
    }


def test_inside_business_time_is_half_open_at_t():
    _, schedule = example()
    stores = pl.Series(["u"])
    assert open_at(schedule, stores, at("2023-01-20 09:00"))["open_now"].to_list() == [True]  # opening instant
    assert open_at(schedule, stores, at("2023-01-20 12:00"))["open_now"].to_list() == [False]  # closing instant


def test_every_stores_incidents_sum_to_its_downtime_last_week_on_generated_data():
    feeds = generate_feeds(stores=300, days=9, seed=5)
    parsed = {
        kind: parse_feed_bytes(frame.write_csv().encode(), Path(f"{kind}.csv")).rows
        for kind, frame in (("polls", feeds.polls), ("hours", feeds.hours), ("timezones", feeds.timezones))
    }
    schedule = weekly_schedule(parsed["hours"], parsed["timezones"], parsed["polls"].get_column("store_id"))
    report = compute_uptime(parsed["polls"], schedule, None)
    incidents = incidents_from_intervals(report.intervals)
    assert incidents.height > 100 and incidents.get_column("open").sum() > 0  # the data has some of both
    summed = incidents.group_by("store_id").agg(pl.col("downtime_half_us").sum())
    both = report.exact.join(summed, on="store_id", how="left").with_columns(pl.col("downtime_half_us").fill_null(0))
    assert both.filter(pl.col("downtime_half_us") != pl.col("down_week_half_us")).is_empty()
    # And the rounded CSV agrees with the rounded report: minutes / 60 is the report's hours.
    rows = pl.read_csv(incidents_csv(incidents).encode(), schema_overrides={"store_id": pl.String})
    hours = rows.group_by("store_id").agg((pl.col("downtime_minutes").sum() / 60).alias("hours"))
    check = report.report.join(hours, on="store_id").filter(
        (pl.col("hours") - pl.col("downtime_last_week")).abs() > 0.01
    )
    assert check.is_empty()
    # No incident starts inside another of its store, and each ends where an up interval begins.
    ups = report.intervals.filter(pl.col("status") == "up").select(
        "store_id", pl.col("start_half_us").alias("ended_half_us")
    )
    closed = incidents.filter(~pl.col("open"))
    assert closed.join(ups, on=["store_id", "ended_half_us"], how="anti").is_empty()


def test_stale_warning_when_t_is_far_after_the_newest_poll():
    newest = at("2023-01-25 18:13")
    assert stale_warning(newest + STALE_AFTER_US, newest, STALE_AFTER_US) is None  # exactly the limit: fresh
    warning = stale_warning(at("2026-12-06 07:00"), newest, STALE_AFTER_US)
    assert warning is not None and warning.startswith("stale data: T (2026-12-06T07:00:00.000000Z) is ")
    assert "days after the newest poll loaded (2023-01-25T18:13:00.000000Z)" in warning
    assert stale_warning(None, None, STALE_AFTER_US) is None


def test_incident_wall_clock_times_carry_their_offset_so_the_repeated_hour_is_unambiguous():
    """Chicago's clocks went back at 02:00 CDT on 2024-11-03: 01:30 came twice, at 06:30Z
    (CDT, -05:00) and at 07:30Z (CST, -06:00). The same wall-clock text without an offset
    could be either; with it, each names its instant."""
    wall_0130 = int(dt.datetime(2024, 11, 3, 1, 30).replace(tzinfo=dt.UTC).timestamp()) * 1_000_000
    first, second = at("2024-11-03 06:30"), at("2024-11-03 07:30")
    incidents = pl.DataFrame(
        {
            "store_id": ["a", "b"],
            "started_half_us": [2 * first, 2 * second],
            "ended_half_us": [2 * second, None],
            "started_local_us": [wall_0130, wall_0130],
            "ended_local_us": [wall_0130, None],
            "downtime_half_us": [2 * 3_600_000_000, 0],
            "open": [False, True],
        }
    )
    shown = incident_frame(incidents)
    assert shown.get_column("started_local").to_list() == [
        "2024-11-03T01:30:00.000000-05:00",
        "2024-11-03T01:30:00.000000-06:00",
    ]
    assert shown.get_column("ended_local").to_list() == ["2024-11-03T01:30:00.000000-06:00", None]  # open: none


def test_status_rows_keep_their_order_across_timezones():
    """/status hands status_frame its stores longest first; adding the wall clock zone by zone
    once grouped them by zone instead (New York, New York, UTC): a new-user trial saw it."""
    since = [at("2023-01-16 10:00"), at("2023-01-16 11:00"), at("2023-01-16 12:00")]
    status = pl.DataFrame(
        {
            "store_id": ["a", "b", "c"],
            "status": ["down"] * 3,
            "since_half_us": [2 * s for s in since],
            "open_now": [True] * 3,
            "newest_poll_us": since,
            "not_reporting": [False] * 3,
            "timezone": ["America/New_York", "UTC", "America/New_York"],
        }
    )
    shown = status_frame(status, at("2023-01-16 13:00"))
    assert shown.get_column("store_id").to_list() == ["a", "b", "c"]
    assert shown.get_column("since_local").to_list() == [
        "2023-01-16T05:00:00.000000-05:00",  # 10:00 UTC in New York (EST)
        "2023-01-16T11:00:00.000000+00:00",
        "2023-01-16T07:00:00.000000-05:00",
    ]


def test_no_data_warning_when_polls_are_loaded_but_no_store_was_polled_by_t():
    newest = at("2023-01-25 18:13")
    warning = no_data_warning(at("2022-01-25 18:13"), newest, stores=0)
    assert warning == (
        "no data: no store was polled at or before T (2022-01-25T18:13:00.000000Z), so the report is empty; "
        "the newest poll loaded is at 2023-01-25T18:13:00.000000Z"
    )
    assert no_data_warning(at("2022-01-25 18:13"), newest, stores=3) is None  # a report with stores
    assert no_data_warning(None, None, stores=0) is None  # no polls at all: nothing to point at


def test_a_special_closed_day_makes_an_open_store_closed_at_t():
    # "u" opens 09:00-12:00 every day; a special-hours row closes it all of Friday 20 January, the
    # date of T (11:00): closed at T, so it is neither up nor "not reporting".
    _, schedule = example()
    special = pl.DataFrame(
        {"store_id": ["u"], "local_date": [dt.date(2023, 1, 20)], "start_time_us": [None], "end_time_us": [None]},
        schema={"store_id": pl.String, "local_date": pl.Date, "start_time_us": pl.Int64, "end_time_us": pl.Int64},
    )
    hours = schedule.filter(pl.col("store_id") == "u").select("store_id", "day_of_week", "start_time_us", "end_time_us")
    with_special = weekly_schedule(
        hours, pl.DataFrame({"store_id": ["u"], "timezone_str": ["UTC"]}), pl.Series(["u"]), special
    )
    assert open_at(schedule, pl.Series(["u"]), at(T))["open_now"].to_list() == [True]
    assert open_at(with_special, pl.Series(["u"]), at(T))["open_now"].to_list() == [False]
