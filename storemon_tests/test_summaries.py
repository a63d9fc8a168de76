"""The numbers and tables the UI shows for a report: fleet metrics and markdown cells."""

from __future__ import annotations

import polars as pl

from storemon_assets.core.summaries import (
    fleet_week,
    markdown_cell,
    markdown_table,
    polls_in_window,
    share_pct,
)
from storemon_assets.core.uptime import WEEK
from storemon_tests.helpers import at, example_report

# T = Monday 2023-01-16 00:00 UTC; the week window is [Mon 2023-01-09 00:00, T) = 168 h.
T = "2023-01-16 00:00"
FLEET_POLLS = [
    # a, open 24x7: one active observation -> the whole week up (168 h up).
    ("a", "2023-01-10 00:00", "active"),
    ("a", "2023-01-16 01:00", "inactive"),  # after T: ignored, and not a poll of the window
    # b, open 24x7: inactive -> 168 h down; its poll of 2023-01-01 is before the window.
    ("b", "2023-01-01 00:00", "inactive"),
    ("b", "2023-01-11 00:00", "inactive"),
    # c, open 24x7: active at the window's start, inactive 6 days later; the midpoint is
    # Thu 2023-01-12 00:00, so 72 h up and 96 h down (42.86 %).
    ("c", "2023-01-09 00:00", "active"),
    ("c", "2023-01-15 00:00", "inactive"),
    # d, open 24x7: active Sat 12:00 (+132 h), inactive Sun 20:00 (+164 h); midpoint +148 h,
    # so 148 h up and 20 h down (88.10 %): under 95 %, not under 80 %.
    ("d", "2023-01-14 12:00", "active"),
    ("d", "2023-01-15 20:00", "inactive"),
    # f, open Mondays 09:00-10:00 (Chicago), polled only on a Sunday: no observations.
    ("f", "2023-01-15 12:00", "active"),
]
FLEET_HOURS = [("f", 0, "09:00", "10:00")]


def test_fleet_week_is_weighted_by_business_time_and_counts_stores_under_each_threshold():
    fleet = fleet_week(example_report(FLEET_POLLS, FLEET_HOURS, as_of=T).exact)
    # Up: a 168 + c 72 + d 148 = 388 h of 4 x 168 = 672 h observed -> 57.738... % -> 57.74.
    # (All four are open 168 h, so here the weighted share equals the mean; the next test differs.)
    assert fleet.uptime_pct == 57.74
    assert fleet.stores_observed == 4  # f has business time but no observation
    assert fleet.stores_under_pct == {95: 3, 80: 2}  # under 95: b, c, d; under 80: b, c


def test_a_store_with_more_business_time_weighs_more():
    # g: open 1 h a week (Mon 09:00-10:00 Chicago = 15:00-16:00 UTC), down all of it;
    # a: open 24x7, up all week. Weighted: 168 / (168 + 1) = 99.41 %; unweighted would be 50 %.
    polls = [("a", "2023-01-10 00:00", "active"), ("g", "2023-01-09 15:30", "inactive")]
    fleet = fleet_week(example_report(polls, [("g", 0, "09:00", "10:00")], as_of=T).exact)
    assert fleet.uptime_pct == 99.41
    assert fleet.stores_under_pct == {95: 1, 80: 1}


def test_a_store_exactly_at_a_threshold_is_not_under_it():
    # h, open 24x7: active Sun 2023-01-15 07:12 (+151.2 h), inactive at T itself (a poll at T is
    # an observation); midpoint +159.6 h: up 159.6 h of 168 h = exactly 95 %.
    fleet = fleet_week(example_report([("h", "2023-01-15 07:12", "active"), ("h", T, "inactive")], as_of=T).exact)
    assert fleet.uptime_pct == 95.0
    assert fleet.stores_under_pct == {95: 0, 80: 0}
    # k, open 24x7: active Sat 2023-01-14 00:00 (+120 h), inactive Sun 2023-01-15 04:48 (+148.8 h);
    # midpoint +134.4 h: up 134.4 h of 168 h = exactly 80 %: under 95 %, not under 80 %.
    polls = [("k", "2023-01-14 00:00", "active"), ("k", "2023-01-15 04:48", "inactive")]
    fleet = fleet_week(example_report(polls, as_of=T).exact)
    assert fleet.uptime_pct == 80.0
    assert fleet.stores_under_pct == {95: 1, 80: 0}


def test_no_observed_business_time_has_no_fleet_share():
    fleet = fleet_week(example_report([("f", "2023-01-15 12:00", "active")], FLEET_HOURS, as_of=T).exact)
    assert fleet.uptime_pct is None
    assert fleet.stores_observed == 0
    assert fleet.stores_under_pct == {95: 0, 80: 0}


def test_polls_in_window_counts_the_half_open_week_before_t():
    polls = pl.DataFrame(
        {"store_id": [p[0] for p in FLEET_POLLS], "polled_at_us": [at(p[1]) for p in FLEET_POLLS]},
    )
    # In [2023-01-09 00:00, 2023-01-16 00:00): a 1, b 1, c 2 (one exactly at the start), d 2, f 1.
    assert polls_in_window(polls, at(T), WEEK.length_us) == 7
    # One hour later: c's poll at the old start drops out, and a's poll exactly at the new T is
    # outside [T - 7 d, T): 1 + 1 + 1 + 2 + 1 = 6.
    assert polls_in_window(polls, at("2023-01-16 01:00"), WEEK.length_us) == 6
    assert polls_in_window(polls, None, WEEK.length_us) == 0


def test_share_pct_rounds_to_two_decimals_and_has_no_share_of_nothing():
    assert share_pct(2, 17642) == 0.01  # 0.0113...%
    assert share_pct(1, 3) == 33.33
    assert share_pct(0, 0) is None


def test_markdown_cells_show_floats_as_the_csv_does_and_escape_text():
    # 752 / 100 in polars is 7.5200000000000005 (division by the reciprocal); shown as 7.52.
    value = pl.select(pl.lit(752) / 100).item()
    assert markdown_cell(value) == "7.52"
    assert markdown_cell(60.0) == "60.00"
    assert markdown_cell(None) == ""
    assert markdown_cell(3) == "3"
    assert markdown_cell("a|b\nc") == "a\\|b c"


def test_markdown_table_formats_every_cell_and_says_when_it_is_cut():
    frame = pl.DataFrame(
        {"store_id": ["s1", "s2", "s3"], "uptime_last_day": [pl.select(pl.lit(752) / 100).item(), 1.0, 2.5]}
    )
    assert markdown_table(frame, max_rows=2) == (
        "| store_id | uptime_last_day |\n| --- | --- |\n| s1 | 7.52 |\n| s2 | 1.00 |\n\n_2 of 3 rows_"
    )
    assert markdown_table(pl.DataFrame()) == "_(empty)_"
