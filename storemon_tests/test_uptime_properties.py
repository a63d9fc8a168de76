"""Properties of the uptime computation over generated inputs.

1. The vectorised computation agrees exactly with a literal, loop-by-loop reading of the SPEC
   (storemon_tests/reference_model.py) on random stores near daylight-saving changes, in zones
   with unusual rules (30-minute DST, transitions at midnight, no DST), with special hours
   (closed dates, other hours, several rows on a date) on dates around the change.
2. On a realistic generated data set, uptime + downtime = business time for every store with
   observations, and nothing is negative.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storemon_assets.core.business_time import weekly_schedule
from storemon_assets.core.generate import generate_feeds
from storemon_assets.core.parsing import parse_feed_bytes
from storemon_assets.core.uptime import WINDOWS, compute_uptime
from storemon_tests.helpers import examples, scenario_frames
from storemon_tests.reference_model import store_sums, to_us

ZONES = [
    "America/Chicago",
    "Australia/Lord_Howe",  # DST moves the clock by 30 minutes
    "America/Santiago",  # transitions at local midnight
    "Asia/Kolkata",  # no DST, +05:30
    "Pacific/Chatham",  # +12:45 / +13:45
    "Europe/London",
    "UTC",
]
# Daylight-saving changes (zone, UTC instant); all fall on a Saturday night or Sunday local.
PIVOTS = [
    ("America/Chicago", dt.datetime(2024, 3, 10, 8, tzinfo=dt.UTC)),  # 02:00 -> 03:00
    ("America/Chicago", dt.datetime(2024, 11, 3, 7, tzinfo=dt.UTC)),  # 02:00 -> 01:00
    ("Australia/Lord_Howe", dt.datetime(2024, 4, 6, 15, tzinfo=dt.UTC)),  # 02:00 -> 01:30
    ("America/Santiago", dt.datetime(2024, 4, 7, 3, tzinfo=dt.UTC)),  # 24:00 -> 23:00
    ("America/Santiago", dt.datetime(2024, 9, 8, 4, tzinfo=dt.UTC)),  # 24:00 -> 01:00
    ("Pacific/Chatham", dt.datetime(2024, 4, 6, 14, tzinfo=dt.UTC)),  # 03:45 -> 02:45
    ("Europe/London", dt.datetime(2024, 3, 31, 1, tzinfo=dt.UTC)),  # 01:00 -> 02:00
]
SPECIAL_SCHEMA = {"store_id": pl.String, "local_date": pl.Date, "start_time_us": pl.Int64, "end_time_us": pl.Int64}
US = 1_000_000
QUARTER_HOUR = 15 * 60 * US


@st.composite
def scenarios(draw):
    pivot_zone, pivot = draw(st.sampled_from(PIVOTS))
    pivot_us = to_us(pivot)
    as_of_us = pivot_us + draw(st.integers(-3 * 24 * 4, 3 * 24 * 4)) * QUARTER_HOUR + draw(st.integers(0, 59)) * US
    stores = {}
    # Bias towards the local times that DST skips or repeats, on every weekday near the pivot.
    near_transitions = st.sampled_from([0, 0.5, 1, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.25, 23, 23.5]).map(
        lambda h: int(h * 3600) * US
    )
    weekend = st.sampled_from([5, 6])
    time_of_day = (
        near_transitions
        | st.integers(0, 95).map(lambda q: q * QUARTER_HOUR)
        | st.integers(0, 86_399).map(lambda s: s * US)
    )
    near_pivot = st.integers(pivot_us - 12 * 3600 * US, pivot_us + 12 * 3600 * US)
    anywhere = st.integers(as_of_us - 9 * 24 * 3600 * US, as_of_us + 2 * 3600 * US)
    pivot_date = pivot.date()
    # Special rows on dates from the window's start (and the days before it) to after T; a
    # closed row (no times) now and then, alone or beside an hours row of the same date.
    special_date = st.integers(-10, 4).map(lambda n: pivot_date + dt.timedelta(days=n))
    special_times = st.tuples(time_of_day, time_of_day) | st.just((None, None))
    for store_id in draw(st.lists(st.sampled_from(["a", "b", "007"]), min_size=1, max_size=3, unique=True)):
        rows = draw(st.lists(st.tuples(weekend | st.integers(0, 6), time_of_day, time_of_day), max_size=6))
        special: dict[dt.date, list] = {}
        for date, times in draw(st.lists(st.tuples(special_date, special_times), max_size=4)):
            special.setdefault(date, []).append(times)
        polls = draw(
            st.lists(st.tuples(near_pivot | anywhere, st.sampled_from(["active", "inactive"])), min_size=1, max_size=12)
        )
        if draw(st.booleans()) and polls:  # a same-instant conflict now and then
            polls.append((polls[0][0], "inactive" if polls[0][1] == "active" else "active"))
        zone = draw(st.just(pivot_zone) | st.sampled_from(ZONES))
        stores[store_id] = {"zone": zone, "rows": rows, "polls": polls, "special": special}
    return as_of_us, stores


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_vectorised_computation_matches_the_literal_reading_of_the_spec(scenario):
    as_of_us, stores = scenario
    polls, hours, zones = scenario_frames(stores)
    special = pl.DataFrame(
        [
            (s, date, start, end)
            for s, d in stores.items()
            for date, times in d["special"].items()
            for start, end in times
        ],
        schema=SPECIAL_SCHEMA,
        orient="row",
    )
    schedule = weekly_schedule(hours, zones, polls.get_column("store_id"), special)
    result = compute_uptime(polls, schedule, as_of_us)
    computed = {r["store_id"]: r for r in result.exact.to_dicts()}

    for store_id, data in stores.items():
        if all(at > as_of_us for at, _ in data["polls"]):
            assert store_id not in computed
            continue
        for window in WINDOWS:
            expected = store_sums(
                data["polls"], data["rows"], data["zone"], as_of_us, window.length_us, data["special"]
            )
            got = computed[store_id]
            if expected is None:
                assert not got["has_observations"]
                assert got[f"up_{window.name}_half_us"] == got[f"down_{window.name}_half_us"] == 0
                continue
            business, up, down = (2 * value for value in expected)
            assert (
                got[f"business_{window.name}_half_us"],
                got[f"up_{window.name}_half_us"],
                got[f"down_{window.name}_half_us"],
            ) == (
                business,
                up,
                down,
            ), f"store {store_id} window {window.name}"


def test_uptime_plus_downtime_is_business_time_on_generated_data():
    feeds = generate_feeds(stores=300, days=9, seed=11)
    parsed = {
        kind: parse_feed_bytes(frame.write_csv().encode(), Path(f"{kind}.csv")).rows
        for kind, frame in (("polls", feeds.polls), ("hours", feeds.hours), ("timezones", feeds.timezones))
    }
    schedule = weekly_schedule(parsed["hours"], parsed["timezones"], parsed["polls"].get_column("store_id"))
    result = compute_uptime(parsed["polls"], schedule, None)
    observed = result.exact.filter(pl.col("has_observations"))
    assert observed.height > 250
    for window in WINDOWS:
        up, down, business = (pl.col(f"{k}_{window.name}_half_us") for k in ("up", "down", "business"))
        assert observed.filter(up + down != business).height == 0, window.name
        assert result.exact.filter((up < 0) | (down < 0)).height == 0
    # A 24x7 week is at most 168 h and the rounded report never exceeds it.
    assert result.report.get_column("uptime_last_week").max() <= 168.0
    assert result.report.get_column("uptime_last_hour").max() <= 60.0
