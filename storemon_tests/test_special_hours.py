"""Special hours, the fourth feed (SPEC §1 and §4a): reading, loading, and how they change
business time, with the arithmetic beside each number.

Dates used: 2023-12-24 is a Sunday, 2023-12-25 a Monday. Chicago is UTC-6 in winter (CST) and
UTC-5 in summer (CDT); on Sunday 2023-03-12 its clocks jumped 02:00 -> 03:00 (at 08:00 UTC).
Havana is UTC-5 in winter and UTC-4 in summer; on the same Sunday its clocks jumped at local
midnight, 00:00 -> 01:00 (at 05:00 UTC): that date's midnight does not exist.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from storemon_assets.core.business_time import business_intervals_utc, store_local_dates, weekly_schedule
from storemon_assets.core.feeds import SPECIAL
from storemon_assets.core.parsing import BAD_DATE, BAD_TIME, parse_time_of_day_us, read_feed_file
from storemon_assets.core.tables import SPECIAL_HOURS
from storemon_assets.core.uptime import compute_uptime
from storemon_assets.db.engine import open_database
from storemon_assets.db.loading import load_feed, replace_store_schedules
from storemon_assets.db.queries import known_store_ids, read_table, read_weekly_schedules, store_weekly_schedule
from storemon_assets.service import build_report, ingest_files, publish_current_report, stale_partitions
from storemon_assets.settings import sqlite_url
from storemon_tests.helpers import HOUR, at, write_csv
from storemon_tests.reference_model import business_intervals as reference_intervals
from storemon_tests.test_store_pages import client_for

SPECIAL_HEADER = "store_id,date_local,start_time_local,end_time_local\n"
HOURS_HEADER = "store_id,dayOfWeek,start_time_local,end_time_local\n"
SPECIAL_SCHEMA = {"store_id": pl.String, "local_date": pl.Date, "start_time_us": pl.Int64, "end_time_us": pl.Int64}


def _times(rows: list[tuple], day_col: str, day_type) -> pl.DataFrame:
    frame = pl.DataFrame(
        rows, schema={"store_id": pl.String, day_col: day_type, "start": pl.String, "end": pl.String}, orient="row"
    )
    return frame.select(
        "store_id",
        day_col,
        parse_time_of_day_us(pl.col("start")).alias("start_time_us"),
        parse_time_of_day_us(pl.col("end")).alias("end_time_us"),
    )


def schedule_of(zone: str, weekly: list[tuple[int, str, str]], special: list[tuple[str, str | None, str | None]]):
    """Store "s" in `zone`: weekly rows (day, start, end), special rows (date, start, end), None = closed."""
    hours = _times([("s", *r) for r in weekly], "day_of_week", pl.Int8)
    dated = [("s", dt.date.fromisoformat(d), start, end) for d, start, end in special]
    return weekly_schedule(
        hours,
        pl.DataFrame({"store_id": ["s"], "timezone_str": [zone]}),
        pl.Series("store_id", ["s"]),
        _times(dated, "local_date", pl.Date),
    )


def opening_utc(schedule: pl.DataFrame, first: str, last: str) -> list[tuple[str, str]]:
    """Merged business intervals of the local dates first..last, as UTC 'MM-DD HH:MM' pairs."""
    dates = store_local_dates(
        pl.DataFrame({"store_id": ["s"], "a": [dt.date.fromisoformat(first)], "b": [dt.date.fromisoformat(last)]}),
        "a",
        "b",
    )
    intervals = business_intervals_utc(schedule, dates)

    def text(us: int) -> str:
        return (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=us)).strftime("%m-%d %H:%M")

    return [(text(a), text(b)) for a, b in intervals.select("open_us", "close_us").rows()]


def reference_utc(zone, weekly, special, first: str, last: str) -> list[tuple[str, str]]:
    """The same question put to the independent reference model."""

    def us(text):
        return None if text is None else pl.select(parse_time_of_day_us(pl.lit(text))).item()

    rows = [(day, us(a), us(b)) for day, a, b in weekly]
    by_date: dict[dt.date, list] = {}
    for date, a, b in special:
        by_date.setdefault(dt.date.fromisoformat(date), []).append((us(a), us(b)))
    intervals = reference_intervals(rows, zone, dt.date.fromisoformat(first), dt.date.fromisoformat(last), by_date)

    def text(value: int) -> str:
        return (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=value)).strftime("%m-%d %H:%M")

    return [(text(a), text(b)) for a, b in intervals]


# --- business time (SPEC §4a) ----------------------------------------------------------------

EDGE_CASES = {
    # docs/uptime-logic.md §2a: daily 09:00-17:00 and Sunday 22:00 -> 02:00; Sunday 12-24 special
    # 10:00-14:00 replaces both Sunday rows (4 h, nothing past midnight), Monday 12-25 closed:
    # 8 + 4 + 0 + 8 h over 12-23 .. 12-26.
    "the_docs_worked_example": (
        "UTC",
        [(d, "09:00", "17:00") for d in range(7)] + [(6, "22:00", "02:00")],
        [("2023-12-24", "10:00", "14:00"), ("2023-12-25", None, None)],
        ("2023-12-23", "2023-12-26"),
        [("12-23 09:00", "12-23 17:00"), ("12-24 10:00", "12-24 14:00"), ("12-26 09:00", "12-26 17:00")],
    ),
    # Mon-Sun 09:00-17:00 UTC; Christmas Day (Mon 12-25) has a closed row AND a 10:00-12:00 row:
    # the closed row opens nothing, so the date's hours are exactly 10:00-12:00 (2 h instead of 8).
    "closed_row_beside_hours_row": (
        "UTC",
        [(d, "09:00", "17:00") for d in range(7)],
        [("2023-12-25", None, None), ("2023-12-25", "10:00", "12:00")],
        ("2023-12-24", "2023-12-26"),
        [("12-24 09:00", "12-24 17:00"), ("12-25 10:00", "12-25 12:00"), ("12-26 09:00", "12-26 17:00")],
    ),
    # Sunday 22:00 -> Monday 02:00 (overnight), Monday 09:00-17:00; Monday 12-25 closed. The
    # Sunday interval opens on Sunday, so it still runs to Monday 02:00 (4 h); Monday's own
    # 09:00-17:00 is gone. Tuesday has no rows.
    "sunday_overnight_into_a_monday_holiday": (
        "UTC",
        [(6, "22:00", "02:00"), (0, "09:00", "17:00")],
        [("2023-12-25", None, None)],
        ("2023-12-24", "2023-12-26"),
        [("12-24 22:00", "12-25 02:00")],
    ),
    # No weekly rows: open 24x7. Sunday 12-24 shortened to 10:00-14:00, Monday 12-25 closed:
    # open until Sunday 00:00, 10:00-14:00, then nothing until Tuesday 00:00, open from there.
    # Over 12-23 .. 12-26 that is 24 + 4 + 0 + 24 = 52 h (instead of 96).
    "special_dates_on_a_24x7_store": (
        "UTC",
        [],
        [("2023-12-24", "10:00", "14:00"), ("2023-12-25", None, None)],
        ("2023-12-23", "2023-12-26"),
        [("12-23 00:00", "12-24 00:00"), ("12-24 10:00", "12-24 14:00"), ("12-26 00:00", "12-27 00:00")],
    ),
    # Chicago, Sunday 2023-03-12 (spring forward at 02:00 local = 08:00 UTC), special 01:00-04:00:
    # opens 01:00 CST = 07:00 UTC, closes 04:00 CDT = 09:00 UTC: 2 h of real time, not 3.
    "special_date_on_the_spring_forward_sunday": (
        "America/Chicago",
        [(6, "09:00", "17:00")],
        [("2023-03-12", "01:00", "04:00")],
        ("2023-03-11", "2023-03-13"),
        [("03-12 07:00", "03-12 09:00")],
    ),
    # Havana, 24x7, Sunday 2023-03-12 closed; its midnight does not exist (00:00 -> 01:00 at
    # 05:00 UTC). Saturday 03-11 opens at 00:00 CST = 05:00 UTC and runs to the next local
    # midnight, which is the instant the clocks jump: 03-12 05:00 UTC (24 h). Closed from there
    # to Monday 00:00 CDT = 04:00 UTC on 03-13: 23 h, the length of that short local day.
    "closed_on_a_date_whose_midnight_does_not_exist": (
        "America/Havana",
        [],
        [("2023-03-12", None, None)],
        ("2023-03-11", "2023-03-13"),
        [("03-11 05:00", "03-12 05:00"), ("03-13 04:00", "03-14 04:00")],
    ),
    # Havana, 24x7, Sunday 2023-03-12 open 00:00-12:00 only: local 00:00 does not exist, so it
    # opens when the clocks jump, 05:00 UTC, right where Saturday closes: one merged run from
    # Saturday 00:00 CST (03-11 05:00 UTC) to 12:00 CDT = 16:00 UTC (35 h), then closed until
    # Monday 00:00 CDT = 04:00 UTC.
    "short_day_on_a_date_whose_midnight_does_not_exist": (
        "America/Havana",
        [],
        [("2023-03-12", "00:00", "12:00")],
        ("2023-03-11", "2023-03-13"),
        [("03-11 05:00", "03-12 16:00"), ("03-13 04:00", "03-14 04:00")],
    ),
}


@pytest.mark.parametrize("case", list(EDGE_CASES))
def test_special_rows_replace_the_weekly_rows_of_their_date(case):
    # Business time opened on the local dates first..last (zone, weekly rows, special rows).
    zone, weekly, special, (first, last), expected = EDGE_CASES[case]
    assert opening_utc(schedule_of(zone, weekly, special), first, last) == expected
    # The independent reference model reads the SPEC the same way.
    assert reference_utc(zone, weekly, special, first, last) == expected


def test_without_special_rows_business_time_is_the_weekly_one():
    # The same week with and without a special row for a date outside it: identical.
    weekly = [(d, "09:00", "17:00") for d in range(7)]
    with_far_special = schedule_of("America/Chicago", weekly, [("2024-12-25", None, None)])
    without = schedule_of("America/Chicago", weekly, [])
    assert opening_utc(with_far_special, "2023-12-18", "2023-12-26") == opening_utc(without, "2023-12-18", "2023-12-26")


def test_a_poll_on_a_closed_holiday_is_not_an_observation():
    # Open daily 09:00-17:00 UTC. Polls: Sunday 12-24 16:00 active, Monday 12-25 12:00 inactive,
    # Tuesday 12-26 10:00 active. With Monday closed, the Monday poll is no observation: the
    # week before T = Tuesday 12:00 holds Sunday's business time and Tuesday's 09:00-12:00.
    # Without the closure the inactive Monday poll would own Monday's 8 h and parts around it.
    polls = pl.DataFrame(
        {
            "store_id": ["s"] * 3,
            "polled_at_us": [at("2023-12-24 16:00"), at("2023-12-25 12:00"), at("2023-12-26 10:00")],
            "status": ["active", "inactive", "active"],
        }
    )
    weekly = [(d, "09:00", "17:00") for d in range(7)]
    closed = compute_uptime(polls, schedule_of("UTC", weekly, [("2023-12-25", None, None)]), at("2023-12-26 12:00"))
    usual = compute_uptime(polls, schedule_of("UTC", weekly, []), at("2023-12-26 12:00"))
    closed_row, usual_row = closed.exact.row(0, named=True), usual.exact.row(0, named=True)
    # Week [12-19 12:00, 12-26 12:00): 12-19 12:00-17:00 = 5 h, 12-20 .. 12-24 = 5 x 8 h = 40 h,
    # 12-26 09:00-12:00 = 3 h: 48 h of business time, all up (both observations are active).
    assert closed_row["business_week_half_us"] == 2 * 48 * HOUR * 1_000_000
    assert closed_row["down_week_half_us"] == 0
    # With Monday open (8 h more, 56 h): the inactive Monday poll is an observation and owns the
    # time nearer to it than to the active ones; midpoints 12-25 02:00 and 12-25 23:00, so
    # Monday 09:00-17:00 (8 h) is down.
    assert usual_row["business_week_half_us"] == 2 * 56 * HOUR * 1_000_000
    assert usual_row["down_week_half_us"] == 2 * 8 * HOUR * 1_000_000


# --- reading the feed (SPEC §1) --------------------------------------------------------------


def test_a_special_hours_file_is_recognised_by_its_header(tmp_path):
    feed = read_feed_file(
        write_csv(tmp_path, "holidays.csv", SPECIAL_HEADER + "1,2023-12-25,,\n1,2023-12-24,09:00,14:00:30\n")
    )
    assert feed.kind == SPECIAL
    # Both times empty: closed all that date (no times). 14:00:30 = 50,430 s after midnight.
    assert feed.rows.select(SPECIAL_SCHEMA.keys()).rows() == [
        ("1", dt.date(2023, 12, 25), None, None),
        ("1", dt.date(2023, 12, 24), 9 * 3600 * 1_000_000, 50_430 * 1_000_000),
    ]
    assert feed.rejected.is_empty()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("1,2023-02-30,09:00,10:00", BAD_DATE),  # no such date
        ("1,2023-2-1,09:00,10:00", BAD_DATE),  # not YYYY-MM-DD
        ("1,25/12/2023,,", BAD_DATE),
        ("1,,09:00,10:00", BAD_DATE),
        ("1,2023-12-25,09:00,", BAD_TIME),  # one time empty
        ("1,2023-12-25,,17:00", BAD_TIME),
        ("1,2023-12-25,24:00,17:00", BAD_TIME),
        ("1,2023-12-25,9am,5pm", BAD_TIME),
        (",2023-12-25,,", "missing store_id"),
        ("1,2023-12-25,,,", "expected 4 fields, found 5"),
    ],
)
def test_bad_special_hours_rows_are_rejected_with_their_reason(tmp_path, line, reason):
    feed = read_feed_file(write_csv(tmp_path, "s.csv", SPECIAL_HEADER + line + "\n"))
    assert feed.rows.is_empty()
    assert feed.rejected.select("line_number", "raw_text", "reason").rows() == [(2, line, reason)]
    assert reason.split(" (")[0] in ("bad date", "bad time", "missing store_id", "expected 4 fields, found 5")


# --- loading (SPEC §1, §4a: authoritative for the (store, date) pairs it names) ----------------


def _special_rows(engine) -> list[tuple]:
    return (
        read_table(engine, SPECIAL_HOURS)
        .sort("store_id", "local_date", "start_time_us", nulls_last=False)
        .select("store_id", pl.col("local_date").cast(pl.String), "start_time_us", "source_file")
        .rows()
    )


def test_a_special_hours_file_replaces_the_rows_of_the_store_dates_it_names(tmp_path, engine):
    nine, ten = 9 * 3600 * 1_000_000, 10 * 3600 * 1_000_000
    first = SPECIAL_HEADER + "1,2023-12-24,09:00,14:00\n1,2023-12-25,,\n2,2023-12-25,,\n1,2023-12-24,09:00,14:00\n"
    load_feed(engine, read_feed_file(write_csv(tmp_path, "a.csv", first)))
    # The exact repeat of store 1's Sunday row counts once.
    assert _special_rows(engine) == [
        ("1", "2023-12-24", nine, "a.csv"),
        ("1", "2023-12-25", None, "a.csv"),
        ("2", "2023-12-25", None, "a.csv"),
    ]
    # b.csv names (1, 12-25) only: store 1 opens 10:00-12:00 that date instead of being closed;
    # (1, 12-24) and (2, 12-25) stay as a.csv left them. Its rejected row removes nothing.
    second = SPECIAL_HEADER + "1,2023-12-25,10:00,12:00\n2,2023-12-24,25:00,\n"
    outcome = load_feed(engine, read_feed_file(write_csv(tmp_path, "b.csv", second)))
    assert (outcome.kind, outcome.rows_loaded, outcome.rows_rejected) == (SPECIAL, 1, 1)
    assert _special_rows(engine) == [
        ("1", "2023-12-24", nine, "a.csv"),
        ("1", "2023-12-25", ten, "b.csv"),
        ("2", "2023-12-25", None, "a.csv"),
    ]
    # Delivering a.csv again after b.csv makes its rows current again (SPEC §1: authoritative
    # feeds apply in delivery order): store 1 is closed on 12-25 again.
    assert load_feed(engine, read_feed_file(tmp_path / "a.csv")).redelivered
    assert _special_rows(engine) == [
        ("1", "2023-12-24", nine, "a.csv"),
        ("1", "2023-12-25", None, "a.csv"),
        ("2", "2023-12-25", None, "a.csv"),
    ]
    # Delivered again while it is the latest of its kind, it changes nothing.
    assert load_feed(engine, read_feed_file(tmp_path / "a.csv")).already_loaded
    # Stores named only by special hours are known stores (they get partitions).
    assert known_store_ids(engine).to_list() == ["1", "2"]


def test_the_schedule_read_from_the_database_carries_the_special_rows(tmp_path, engine):
    write_csv(tmp_path, "h.csv", HOURS_HEADER + "1,0,09:00,17:00\n")
    write_csv(tmp_path, "s.csv", SPECIAL_HEADER + "1,2023-12-25,,\n2,2023-12-26,10:00,11:00\n")
    ingest_files(engine, [tmp_path / "h.csv", tmp_path / "s.csv"])
    schedule = read_weekly_schedules(engine, pl.Series("store_id", ["1", "2"]))
    special = schedule.filter(pl.col("special_date").is_not_null())
    # Store 1: its Monday row, and Christmas Day closed (day_of_week 0: a Monday).
    # Store 2: no weekly rows (7 around-the-clock rows) and its Tuesday special row.
    assert special.select("store_id", "day_of_week", "start_time_us", "special_date").rows() == [
        ("1", 0, None, dt.date(2023, 12, 25)),
        ("2", 1, 10 * 3600 * 1_000_000, dt.date(2023, 12, 26)),
    ]
    assert schedule.filter(pl.col("special_date").is_null()).group_by("store_id").len().sort("store_id").rows() == [
        ("1", 1),
        ("2", 7),
    ]
    assert store_weekly_schedule(engine, "1").equals(schedule.filter(pl.col("store_id") == "1"))


def test_the_report_from_the_database_honours_special_hours(tmp_path, engine):
    # Store 1 open Monday 09:00-17:00 UTC, polled active Monday 12-18 12:00 and inactive
    # Monday 12-25 12:00; T = 12-25 18:00. Week [12-18 18:00, 12-25 18:00) holds Monday
    # 12-25 09:00-17:00 only (12-18's hours end before the window): 8 h, all down.
    # With 12-25 closed by special hours, the week has no business time at all, and the
    # 12-25 poll is no observation (12-18's active poll is the carry-in): 0 and 0.
    write_csv(tmp_path, "h.csv", HOURS_HEADER + "1,0,09:00,17:00\n")
    write_csv(tmp_path, "z.csv", "store_id,timezone_str\n1,UTC\n")
    write_csv(
        tmp_path,
        "p.csv",
        "store_id,status,timestamp_utc\n1,active,2023-12-18 12:00:00 UTC\n1,inactive,2023-12-25 12:00:00 UTC\n",
    )
    ingest_files(engine, [tmp_path / name for name in ("h.csv", "z.csv", "p.csv")])
    as_of = at("2023-12-25 18:00")
    assert build_report(engine, as_of).report.row(0, named=True)["downtime_last_week"] == 8.0
    ingest_files(engine, [write_csv(tmp_path, "s.csv", SPECIAL_HEADER + "1,2023-12-25,,\n")])
    row = build_report(engine, as_of).report.row(0, named=True)
    assert (row["uptime_last_week"], row["downtime_last_week"]) == (0.0, 0.0)


def test_the_store_page_lists_special_hours_and_its_week_honours_them(tmp_path):
    # Store "up": no weekly rows (24x7, UTC), Sunday 2023-01-15 closed, Monday 01-16 open
    # 08:00-20:00 only. Polls active at 01-16 06:00 (outside those hours: no observation) and
    # 18:00 = T. Week [01-09 18:00, 01-16 18:00): 01-09 18:00 .. 01-15 00:00 = 126 h, then
    # 01-16 08:00-18:00 = 10 h: 136 h of business time, all up.
    engine = open_database(sqlite_url(tmp_path / "storemon.db"))
    files = [
        write_csv(tmp_path, "p.csv", "store_id,status,timestamp_utc\nup,active,2023-01-16 06:00:00 UTC\n"),
        write_csv(tmp_path, "q.csv", "store_id,status,timestamp_utc\nup,active,2023-01-16 18:00:00 UTC\n"),
        write_csv(tmp_path, "z.csv", "store_id,timezone_str\nup,UTC\n"),
        write_csv(tmp_path, "s.csv", SPECIAL_HEADER + "up,2023-01-15,,\nup,2023-01-16,08:00,20:00\n"),
    ]
    ingest_files(engine, files)
    publish_current_report(engine, build_report(engine), "report-1")
    with client_for(engine) as client:
        body = client.get("/stores/up").json()
    assert len(body["schedule"]) == 7  # the weekly rows only: around the clock
    assert body["special_hours"] == [
        {"date": "2023-01-15", "opens": None, "closes": None},
        {"date": "2023-01-16", "opens": "08:00", "closes": "20:00"},
    ]
    assert body["report"]["uptime_last_week"] == 136.0
    assert [(i["start_utc"][:16], i["end_utc"][:16]) for i in body["intervals"]] == [
        ("2023-01-09T18:00", "2023-01-15T00:00"),
        ("2023-01-16T08:00", "2023-01-16T18:00"),
    ]


def test_a_new_special_row_makes_only_its_stores_partition_stale(tmp_path, engine):
    write_csv(tmp_path, "h.csv", HOURS_HEADER + "1,0,09:00,17:00\n2,0,09:00,17:00\n")
    ingest_files(engine, [tmp_path / "h.csv"])
    stores = ["1", "2"]
    replace_store_schedules(engine, read_weekly_schedules(engine, pl.Series("store_id", stores)), stores)
    assert stale_partitions(engine, stores)[0].to_list() == []
    ingest_files(engine, [write_csv(tmp_path, "s.csv", SPECIAL_HEADER + "1,2023-12-25,,\n")])
    stale, derived = stale_partitions(engine, stores)
    assert stale.to_list() == ["1"]
    # Materialising it stores the closed row (null times) as it reads back: current again.
    replace_store_schedules(engine, derived.filter(pl.col("store_id") == "1"), ["1"])
    assert stale_partitions(engine, stores)[0].to_list() == []
