"""Daily values (SPEC §8) and the monthly SLA: hand-computed days, the independent reference
model (reference_model.store_daily) on generated stores near DST changes, and the database
path (stored rows reused only while they hold, chunked computation) against the pure one."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storemon_assets.core.business_time import weekly_schedule
from storemon_assets.core.daily import (
    DAILY_VALUES_SCHEMA,
    daily_csv_frame,
    daily_from_polls,
    fleet_uptime_by_date,
    fleet_uptime_pct,
    month_dates,
    monthly_sla,
)
from storemon_assets.db.engine import open_database
from storemon_assets.history import DailyHistory, daily_history
from storemon_assets.service import ingest_files
from storemon_tests.helpers import at, examples, scenario_frames, write_csv
from storemon_tests.reference_model import store_daily
from storemon_tests.test_uptime_properties import scenarios

HALF_US_PER_MINUTE = 2 * 60_000_000
POLLS_HEADER = "store_id,status,timestamp_utc\n"


def frames(polls, hours=(), zones=None):
    """polls: (store, 'YYYY-MM-DD HH:MM' UTC, status); hours: (store, day, start_us, end_us)."""
    poll_frame = pl.DataFrame(
        [(s, at(t), status) for s, t, status in polls],
        schema={"store_id": pl.String, "polled_at_us": pl.Int64, "status": pl.String},
        orient="row",
    )
    hours_frame = pl.DataFrame(
        list(hours),
        schema={"store_id": pl.String, "day_of_week": pl.Int8, "start_time_us": pl.Int64, "end_time_us": pl.Int64},
        orient="row",
    )
    zone_frame = pl.DataFrame(
        list((zones or {}).items()), schema={"store_id": pl.String, "timezone_str": pl.String}, orient="row"
    )
    return poll_frame, weekly_schedule(hours_frame, zone_frame, poll_frame.get_column("store_id"))


def one_range(store: str, first: str, last: str) -> pl.DataFrame:
    return pl.DataFrame(
        {"store_id": [store], "first_date": [dt.date.fromisoformat(first)], "last_date": [dt.date.fromisoformat(last)]}
    )


def minutes(values: pl.DataFrame) -> dict[str, tuple[float, float, float]]:
    return {
        r["date_local"]: (r["business_minutes"], r["uptime_minutes"], r["downtime_minutes"])
        for r in daily_csv_frame(values).to_dicts()
    }


def test_a_spring_forward_day_has_23_hours_and_a_fall_back_day_25():
    # A 24x7 store in Chicago, always active. 2024-03-10: clocks go 02:00 CST -> 03:00 CDT, so
    # the day runs 06:00 UTC (midnight CST) to 05:00 UTC on the 11th (midnight CDT): 23 h =
    # 1380 min. 2024-11-03: 01:00 CDT -> 01:00 CST, midnight CDT 05:00 UTC to midnight CST
    # 06:00 UTC on the 4th: 25 h = 1500 min. The days around them have 24 h = 1440 min.
    polls, schedule = frames([("s", "2024-03-09 12:00", "active"), ("s", "2024-11-05 12:00", "active")])
    values = daily_from_polls(polls, schedule, at("2024-11-05 12:00"), one_range("s", "2024-03-09", "2024-11-04"))
    got = minutes(values)
    assert got["2024-03-09"] == (1440.0, 1440.0, 0.0)
    assert got["2024-03-10"] == (1380.0, 1380.0, 0.0)
    assert got["2024-03-11"] == (1440.0, 1440.0, 0.0)
    assert got["2024-11-03"] == (1500.0, 1500.0, 0.0)
    assert got["2024-11-04"] == (1440.0, 1440.0, 0.0)


def test_a_day_whose_midnight_does_not_exist_starts_when_the_clocks_jump():
    # America/Havana, 2023-03-12: at 00:00 CST (05:00 UTC) the clocks jump to 01:00 CDT, so
    # midnight of the 12th does not exist; the day starts at the jump (05:00 UTC) and ends at
    # midnight CDT of the 13th (04:00 UTC): 23 h = 1380 min. The 11th runs from 05:00 UTC to
    # the jump, 24 h. Polls: active 11th 12:00 UTC, inactive 12th 12:00 UTC; midpoint 12th
    # 00:00 UTC, so the 11th is up until 00:00 UTC on the 12th (19 h = 1140 min) and down for
    # its last 5 h (300 min); the 12th is all down.
    polls, schedule = frames(
        [("s", "2023-03-11 12:00", "active"), ("s", "2023-03-12 12:00", "inactive")], zones={"s": "America/Havana"}
    )
    values = daily_from_polls(polls, schedule, at("2023-03-14 00:00"), one_range("s", "2023-03-11", "2023-03-12"))
    got = minutes(values)
    assert got["2023-03-11"] == (1440.0, 1140.0, 300.0)
    assert got["2023-03-12"] == (1380.0, 0.0, 1380.0)


def test_the_worked_example_split_at_midnight_and_only_the_part_before_t():
    # Chicago (CST, UTC-6), open 22:00-02:00 every day; active Mon 2023-01-16 23:00 local (05:00
    # UTC 17th), inactive Tue 01:30 local (07:30 UTC 17th). Midpoint 00:15 local Tue. Monday
    # holds Sunday's overnight 00:00-02:00 and its own 22:00-24:00, all before the first
    # observation: 240 min up. Tuesday's 00:00-02:00 is up 15 min, down 105 min, and its
    # own 22:00 opening is before T = Tue 23:00 local (05:00 UTC 18th): 60 min more down.
    hours = [("s", day, 22 * 3_600_000_000, 2 * 3_600_000_000) for day in range(7)]
    polls, schedule = frames(
        [("s", "2023-01-17 05:00", "active"), ("s", "2023-01-17 07:30", "inactive")], hours, {"s": "America/Chicago"}
    )
    values = daily_from_polls(polls, schedule, at("2023-01-18 05:00"), one_range("s", "2023-01-16", "2023-01-18"))
    got = minutes(values)
    assert got["2023-01-16"] == (240.0, 240.0, 0.0)
    assert got["2023-01-17"] == (180.0, 15.0, 165.0)
    assert "2023-01-18" not in got  # starts at 06:00 UTC on the 18th, after T


def test_a_store_without_observations_has_business_minutes_but_no_uptime_or_downtime():
    # Open 09:00-10:00 UTC only; its one poll (12:00) is outside business time.
    polls, schedule = frames(
        [("s", "2023-01-16 12:00", "active")], [("s", 0, 9 * 3_600_000_000, 10 * 3_600_000_000)], {"s": "UTC"}
    )
    values = daily_from_polls(polls, schedule, at("2023-01-17 00:00"), one_range("s", "2023-01-16", "2023-01-16"))
    assert minutes(values) == {"2023-01-16": (60.0, 0.0, 0.0)}
    assert values.get_column("final_from_us").to_list() == [None]


@settings(max_examples=examples(120), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.integers(1, 9))
def test_daily_values_match_the_literal_reading_of_the_spec(scenario, days_back):
    as_of_us, stores = scenario
    polls, hours, zones = scenario_frames(stores)
    schedule = weekly_schedule(hours, zones, polls.get_column("store_id"))
    last = (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=as_of_us)).date() + dt.timedelta(days=1)
    first = last - dt.timedelta(days=days_back)
    ranges = pl.DataFrame({"store_id": list(stores)}).with_columns(
        pl.lit(first).alias("first_date"), pl.lit(last).alias("last_date")
    )
    values = daily_from_polls(polls, schedule, as_of_us, ranges)
    got = {(r["store_id"], r["local_date"]): r for r in values.to_dicts()}
    for store_id, data in stores.items():
        dates = [first + dt.timedelta(days=i) for i in range(days_back + 1)]
        expected = store_daily(data["polls"], data["rows"], data["zone"], as_of_us, dates)
        for date, (business, up, down) in expected.items():
            row = got.get((store_id, date))
            if row is None:  # the day starts at or after T: no part before T
                assert business == 0
                continue
            assert (row["business_half_us"], row["up_half_us"], row["down_half_us"]) == (
                2 * business,
                2 * up,
                2 * down,
            ), f"{store_id} {date}"
        # The daily values of these consecutive dates sum to their business time, which the
        # reference computes from the merged business intervals of the whole span at once.
        total = sum(row["business_half_us"] for (s, _), row in got.items() if s == store_id)
        assert total == 2 * sum(b for b, _, _ in expected.values())


@settings(deadline=None)  # a few polars frames per example: timing varies with the machine's load
@given(scenarios())
def test_the_report_run_cuts_the_refreshed_dates_from_its_intervals_exactly(scenario):
    # The Dagster report run stores the dates an hourly refresh asks for (UTC date(T) - 2 to
    # each store's date of T) from its own observations and status intervals of the week
    # (core/daily.py, current_daily_values): every value, final_from_us too, equals the
    # computation of the same days from all polls.
    from storemon_assets.core.business_time import store_zones
    from storemon_assets.core.daily import current_daily_values, refreshed_dates
    from storemon_assets.core.uptime import compute_uptime, polls_observations

    as_of_us, stores = scenario
    polls, hours, zones = scenario_frames(stores)
    polled = polls.filter(pl.col("polled_at_us") <= as_of_us)
    schedule = weekly_schedule(hours, zones, polled.get_column("store_id"))
    report = compute_uptime(polls, schedule, as_of_us)
    obs = polls_observations(polled, schedule)
    got = current_daily_values(obs, report.intervals, store_zones(schedule), as_of_us)
    expected = daily_from_polls(polls, schedule, as_of_us, refreshed_dates(store_zones(schedule), as_of_us))
    assert got.equals(expected)
    assert got.height >= 2 * polled.get_column("store_id").n_unique()  # at least UTC date(T) - 2 and - 1


def test_a_report_run_leaves_the_refresh_nothing_to_compute(sample_engine):
    # build_report(store_daily=True), as the Dagster report run calls it, stores the refreshed
    # dates as of T; the daily partitions run of the refresh then reads them all (no poll) and
    # they equal a computation from scratch.
    from storemon_assets.core.daily import refresh_ranges
    from storemon_assets.service import build_report

    report = build_report(sample_engine, store_daily=True)
    t = report.uptime.as_of_us
    no_files = pl.DataFrame(schema={"first_poll_us": pl.Int64, "last_poll_us": pl.Int64})
    ((first, last),) = refresh_ranges(t, no_files, dt.date(2000, 1, 1), dt.date(2100, 1, 1))
    refresh = daily_history(sample_engine, t, first_date=first, last_date=last, write=True)
    assert (refresh.computed_rows, refresh.stored_rows) == (0, refresh.values.height) and refresh.values.height >= 200
    fresh = daily_history(sample_engine, t, first_date=first, last_date=last, use_stored=False)
    assert refresh.values.equals(fresh.values)


def test_sla_hours_and_the_uptime_share_of_a_month_without_observed_time():
    # Two stores' daily values in half-µs: "a" 3 days of 8 h business, up 20 h, down 4 h ->
    # 24.00 / 20.00 / 4.00 h and 20 / 24 = 83.333..% -> 83.33; "b" never observed: 5 h of
    # business, no up or down -> uptime_pct empty (nothing to measure).
    hour = 2 * 3_600_000_000
    values = pl.DataFrame(
        {
            "store_id": ["a", "a", "a", "b"],
            "business_half_us": [8 * hour] * 3 + [5 * hour],
            "up_half_us": [8 * hour, 8 * hour, 4 * hour, 0],
            "down_half_us": [0, 0, 4 * hour, 0],
        }
    )
    sla = monthly_sla(values, "2023-01").to_dicts()
    assert sla == [
        {
            "store_id": "a",
            "month": "2023-01",
            "business_hours": 24.0,
            "uptime_hours": 20.0,
            "downtime_hours": 4.0,
            "uptime_pct": 83.33,
        },
        {
            "store_id": "b",
            "month": "2023-01",
            "business_hours": 5.0,
            "uptime_hours": 0.0,
            "downtime_hours": 0.0,
            "uptime_pct": None,
        },
    ]
    assert month_dates("2024-02") == (dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    with pytest.raises(ValueError, match="YYYY-MM"):
        month_dates("2024/02")


@pytest.fixture
def sample_engine(engine):
    """The bundled sample loaded into each database storemon runs on (conftest's `engine`)."""
    from storemon_assets import settings

    ingest_files(engine, sorted(settings.SAMPLE_DATA_DIR.glob("*.csv")))
    return engine


def test_the_database_path_equals_the_whole_history_in_memory_in_small_chunks(sample_engine, monkeypatch):
    from storemon_assets import history
    from storemon_assets.core.tables import STORE_STATUS_POLLS, STORES
    from storemon_assets.db.queries import read_table, read_weekly_schedules

    # Several chunks of 3 days (100 stores x 3 days), each with carry-ins and carry-outs.
    monkeypatch.setattr(history, "CHUNK_DAYS", 3)
    monkeypatch.setattr(history, "CHUNK_STORE_DAYS", 300)
    result = daily_history(sample_engine, days=10, use_stored=False)
    keys = read_table(sample_engine, STORES)
    polls = read_table(sample_engine, STORE_STATUS_POLLS).join(keys, on="store_key").drop("store_key")
    schedule = read_weekly_schedules(sample_engine, keys.get_column("store_id"))
    ranges = result.values.group_by("store_id").agg(
        pl.col("local_date").min().alias("first_date"), pl.col("local_date").max().alias("last_date")
    )
    expected = daily_from_polls(polls, schedule, result.as_of_us, ranges)
    assert result.values.height == 100 * 11  # 10 days meet 11 local dates per store here
    assert result.values.equals(expected)


def test_stored_values_are_reused_only_while_they_hold(sample_engine, tmp_path):
    first = daily_history(sample_engine, days=10, write=True)
    assert (first.stored_rows, first.computed_rows) == (0, 1100)
    again = daily_history(sample_engine, days=10)
    assert (again.stored_rows, again.computed_rows) == (1100, 0) and again.values.equals(first.values)
    # A late poll for a store, three days before T: rows that depended on instants at or after
    # it are computed again; the result equals a computation from scratch.
    store = first.values.get_column("store_id")[0]
    late = write_csv(tmp_path, "late.csv", POLLS_HEADER + f"{store},inactive,2023-01-22 15:00:00 UTC\n")
    ingest_files(sample_engine, [late])
    t = first.as_of_us
    after = daily_history(sample_engine, t, days=10)
    assert 0 < after.computed_rows < 1100
    assert after.values.equals(daily_history(sample_engine, t, days=10, use_stored=False).values)


def test_stored_rows_read_back_exactly_including_nulls_one_store_and_no_rows(sample_engine):
    # Stored packed (a row per date and shard of 1,024 store keys): every value, a null
    # final_from_us, stores in two shards (keys 3 and 1027), a one-store read, a rewrite of one
    # store's value that keeps its shard neighbours, and an empty range come back as written.
    from storemon_assets.db.history import STORED_DAILY_SCHEMA, read_daily, stored_daily_count, write_daily

    rows = pl.DataFrame(
        {
            "local_date": [dt.date(2023, 1, 1), dt.date(2023, 1, 1), dt.date(2023, 1, 1), dt.date(2023, 1, 2)],
            "store_key": [3, 7, 1027, 3],
            "business_half_us": [0, 2 * 86_400_000_000, 5, 7],
            "up_half_us": [0, 86_400_000_001, 2, 3],
            "down_half_us": [0, 86_399_999_999, 3, 4],
            "final_from_us": [None, 1_672_617_600_000_000, -(2**62), -5],
            "as_of_us": [1_672_700_000_000_000] * 4,
            "computed_at_us": [1_700_000_000_000_000, 1_700_000_000_000_001, 1, 1_700_000_000_000_002],
        },
        schema=STORED_DAILY_SCHEMA,
    )
    before = stored_daily_count(sample_engine)
    write_daily(sample_engine, rows)
    assert stored_daily_count(sample_engine) == before + 4
    everything = read_daily(sample_engine, dt.date(2023, 1, 1), dt.date(2023, 1, 2))
    assert everything.equals(rows.sort("local_date", "store_key"))
    one = read_daily(sample_engine, dt.date(2023, 1, 1), dt.date(2023, 1, 2), 3)
    assert one.equals(rows.filter(pl.col("store_key") == 3))
    changed = rows.filter(pl.col("store_key") == 7).with_columns(pl.lit(None, pl.Int64).alias("final_from_us"))
    write_daily(sample_engine, changed)  # store 3's and 1027's values of that date stay
    again = read_daily(sample_engine, dt.date(2023, 1, 1), dt.date(2023, 1, 2))
    assert again.equals(pl.concat([rows.filter(pl.col("store_key") != 7), changed]).sort("local_date", "store_key"))
    assert stored_daily_count(sample_engine) == before + 4
    none = read_daily(sample_engine, dt.date(2023, 1, 3), dt.date(2023, 1, 9))
    assert none.is_empty() and none.schema == rows.schema


def test_special_hours_close_a_day_and_shorten_another(tmp_path):
    # A 24x7 store in UTC, active at 12:00 on the 16th and the 20th. Special hours (SPEC 4a):
    # closed all of Tuesday the 17th, open only 09:00-12:00 on Thursday the 19th. Daily values:
    # 16th, 18th: 1440 business minutes; 17th: none; 19th: 180; all up (only active polls).
    engine = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    files = [
        write_csv(
            tmp_path, "polls.csv", POLLS_HEADER + "s,active,2023-01-16 12:00:00 UTC\ns,active,2023-01-20 12:00:00 UTC\n"
        ),
        write_csv(tmp_path, "zones.csv", "store_id,timezone_str\ns,UTC\n"),
        write_csv(
            tmp_path,
            "special.csv",
            "store_id,date_local,start_time_local,end_time_local\ns,2023-01-17,,\ns,2023-01-19,09:00,12:00\n",
        ),
    ]
    ingest_files(engine, files)
    got = minutes(daily_history(engine, days=4).values)
    assert got == {
        "2023-01-16": (1440.0, 1440.0, 0.0),
        "2023-01-17": (0.0, 0.0, 0.0),
        "2023-01-18": (1440.0, 1440.0, 0.0),
        "2023-01-19": (180.0, 180.0, 0.0),
        "2023-01-20": (720.0, 720.0, 0.0),  # up to T = the last poll, 12:00
    }
    engine.dispose()


def test_the_daily_and_sla_commands_write_the_specs_csvs(tmp_path, monkeypatch, capsys):
    from storemon_assets import settings
    from storemon_assets.cli import main

    monkeypatch.setenv("STOREMON_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite'}")
    engine = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    ingest_files(engine, sorted(settings.SAMPLE_DATA_DIR.glob("*.csv")))
    engine.dispose()
    assert main(["daily", "--out", str(tmp_path / "daily.csv"), "--days", "3", "--quiet"]) == 0
    daily = pl.read_csv(tmp_path / "daily.csv", schema_overrides={"store_id": pl.String})
    assert daily.columns == ["store_id", "date_local", "business_minutes", "uptime_minutes", "downtime_minutes"]
    # T = 2023-01-25 18:12:56 UTC: 3 days back meets 4 local dates in every store's zone here.
    assert daily.height == 100 * 4 and daily.equals(daily.sort("store_id", "date_local"))
    assert "400 store-days" in capsys.readouterr().err
    assert main(["sla", "--month", "2023-01", "--out", str(tmp_path / "sla.csv"), "--quiet"]) == 0
    sla = pl.read_csv(tmp_path / "sla.csv", schema_overrides={"store_id": pl.String})
    assert sla.columns == ["store_id", "month", "business_hours", "uptime_hours", "downtime_hours", "uptime_pct"]
    assert sla.height == 100 and (sla.get_column("month") == "2023-01").all()
    # A month's uptime + downtime never exceeds its business hours (equal for observed stores).
    assert sla.filter(pl.col("uptime_hours") + pl.col("downtime_hours") > pl.col("business_hours") + 0.011).height == 0
    assert main(["sla", "--month", "January", "--out", str(tmp_path / "x.csv")]) == 2
    assert "expected YYYY-MM" in capsys.readouterr().err
    assert main(["db", "prune", "--retention-days", "5"]) == 2
    assert "keep at least 8 days" in capsys.readouterr().err


def test_the_csv_file_has_the_same_text_as_the_rounded_minutes(tmp_path):
    # The file is written from exact decimals (fast), the API reads rounded floats: the same
    # digits. Half-µs per minute = 120,000,000, so a hundredth of a minute is 1,200,000 half-µs:
    # 600,000 is exactly half a hundredth (rounds away from zero to 0.01), 599,999 just under
    # (0.00), 1440 minutes + 1,799,999 is 1440.01 (1.4999... hundredths), 0 is 0.00.
    from storemon_assets.history import DailyHistory, write_daily_csv

    minute = HALF_US_PER_MINUTE
    values = pl.DataFrame(
        {
            "store_id": ["a", "a", "b", "c"],
            "local_date": [dt.date(2023, 1, 1), dt.date(2023, 1, 2), dt.date(2023, 1, 1), dt.date(2023, 1, 1)],
            "business_half_us": [600_000, 1440 * minute + 1_799_999, 599_999, 0],
            "up_half_us": [600_000, 1440 * minute, 0, 0],
            "down_half_us": [0, 1_799_999, 599_999, 0],
            "final_from_us": [None, None, None, None],
        },
        schema=DAILY_VALUES_SCHEMA,
    )
    target = tmp_path / "daily.csv"
    write_daily_csv(DailyHistory(0, values), target)
    assert target.read_text() == (
        "store_id,date_local,business_minutes,uptime_minutes,downtime_minutes\n"
        "a,2023-01-01,0.01,0.01,0.00\n"
        "a,2023-01-02,1440.01,1440.00,0.01\n"
        "b,2023-01-01,0.00,0.00,0.00\n"
        "c,2023-01-01,0.00,0.00,0.00\n"
    )
    assert target.read_text() == daily_csv_frame(values).write_csv(float_precision=2)


def test_fleet_uptime_by_date_weights_each_store_by_its_observed_time():
    minute = 60_000_000 * 2  # half-microseconds
    values = pl.DataFrame(
        {
            "store_id": ["a", "b", "a", "b"],
            "local_date": [dt.date(2023, 1, 2), dt.date(2023, 1, 2), dt.date(2023, 1, 1), dt.date(2023, 1, 1)],
            "up_half_us": [30 * minute, 90 * minute, 0, 0],
            "down_half_us": [30 * minute, 0, 0, 0],
        }
    )
    by_date = fleet_uptime_by_date(values)
    assert by_date.get_column("date").to_list() == ["2023-01-01", "2023-01-02"]
    assert by_date.get_column("stores").to_list() == [2, 2]
    # 01-02: (30 + 90) up of (30 + 90 + 30) observed = 80 %; 01-01: nothing observed
    assert by_date.get_column("fleet_uptime_pct")[1] == 80.0
    assert fleet_uptime_pct(values) == 80.0
    assert fleet_uptime_pct(values.filter(pl.col("local_date") == dt.date(2023, 1, 1))) is None
    assert fleet_uptime_pct(values.clear()) is None  # no values: no figure
    # The Dagster asset's figures: over both dates 80 %; the newest date, 01-02, 80 % too; nothing
    # observed on 01-01 alone (its values are the newest once 01-02 is cut off): no figure.
    figures = DailyHistory(at("2023-01-03 00:00"), values, stored_rows=1, computed_rows=3).figures()
    assert figures == {
        "as_of": "2023-01-03T00:00:00.000000Z",
        "fleet_uptime_pct": 80.0,
        "fleet_uptime_pct_newest_date": 80.0,
        "store_days": 4,
        "rows_computed": 3,
        "rows_already_holding": 1,
    }
    first_day = DailyHistory(None, values.filter(pl.col("local_date") == dt.date(2023, 1, 1))).figures()
    assert first_day == {"as_of": "(no polls loaded)", "store_days": 2, "rows_computed": 0, "rows_already_holding": 0}


@pytest.mark.parametrize("writer", ["daily", "report"])
def test_an_output_that_is_not_a_regular_file_is_written_into_not_replaced(tmp_path, writer):
    # `--out /dev/null` as root used to rename a temporary file over the device. A pipe stands in
    # for it: opened for reading first (without waiting), it must still be a pipe after the write
    # and hold the CSV (a few lines: less than the pipe's buffer, so the write does not block).
    import os
    import stat

    from storemon_assets.history import DailyHistory, write_daily_csv
    from storemon_assets.publication import write_report_text

    pipe = tmp_path / "out.csv"
    os.mkfifo(pipe)
    reader = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if writer == "daily":
            values = pl.DataFrame(
                {"store_id": ["a"], "local_date": [dt.date(2023, 1, 1)], "business_half_us": [0], "up_half_us": [0]}
                | {"down_half_us": [0], "final_from_us": [None]},
                schema=DAILY_VALUES_SCHEMA,
            )
            write_daily_csv(DailyHistory(0, values), pipe)
            expected = (
                "store_id,date_local,business_minutes,uptime_minutes,downtime_minutes\na,2023-01-01,0.00,0.00,0.00\n"
            )
        else:
            from storemon_assets.core.tables import UPTIME_REPORT
            from storemon_assets.core.uptime import report_csv

            report = pl.DataFrame(schema=UPTIME_REPORT.polars_schema)
            write_report_text(report, pipe)
            expected = report_csv(report)
        assert stat.S_ISFIFO(os.stat(pipe).st_mode)
        assert os.read(reader, 65_536).decode() == expected
    finally:
        os.close(reader)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]  # no temporary file left


def test_packed_rows_unpack_whatever_size_was_expected_and_a_short_row_is_refused():
    # read_daily sizes the columns by a count read just before the rows (a write may come in
    # between): too small, they grow; too large, they are cut; a row whose bytes hold fewer
    # values than its count says is refused rather than read misaligned.
    from storemon_assets.db.history import STORED_DAILY_SCHEMA, _pack, _unpack

    values = pl.DataFrame(
        {
            "local_date": [dt.date(2023, 1, 1)] * 3 + [dt.date(2023, 1, 2)] * 2,
            "store_key": [1, 2, 1500, 1, 2],
            "business_half_us": [10, 20, 30, 40, 50],
            "up_half_us": [1, 2, 3, 4, 5],
            "down_half_us": [9, 18, 27, 36, 45],
            "final_from_us": [None, 5, 6, None, 7],
            "as_of_us": [100] * 5,
            "computed_at_us": [200] * 5,
        },
        schema=STORED_DAILY_SCHEMA,
    )
    rows = [
        (day, count, packed) for day, _shard, count, packed in _pack(values)
    ]  # 3 rows: (1st, 0), (1st, 1), (2nd, 0)
    for expected in (0, 1, 5, 9):
        assert _unpack(iter(rows), expected).equals(values), expected
    assert _unpack(iter([]), 4).equals(values.clear())
    day, count, packed = rows[0]
    # rows[0], the 1st's shard 0, holds keys 1 and 2 (1500 // 1024 = 1): 2 records of 52 bytes; 104 // 2 = 52: one.
    with pytest.raises(ValueError, match="holds 1 values, not 2"):
        _unpack(iter([(day, count, packed[: len(packed) // 2])]), 2)
