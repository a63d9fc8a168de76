"""Reading and loading the three feeds (SPEC §1): formats, quirks, rejections, idempotency."""

from __future__ import annotations

import hashlib

import polars as pl
import pytest
import sqlalchemy as sa

from storemon_assets.core.feeds import HOURS, POLLS, TIMEZONES
from storemon_assets.core.parsing import BAD_TIMESTAMP, FeedFileError, read_feed_file
from storemon_assets.core.tables import (
    BUSINESS_HOURS,
    INGESTED_FILES,
    REJECTED_ROWS,
    STORE_STATUS_POLLS,
    STORE_TIMEZONES,
    STORES,
)
from storemon_assets.db.engine import create_db_engine, open_database
from storemon_assets.db.loading import load_feed
from storemon_assets.db.queries import known_store_ids, read_table, read_weekly_schedules, rejected_counts
from storemon_assets.settings import sqlite_url
from storemon_tests.conftest import shared_data
from storemon_tests.helpers import at, examples, write_csv

# Every loading rule holds on both databases: the `engine` fixture (conftest.py) is each in turn.


# --- timestamps and polls ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected_utc"),
    [
        ("2023-01-22 12:09:39.388884 UTC", "2023-01-22 12:09:39.388884"),  # the real feed
        ("2023-01-22 12:09:39.3 UTC", "2023-01-22 12:09:39.300000"),  # 1-digit fraction
        ("2023-01-22 12:09:39 UTC", "2023-01-22 12:09:39"),
        ("2023-01-22T12:09:39Z", "2023-01-22 12:09:39"),
        ("2023-01-22T12:09:39.123+00:00", "2023-01-22 12:09:39.123"),
        ("2023-01-22T12:09:39", "2023-01-22 12:09:39"),  # no suffix: UTC
        ("2023-01-22T07:09:39-05:00", "2023-01-22 12:09:39"),  # other offsets convert
        ("2023-01-22T17:39:39+05:30", "2023-01-22 12:09:39"),
    ],
)
def test_timestamp_formats_are_read_as_utc(tmp_path, text, expected_utc):
    feed = read_feed_file(write_csv(tmp_path, "p.csv", f"store_id,status,timestamp_utc\n1,active,{text}\n"))
    assert feed.rows.get_column("polled_at_us").to_list() == [at(expected_utc)]


def test_poll_columns_may_come_in_any_order_and_status_is_trimmed_and_case_insensitive(tmp_path):
    feed = read_feed_file(
        write_csv(tmp_path, "p.csv", "timestamp_utc,status,store_id\n2023-01-22 12:00:00 UTC, Inactive ,007\n")
    )
    assert feed.kind == POLLS
    assert feed.rows.select("store_id", "status").row(0) == ("007", "inactive")


def test_bad_poll_rows_are_rejected_with_line_raw_text_and_reason(tmp_path):
    text = (
        "store_id,status,timestamp_utc\n"
        "1,active,2023-01-22 12:09:39 UTC\n"
        "2,sleeping,2023-01-22 12:09:39 UTC\n"
        "3,active,2023-02-30 12:09:39 UTC\n"
        ",active,2023-01-22 12:09:39 UTC\n"
        "5,active\n"
    )
    feed = read_feed_file(write_csv(tmp_path, "p.csv", text))
    assert feed.rows.height == 1
    rejected = {r["line_number"]: r for r in feed.rejected.to_dicts()}
    assert rejected[3]["reason"].startswith("unknown status")
    assert rejected[3]["raw_text"] == "2,sleeping,2023-01-22 12:09:39 UTC"
    assert rejected[4]["reason"].startswith("bad timestamp_utc")  # 30 February
    assert rejected[5]["reason"] == "missing store_id"
    assert rejected[6]["reason"] == "expected 3 fields, found 2"


# --- business hours ---------------------------------------------------------------------------


def test_hours_accept_day_or_dayofweek_and_times_with_or_without_seconds(tmp_path):
    a = read_feed_file(
        write_csv(tmp_path, "a.csv", "store_id,day,start_time_local,end_time_local\n1,0,09:00,17:30:15.5\n")
    )
    b = read_feed_file(
        write_csv(tmp_path, "b.csv", "store_id,dayOfWeek,start_time_local,end_time_local\n1,6,00:00:00,23:59:59\n")
    )
    assert a.kind == b.kind == HOURS
    # 09:00 = 32,400 s; 17:30:15.5 = 63,015.5 s.
    assert a.rows.select("day_of_week", "start_time_us", "end_time_us").row(0) == (0, 32_400_000_000, 63_015_500_000)
    assert b.rows.get_column("end_time_us").to_list() == [86_399_000_000]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("1,7,09:00,17:00", "day of week must be an integer 0 (Monday) to 6 (Sunday)"),
        ("1,x,09:00,17:00", "day of week must be an integer 0 (Monday) to 6 (Sunday)"),
        ("1,0,25:00,17:00", "bad start_time_local"),
        ("1,0,09:00,17:60", "bad end_time_local"),
        ("1,0,9am,17:00", "bad start_time_local"),
    ],
)
def test_bad_hours_rows_are_rejected(tmp_path, line, reason):
    assert only_rejection(tmp_path, "store_id,day,start_time_local,end_time_local", line).startswith(reason)


def only_rejection(tmp_path, header: str, line: str) -> str:
    """The reason a file of one data line rejects it (asserting that it does)."""
    feed = read_feed_file(write_csv(tmp_path, "one_line.csv", f"{header}\n{line}\n"))
    assert feed.rows.height == 0 and feed.rejected.height == 1
    return feed.rejected.get_column("reason")[0]


# --- timezones -------------------------------------------------------------------------------


def test_unknown_timezone_is_rejected_and_the_store_falls_back_to_chicago(tmp_path, engine):
    feed = read_feed_file(write_csv(tmp_path, "t.csv", "store_id,timezone_str\n1,Mars/Olympus_Mons\n2,Asia/Beirut\n"))
    assert feed.rejected.get_column("reason").to_list() == [
        "unknown timezone name (expected an IANA name such as America/Chicago)"
    ]
    load_feed(engine, feed)
    schedule = read_weekly_schedules(engine, pl.Series(["1", "2"]))
    zones = dict(schedule.select("store_id", "timezone").unique().iter_rows())
    assert zones == {"1": "America/Chicago", "2": "Asia/Beirut"}


def test_last_timezone_row_loaded_wins(tmp_path, engine):
    load_feed(
        engine, read_feed_file(write_csv(tmp_path, "a.csv", "store_id,timezone_str\n1,Asia/Beirut\n1,America/Denver\n"))
    )
    load_feed(engine, read_feed_file(write_csv(tmp_path, "b.csv", "store_id,timezone_str\n1,America/Boise\n")))
    assert read_table(engine, STORE_TIMEZONES).select("store_id", "timezone_str").rows() == [("1", "America/Boise")]


# --- whole files -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file; expected a header line"),
        (b"order_id,amount\n1,2\n", "unrecognised header 'order_id,amount'"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not a"),
        (b"store_id,status\n1,active\n", "unrecognised header 'store_id,status'"),
        # 30 header bytes + `1,active,`: the first byte that is not UTF-8 is byte 39.
        (b"store_id,status,timestamp_utc\n1,active,\xff\n", "not a UTF-8 CSV file (byte 39 cannot be decoded)"),
    ],
)
def test_unreadable_files_fail_with_one_line_naming_the_file(tmp_path, content, message):
    path = tmp_path / "feed.csv"
    path.write_bytes(content)
    with pytest.raises(FeedFileError) as error:
        read_feed_file(path)
    assert str(error.value).startswith("feed.csv: ")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_loading_the_same_file_twice_changes_nothing(tmp_path, engine):
    path = write_csv(tmp_path, "p.csv", "store_id,status,timestamp_utc\n1,active,2023-01-22 12:00:00 UTC\n1,bogus,x\n")
    first = load_feed(engine, read_feed_file(path))
    second = load_feed(engine, read_feed_file(path))
    assert not first.already_loaded and second.already_loaded
    assert read_table(engine, STORE_STATUS_POLLS).height == 1
    assert read_table(engine, REJECTED_ROWS).height == 1
    assert read_table(engine, INGESTED_FILES).get_column("file_sha256").to_list() == [
        hashlib.sha256(path.read_bytes()).hexdigest()
    ]


def test_exact_duplicate_polls_count_once_even_across_files(tmp_path, engine):
    row = "1,active,2023-01-22 12:00:00 UTC\n"
    load_feed(engine, read_feed_file(write_csv(tmp_path, "a.csv", "store_id,status,timestamp_utc\n" + row + row)))
    load_feed(
        engine,
        read_feed_file(
            write_csv(tmp_path, "b.csv", "store_id,status,timestamp_utc\n" + row + "1,active,2023-01-22 13:00:00 UTC\n")
        ),
    )
    assert read_table(engine, STORE_STATUS_POLLS).height == 2


def test_new_hours_file_replaces_the_hours_of_the_stores_it_names(tmp_path, engine):
    header = "store_id,dayOfWeek,start_time_local,end_time_local\n"
    load_feed(
        engine,
        read_feed_file(write_csv(tmp_path, "a.csv", header + "1,0,09:00,17:00\n1,1,09:00,17:00\n2,0,10:00,11:00\n")),
    )
    load_feed(engine, read_feed_file(write_csv(tmp_path, "b.csv", header + "1,4,12:00,13:00\n3,x,10:00,11:00\n")))
    hours = read_table(engine, BUSINESS_HOURS).sort("store_id")
    # Store 1 now has only Friday; store 2 is untouched; store 3's only row was rejected.
    assert hours.select("store_id", "day_of_week").rows() == [("1", 4), ("2", 0)]
    # Store 3 counts as having no hours: open around the clock (7 days x 00:00-00:00).
    schedule = read_weekly_schedules(engine, pl.Series(["3"]))
    assert schedule.height == 7 and schedule.get_column("start_time_us").unique().to_list() == [0]


def test_a_failed_load_leaves_the_database_as_it_was(tmp_path, engine, monkeypatch):
    import storemon_assets.db.loading as database

    path = write_csv(tmp_path, "p.csv", "store_id,status,timestamp_utc\n1,active,2023-01-22 12:00:00 UTC\n")
    feed = read_feed_file(path)

    def broken_ledger_insert(*args, **kwargs):
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk full"))

    original = database._bulk_insert
    calls = []

    def failing_after_polls(conn, table, frame, *args, **kwargs):
        calls.append(table.name)
        original(conn, table, frame, *args, **kwargs)
        if table.name == "rejected_row_counts":  # the last insert, after the file's polls
            broken_ledger_insert()

    monkeypatch.setattr(database, "_bulk_insert", failing_after_polls)
    with pytest.raises(sa.exc.OperationalError):
        load_feed(engine, feed)
    assert "stores" in calls and calls[-1] == "rejected_row_counts"  # the store and its poll went in, then rolled back
    assert read_table(engine, STORE_STATUS_POLLS).height == 0
    assert read_table(engine, STORES).height == 0
    assert read_table(engine, INGESTED_FILES).height == 0


def test_two_loads_of_the_same_content_at_once_give_one_load_and_one_already_loaded(tmp_path, engine, monkeypatch):
    # Issue 9 row 7: the ledger was checked outside the transaction, so the second of two
    # simultaneous loads passed the check and died on the ledger's primary key.
    import threading

    import storemon_assets.db.loading as loading

    feed = read_feed_file(
        write_csv(tmp_path, "p.csv", "store_id,status,timestamp_utc\n1,active,2023-01-22 12:00:00 UTC\n")
    )
    first_is_writing, release_first, second_at_ledger = threading.Event(), threading.Event(), threading.Event()
    original, enter_in_ledger = loading._bulk_insert, loading._enter_in_ledger

    def first_load_pauses_mid_transaction(conn, table, frame, on_conflict="DO NOTHING"):
        if threading.current_thread().name == "first":
            first_is_writing.set()
            assert release_first.wait(30)
        original(conn, table, frame, on_conflict)

    def second_load_says_when_it_reaches_the_ledger(conn, feed):
        if threading.current_thread().name == "second":
            second_at_ledger.set()
        return enter_in_ledger(conn, feed)

    monkeypatch.setattr(loading, "_bulk_insert", first_load_pauses_mid_transaction)
    monkeypatch.setattr(loading, "_enter_in_ledger", second_load_says_when_it_reaches_the_ledger)
    other_engine = create_db_engine(engine.url.render_as_string(hide_password=False))
    outcomes, errors = {}, []

    def load(name, with_engine):
        try:
            outcomes[name] = load_feed(with_engine, feed)
        except Exception as exc:  # the test reports it below
            errors.append(exc)

    first = threading.Thread(target=load, args=("first", engine), name="first")
    second = threading.Thread(target=load, args=("second", other_engine), name="second")
    first.start()
    assert first_is_writing.wait(30)
    second.start()
    # The second load reaches the ledger while the first holds its transaction open, and waits
    # there on the first's lock (its statement is sent a few Python lines after the signal).
    assert second_at_ledger.wait(30)
    second.join(0.25)
    assert second.is_alive()  # it waits for the first, which holds the ledger row
    release_first.set()
    first.join(60)
    second.join(60)
    other_engine.dispose()
    assert errors == []
    assert not outcomes["first"].already_loaded and outcomes["second"].already_loaded
    assert read_table(engine, STORE_STATUS_POLLS).height == 1
    assert read_table(engine, INGESTED_FILES).height == 1


def test_sqlite_stays_healthy_when_reads_and_writes_alternate(tmp_path):
    # Regression: reading SQLite through a second copy of the library (connectorx) broke the
    # file locks of the process's own connections ("disk I/O error").
    import sqlite3

    engine = open_database(sqlite_url(tmp_path / "storemon.db"))
    header = "store_id,timezone_str\n"
    for n in range(3):
        load_feed(engine, read_feed_file(write_csv(tmp_path, f"t{n}.csv", header + f"{n},UTC\n")))
        assert read_table(engine, STORE_TIMEZONES).height == n + 1
    with sqlite3.connect(tmp_path / "storemon.db") as conn:
        assert conn.execute("select count(*) from store_timezones").fetchone() == (3,)


# --- the real data set -----------------------------------------------------------------------


@pytest.mark.parametrize("edition", ["loop-2023", "loop-2024"])
def test_both_real_editions_load_without_rejections(edition, engine):
    hours = read_feed_file(shared_data(edition, "menu_hours.csv"))
    timezones = read_feed_file(shared_data(edition, "timezones.csv"))
    assert hours.kind == HOURS and timezones.kind == TIMEZONES
    assert hours.rejected.height == 0 and timezones.rejected.height == 0
    assert hours.rows_read == {"loop-2023": 86_198, "loop-2024": 35_457}[edition]
    load_feed(engine, hours)
    load_feed(engine, timezones)
    assert read_table(engine, STORE_TIMEZONES).height == timezones.rows.get_column("store_id").n_unique()
    ids = known_store_ids(engine)
    # 19-digit numbers or UUIDs, kept verbatim as text.
    sample = ids[0]
    assert (len(sample) == 36 and sample.count("-") == 4) or (sample.isdigit() and len(sample) >= 15)


def test_real_poll_sample_loads_with_exact_microseconds(engine):
    feed = read_feed_file(shared_data("loop-2023", "store_status_sample.csv"))
    # 5,032 data rows by both our reader and the csv module (the data README says 5,031).
    assert feed.rejected.height == 0 and feed.rows_read == 5_032
    first = feed.rows.filter(pl.col("store_id") == "8419537941919820732").get_column("polled_at_us").min()
    assert first is not None
    load_feed(engine, feed)
    assert (
        read_table(engine, STORE_STATUS_POLLS)
        .get_column("polled_at_us")
        .is_in([at("2023-01-22 12:09:39.388884")])
        .any()
    )


from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from storemon_assets.core.parsing import parse_timestamp_utc, parse_timestamps_utc  # noqa: E402

_digits = st.text("0123456789", min_size=1, max_size=3)
_timestamp_like = st.builds(
    lambda y, mo, d, sep, h, mi, sec, frac, suffix, pad: f"{pad}{y}-{mo}-{d}{sep}{h}:{mi}{sec}{frac}{suffix}",
    st.sampled_from(["2023", "1999", "202", "20231"]),
    st.sampled_from(["01", "1", "12", "13", "02"]),
    st.sampled_from(["22", "2", "30", "31", "29"]),
    st.sampled_from([" ", "T", "  "]),
    st.sampled_from(["00", "12", "23", "24", "7"]),
    st.sampled_from(["09", "59", "60", "5"]),
    st.sampled_from(["", ":39", ":60", ":5"]),
    st.just("") | _digits.map(lambda d: "." + d) | st.just(".1234567"),
    st.sampled_from([" UTC", " utc", "Z", "+00:00", "-05:00", "+0530", "", " UTC ", "UTC"]),
    st.sampled_from(["", " "]),
)


@settings(max_examples=examples(400), deadline=None)
@given(st.lists(_timestamp_like | st.text(max_size=30), min_size=1, max_size=20))
def test_fast_timestamp_path_agrees_with_the_general_parser(texts):
    frame = pl.DataFrame({"text": texts}, schema={"text": pl.String})
    both = parse_timestamps_utc(frame, "text", "fast").with_columns(
        parse_timestamp_utc(pl.col("text")).alias("general")
    )
    assert both.get_column("fast").to_list() == both.get_column("general").to_list()


# Near misses of the feed's own spelling: each differs from `2023-01-22 12:09:39.388884 UTC`
# in one place. The fast path must leave every one to the general parser (null) or read it
# exactly as the general parser does.
NEAR_MISSES = [
    "2023-01-22 12:09:60 UTC",  # leap second: strptime alone would roll it into 12:10:00
    "2023-01-22 12:60:00 UTC",
    "2023-01-22 24:00:00 UTC",
    "2023-01-22 12:09:39.1234567 UTC",  # 7-digit fraction
    "2023-01-22 12:09:39. UTC",
    "2023-01-22 12:09:39.388884",  # no ` UTC`
    "2023-01-22 12:09:39.388884 utc",
    "2023-01-22 12:09:39.388884 UTC ",  # trailing space (the parser trims fields before this)
    " 2023-01-22 12:09:39.388884 UTC",
    "2023-01-22 12:09:39.388884  UTC",
    "2023-01-22T12:09:39.388884 UTC",
    "2023-01-22  12:09:39 UTC",
    "+023-01-22 12:09:39 UTC",  # strptime alone reads a signed year
    "2023- 1-22 12:09:39 UTC",  # ... and a space-padded month
    "2023-1-22 12:09:39 UTC",
    "2023-02-30 12:09:39 UTC",  # no such date
    "2023-01-22 12:09:39,388884 UTC",
    "２023-01-22 12:09:39 UTC",  # a non-ASCII digit
    "2023-01-22 12:09:39.３ UTC",
    "2023-01-22 12:09:3 UTC",
    "2023-01-22 12:09 UTC",
]
FEED_SPELLINGS = [
    "2023-01-22 12:09:39.388884 UTC",
    "2023-01-22 12:09:39.3 UTC",
    "2023-01-22 12:09:39 UTC",
    "2023-01-22 23:59:59.999999 UTC",
    "2024-02-29 00:00:00.000001 UTC",
]


def test_fast_timestamp_path_reads_the_feed_spelling_and_leaves_near_misses_to_the_general_parser():
    from storemon_assets.core.parsing import _feed_timestamp_utc

    frame = pl.DataFrame({"text": FEED_SPELLINGS + NEAR_MISSES})
    both = frame.select(
        _feed_timestamp_utc(pl.col("text")).alias("fast"), parse_timestamp_utc(pl.col("text")).alias("general")
    )
    fast, general = both.get_column("fast").to_list(), both.get_column("general").to_list()
    n = len(FEED_SPELLINGS)
    assert fast[:n] == general[:n] and None not in fast[:n]  # the feed's spelling takes the fast path
    assert fast[:n] == [at(t.removesuffix(" UTC")) for t in FEED_SPELLINGS]
    taken = [(t, f, g) for t, f, g in zip(NEAR_MISSES, fast[n:], general[n:], strict=True) if f is not None]
    assert taken == [], "the fast path read a near miss"
    # Several near misses are real instants to the general parser: the fast path must not drop them.
    assert general[n:].count(None) < len(NEAR_MISSES) - 3
    both = parse_timestamps_utc(frame, "text", "combined").get_column("combined").to_list()
    assert both == general


_PADDING = st.sampled_from(["", " ", "  ", "\t", "\u00a0"])


@settings(max_examples=examples(300), deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["active", "inactive", "Active", "INACTIVE", "actve", ""]),
            st.sampled_from(FEED_SPELLINGS + NEAR_MISSES + ["2023-01-22T12:09:39Z", ""]),
            _PADDING,
            _PADDING,
            st.booleans(),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_padding_and_case_of_status_and_timestamp_do_not_change_what_a_poll_says(polls):
    """Status and timestamp are trimmed and status lowercased on every row, in a file with
    quotes (any quote makes the whole file go the RFC 4180 way) or without: a padded file
    says what the same file written plainly says."""
    from pathlib import Path

    from storemon_assets.core.parsing import parse_feed_bytes

    header = "store_id,status,timestamp_utc\n"
    plain = header + "".join(f"s{i},{status},{ts}\n" for i, (status, ts, *_) in enumerate(polls))
    padded = header + "".join(
        f"s{i},{left}{mark}{status}{mark}{right},{left}{ts}{right}\n"
        for i, (status, ts, left, right, quote) in enumerate(polls)
        for mark in ['"' if quote else ""]
    )
    ingested = at("2023-02-01 00:00")
    a = parse_feed_bytes(plain.encode(), Path("a.csv"), ingested)
    b = parse_feed_bytes(padded.encode(), Path("b.csv"), ingested)
    assert b.rows.equals(a.rows)
    assert b.rejected.select("line_number", "reason").equals(a.rejected.select("line_number", "reason"))


@settings(max_examples=examples(300), deadline=None)
@given(st.text(alphabet='a\r\n,"é\ufeff ', max_size=40))
def test_lines_are_those_of_splitting_on_newlines(text):
    """The parallel line reader cuts lines as `str.split("\\n")` with one `\\r` off each (the
    empty string after a final newline, a blank line the parser drops anyway, is not a line)."""
    from storemon_assets.core.parsing import physical_lines

    expected = [line.removesuffix("\r") for line in text.split("\n")]
    if text == "" or text.endswith("\n"):
        expected.pop()  # no empty line after the final newline, nor in an empty text
    lines = physical_lines(text.encode(), "x.csv")
    assert lines.get_column("raw_text").to_list() == expected
    assert lines.get_column("line_number").to_list() == list(range(1, len(expected) + 1))


# --- SPEC §1: only real instants, store ids without control characters, RFC 4180 records ------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        # `:60` used to roll over into the next minute, on both the fast path and the general one.
        ("2023-01-22 12:09:60 UTC", "bad timestamp_utc: seconds must be 00-59"),
        ("2023-01-22T12:09:60Z", "bad timestamp_utc: seconds must be 00-59"),
        ("2023-01-22T12:09:59+99:99", "bad timestamp_utc: UTC offset beyond ±14:00"),
        ("2023-01-22T12:09:59+14:01", "bad timestamp_utc: UTC offset beyond ±14:00"),
        ("2023-01-22T12:09:59-05:60", "bad timestamp_utc: UTC offset beyond ±14:00"),
        ("2023-01-22 24:00:00 UTC", "bad timestamp_utc: hours must be 00-23"),
        ("9999-12-31 00:00:00 UTC", "timestamp_utc is from the future"),
    ],
)
def test_impossible_instants_are_rejected_with_their_reason(tmp_path, text, reason):
    assert only_rejection(tmp_path, "store_id,status,timestamp_utc", f"1,active,{text}").startswith(reason)


def test_offsets_up_to_fourteen_hours_are_real_instants(tmp_path):
    text = "store_id,status,timestamp_utc\n1,active,2023-01-22T14:00:00+14:00\n1,active,2023-01-22T00:00:00-12:00\n"
    feed = read_feed_file(write_csv(tmp_path, "p.csv", text))
    # 14:00 at +14:00 is 00:00 UTC; 00:00 at -12:00 is 12:00 UTC.
    assert feed.rows.get_column("polled_at_us").to_list() == [at("2023-01-22 00:00"), at("2023-01-22 12:00")]


def test_a_poll_more_than_one_hour_after_ingestion_is_from_the_future(tmp_path):
    path = write_csv(
        tmp_path,
        "p.csv",
        "store_id,status,timestamp_utc\n"
        "a,active,2023-01-25 19:00:00 UTC\n"  # ingested 18:00: exactly one hour later is allowed
        "b,active,2023-01-25 19:00:00.000001 UTC\n",
    )
    feed = read_feed_file(path, ingested_at_us=at("2023-01-25 18:00"))
    assert feed.rows.get_column("store_id").to_list() == ["a"]
    [rejected] = feed.rejected.to_dicts()
    assert rejected["line_number"] == 3
    assert rejected["reason"] == (
        "timestamp_utc is from the future: more than 1 hour after the file was ingested (2023-01-25T18:00:00Z)"
    )


@pytest.mark.parametrize("store_id", ["s\x001", "s\t1", '"s\n1"', '"s\r\n1"', "s\x1b[31m"])
def test_a_store_id_with_a_control_character_is_rejected(tmp_path, store_id):
    path = tmp_path / "p.csv"
    path.write_bytes(f"store_id,status,timestamp_utc\n{store_id},active,2023-01-22 12:00:00 UTC\n".encode())
    feed = read_feed_file(path)
    assert feed.rows.height == 0
    [rejected] = feed.rejected.to_dicts()
    assert rejected["line_number"] == 2
    assert rejected["reason"].startswith("store_id contains a control character")
    assert "\x00" not in rejected["raw_text"]  # kept visibly as \x00: PostgreSQL text cannot hold NUL


def test_a_quoted_field_holding_a_newline_or_a_comma_is_one_field(tmp_path, engine):
    # Issue 9 row 5: the newline inside quotes rejected line 3 and accepted line 4 as store "X".
    text = (
        "store_id,status,timestamp_utc\n"
        "s1,active,2023-01-22 12:00:00 UTC\n"
        '"s5\nX",active,2023-01-22 12:00:00 UTC\n'
        '"s,6","inactive","2023-01-22 12:00:00 UTC"\n'
        '"s""7",active,2023-01-22 12:00:00 UTC\n'
    )
    feed = read_feed_file(write_csv(tmp_path, "p.csv", text))
    assert feed.rows.select("line_number", "store_id").rows() == [(2, "s1"), (5, "s,6"), (6, 's"7')]
    [rejected] = feed.rejected.to_dicts()
    assert rejected["line_number"] == 3  # where the record starts
    assert rejected["raw_text"] == '"s5\nX",active,2023-01-22 12:00:00 UTC'
    assert rejected["reason"].startswith("store_id contains a control character")
    load_feed(engine, feed)
    assert set(known_store_ids(engine)) == {"s1", "s,6", 's"7'}  # no store "X"


def test_an_unterminated_quote_is_rejected_from_its_line_on(tmp_path):
    text = 'store_id,status,timestamp_utc\ns1,active,2023-01-22 12:00:00 UTC\n"s2,active,2023-01-22 12:00:00 UTC\n'
    feed = read_feed_file(write_csv(tmp_path, "p.csv", text))
    assert feed.rows.get_column("store_id").to_list() == ["s1"]
    assert feed.rejected.select("line_number", "reason").row(0) == (
        3,
        "unterminated quoted field (a field that opens with a double quote must close with one)",
    )


import csv  # noqa: E402
import io  # noqa: E402


@settings(max_examples=examples(500), deadline=None)
@given(st.text(alphabet='a,"\n ', max_size=40))
def test_records_and_fields_are_those_of_pythons_csv_module(text):
    """RFC 4180 as Python's csv module reads it: the vectorised reader gives the same records."""
    from storemon_assets.core.parsing import csv_fields, csv_records, unquote

    lines = pl.DataFrame({"raw_text": text.split("\n")}).with_row_index("line_number", offset=1)
    records = csv_records(lines.with_columns(pl.col("line_number").cast(pl.Int64)))
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if records.get_column("_unterminated").any():
        return  # the csv module keeps what it read so far; storemon rejects the record (tested above)
    records = records.filter(pl.col("raw_text") != "")
    fields = records.select(csv_fields(pl.col("raw_text")).alias("f")).with_row_index().explode("f")
    fields = fields.with_columns(unquote(pl.col("f")).alias("f")).group_by("index", maintain_order=True).agg("f")
    assert fields.get_column("f").to_list() == [row for row in rows if row]
    # Each record starts on the line after the previous record's last line (blank lines aside).
    starts = records.get_column("line_number").to_list()
    assert starts == sorted(set(starts))


# --- the report time T is read by the same rules (CLI --as-of, API as_of, report config) ------

from storemon_assets.core.instants import parse_as_of  # noqa: E402


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2023-01-22T12:09:60Z", "is not a timestamp: seconds must be 00-59"),
        ("2023-01-22T12:09:00+99:99", "is not a timestamp: UTC offset beyond ±14:00"),
        ("9999-12-31T00:00:00Z", "is in the future (more than 1 hour from now)"),
        ("x" * 10_000, "is not a timestamp"),
    ],
)
def test_as_of_is_read_by_the_poll_rules_and_quoted_briefly(text, message):
    with pytest.raises(ValueError) as error:
        parse_as_of(text)
    assert message in str(error.value)
    assert len(str(error.value)) < 200  # a 10,000-character value is not echoed back


def test_as_of_accepts_real_instants():
    assert parse_as_of("2023-01-22T12:09:59+14:00") == at("2023-01-21 22:09:59")
    assert parse_as_of(" 2023-01-22 12:09:39.388884 UTC ") == at("2023-01-22 12:09:39.388884")


@pytest.mark.parametrize("store_id", ["=1+1", "@SUM(1)", "+1+1", "-1+1", '"=HYPERLINK(""http://x"",""y"")"', " =1"])
def test_a_store_id_a_spreadsheet_would_run_as_a_formula_is_rejected(tmp_path, store_id):
    # Issue 20 row 7: these reached combined_report.csv unescaped (SPEC §1 now rejects them).
    text = (
        f"store_id,status,timestamp_utc\n{store_id},active,2023-01-22 12:00:00 UTC\nok,active,2023-01-22 12:00:00 UTC\n"
    )
    feed = read_feed_file(write_csv(tmp_path, "p.csv", text))
    assert feed.rows.get_column("store_id").to_list() == ["ok"]
    [rejected] = feed.rejected.to_dicts()
    assert rejected["line_number"] == 2
    assert rejected["reason"] == "store_id begins with =, +, - or @ (a spreadsheet would run it as a formula)"


# --- SPEC §1: authoritative feeds apply in delivery order (issue 20 row 4) ----------------------


def test_hours_delivered_again_after_a_newer_version_are_current_again(tmp_path, engine):
    # Issue 20 row 4: v1, v2, v1 again left the store on v2 ("already loaded").
    header = "store_id,dayOfWeek,start_time_local,end_time_local\n"
    v1 = write_csv(tmp_path, "hours_v1.csv", header + "1,0,09:00,17:00\n")
    v2 = write_csv(tmp_path, "hours_v2.csv", header + "1,0,10:00,18:00\n")
    outcomes = [load_feed(engine, read_feed_file(path)) for path in (v1, v2, v1)]
    assert [(o.already_loaded, o.redelivered) for o in outcomes] == [(False, False), (False, False), (False, True)]
    hours = read_table(engine, BUSINESS_HOURS)
    # 09:00 = 32,400 s after midnight: v1's opening.
    assert hours.select("store_id", "start_time_us", "source_file").rows() == [("1", 32_400_000_000, "hours_v1.csv")]
    assert read_table(engine, INGESTED_FILES).height == 2  # one ledger row per content, named by its last delivery


def test_feed_versions_change_with_each_delivery_of_that_feed_only(tmp_path, engine, monkeypatch):
    """The raw assets' data versions and the schedules sensor key on feed_versions, the API's
    trigger coalescing and the 30-day shares' cache on data_version: v1, v2, v1 again each change
    the hours' version and no other feed's, even when the redelivery's clock is behind the newest
    load instant (another process loading at the same time); data_version changes with each."""
    import time

    from storemon_assets.db.queries import data_version, feed_versions

    header = "store_id,dayOfWeek,start_time_local,end_time_local\n"
    v1 = write_csv(tmp_path, "hours_v1.csv", header + "1,0,09:00,17:00\n")
    v2 = write_csv(tmp_path, "hours_v2.csv", header + "1,0,10:00,18:00\n")
    zones = write_csv(tmp_path, "tz.csv", "store_id,timezone_str\n1,America/Chicago\n")
    load_feed(engine, read_feed_file(zones))
    seen, whole = [feed_versions(engine)], [data_version(engine)]
    for path in (v1, v2):
        load_feed(engine, read_feed_file(path))
        seen.append(feed_versions(engine))
        whole.append(data_version(engine))
    newest = read_table(engine, INGESTED_FILES).get_column("ingested_at_us").max()
    # v1 again, loaded by a process whose clock reads 1 s before v2's load instant.
    monkeypatch.setattr(time, "time_ns", lambda: (newest - 1_000_000) * 1000)
    assert load_feed(engine, read_feed_file(v1)).redelivered
    seen.append(feed_versions(engine))
    whole.append(data_version(engine))
    assert len({versions[HOURS] for versions in seen[1:]}) == 3  # each delivery a new version
    # Four states of the data, four versions (the ledger's size and newest instant, as
    # data_version was before, left the clock-behind redelivery unseen: 3 distinct).
    assert len(set(whole)) == 4
    assert HOURS not in seen[0] and {versions[TIMEZONES] for versions in seen} == {seen[0][TIMEZONES]}


def test_timezones_delivered_again_after_a_newer_version_are_current_again(tmp_path, engine):
    v1 = write_csv(tmp_path, "tz_v1.csv", "store_id,timezone_str\n1,Asia/Beirut\n")
    v2 = write_csv(tmp_path, "tz_v2.csv", "store_id,timezone_str\n1,America/Boise\n")
    for path in (v1, v2, v1):
        load_feed(engine, read_feed_file(path))
    assert read_table(engine, STORE_TIMEZONES).select("store_id", "timezone_str").rows() == [("1", "Asia/Beirut")]


def test_a_polls_file_delivered_again_is_still_a_no_op(tmp_path, engine):
    path = write_csv(tmp_path, "p.csv", "store_id,status,timestamp_utc\n1,active,2023-01-22 12:00:00 UTC\n")
    load_feed(engine, read_feed_file(path))
    again = load_feed(engine, read_feed_file(path))
    assert again.already_loaded and not again.redelivered


def test_an_hours_file_that_takes_weekdays_from_stores_names_them(tmp_path, engine):
    header = "store_id,dayOfWeek,start_time_local,end_time_local\n"
    load_feed(
        engine,
        read_feed_file(write_csv(tmp_path, "a.csv", header + "1,0,09:00,17:00\n1,1,09:00,17:00\n2,0,09:00,17:00\n")),
    )
    # Store 1 keeps Monday but loses Tuesday; store 2 changes its hours on the same day; store 3 is new.
    outcome = load_feed(
        engine,
        read_feed_file(write_csv(tmp_path, "b.csv", header + "1,0,10:00,11:00\n2,0,10:00,11:00\n3,4,10:00,11:00\n")),
    )
    assert outcome.stores_losing_weekdays == ("1",)
    assert outcome.describe().endswith("; WARNING: 1 stores lost weekdays they had: 1")


def test_the_real_hours_split_in_two_names_every_store_that_lost_weekdays(tmp_path, engine):
    # Issue 20 row 4: the real 2023 hours split in two dropped rows of the stores whose rows
    # straddle the cut, silently.
    source = shared_data("loop-2023", "menu_hours.csv")
    lines = source.read_text().splitlines(keepends=True)
    middle = len(lines) // 2
    first = write_csv(tmp_path, "hours_1.csv", "".join(lines[:middle]))
    second = write_csv(tmp_path, "hours_2.csv", lines[0] + "".join(lines[middle:]))
    load_feed(engine, read_feed_file(first))
    outcome = load_feed(engine, read_feed_file(second))
    # Expected, from the files alone: stores with a weekday in the first half that the second
    # half, which names them too, does not give them.
    halves = [read_feed_file(p).rows.select("store_id", "day_of_week").unique() for p in (first, second)]
    named_again = halves[0].filter(pl.col("store_id").is_in(halves[1].get_column("store_id").implode()))
    expected = named_again.join(halves[1], on=["store_id", "day_of_week"], how="anti").get_column("store_id").unique()
    assert expected.len() > 0
    assert outcome.stores_losing_weekdays == tuple(expected.sort().to_list())


# --- issue 20 row 5: memory and storage stay bounded whatever the input ---------------------------


def test_a_file_of_garbage_keeps_the_first_rejected_rows_and_counts_them_all(tmp_path, engine):
    # Issue 20 row 5: 48 MB of `1,a,b` kept 8.4 M rejected rows: a 2.2 GB database, 5.3 GB of memory.
    garbage = 25_000
    path = write_csv(
        tmp_path,
        "g.csv",
        "store_id,status,timestamp_utc\n" + "1,a,b\n" * garbage + "s,active,2023-01-22 12:00:00 UTC\n",
    )
    feed = read_feed_file(path)
    assert feed.rows.get_column("store_id").to_list() == ["s"]
    assert feed.rejected.height == 10_000  # the first ones, with their text: lines 2 to 10,001
    assert feed.rejected.get_column("line_number").to_list() == list(range(2, 10_002))
    assert feed.rejected_by_reason.rows() == [(BAD_TIMESTAMP, garbage)]  # "b" is checked before "a"
    outcome = load_feed(engine, feed)
    assert outcome.rows_rejected == garbage
    assert read_table(engine, REJECTED_ROWS).height == 10_000
    assert read_table(engine, INGESTED_FILES).get_column("rows_rejected").to_list() == [garbage]
    assert rejected_counts(engine)[POLLS] == garbage


def test_a_line_too_long_is_rejected_whole_before_its_fields_are_split(tmp_path):
    # Issue 20 row 5: a 200 MB single line took 4 GB to parse, and its 200 MB store_id was stored.
    long = "x" * (1 << 20)
    text = f"store_id,status,timestamp_utc\n{long},active,2023-01-22 12:00:00 UTC\ns,active,2023-01-22 12:00:00 UTC\n"
    feed = read_feed_file(write_csv(tmp_path, "p.csv", text))
    assert feed.rows.get_column("store_id").to_list() == ["s"]
    [rejected] = feed.rejected.to_dicts()
    assert rejected["line_number"] == 2 and rejected["store_id"] is None
    assert rejected["reason"] == "line longer than 65,536 bytes (a record of these feeds is a few dozen)"
    # 2,000 bytes kept, and the count of the rest: 1,048,576 x + 31 (",active,<timestamp>") - 2,000.
    assert rejected["raw_text"] == "x" * 2_000 + "... (1046607 more bytes)"
    assert feed.rows_read == 2


def test_a_rejected_rows_store_id_is_kept_short(tmp_path):
    store_id = "y" * 5_000
    feed = read_feed_file(write_csv(tmp_path, "p.csv", f"store_id,status,timestamp_utc\n{store_id},bogus,x\n"))
    [rejected] = feed.rejected.to_dicts()
    assert rejected["store_id"] == "y" * 200 + "... (4800 more characters)"  # 5,000 - 200


def test_parsing_in_chunks_gives_what_one_chunk_gives(tmp_path, monkeypatch):
    import storemon_assets.core.parsing as parsing

    text = (
        "store_id,status,timestamp_utc\n"
        "s1,active,2023-01-22 12:00:00 UTC\n"
        '"s5\nX",active,2023-01-22 12:00:00 UTC\n'
        '"s,6","inactive","2023-01-22 12:00:00 UTC"\n'
        "s7,bogus,2023-01-22 12:00:00 UTC\n"
        '"s""7",active,2023-01-22 12:00:00 UTC\n'
        "=1,active,2023-01-22 12:00:00 UTC\n"
    )
    path = write_csv(tmp_path, "p.csv", text)
    whole = read_feed_file(path, ingested_at_us=at("2023-01-25 00:00"))
    monkeypatch.setattr(parsing, "PARSE_CHUNK_ROWS", 2)
    monkeypatch.setattr(parsing, "MAX_REJECTED_KEPT", 2)
    chunked = read_feed_file(path, ingested_at_us=at("2023-01-25 00:00"))
    assert chunked.rows.equals(whole.rows)
    assert chunked.rejected.equals(whole.rejected.head(2)) and whole.rejected.height == 3
    assert chunked.rejected_by_reason.equals(whole.rejected_by_reason)
    assert chunked.rows_read == whole.rows_read == 6


def test_feed_load_figures_sum_a_runs_files_and_give_a_share_only_when_rows_were_read():
    from storemon_assets.db.loading import LoadOutcome
    from storemon_assets.service import feed_load_figures

    files = [
        LoadOutcome("a.csv", "polls", False, rows_read=300, rows_loaded=297, rows_rejected=3),
        LoadOutcome("b.csv", "polls", False, rows_read=100, rows_loaded=99, rows_rejected=1),
    ]
    # (3 + 1) rejected of (300 + 100) read = 1 %
    assert feed_load_figures(files) == {"rows_loaded": 396, "rows_rejected": 4, "rejected_share_pct": 1.0}
    assert feed_load_figures([]) == {"rows_loaded": 0, "rows_rejected": 0}  # nothing read: no share


def test_the_lost_weekdays_finding_names_every_store_once_and_each_file():
    from storemon_assets.db.loading import LoadOutcome
    from storemon_assets.service import FileIngested, lost_weekdays_finding

    def loaded(name, kind="hours", **kw):
        return FileIngested(name, outcome=LoadOutcome(name, kind, False, **kw))

    whole = loaded("week.csv")
    split = [
        loaded("mon.csv", stores_losing_weekdays=("b", "a")),
        loaded("tue.csv", stores_losing_weekdays=("a",)),
    ]
    assert lost_weekdays_finding([loaded("polls.csv", "polls")]) is None  # no hours loaded: no verdict
    assert lost_weekdays_finding([whole]).passed
    assert lost_weekdays_finding([whole]).summary == "no store lost a weekday"
    finding = lost_weekdays_finding([whole, *split])
    assert not finding.passed and finding.summary.startswith("2 stores lost weekdays")  # a and b, a once
    assert finding.details == {"stores": 2, "files": "- `mon.csv`: 2 stores: `b`, `a`\n- `tue.csv`: 1 stores: `a`"}


@settings(max_examples=examples(300), deadline=None)
@given(
    body=st.lists(
        st.sampled_from(
            ["s1", "active", "2023-01-22 12:00:00 UTC", ",", '"', '"', "\n", "\n", "xxxxxxxxxxxx", "é", " ", "=1"]
        ),
        max_size=60,
    ).map("".join),
    block=st.integers(1, 24),
)
@example(
    body='s1,active,x\n"a\nb",active,x\n' + "x" * 29 + '\n"open,,\n\n' + "x" * 12 + "\n" + "x" * 16 + "\n", block=3
)
@example(body='"s1s1\nxxxxxxxxxxxx\n"\n', block=1)  # a record of 21 bytes over 3 short lines: too long either way
def test_a_file_read_in_blocks_parses_as_read_whole(body, block):
    """Issue 20 row 5: a file is parsed READ_BLOCK_BYTES at a time, so memory does not grow with
    it. Wherever the blocks cut it (inside a line, a quoted record over several lines, a line or
    a record too long), the rows, rejected rows and counts are those of one block."""
    import pathlib

    import storemon_assets.core.parsing as parsing

    data = ("store_id,status,timestamp_utc\n" + body).encode()
    ingested = at("2023-02-01 00:00")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parsing, "MAX_LINE_BYTES", 16)  # lines and records of more than 16 bytes are too long
        patch.setattr(parsing, "MAX_RAW_TEXT_CHARS", 5)
        whole = parsing.parse_feed_bytes(data, pathlib.Path("p.csv"), ingested)
        patch.setattr(parsing, "READ_BLOCK_BYTES", block)
        patch.setattr(parsing, "HEAD_BYTES", 31)  # the header and one byte
        blocks = parsing.parse_feed_bytes(data, pathlib.Path("p.csv"), ingested)
    assert blocks.rows.equals(whole.rows)
    assert blocks.rejected.equals(whole.rejected)
    assert blocks.rejected_by_reason.equals(whole.rejected_by_reason)
    assert blocks.rows_read == whole.rows_read


# --- issue 20 row 5: a file is loaded a block at a time, in one transaction ----------------------


def small_blocks(monkeypatch, block_bytes: int = 4096, polls_per_insert: int = 100) -> list[int]:
    """Read the header in the first 256 bytes, parse 4 KiB at a time and insert 100 polls at a
    time; returns the sizes of the inserts."""
    import storemon_assets.core.parsing as parsing
    import storemon_assets.db.loading as loading

    monkeypatch.setattr(parsing, "HEAD_BYTES", 256)
    monkeypatch.setattr(parsing, "READ_BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(loading, "POLLS_INSERT_ROWS", polls_per_insert)
    inserted: list[int] = []
    real = loading._insert_polls

    def counting(conn, rows, keys, on_rows=None):
        inserted.append(rows.height)
        return real(conn, rows, keys, on_rows)

    monkeypatch.setattr(loading, "_insert_polls", counting)
    return inserted


def test_a_polls_file_is_loaded_a_block_at_a_time_and_holds_what_one_block_would(engine, tmp_path, monkeypatch):
    from storemon_assets.core.parsing import FeedFile

    # 3,000 polls of 50 stores (~134 KB: 33 blocks of 4 KiB), every 7th with an unknown status.
    text = "store_id,status,timestamp_utc\n" + "".join(
        f"s{n % 50},{'bogus' if n % 7 == 0 else 'active'},2023-01-22 {n % 24:02d}:{n % 60:02d}:{n % 59:02d}.{n:06d} UTC\n"
        for n in range(3_000)
    )
    path = write_csv(tmp_path, "p.csv", text)
    whole = read_feed_file(path)
    inserted = small_blocks(monkeypatch)
    outcome = load_feed(engine, FeedFile(path))
    # 429 rejected: n = 0, 7, ..., 2,996 (3,000 / 7 rounded up); 2,571 accepted.
    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_rejected) == (3_000, 2_571, 429)
    assert whole.rows.height == 2_571
    # Never more at once than 100 polls and one block's (~30 rows of 4 KiB): not the file's 2,571.
    assert len(inserted) > 10 and max(inserted) < 100 + 4096 // 40
    polls = read_table(engine, STORE_STATUS_POLLS).join(read_table(engine, STORES), on="store_key")
    assert sorted(polls.select("store_id", "polled_at_us").rows()) == sorted(
        whole.rows.select("store_id", "polled_at_us").rows()
    )
    [ledger] = read_table(engine, INGESTED_FILES).to_dicts()
    assert (ledger["rows_read"], ledger["rows_loaded"], ledger["rows_rejected"]) == (3_000, 2_571, 429)
    assert (ledger["first_poll_us"], ledger["last_poll_us"]) == (
        whole.rows.get_column("polled_at_us").min(),
        whole.rows.get_column("polled_at_us").max(),
    )
    assert read_table(engine, REJECTED_ROWS).height == 429
    assert rejected_counts(engine)[POLLS] == 429


def test_a_file_failing_in_its_last_block_leaves_nothing_loaded(engine, tmp_path, monkeypatch):
    from storemon_assets.core.parsing import FeedFile

    # Blocks of valid polls inserted, then a byte that is not UTF-8 on the last line: the file's
    # one transaction rolls back, as it does when the process is killed (tests of kill -9 below).
    good = "".join(f"s{n % 50},active,2023-01-22 12:00:{n % 60:02d}.{n:06d} UTC\n" for n in range(3_000))
    path = tmp_path / "p.csv"
    path.write_bytes(b"store_id,status,timestamp_utc\n" + good.encode() + b"s1,active,\xff\n")
    inserted = small_blocks(monkeypatch)
    feed = FeedFile(path)  # the header is fine
    with pytest.raises(FeedFileError, match=r"not a UTF-8 CSV file \(byte \d+ cannot be decoded\)"):
        load_feed(engine, feed)
    assert sum(inserted) > 1_000  # blocks went in before the bad one was read
    for table in (STORE_STATUS_POLLS, STORES, INGESTED_FILES, REJECTED_ROWS):
        assert read_table(engine, table).height == 0, table.name


def test_authoritative_files_read_in_blocks_apply_as_one(engine, tmp_path, monkeypatch):
    from storemon_assets.core.parsing import FeedFile

    filler = lambda n: "".join(f"f{i},{i % 7},09:00,17:00\n" for i in range(n))  # noqa: E731 - ~20 bytes a row
    write = lambda name, text: FeedFile(write_csv(tmp_path, name, text))  # noqa: E731
    load_feed(
        engine,
        write(
            "h1.csv",
            "store_id,dayOfWeek,start_time_local,end_time_local\ns1,0,09:00,17:00\ns1,1,09:00,17:00\ns1,2,09:00,17:00\n",
        ),
    )
    small_blocks(monkeypatch, block_bytes=64)
    # s1's rows at both ends of a file of several blocks: the second block's do not erase the
    # first's, and s1 lost Wednesday (2) only.
    outcome = load_feed(
        engine,
        write(
            "h2.csv",
            "store_id,dayOfWeek,start_time_local,end_time_local\ns1,0,09:00,17:00\n"
            + filler(20)
            + "s1,1,10:00,18:00\ns1,0,09:00,17:00\n",
        ),
    )
    assert outcome.stores_losing_weekdays == ("s1",)
    hours = read_table(engine, BUSINESS_HOURS).filter(pl.col("store_id") == "s1")
    assert sorted(hours.select("day_of_week", "start_time_us").rows()) == [
        (0, 9 * 3600 * 10**6),
        (1, 10 * 3600 * 10**6),
    ]
    # Timezones: the last row of a store wins, whichever block it is in.
    load_feed(
        engine,
        write(
            "tz.csv",
            "store_id,timezone_str\ns1,America/Chicago\n"
            + "".join(f"f{i},Asia/Tokyo\n" for i in range(20))
            + "s1,Europe/Berlin\n",
        ),
    )
    timezones = read_table(engine, STORE_TIMEZONES).filter(pl.col("store_id") == "s1")
    assert timezones.get_column("timezone_str").to_list() == ["Europe/Berlin"]
    # Special hours: a (store, date) named in two blocks keeps the file's rows of it, an exact
    # repeat once.
    special = "store_id,date_local,start_time_local,end_time_local\n"
    load_feed(engine, write("sp1.csv", special + "s1,2023-01-23,08:00,12:00\n"))
    load_feed(
        engine,
        write(
            "sp2.csv",
            special
            + "s1,2023-01-23,09:00,10:00\n"
            + "".join(f"f{i},2023-01-23,09:00,10:00\n" for i in range(20))
            + "s1,2023-01-23,09:00,10:00\ns1,2023-01-23,11:00,12:00\n",
        ),
    )
    from storemon_assets.core.tables import SPECIAL_HOURS

    rows = read_table(engine, SPECIAL_HOURS).filter(pl.col("store_id") == "s1").sort("start_time_us")
    assert rows.select("start_time_us", "end_time_us").rows() == [
        (9 * 3600 * 10**6, 10 * 3600 * 10**6),
        (11 * 3600 * 10**6, 12 * 3600 * 10**6),
    ]
