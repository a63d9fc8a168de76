"""The uptime rules of SPEC §2-§6, one test per rule, with the arithmetic beside each number.

Dates used: 2023-01-16 is a Monday. Chicago is UTC-6 in winter (CST) and UTC-5 in summer
(CDT); in 2024 its clocks jumped 02:00 -> 03:00 on Sunday 10 March and fell back 02:00 -> 01:00
on Sunday 3 November.
"""

from __future__ import annotations

import polars as pl
import pytest

from storemon_assets.core.uptime import _round_half_away
from storemon_tests.helpers import HOUR, MINUTE, WORKED_EXAMPLE_ROW, exact, example_report, row

CHICAGO = {"s": "America/Chicago"}
IN_UTC = {"s": "UTC"}


def test_spec_worked_example():
    # Open Monday 09:00-12:00 Chicago = 15:00-18:00 UTC. Observations 10:14 (active) and
    # 11:15 (inactive) local = 16:14 and 17:15 UTC. Midpoint 10:44:30 local:
    # up 09:00-10:44:30 = 104.5 min, down 10:44:30-12:00 = 75.5 min.
    report = example_report(
        [("s", "2023-01-16 16:14", "active"), ("s", "2023-01-16 17:15", "inactive")],
        [("s", 0, "09:00", "12:00")],
        CHICAGO,
        as_of="2023-01-16 18:00",
    )
    sums = exact(report, "s")
    assert sums["up_day"] == 104.5 * MINUTE
    assert sums["down_day"] == 75.5 * MINUTE
    # Last hour [17:00, 18:00) UTC = 11:00-12:00 local: all after the midpoint, so down.
    assert sums["up_hour"] == 0 and sums["down_hour"] == 60 * MINUTE
    # 104.5 / 60 = 1.7416.. h -> 1.74; 75.5 / 60 = 1.2583.. h -> 1.26; hour window in minutes.
    assert row(report, "s") == WORKED_EXAMPLE_ROW


def test_default_as_of_is_the_latest_poll():
    # Without an explicit T the report is as of the latest poll, 17:15 UTC; the last hour is
    # [16:15, 17:15) UTC = 10:15-11:15 local: up until 10:44:30 (29.5 min), then down (30.5 min).
    report = example_report(
        [("s", "2023-01-16 16:14", "active"), ("s", "2023-01-16 17:15", "inactive")],
        [("s", 0, "09:00", "12:00")],
        CHICAGO,
    )
    assert report.as_of_us is not None
    assert exact(report, "s")["up_hour"] == 29.5 * MINUTE
    assert exact(report, "s")["down_hour"] == 30.5 * MINUTE


def test_overnight_row_closes_the_next_day_and_covers_its_polls():
    # Friday 2023-01-20 22:00 -> Saturday 02:00 (end <= start). Saturday has no rows of its
    # own, so the 01:30 poll is an observation only through Friday's row.
    # Midpoint of 23:00 and 01:30 is 00:15: up 22:00-00:15 = 2.25 h, down 00:15-02:00 = 1.75 h.
    report = example_report(
        [("s", "2023-01-20 23:00", "active"), ("s", "2023-01-21 01:30", "inactive")],
        [("s", 4, "22:00", "02:00")],
        IN_UTC,
        as_of="2023-01-21 03:00",
    )
    assert exact(report, "s")["up_day"] == 2.25 * HOUR
    assert exact(report, "s")["down_day"] == 1.75 * HOUR


def test_start_equal_to_end_means_open_for_24_hours():
    # Monday 09:00-09:00 = Monday 09:00 to Tuesday 09:00. Observations: Mon 12:00 active and
    # Tue 08:00 inactive; midpoint Mon 22:00. The Tue 09:30 poll is outside business time and
    # must be ignored (were it counted, the midpoint 08:45 would make 08:45-09:00 up).
    # Up Mon 09:00-22:00 = 13 h, down Mon 22:00-Tue 09:00 = 11 h.
    report = example_report(
        [
            ("s", "2023-01-16 12:00", "active"),
            ("s", "2023-01-17 08:00", "inactive"),
            ("s", "2023-01-17 09:30", "active"),
        ],
        [("s", 0, "09:00", "09:00")],
        IN_UTC,
        as_of="2023-01-18 00:00",
    )
    assert exact(report, "s")["up_week"] == 13 * HOUR
    assert exact(report, "s")["down_week"] == 11 * HOUR


def test_spring_forward_day_is_an_hour_shorter():
    # Sunday 2024-03-10, open 01:00-04:00 Chicago: 01:00 CST = 07:00 UTC, 04:00 CDT = 09:00 UTC,
    # so 2 h of business time, not 3. One active observation at 07:30 UTC.
    report = example_report(
        [("s", "2024-03-10 07:30", "active")],
        [("s", 6, "01:00", "04:00")],
        CHICAGO,
        as_of="2024-03-11 12:00",
    )
    assert exact(report, "s")["business_week"] == 2 * HOUR
    assert row(report, "s")["uptime_last_week"] == 2.0


def test_local_time_skipped_by_spring_forward_opens_when_the_clocks_jump():
    # Sunday 2024-03-10, open 02:30-05:00 Chicago. 02:30 does not exist: it is 03:00 CDT =
    # 08:00 UTC. 05:00 CDT = 10:00 UTC. Business time 2 h.
    # A row 02:00-02:30 lies wholly inside the gap and adds nothing.
    report = example_report(
        [("s", "2024-03-10 08:30", "active")],
        [("s", 6, "02:30", "05:00"), ("s", 6, "02:00", "02:30")],
        CHICAGO,
        as_of="2024-03-11 12:00",
    )
    assert exact(report, "s")["business_week"] == 2 * HOUR


def test_fall_back_day_is_an_hour_longer():
    # Sunday 2024-11-03, open 00:00-03:00 Chicago: 00:00 CDT = 05:00 UTC, 03:00 CST = 09:00 UTC:
    # 4 h of business time.
    report = example_report(
        [("s", "2024-11-03 06:00", "active")],
        [("s", 6, "00:00", "03:00")],
        CHICAGO,
        as_of="2024-11-04 12:00",
    )
    assert exact(report, "s")["business_week"] == 4 * HOUR


def test_ambiguous_local_time_is_the_earlier_instant():
    # Sunday 2024-11-03, open 01:00-01:30 Chicago: both times happen twice; the earlier
    # instants are 01:00 CDT = 06:00 UTC and 01:30 CDT = 06:30 UTC. Business time 30 min.
    # The 07:15 UTC poll reads 01:15 on the wall clock (second time round, CST), yet it falls
    # outside the UTC interval and is not an observation: only the 06:10 poll counts.
    report = example_report(
        [("s", "2024-11-03 06:10", "active"), ("s", "2024-11-03 07:15", "inactive")],
        [("s", 6, "01:00", "01:30")],
        CHICAGO,
        as_of="2024-11-04 12:00",
    )
    assert exact(report, "s")["business_week"] == 30 * MINUTE
    assert exact(report, "s")["up_week"] == 30 * MINUTE


def test_store_without_hours_is_open_around_the_clock():
    # No hours rows: 24x7. One active poll: the whole week window is up, 168 h; hour 60 min.
    report = example_report([("s", "2023-01-16 12:00", "active")], [], CHICAGO, as_of="2023-01-16 12:00")
    assert row(report, "s") == {
        "store_id": "s",
        "uptime_last_hour": 60.0,
        "uptime_last_day": 24.0,
        "uptime_last_week": 168.0,
        "downtime_last_hour": 0.0,
        "downtime_last_day": 0.0,
        "downtime_last_week": 0.0,
    }


def test_24x7_store_is_up_around_a_dst_change():
    # Around the clock across the 2024-03-10 jump: the week window is still 7 x 24 = 168 h of
    # elapsed time, all of it business time.
    report = example_report([("s", "2024-03-10 12:00", "active")], [], CHICAGO, as_of="2024-03-12 00:00")
    assert exact(report, "s")["business_week"] == 168 * HOUR


def test_store_with_hours_on_some_weekdays_is_closed_on_the_others():
    # Only Monday 09:00-17:00 UTC: the week [Tue 2023-01-17 00:00 - 7 d, T) holds one Monday, 8 h.
    report = example_report(
        [("s", "2023-01-16 10:00", "active"), ("s", "2023-01-15 10:00", "inactive")],
        [("s", 0, "09:00", "17:00")],
        IN_UTC,
        as_of="2023-01-17 00:00",
    )
    # The Sunday poll is outside business time, so the only observation is active: 8 h up.
    assert exact(report, "s")["business_week"] == 8 * HOUR
    assert exact(report, "s")["up_week"] == 8 * HOUR


def test_store_without_timezone_uses_chicago():
    # Monday 09:00-12:00 with no timezone row: Chicago, 15:00-18:00 UTC (3 h). The 15:30 UTC
    # poll is inside it (in UTC it would be after closing).
    report = example_report(
        [("s", "2023-01-16 15:30", "active")], [("s", 0, "09:00", "12:00")], {}, as_of="2023-01-16 20:00"
    )
    assert exact(report, "s")["up_day"] == 3 * HOUR


def test_conflicting_polls_at_one_instant_count_as_inactive():
    # 24x7, one instant polled active and inactive: one inactive observation, all down.
    report = example_report(
        [("s", "2023-01-16 12:00", "active"), ("s", "2023-01-16 12:00", "inactive")],
        [],
        IN_UTC,
        as_of="2023-01-16 12:00",
    )
    assert exact(report, "s")["down_day"] == 24 * HOUR and exact(report, "s")["up_day"] == 0


def test_polls_outside_business_hours_are_ignored():
    # Open Monday 09:00-12:00 UTC; the 13:00 inactive poll is after closing. Only the 10:00
    # active observation counts: 3 h up.
    report = example_report(
        [("s", "2023-01-16 10:00", "active"), ("s", "2023-01-16 13:00", "inactive")],
        [("s", 0, "09:00", "12:00")],
        IN_UTC,
        as_of="2023-01-16 14:00",
    )
    assert exact(report, "s")["up_day"] == 3 * HOUR and exact(report, "s")["down_day"] == 0


def test_nearest_observation_may_lie_before_the_window():
    # 24x7 UTC. T = Tue 12:00. Observations: Mon 10:00 inactive (T-26h), Tue 10:00 active (T-2h).
    # Midpoint Mon 22:00 = T-14h. Day window [T-24h, T): down 10 h, up 14 h.
    # Hour window: the nearest observation (T-2h) lies before it: up 60 min.
    # Week window: down from T-168h to T-14h = 154 h, up 14 h.
    report = example_report(
        [("s", "2023-01-16 10:00", "inactive"), ("s", "2023-01-17 10:00", "active")],
        [],
        IN_UTC,
        as_of="2023-01-17 12:00",
    )
    assert row(report, "s") == {
        "store_id": "s",
        "uptime_last_hour": 60.0,
        "uptime_last_day": 14.0,
        "uptime_last_week": 14.0,
        "downtime_last_hour": 0.0,
        "downtime_last_day": 10.0,
        "downtime_last_week": 154.0,
    }


def test_polls_after_as_of_are_ignored():
    # 24x7. As of 12:00 the only observation is 11:00 active: the last hour is all up. Were the
    # 12:10 inactive poll used, the midpoint 11:35 would make 25 min down. Store "late" has
    # only a poll after T and is not in the report.
    report = example_report(
        [
            ("s", "2023-01-16 11:00", "active"),
            ("s", "2023-01-16 12:10", "inactive"),
            ("late", "2023-01-16 12:30", "active"),
        ],
        [],
        IN_UTC,
        as_of="2023-01-16 12:00",
    )
    assert exact(report, "s")["up_hour"] == 60 * MINUTE
    assert report.report.get_column("store_id").to_list() == ["s"]


def test_store_ids_are_strings_007_and_7_are_different_stores():
    # "007" is down all day, "7" up; sorted as strings "007" comes first.
    report = example_report(
        [("7", "2023-01-16 12:00", "active"), ("007", "2023-01-16 12:00", "inactive")], [], {}, as_of="2023-01-16 12:00"
    )
    assert report.report.get_column("store_id").to_list() == ["007", "7"]
    assert row(report, "007")["downtime_last_day"] == 24.0
    assert row(report, "7")["uptime_last_day"] == 24.0


@pytest.mark.parametrize(
    ("gap_seconds", "expected_down_minutes", "expected_up_minutes"),
    [
        # Down for the first d/2 of the hour, where d is the gap between the polls.
        # 7.5 s = 0.125 min -> 0.13 (banker's rounding would say 0.12); up 59.875 -> 59.88.
        # Each value is rounded on its own, so the pair may sum to 60.01: SPEC rounds values.
        (15, 0.13, 59.88),
        (27, 0.23, 59.78),  # 13.5 s = 0.225 min -> 0.23 (0.225 is inexact as a float); 59.775 -> 59.78
        (14, 0.12, 59.88),  # 7 s = 0.1166.. min -> 0.12; 59.8833.. -> 59.88
    ],
)
def test_rounding_is_half_away_from_zero_on_exact_values(gap_seconds, expected_down_minutes, expected_up_minutes):
    # 24x7 UTC, T = 13:00. Inactive at 12:00:00 (the window start), active gap_seconds later.
    second = f"2023-01-16 12:00:{gap_seconds:02d}"
    report = example_report(
        [("s", "2023-01-16 12:00:00", "inactive"), ("s", second, "active")], [], IN_UTC, as_of="2023-01-16 13:00"
    )
    result = row(report, "s")
    assert result["downtime_last_hour"] == expected_down_minutes
    assert result["uptime_last_hour"] == expected_up_minutes


def test_half_microsecond_midpoint_is_exact():
    # Polls 1 µs apart: the midpoint is half a microsecond after the first. Inactive at the
    # window start, active 1 µs later: exactly 0.5 µs down.
    report = example_report(
        [("s", "2023-01-16 12:00:00.000000", "inactive"), ("s", "2023-01-16 12:00:00.000001", "active")],
        [],
        IN_UTC,
        as_of="2023-01-16 13:00",
    )
    assert report.exact.get_column("down_hour_half_us").to_list() == [1]


def test_store_with_polls_but_no_observations_reports_zero():
    # Open Monday 09:00-12:00 UTC only; the single poll is on Sunday: no observation.
    report = example_report(
        [("s", "2023-01-15 10:00", "active")], [("s", 0, "09:00", "12:00")], IN_UTC, as_of="2023-01-17 00:00"
    )
    assert set(list(row(report, "s").values())[1:]) == {0.0}
    assert report.exact.get_column("has_observations").to_list() == [False]


def test_overlapping_rows_are_merged_so_no_time_counts_twice():
    # Monday 09:00-12:00 and 11:00-14:00 UTC overlap: 09:00-14:00 = 5 h, not 6 h.
    report = example_report(
        [("s", "2023-01-16 10:00", "active")],
        [("s", 0, "09:00", "12:00"), ("s", 0, "11:00", "14:00")],
        IN_UTC,
        as_of="2023-01-17 00:00",
    )
    assert exact(report, "s")["business_week"] == 5 * HOUR


def test_rounded_values_are_the_plain_two_decimal_numbers():
    # JSON and previews print the float itself: 1.64 must be 1.64, not 1.6400000000000001.
    cents = pl.Series("c", range(0, 1_000_000, 7), dtype=pl.Int64)  # 0.00 .. 9999.99 h
    # Exactly c/100 hours in half-microseconds: c * 36 s * 2,000,000.
    values = pl.select(_round_half_away(pl.lit(cents) * 72_000_000, 3_600_000_000)).to_series()
    assert [repr(v) for v in values.to_list()] == [repr(c / 100) for c in cents.to_list()]
