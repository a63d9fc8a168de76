"""A report reads only the week before T, plus each store's carry-in, and is still exact.

The property: for random histories loaded into a real database, the report as of T that
`build_report` computes from its bounded reads (the week, a margin, and per store the last
observation before the week, looked up further back only where needed) is identical, to the
half-microsecond and interval by interval, to the report computed from every poll ever
loaded (`compute_uptime`, itself checked against the literal reading of the SPEC in
test_uptime_properties.py). Histories include long silences, stores whose only observations
are weeks old, polls outside business hours just before the week, same-instant conflicts,
polls after T, and T in the past.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from storemon_assets.core.business_time import US_PER_DAY, US_PER_HOUR
from storemon_assets.core.uptime import WEEK, compute_uptime
from storemon_assets.db.queries import KeyRange, read_polls, read_weekly_schedules, store_keys
from storemon_assets.service import CARRY_IN_MARGIN_US, build_report, ingest_files
from storemon_tests.conftest import copy_of_migrated_sqlite
from storemon_tests.helpers import examples, write_csv
from storemon_tests.reference_model import to_us

ZONES = ["America/Chicago", "Asia/Kolkata", "Pacific/Chatham", "Australia/Lord_Howe", "UTC"]
BASE_US = to_us(dt.datetime(2024, 3, 20, tzinfo=dt.UTC))  # weeks from DST changes on both sides
US = 1_000_000
MINUTE_US = 60 * US
FAR_PAST_US = -(2**62)


def with_store_ids(polls: pl.DataFrame, stores: pl.DataFrame) -> pl.DataFrame:
    """Polls as read (store_key, ...) with the stores' text ids instead."""
    return polls.join(stores, on="store_key").select("store_id", "polled_at_us", "active")


def text_instant(at_us: int) -> str:
    moment = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=at_us)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f UTC")


@st.composite
def histories(draw):
    """(T or None, {store: {zone, rows, polls}}) with T up to a week before the newest poll."""
    as_of_us = BASE_US + draw(st.integers(0, 7 * 24 * 60)) * MINUTE_US + draw(st.integers(0, 59)) * US
    week_start_us = as_of_us - WEEK.length_us
    # Instants that matter to a windowed read: the edges of the week and of the margin.
    edges = st.sampled_from(
        [as_of_us, week_start_us, week_start_us - 1, week_start_us - CARRY_IN_MARGIN_US, as_of_us + 1]
    )
    centre = (
        st.integers(as_of_us - 60 * US_PER_DAY, as_of_us + 2 * US_PER_HOUR)  # anywhere, weeks back
        | st.integers(week_start_us - 3 * US_PER_DAY, week_start_us + US_PER_DAY)  # around the week's start
        | edges
    )
    stores = {}
    for store_id in draw(st.lists(st.sampled_from(["a", "b", "007", "7", "z"]), min_size=1, max_size=4, unique=True)):
        # Few, short opening rows make polls outside business hours common.
        rows = draw(
            st.lists(
                st.tuples(st.integers(0, 6), st.integers(0, 23 * 4), st.integers(0, 23 * 4)).map(
                    lambda r: (r[0], r[1] * 15 * MINUTE_US, r[2] * 15 * MINUTE_US)
                ),
                max_size=4,
            )
        )
        polls = []
        for _ in range(draw(st.integers(1, 4))):  # bursts of polls, with silences between them
            start = draw(centre)
            count = draw(st.integers(1, 12))
            spacing = draw(st.sampled_from([1, 17 * MINUTE_US, US_PER_HOUR, 5 * US_PER_HOUR]))
            for i in range(count):
                polls.append((start - i * spacing, draw(st.sampled_from(["active", "inactive"]))))
        if draw(st.booleans()):  # a same-instant conflict
            at_us, status = polls[0]
            polls.append((at_us, "inactive" if status == "active" else "active"))
        stores[store_id] = {"zone": draw(st.sampled_from(ZONES)), "rows": rows, "polls": polls}
    return (None if draw(st.integers(0, 4)) == 0 else as_of_us), stores


def load_history(folder: Path, template: Path, stores: dict):
    """`stores` ingested into a copy of the `migrated_sqlite` database (migrating is slow)."""
    polls = write_csv(
        folder,
        "polls.csv",
        "store_id,status,timestamp_utc\n"
        + "".join(f"{s},{status},{text_instant(at)}\n" for s, d in stores.items() for at, status in d["polls"]),
    )
    clock = lambda us: f"{us // US_PER_HOUR:02d}:{us // MINUTE_US % 60:02d}"  # noqa: E731
    hours = write_csv(
        folder,
        "hours.csv",
        "store_id,dayOfWeek,start_time_local,end_time_local\n"
        + "".join(f"{s},{day},{clock(a)},{clock(b)}\n" for s, d in stores.items() for day, a, b in d["rows"]),
    )
    timezones = write_csv(
        folder, "timezones.csv", "store_id,timezone_str\n" + "".join(f"{s},{d['zone']}\n" for s, d in stores.items())
    )
    engine = copy_of_migrated_sqlite(template, folder / "storemon.db")
    ingest_files(engine, [polls, hours, timezones])
    return engine


def full_history_report(engine, as_of_us):
    """The report over every poll in the database: the definition the windowed read must meet."""
    stores = store_keys(engine)
    polls = with_store_ids(read_polls(engine, FAR_PAST_US, 2**62), stores)
    return compute_uptime(polls, read_weekly_schedules(engine, stores.get_column("store_id")), as_of_us)


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_windowed_report_equals_the_full_history_report(migrated_sqlite, history):
    as_of_us, stores = history
    with tempfile.TemporaryDirectory() as folder:
        engine = load_history(Path(folder), migrated_sqlite, stores)
        try:
            windowed = build_report(engine, as_of_us)
            full = full_history_report(engine, windowed.uptime.as_of_us)
        finally:
            engine.dispose()
    # What the examples exercise (pytest --hypothesis-show-statistics).
    event(f"carry-ins looked up further back: {min(windowed.reads.lookback_rounds, 3)} rounds")
    event(f"stores without observations: {min(windowed.stores_without_observations, 1)}+")
    assert windowed.uptime.as_of_us == full.as_of_us
    assert windowed.uptime.exact.equals(full.exact)
    assert windowed.uptime.intervals.equals(full.intervals)
    assert windowed.report.equals(full.report)


def test_a_store_silent_for_weeks_takes_its_old_status_and_costs_one_lookup(tmp_path, migrated_sqlite):
    # Store "old" (24x7, UTC) was last observed inactive 20 days before T, store "now" is polled
    # at T. The week before T reads no poll of "old", yet it is reported, down all week (168 h),
    # from its carry-in: found by seeking its last poll before the margin and reading 2 days there.
    as_of_us = BASE_US
    stores = {
        "old": {"zone": "UTC", "rows": [], "polls": [(as_of_us - 20 * US_PER_DAY, "inactive")]},
        "now": {"zone": "UTC", "rows": [], "polls": [(as_of_us, "active")]},
    }
    engine = load_history(tmp_path, migrated_sqlite, stores)
    result = build_report(engine, None)
    engine.dispose()
    old = result.report.filter(pl.col("store_id") == "old").to_dicts()[0]
    assert old["downtime_last_week"] == 168.0 and old["uptime_last_week"] == 0.0
    assert (result.reads.window_polls, result.reads.older_polls, result.reads.lookback_rounds) == (1, 1, 1)


def test_a_poll_outside_business_hours_just_before_the_week_is_not_the_carry_in(tmp_path, migrated_sqlite):
    # Open Mondays 09:00-17:00 UTC only. T = Wednesday 2024-03-20 00:00, so the week starts on
    # Wednesday 03-13. The last poll before the week (Tuesday 03-12 20:00, active) is outside
    # business hours; the carry-in is Monday 03-11 12:00 (inactive), 2.5 days before the week.
    # The only Monday in the week (03-18) has no observation of its own: 8 h down.
    as_of_us = BASE_US
    assert dt.datetime.fromtimestamp(as_of_us / US, dt.UTC).strftime("%a %H:%M") == "Wed 00:00"
    monday = as_of_us - 9 * US_PER_DAY  # 2024-03-11 00:00
    stores = {
        "m": {
            "zone": "UTC",
            "rows": [(0, 9 * US_PER_HOUR, 17 * US_PER_HOUR)],
            "polls": [(monday + 12 * US_PER_HOUR, "inactive"), (monday + 44 * US_PER_HOUR, "active")],
        },
        "t": {"zone": "UTC", "rows": [], "polls": [(as_of_us, "active")]},
    }
    engine = load_history(tmp_path, migrated_sqlite, stores)
    result = build_report(engine, None)
    engine.dispose()
    row = result.report.filter(pl.col("store_id") == "m").to_dicts()[0]
    assert (row["downtime_last_week"], row["uptime_last_week"]) == (8.0, 0.0)
    assert result.reads.lookback_rounds == 1  # the span from Tuesday's poll back 2 days holds Monday noon


def test_a_report_shard_reads_only_its_stores_and_agrees_with_the_whole(tmp_path, migrated_sqlite):
    stores = {
        name: {"zone": "UTC", "rows": [], "polls": [(BASE_US - k * US_PER_HOUR, "active" if k % 3 else "inactive")]}
        for name in ("a", "b", "c", "d")
        for k in range(1, 4)
    }
    for k, name in enumerate(("a", "b", "c", "d")):
        stores[name]["polls"] = [(BASE_US - (k + i) * US_PER_HOUR, "active" if i % 2 else "inactive") for i in range(5)]
    engine = load_history(tmp_path, migrated_sqlite, stores)
    whole = build_report(engine, None)
    keys = store_keys(engine).sort("store_key")
    shard = build_report(engine, whole.uptime.as_of_us, KeyRange(keys["store_key"][1], keys["store_key"][2]))
    engine.dispose()
    chosen = keys["store_id"][1:3].to_list()
    assert shard.report.get_column("store_id").to_list() == sorted(chosen)
    assert shard.report.equals(whole.report.filter(pl.col("store_id").is_in(chosen)))
    assert shard.reads.window_polls == 10  # 5 polls each of its two stores


def test_a_report_as_of_before_every_poll_is_empty(tmp_path, migrated_sqlite):
    stores = {"a": {"zone": "UTC", "rows": [], "polls": [(BASE_US + 1, "active")]}}
    engine = load_history(tmp_path, migrated_sqlite, stores)
    result = build_report(engine, BASE_US)
    engine.dispose()
    assert result.report.is_empty() and result.uptime.intervals.is_empty()
    assert result.report.schema["store_id"] == pl.String
