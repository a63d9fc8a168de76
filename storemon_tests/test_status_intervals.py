"""Status intervals: when a store was up or down (the report's numbers, cut by time).

Each store's business time in the week before T is cut where the status changes (the midpoint
between two neighbouring observations of different status). Bounds are half-microseconds
since the epoch; `local` bounds are the store's wall clock. Dates: 2023-01-16 is a Monday;
Chicago is UTC-6 (CST) in winter and UTC-5 (CDT) in summer; in 2024 its clocks jumped
02:00 -> 03:00 on Sunday 10 March and fell back 02:00 -> 01:00 on Sunday 3 November.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from storemon_assets.core.business_time import weekly_schedule
from storemon_assets.core.parsing import read_feed_file
from storemon_assets.core.uptime import WINDOWS, UptimeReport, compute_uptime
from storemon_tests.helpers import at, example_report, run_storemon
from storemon_tests.reference_model import store_sums

CHICAGO = {"s": "America/Chicago"}
IN_UTC = {"s": "UTC"}


def spans(report: UptimeReport, store_id: str = "s") -> list[tuple[str, str, str, str, str]]:
    """(start UTC, end UTC, status, start local, end local) of one store, to the second."""

    def text(us: pl.Expr) -> pl.Expr:
        return pl.from_epoch(us, time_unit="us").dt.strftime("%Y-%m-%d %H:%M:%S")

    return (
        report.intervals.filter(pl.col("store_id") == store_id)
        .select(
            text(pl.col("start_half_us") // 2),
            text(pl.col("end_half_us") // 2),
            "status",
            text(pl.col("start_local_us")),
            text(pl.col("end_local_us")),
        )
        .rows()
    )


def test_spec_worked_example_is_up_then_down_at_the_midpoint():
    # Open Monday 09:00-12:00 Chicago = 15:00-18:00 UTC; observations 16:14 UTC (active) and
    # 17:15 UTC (inactive); midpoint 16:44:30 UTC = 10:44:30 local. The Monday before closes at
    # 18:00 UTC on the 9th, exactly where the week window [9th 18:00, 16th 18:00) starts.
    report = example_report(
        [("s", "2023-01-16 16:14", "active"), ("s", "2023-01-16 17:15", "inactive")],
        [("s", 0, "09:00", "12:00")],
        CHICAGO,
        as_of="2023-01-16 18:00",
    )
    assert spans(report) == [
        ("2023-01-16 15:00:00", "2023-01-16 16:44:30", "up", "2023-01-16 09:00:00", "2023-01-16 10:44:30"),
        ("2023-01-16 16:44:30", "2023-01-16 18:00:00", "down", "2023-01-16 10:44:30", "2023-01-16 12:00:00"),
    ]


def test_polls_of_one_status_in_a_row_make_one_interval():
    # Open around the clock in UTC. Active at 10:00, 11:00 and 12:00, inactive at 13:00: the
    # only change is at 12:30. Week window [9th 14:00, 16th 14:00).
    report = example_report(
        [("s", f"2023-01-16 {h}:00", "active") for h in (10, 11, 12)] + [("s", "2023-01-16 13:00", "inactive")],
        [],
        IN_UTC,
        as_of="2023-01-16 14:00",
    )
    assert [row[:3] for row in spans(report)] == [
        ("2023-01-09 14:00:00", "2023-01-16 12:30:00", "up"),
        ("2023-01-16 12:30:00", "2023-01-16 14:00:00", "down"),
    ]


def test_a_change_while_closed_shows_at_the_next_opening():
    # Open 09:00-12:00 UTC every day. Active Monday 11:00, inactive Tuesday 11:00: the midpoint,
    # Monday 23:00, is outside business time, so Monday's opening is all up and Tuesday's all
    # down. Days stay separate intervals (closed time between them). Window [10th 12:00,
    # 17th 12:00): the 10th's opening ends at 12:00 and is outside; the first observation
    # reaches back over the 11th-15th. Up 6 x 3 h = 18 h, down 3 h.
    report = example_report(
        [("s", "2023-01-16 11:00", "active"), ("s", "2023-01-17 11:00", "inactive")],
        [("s", day, "09:00", "12:00") for day in range(7)],
        IN_UTC,
        as_of="2023-01-17 12:00",
    )
    assert [row[:3] for row in spans(report)] == [
        *((f"2023-01-{d} 09:00:00", f"2023-01-{d} 12:00:00", "up") for d in range(11, 17)),
        ("2023-01-17 09:00:00", "2023-01-17 12:00:00", "down"),
    ]


def test_a_boundary_on_half_a_microsecond_is_an_odd_number_of_half_microseconds():
    # Polls 1 µs apart: the status changes 0.5 µs after the first. In half-microseconds the
    # boundary is 2 x 12:00:00 + 1; the local (display) bound is rounded down to 12:00:00.
    report = example_report(
        [("s", "2023-01-16 12:00:00.000000", "inactive"), ("s", "2023-01-16 12:00:00.000001", "active")],
        [],
        IN_UTC,
        as_of="2023-01-16 13:00",
    )
    noon = at("2023-01-16 12:00")
    up = report.intervals.filter(pl.col("status") == "up").row(0, named=True)
    assert up["start_half_us"] == 2 * noon + 1
    assert up["start_local_us"] == noon
    down = report.intervals.filter(pl.col("status") == "down").row(0, named=True)
    assert down["end_half_us"] == 2 * noon + 1
    # The week's down time: [9th 13:00, 16th 12:00:00.0000005) = 7 d - 1 h + 0.5 µs.
    assert down["end_half_us"] - down["start_half_us"] == 2 * (7 * 24 - 1) * 3_600_000_000 + 1


def test_store_without_observations_has_its_business_time_as_no_data():
    # Open Monday 09:00-12:00 UTC; its one poll is on Sunday, outside business time.
    report = example_report(
        [("s", "2023-01-15 10:00", "active")], [("s", 0, "09:00", "12:00")], IN_UTC, as_of="2023-01-17 00:00"
    )
    assert [row[:3] for row in spans(report)] == [("2023-01-16 09:00:00", "2023-01-16 12:00:00", "no_data")]


def test_spring_forward_opening_is_two_hours_from_01_00_to_04_00_local():
    # Sunday 2024-03-10 01:00-04:00 Chicago: 01:00 CST = 07:00 UTC, 04:00 CDT = 09:00 UTC.
    report = example_report(
        [("s", "2024-03-10 08:00", "active")], [("s", 6, "01:00", "04:00")], CHICAGO, as_of="2024-03-10 12:00"
    )
    assert spans(report) == [
        ("2024-03-10 07:00:00", "2024-03-10 09:00:00", "up", "2024-03-10 01:00:00", "2024-03-10 04:00:00")
    ]


def test_fall_back_repeats_the_local_hour_and_utc_tells_them_apart():
    # Sunday 2024-11-03 00:00-03:00 Chicago = 05:00-09:00 UTC (4 h). Active 06:00 UTC (01:00
    # CDT), inactive 08:00 UTC (02:00 CST); midpoint 07:00 UTC = the second 01:00 (CST).
    report = example_report(
        [("s", "2024-11-03 06:00", "active"), ("s", "2024-11-03 08:00", "inactive")],
        [("s", 6, "00:00", "03:00")],
        CHICAGO,
        as_of="2024-11-03 12:00",
    )
    assert spans(report) == [
        ("2024-11-03 05:00:00", "2024-11-03 07:00:00", "up", "2024-11-03 00:00:00", "2024-11-03 01:00:00"),
        ("2024-11-03 07:00:00", "2024-11-03 09:00:00", "down", "2024-11-03 01:00:00", "2024-11-03 03:00:00"),
    ]


# --- every store of a generated data set whose week contains a daylight-saving change --------


def generated_week(tmp_path: Path, end: str) -> tuple[UptimeReport, pl.DataFrame, pl.DataFrame]:
    """`storemon generate` 9 days of polls for 120 stores ending at `end`, parsed and reported."""
    out = tmp_path / "feeds"
    done = run_storemon("generate", "--stores", "120", "--days", "9", "--seed", "5", "--end", end, "--out", str(out))
    assert done.returncode == 0, done.stderr
    rows = {feed.kind: feed.rows for feed in (read_feed_file(path) for path in sorted(out.glob("*.csv")))}
    schedule = weekly_schedule(rows["hours"], rows["timezones"], rows["polls"].get_column("store_id"))
    return compute_uptime(rows["polls"], schedule, None), rows["polls"], schedule


@pytest.mark.parametrize(
    "end",
    [
        "2024-03-12T20:00:00Z",  # the week holds the US spring-forward night (Sunday 10 March)
        "2023-11-07T20:00:00Z",  # ... and the US fall-back night (Sunday 5 November 2023)
    ],
)
def test_intervals_sum_to_the_report_for_every_store_of_a_dst_week(tmp_path, end):
    result, polls, schedule = generated_week(tmp_path, end)
    as_of_us = result.as_of_us
    assert result.report.height == 120
    by_store: dict[str, list[tuple[int, int, str]]] = {}
    for store_id, start, stop, status in result.intervals.select(
        "store_id", "start_half_us", "end_half_us", "status"
    ).iter_rows():
        by_store.setdefault(store_id, []).append((start, stop, status))

    for exact in result.exact.iter_rows(named=True):
        store_intervals = by_store.get(exact["store_id"], [])
        # Sorted, disjoint, and merged: touching neighbours differ in status.
        for (_, end_a, status_a), (start_b, _, status_b) in zip(store_intervals, store_intervals[1:], strict=False):
            assert end_a < start_b or (end_a == start_b and status_a != status_b), exact["store_id"]
        for window in WINDOWS:
            window_start = 2 * (as_of_us - window.length_us)
            sums = {"up": 0, "down": 0, "no_data": 0}
            for start, stop, status in store_intervals:
                sums[status] += max(0, stop - max(start, window_start))
            assert sums["up"] == exact[f"up_{window.name}_half_us"], (exact["store_id"], window.name)
            assert sums["down"] == exact[f"down_{window.name}_half_us"], (exact["store_id"], window.name)
            # Every instant of business time is in exactly one interval.
            assert sum(sums.values()) == exact[f"business_{window.name}_half_us"], (exact["store_id"], window.name)
            if exact["has_observations"]:
                assert sums["no_data"] == 0
            else:
                assert sums["up"] == sums["down"] == 0

    # And against the literal reading of the SPEC, store by store, for a sample of stores.
    sample = sorted(by_store)[::6]
    for store_id in sample:
        store = schedule.filter(pl.col("store_id") == store_id)
        rows = [(r["day_of_week"], r["start_time_us"], r["end_time_us"]) for r in store.iter_rows(named=True)]
        if rows == [(day, 0, 0) for day in range(7)]:
            rows = []  # the reference model's own spelling of "no hours rows: 24x7"
        store_polls = polls.filter(pl.col("store_id") == store_id).select("polled_at_us", "status").rows()
        expected = store_sums(store_polls, rows, store["timezone"][0], as_of_us, WINDOWS[-1].length_us)
        got = {status: 0 for status in ("up", "down", "no_data")}
        for start, stop, status in by_store[store_id]:
            got[status] += stop - start
        if expected is None:
            assert got["up"] == got["down"] == 0
        else:
            assert (got["up"] + got["down"], got["up"], got["down"]) == tuple(2 * v for v in expected), store_id
