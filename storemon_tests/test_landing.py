"""The landing folder and its sensor (issue 9): only complete, regular files inside the folder
are read; the sensor does O(header) work and runs take bounded batches, one at a time; a file
its run did not load is tried again, then moved aside with the run's error.

Each test plays the daemon: it evaluates the sensor, then runs what the sensor requested (with
the request's tags, as Dagster would), on a temporary instance with real resources.
"""

from __future__ import annotations

import io
import os
import re
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest

import storemon_assets.defs.raw as raw
import storemon_assets.landing as landing_rules
import storemon_assets.run_retries as run_retries
import storemon_assets.service as service
from storemon_assets.core.ingest_batches import retry_delay_seconds
from storemon_assets.core.parsing import FeedFileError
from storemon_assets.core.tables import BUSINESS_HOURS
from storemon_assets.db.queries import read_polls, read_table, store_keys
from storemon_assets.defs.partitions import STORE_PARTITIONS_NAME
from storemon_assets.defs.raw import ingest_landing_files, landing_files_sensor
from storemon_assets.defs.resources import LandingFolder
from storemon_assets.names import WILL_RETRY_TAG
from storemon_tests.conftest import shared_data
from storemon_tests.helpers import write_csv

HEADER = "store_id,status,timestamp_utc\n"


def tick(home, instance, cursor=None, resources=None) -> dg.SensorResult:
    """One evaluation of the sensor."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources or home.resources)
    return landing_files_sensor(context)


def run_requested(home, instance, result, resources=None) -> list[dg.ExecuteInProcessResult]:
    """What the daemon does with the sensor's run requests: launch each, tagged as requested."""
    return [
        dg.materialize(
            [ingest_landing_files],
            resources=resources or home.resources,
            instance=instance,
            run_config=request.run_config,
            tags=request.tags,
            raise_on_error=False,
        )
        for request in result.run_requests
    ]


def requested_files(result) -> list[list[str]]:
    return [
        [Path(p).name for p in r.run_config["ops"]["ingest_landing_files"]["config"]["files"]]
        for r in result.run_requests
    ]


def settled(path: Path, seconds_ago: float = 60) -> Path:
    os.utime(path, (time.time() - seconds_ago, time.time() - seconds_ago))
    return path


def polls_file(home, name, rows, age=60) -> Path:
    """A polls file in the landing folder, last written `age` seconds ago."""
    return settled(write_csv(home.landing.folder, name, HEADER + "".join(f"{s},active,{t}\n" for s, t in rows)), age)


def stored_polls(home) -> list[tuple]:
    """(store_id, polled_at_us, active) of every stored poll."""
    engine = home.database.engine()
    polls = read_polls(engine, 0, 2**62).join(store_keys(engine), on="store_key")
    return sorted(polls.select("store_id", "polled_at_us", "active").rows())


# --- the basics ---------------------------------------------------------------------------


def test_a_new_file_gives_one_run_which_loads_it(home, instance):
    path = polls_file(home, "p1.csv", [("7", "2023-01-22 12:00:00 UTC"), ("007", "2023-01-22 12:00:00 UTC")])
    first = tick(home, instance)
    [request] = first.run_requests
    assert request.run_key.startswith("ingest-") and request.tags[raw.BATCH_TAG] == request.run_key
    assert request.run_config["ops"]["ingest_landing_files"]["config"]["files"] == [path.name]
    [run] = run_requested(home, instance, first)
    assert run.success
    assert [store for store, _, _ in stored_polls(home)] == ["007", "7"]
    after = tick(home, instance, first.cursor)
    assert after.run_requests == []
    assert instance.get_dynamic_partitions(STORE_PARTITIONS_NAME) == []  # the stores sensor adds them (test_sensors)


def test_touching_a_loaded_file_loads_nothing_but_extending_it_loads_it_again(home, instance):
    path = polls_file(home, "p1.csv", [("1", "2023-01-22 12:00:00 UTC")])
    first = tick(home, instance)
    run_requested(home, instance, first)
    loaded = tick(home, instance, first.cursor)
    settled(path, 30)  # a touch: new modification time, same content (in the ledger)
    touched = tick(home, instance, loaded.cursor)
    # The sensor hashes nothing (issue 20 row 2): the run finds the content in the ledger.
    [run] = run_requested(home, instance, touched)
    polls = run.asset_materializations_for_node("ingest_landing_files")[0].metadata
    assert polls["files_loaded"].value == "none (unchanged)" and polls["rows_loaded"].value == 0
    with path.open("a") as f:
        f.write("1,inactive,2023-01-22 13:00:00 UTC\n")
    settled(path, 20)
    extended = tick(home, instance, tick(home, instance, touched.cursor).cursor)
    assert requested_files(extended) == [["p1.csv"]]
    run_requested(home, instance, extended)
    assert len(stored_polls(home)) == 2


def test_an_unrecognised_file_is_moved_aside_at_once_and_reported(home, instance):
    settled(write_csv(home.landing.folder, "weird.csv", "id,value\n1,2\n"))
    result = tick(home, instance)
    assert result.run_requests == []
    assert (home.landing.failed_folder / "weird.csv").exists()
    assert "unrecognised header" in (home.landing.failed_folder / "weird.csv.error.txt").read_text()
    [evaluation] = result.asset_events
    assert evaluation.check_name == "no_unreadable_files" and not evaluation.passed
    assert tick(home, instance, result.cursor).run_requests == []


def test_a_long_history_is_loaded_in_batches_one_run_at_a_time(home, instance):
    for n in range(landing_rules.MAX_FILES_PER_RUN + 30):
        polls_file(home, f"p{n:04d}.csv", [(f"s{n}", "2023-01-22 12:00:00 UTC")])
    first = tick(home, instance)
    assert [len(f) for f in requested_files(first)] == [landing_rules.MAX_FILES_PER_RUN]
    # Its run not created yet: the same request again, and no second batch beside it.
    again = tick(home, instance, first.cursor)
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in first.run_requests]
    run_requested(home, instance, again)
    second = tick(home, instance, again.cursor)
    assert [len(f) for f in requested_files(second)] == [30]


def test_a_file_still_being_written_waits_until_it_settles(home, instance):
    patient = {**home.resources, "landing": LandingFolder(path=home.landing.path, settle_seconds=30)}
    path = polls_file(home, "p.csv", [("1", "2023-01-22 12:00:00 UTC")], age=0)
    assert tick(home, instance, resources=patient).run_requests == []  # modified just now
    settled(path)
    assert len(tick(home, instance, resources=patient).run_requests) == 1


# --- row 1: a failed ingest is retried (by Dagster: issue 16 item 2), then surfaced -------------


@contextmanager
def database_locked(home):
    """Another process holds SQLite's write lock (readers still read: WAL) until the block ends
    or `release()` is called on what it yields."""
    home.database.engine()  # tables exist, journal in WAL mode
    holder = sqlite3.connect(
        home.database.url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False
    )
    holder.execute("BEGIN EXCLUSIVE")

    class Lock:
        @staticmethod
        def release():
            if holder.in_transaction:
                holder.execute("ROLLBACK")

    try:
        yield Lock
    finally:
        Lock.release()
        holder.close()


def step_retries(run: dg.ExecuteInProcessResult) -> list[float]:
    """The waits of the step's retries in a run, in seconds."""
    return [
        e.event_specific_data.seconds_to_wait
        for e in run.all_events
        if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
    ]


@pytest.fixture
def quick_retries(monkeypatch):
    monkeypatch.setenv("STOREMON_SQLITE_BUSY_TIMEOUT", "0.1")
    monkeypatch.setenv("STOREMON_INGEST_RETRY_SECONDS", "0.1")


def test_a_run_meeting_a_locked_database_retries_its_step_until_the_file_is_loaded(
    home, instance, quick_retries, monkeypatch
):
    # Issue 9 row 1: the failed run was never retried. The step now retries itself (Dagster's
    # step retries, with backoff) in the same run, until the lock is gone.
    polls_file(home, "p.csv", [("s1", "2023-01-22 12:00:00 UTC")])
    first = tick(home, instance)
    failures = []

    def delay_then_release(failed_attempts, first_delay):
        failures.append(failed_attempts)
        if failed_attempts == 2:  # the lock goes away during the second wait
            lock.release()
        return retry_delay_seconds(failed_attempts, first_delay)

    monkeypatch.setattr(raw, "retry_delay_seconds", delay_then_release)
    with database_locked(home) as lock:
        [run] = run_requested(home, instance, first)
    assert run.success and failures == [1, 2]
    assert step_retries(run) == [0.1, 0.2]  # 0.1 s, then doubling
    assert stored_polls(home) == [("s1", 1674388800000000, True)]
    done = tick(home, instance, first.cursor)
    assert done.run_requests == [] and not done.asset_events


def test_after_the_last_retry_the_files_not_loaded_are_moved_aside_with_the_runs_error(
    home, instance, quick_retries, monkeypatch
):
    monkeypatch.setattr(raw, "MAX_STEP_RETRIES", 1)
    polls_file(home, "p.csv", [("s1", "2023-01-22 12:00:00 UTC")])
    first = tick(home, instance)
    with database_locked(home):
        [run] = run_requested(home, instance, first)
    assert not run.success and step_retries(run) == [0.1]
    last = tick(home, instance, first.cursor)  # the run failed for good: Dagster will not re-run it
    assert last.run_requests == []
    error = (home.landing.failed_folder / "p.csv.error.txt").read_text()
    assert error.startswith(f"p.csv: not loaded by run {run.run_id} (FAILURE, 1 attempt(s)): ")
    assert "database is locked" in error
    [evaluation] = last.asset_events
    assert evaluation.check_name == "no_unreadable_files" and not evaluation.passed
    assert tick(home, instance, last.cursor).run_requests == []


def test_a_run_dagster_will_run_again_is_waited_for_and_its_retry_loads_the_files(
    home, instance, quick_retries, monkeypatch
):
    # Issue 9 row 1, a killed run: the instance re-runs a run whose worker was lost (run retries,
    # which set `dagster/will_retry` on the failed run and copy its tags to the retry).
    monkeypatch.setattr(raw, "MAX_STEP_RETRIES", 0)
    polls_file(home, "p.csv", [("s1", "2023-01-22 12:00:00 UTC")])
    polls_file(home, "q.csv", [("s2", "2023-01-22 12:00:00 UTC")], age=30)
    first = tick(home, instance)
    with database_locked(home):
        [failed] = run_requested(home, instance, first)
    instance.add_run_tags(failed.run_id, {"dagster/will_retry": "true"})  # as run retries would
    waiting = tick(home, instance, first.cursor)
    assert waiting.run_requests == [] and not home.landing.failed_folder.exists()  # a retry is coming
    [request] = first.run_requests
    retried = dg.materialize(
        [ingest_landing_files],
        resources=home.resources,
        instance=instance,
        run_config=request.run_config,
        tags={**request.tags, "dagster/parent_run_id": failed.run_id, "dagster/retry_number": "1"},
    )
    assert retried.success
    done = tick(home, instance, waiting.cursor)
    assert done.run_requests == [] and not home.landing.failed_folder.exists()
    assert [store for store, _, _ in stored_polls(home)] == ["s1", "s2"]


def test_a_failed_run_not_yet_tagged_by_run_retries_keeps_its_files_until_the_tag_is_overdue(
    home, quick_retries, monkeypatch
):
    # Dagster stores a run's failure, then tags it dagster/will_retry: a tick in between read the
    # missing tag as "no retry" and moved the files to failed/ while a re-run was about to take
    # them. Untagged on an instance with run retries on, the run may still be retried for
    # UNTAGGED_FAILURE_SECONDS after it ended (run_retries.ended_for_good), then failed for good.
    monkeypatch.setattr(raw, "MAX_STEP_RETRIES", 0)
    polls_file(home, "p.csv", [("s1", "2023-01-22 12:00:00 UTC")])
    with dg.DagsterInstance.ephemeral(settings={"run_retries": {"enabled": True}}) as instance:
        tag_run = instance.add_run_tags

        def without_will_retry(run_id, tags):  # the moment before Dagster tags the failure
            tag_run(run_id, {k: v for k, v in tags.items() if k != WILL_RETRY_TAG})

        monkeypatch.setattr(instance, "add_run_tags", without_will_retry)
        first = tick(home, instance)
        with database_locked(home):
            [failed] = run_requested(home, instance, first)
        assert not failed.success and WILL_RETRY_TAG not in instance.get_run_by_id(failed.run_id).tags
        waiting = tick(home, instance, first.cursor)
        assert waiting.run_requests == [] and not home.landing.failed_folder.exists()  # a retry may come
        a_minute_later = time.time() + run_retries.UNTAGGED_FAILURE_SECONDS
        monkeypatch.setattr(run_retries, "time", SimpleNamespace(time=lambda: a_minute_later))
        overdue = tick(home, instance, waiting.cursor)
    assert overdue.run_requests == [] and (home.landing.failed_folder / "p.csv").exists()
    assert f"not loaded by run {failed.run_id} (FAILURE" in (home.landing.failed_folder / "p.csv.error.txt").read_text()


def test_a_failed_run_moves_aside_only_the_files_it_did_not_load(home, instance, quick_retries, monkeypatch):
    monkeypatch.setattr(raw, "MAX_STEP_RETRIES", 0)
    polls_file(home, "early.csv", [("s1", "2023-01-22 12:00:00 UTC")], age=90)
    polls_file(home, "late.csv", [("s2", "2023-01-22 12:00:00 UTC")], age=60)
    first = tick(home, instance)
    original = service.load_feed
    calls = []

    def locked_on_the_second_file(engine, feed, **kwargs):
        calls.append(feed.path.name)
        if len(calls) == 2:
            with database_locked(home):
                return original(engine, feed, **kwargs)
        return original(engine, feed, **kwargs)

    monkeypatch.setattr(service, "load_feed", locked_on_the_second_file)
    [run] = run_requested(home, instance, first)
    assert not run.success and calls == ["early.csv", "late.csv"]
    tick(home, instance, first.cursor)
    assert sorted(p.name for p in home.landing.failed_folder.iterdir()) == ["late.csv", "late.csv.error.txt"]
    assert stored_polls(home) == [("s1", 1674388800000000, True)]


# --- row 2: the sensor reads headers only; runs take bounded batches ---------------------------


def test_a_small_file_goes_into_the_next_run_beside_a_backlog_of_large_files(home, instance, monkeypatch):
    monkeypatch.setattr(landing_rules, "MAX_RUN_BYTES", 1_000)
    many = [(f"s{n}", "2023-01-22 12:00:00 UTC") for n in range(60)]  # ~1,700 bytes: large
    for n, name in enumerate(["big1.csv", "big2.csv", "big3.csv"]):
        polls_file(home, name, many, age=300 - n)
    polls_file(home, "small.csv", [("late", "2023-01-22 13:00:00 UTC")], age=60)  # arrived last
    first = tick(home, instance)
    # The small file first, then the oldest large file; the other large files wait their turn.
    assert requested_files(first) == [["small.csv", "big1.csv"]]
    run_requested(home, instance, first)
    second = tick(home, instance, first.cursor)
    assert requested_files(second) == [["big2.csv"]]


def counted_landing_reads(monkeypatch) -> list[int]:
    """The sizes of every read the landing folder's files get (LandingFolder._open is their one
    door), appended as they happen."""
    read: list[int] = []
    original = LandingFolder._open

    class Counted(io.BufferedReader):
        def read(self, size=-1):
            data = super().read(size)
            read.append(len(data))
            return data

    def counting_open(self, path):
        return Counted(original(self, path).detach())

    monkeypatch.setattr(LandingFolder, "_open", counting_open)
    return read


def bytes_read_by_process() -> int:
    """Bytes this process has passed to read() and pread() so far, from any file (Linux)."""
    return int(re.search(r"^rchar: (\d+)$", Path("/proc/self/io").read_text(), re.M).group(1))


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="counts reads through /proc/self/io (Linux)")
def test_with_several_large_files_every_sensor_tick_reads_a_bounded_head_of_each(home, instance, monkeypatch):
    # Issue 9 row 2: the sensor parsed every new file inside its tick; five 560 MB files took
    # each tick past Dagster's 60 s limit, and all ingestion stopped. Issue 20 row 2: it then
    # hashed them. A tick now reads at most 64 KiB and one byte of each entry, whatever its size.
    block = "".join(f"{n % 9000},active,2023-01-2{n % 5} 1{n % 10}:00:00.{n:06d} UTC\n" for n in range(100_000))
    home.landing.folder.mkdir(parents=True)
    for n in range(4):
        path = home.landing.folder / f"large{n}.csv"
        with path.open("w") as f:
            f.write(HEADER)
            for _ in range(4):  # ~18 MB, 400,000 polls each
                f.write(block)
        settled(path, 300 - n)
    polls_file(home, "small.csv", [("late", "2023-01-22 13:00:00 UTC")])
    large_bytes = (home.landing.folder / "large0.csv").stat().st_size
    read = counted_landing_reads(monkeypatch)
    cursor = None
    for _ in range(3):
        before = bytes_read_by_process()
        read.clear()
        result = tick(home, instance, cursor)  # a failing tick raises
        # A head and a last byte per entry (5 entries) through the landing folder...
        assert sum(read) <= 5 * (64 * 1024 + 1), read
        # ...and no large file read whole by any other path (the instance's own reads are far less).
        assert bytes_read_by_process() - before < large_bytes
        cursor = result.cursor
    [batch] = requested_files(result)  # one run at a time, reading a bounded amount
    assert "small.csv" in batch
    assert sum((home.landing.folder / name).stat().st_size for name in batch) <= landing_rules.MAX_RUN_BYTES


# --- row 3: only complete files are read --------------------------------------------------------


def test_a_stalled_writer_is_waited_for_and_only_the_completed_file_is_loaded(home, instance):
    # Issue 9 row 3: a writer stalled mid-line after "2023-01-25 10:00", a valid timestamp; the
    # half-written file was loaded (a phantom poll), then the completed one as a changed file.
    path = write_csv(
        home.landing.folder, "p.csv", HEADER + "s1,active,2023-01-25 09:00:00 UTC\ns1,inactive,2023-01-25 10:00"
    )
    settled(path, 20)  # unchanged for 20 s, settled for a file ending with a newline: the writer stalled
    stalled = tick(home, instance)
    run_requested(home, instance, stalled)
    with path.open("a") as f:
        f.write(":39 UTC\n")
    settled(path, 30)
    completed = tick(home, instance, stalled.cursor)
    run_requested(home, instance, completed)
    tick(home, instance, completed.cursor)
    assert stalled.run_requests == []
    # 09:00 = 1674637200 s; 10:00:39 = 1674640839 s; nothing at 10:00:00.
    assert stored_polls(home) == [("s1", 1674637200000000, True), ("s1", 1674640839000000, False)]


def test_a_file_without_a_final_newline_is_complete_once_unchanged_long_enough(home, instance):
    # Issue 20 row 11: the real feed's own store_status_sample.csv (no final newline) waited
    # 10 min, then went to failed/. 30 s unchanged (STOREMON_LAST_LINE_SETTLE_SECONDS) now does.
    path = write_csv(home.landing.folder, "p.csv", HEADER + "s1,active,2023-01-25 09:00:00 UTC")
    settled(path, 20)
    assert tick(home, instance).run_requests == []  # may still be written
    settled(path, 31)
    result = tick(home, instance)
    assert requested_files(result) == [["p.csv"]]
    [run] = run_requested(home, instance, result)
    assert run.success and stored_polls(home) == [("s1", 1674637200000000, True)]


def test_the_real_feeds_file_without_a_final_newline_is_loaded(home, instance):
    source = shared_data("loop-2023", "store_status_sample.csv")
    assert not source.read_bytes().endswith(b"\n")
    impatient = {**home.resources, "landing": LandingFolder(path=home.landing.path, last_line_settle_seconds=5)}
    [path] = home.drop(source)
    settled(path, 6)
    result = tick(home, instance, resources=impatient)
    [run] = run_requested(home, instance, result, resources=impatient)
    assert run.success
    engine = home.database.engine()
    # Every line after the header is a poll; the last, unterminated, too.
    assert read_polls(engine, 0, 2**62).height == source.read_bytes().count(b"\n")


def test_an_empty_file_is_moved_aside_after_a_while(home, instance):
    impatient = {**home.resources, "landing": LandingFolder(path=home.landing.path, incomplete_after_seconds=30)}
    path = settled(write_csv(home.landing.folder, "p.csv", ""), 10)
    assert tick(home, instance, resources=impatient).asset_events == []  # waited for
    settled(path, 60)
    result = tick(home, instance, resources=impatient)
    assert result.run_requests == [] and not result.asset_events[0].passed
    assert (
        (home.landing.failed_folder / "p.csv.error.txt").read_text().startswith("p.csv: empty and unchanged for 30 s")
    )


def test_a_run_does_not_read_a_file_rewritten_since_the_sensor_saw_it_complete(home, instance):
    path = polls_file(home, "p.csv", [("s1", "2023-01-22 12:00:00 UTC")])
    first = tick(home, instance)
    path.write_text(HEADER + "s1,active,2023-01-22 13:00")  # being rewritten when the run starts
    [run] = run_requested(home, instance, first)
    assert run.success and stored_polls(home) == []


# --- row 6: the landing folder is a boundary ----------------------------------------------------

SECRET = "root:x:0:0:root:/root:/bin/bash\n"


def test_symbolic_links_are_refused_unread_and_moved_aside(home, instance, tmp_path):
    # Issue 9 row 6: a link to /etc/passwd put its first line into failed/*.error.txt and the
    # logs; a link to a CSV elsewhere was ingested.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text(SECRET)
    (outside / "polls.csv").write_text(HEADER + "stranger,active,2023-01-22 12:00:00 UTC\n")
    home.landing.folder.mkdir(parents=True)
    (home.landing.folder / "passwd.csv").symlink_to(outside / "passwd")
    (home.landing.folder / "elsewhere.csv").symlink_to(outside / "polls.csv")
    os.mkfifo(home.landing.folder / "pipe.csv")  # opening it to read would block the tick
    result = tick(home, instance)
    assert result.run_requests == []
    for name in ("passwd.csv", "elsewhere.csv", "pipe.csv"):
        error = (home.landing.failed_folder / f"{name}.error.txt").read_text()
        assert "refused unread: not a regular file" in error and "root" not in error
    for name in ("passwd.csv", "elsewhere.csv"):
        assert (home.landing.failed_folder / name).is_symlink()  # the link moved, not its target
    assert (outside / "passwd").read_text() == SECRET
    assert not result.asset_events[0].passed
    assert stored_polls(home) == []


def test_a_run_refuses_a_symbolic_link_put_in_place_of_a_landing_file(home, instance, tmp_path):
    path = polls_file(home, "p.csv", [("s1", "2023-01-22 12:00:00 UTC")])
    first = tick(home, instance)
    (tmp_path / "passwd").write_text(SECRET)
    path.unlink()
    path.symlink_to(tmp_path / "passwd")  # swapped after the sensor looked
    [run] = run_requested(home, instance, first)
    assert not run.success
    messages = " ".join(str(e.message) + str(e.event_specific_data) for e in run.all_events)
    assert "refused unread, a symbolic link" in messages and "root:x" not in messages
    assert (home.landing.failed_folder / "p.csv").is_symlink() and stored_polls(home) == []


def test_error_files_quote_only_a_short_sanitised_excerpt_of_a_file(home, instance):
    settled(write_csv(home.landing.folder, "junk.csv", "\x1b[2J\x1b[31m" + "A" * 5_000 + "\nmore\n"))
    tick(home, instance)
    error = (home.landing.failed_folder / "junk.csv.error.txt").read_text()
    assert len(error) < 400 and "\x1b" not in error and "AAAA" in error


# --- issue 20 rows 2 and 3: failed/ never overwrites, whatever the entry ------------------------


def test_a_second_delivery_moved_aside_under_the_same_name_keeps_the_first_and_both_errors(home, instance):
    # Issue 20 row 3: failed/ overwrote the first weird.csv and its .error.txt, the only copy.
    settled(write_csv(home.landing.folder, "weird.csv", "id,value\n1,2\n"))
    first = tick(home, instance)
    settled(write_csv(home.landing.folder, "weird.csv", "name,value\nsecond,3\n"))
    tick(home, instance, first.cursor)
    failed = home.landing.failed_folder
    contents = sorted(p.read_text() for p in failed.glob("weird*.csv"))
    assert contents == ["id,value\n1,2\n", "name,value\nsecond,3\n"]
    errors = sorted(p.read_text() for p in failed.glob("weird*.csv.error.txt"))
    assert len(errors) == 2 and "'id,value'" in errors[0] and "'name,value'" in errors[1]


def test_a_folder_moved_aside_where_a_folder_of_its_name_waits_gets_its_own_name(home, instance):
    # Issue 20 row 2: a non-empty folder d.csv moved onto failed/d.csv raised "Directory not
    # empty" on every tick, and stopped every other file.
    for folder in (home.landing.folder / "d.csv", home.landing.failed_folder / "d.csv"):
        folder.mkdir(parents=True)
        (folder / "inside.txt").write_text(f"{folder.parent.name}\n")
    polls_file(home, "p.csv", [("s1", "2023-01-22 12:00:00 UTC")])
    result = tick(home, instance)  # raised before
    assert requested_files(result) == [["p.csv"]]
    moved = [p for p in home.landing.failed_folder.glob("d.*.csv") if p.is_dir()]
    assert [(p / "inside.txt").read_text() for p in moved] == ["landing\n"]
    assert (home.landing.failed_folder / "d.csv" / "inside.txt").read_text() == "failed\n"
    assert "refused unread" in (moved[0].parent / (moved[0].name + ".error.txt")).read_text()


def test_a_file_replaced_by_other_content_of_the_same_size_and_time_is_read_again(home, instance):
    # Issue 20 row 12: change detection trusted size and modification time alone.
    path = polls_file(home, "p.csv", [("s1", "2023-01-22 12:00:00 UTC")])
    first = tick(home, instance)
    run_requested(home, instance, first)
    loaded = tick(home, instance, first.cursor)
    before = path.stat()
    replacement = path.with_name("p.csv.part")
    replacement.write_text(path.read_text().replace("s1", "s2"))  # same size
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
    replacement.replace(path)
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    again = tick(home, instance, loaded.cursor)
    assert requested_files(again) == [["p.csv"]]
    run_requested(home, instance, again)
    assert [store for store, _, _ in stored_polls(home)] == ["s1", "s2"]


def test_the_ingest_job_refuses_files_named_outside_the_landing_folder_quoting_nothing(home, instance, tmp_path):
    # Issue 20 row 13: the launchpad's `files: ["/etc/passwd"]` read any file on the server, and
    # its first line appeared in the run's error.
    (tmp_path / "passwd").write_text(SECRET)
    (tmp_path / "polls.csv").write_text(HEADER + "stranger,active,2023-01-22 12:00:00 UTC\n")
    polls_file(home, "p.csv", [("s1", "2023-01-22 12:00:00 UTC")])
    named = [str(tmp_path / "passwd"), str(tmp_path / "polls.csv"), str(home.landing.folder / ".." / "passwd")]
    config = {"ops": {"ingest_landing_files": {"config": {"files": [*named, "p.csv"]}}}}
    run = dg.materialize(
        [ingest_landing_files], resources=home.resources, instance=instance, run_config=config, raise_on_error=False
    )
    assert not run.success
    messages = " ".join(str(e.message) + str(e.event_specific_data) for e in run.all_events)
    assert "passwd: refused unread, not directly inside the landing folder" in messages
    assert "root:x" not in messages and "stranger" not in messages
    assert stored_polls(home) == [("s1", 1674388800000000, True)]  # the landing file, by its name alone
    assert (tmp_path / "passwd").read_text() == SECRET  # left where it was


def test_an_hours_file_that_takes_weekdays_from_stores_fails_a_warning_check(home, instance):
    # Issue 20 row 4: an accidental split of a store's rows over two files was silent.
    header = "store_id,dayOfWeek,start_time_local,end_time_local\n"
    first = write_csv(home.landing.folder, "hours_1.csv", header + "s1,0,09:00,17:00\ns2,0,09:00,17:00\n")
    second = write_csv(home.landing.folder, "hours_2.csv", header + "s1,1,09:00,17:00\n")
    config = {"ops": {"ingest_landing_files": {"config": {"files": [first.name, second.name]}}}}
    run = dg.materialize([ingest_landing_files], resources=home.resources, instance=instance, run_config=config)
    [check] = run.get_asset_check_evaluations()
    assert check.check_name == "no_store_lost_weekdays" and not check.passed
    assert check.asset_key == raw.RAW_BUSINESS_HOURS
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["stores"].value == 1 and "`s1`" in check.metadata["files"].value


def test_a_huge_sparse_file_costs_the_sensor_a_bounded_read_and_does_not_hold_back_a_small_file(
    home, instance, monkeypatch
):
    # Issue 20 row 2: a 120 GB sparse file made every tick hash at 100 % until Dagster's 60 s
    # limit; a small file behind it waited 4.5 min. The sensor now reads the first 64 KiB and
    # the last byte of an entry, whatever its size; hashing is the run's.
    huge = home.landing.folder / "huge.csv"
    home.landing.folder.mkdir(parents=True)
    huge.write_text(HEADER)
    os.truncate(huge, 4 * 2**30)  # 4 GiB, a hole after the header: nothing on disk
    settled(huge, 120)
    polls_file(home, "small.csv", [("late", "2023-01-22 13:00:00 UTC")], age=60)
    sparse = home.landing.folder / "zeros.csv"
    with sparse.open("wb") as f:
        f.truncate(120 * 2**30)  # the probe's 120 GB, all NUL
    settled(sparse, 120)
    read = counted_landing_reads(monkeypatch)
    result = tick(home, instance)
    assert sum(read) <= 3 * (64 * 1024 + 1)  # a head and a last byte per entry
    assert requested_files(result) == [["small.csv", "huge.csv"]]  # the small file first, beside it
    assert (
        "no header line within the first 65,536 bytes"
        in (home.landing.failed_folder / "zeros.csv.error.txt").read_text()
    )


def test_settling_batches_keeps_those_in_flight_asks_again_for_those_without_run_and_names_failed_files(tmp_path):
    """landing.settle_batches without Dagster: one batch per state, files present, gone or changed."""
    from storemon_assets.landing import BatchState, LandingCursor, LandingFile, settle_batches

    def file(name: str, size: int) -> LandingFile:
        return LandingFile(tmp_path / name, size=size, mtime_ns=1, inode=1, ctime_ns=1)

    present = {f.name: f for f in [file("a.csv", 10), file("b.csv", 10), file("c.csv", 10), file("d.csv", 20)]}
    handed = {"a.csv": present["a.csv"].identity, "b.csv": present["b.csv"].identity}
    handed |= {"c.csv": present["c.csv"].identity, "d.csv": file("d.csv", 10).identity}  # d grew since handed
    cursor = LandingCursor(
        handed=handed,
        batches={
            "no-run": ["a.csv", "gone.csv"],
            "no-run-all-gone": ["gone.csv"],
            "running": ["b.csv"],
            "succeeded": ["c.csv"],
            "failed": ["c.csv", "d.csv", "gone.csv"],
        },
    )
    states = {"running": BatchState.IN_FLIGHT, "succeeded": BatchState.SUCCEEDED, "failed": BatchState.FAILED}
    settlement = settle_batches(cursor, present, states)
    assert settlement.in_flight
    assert settlement.without_run == {"no-run": ["a.csv"]}  # gone.csv is no longer asked for
    assert settlement.failed == {"failed": ["c.csv"]}  # d.csv changed (a new version), gone.csv is gone
    assert set(cursor.batches) == {"no-run", "running"}  # settled and emptied batches leave the cursor
    assert settle_batches(LandingCursor(), present, {}) == type(settlement)()  # no batch: nothing to do


def test_the_failed_folder_finding_passes_while_it_is_empty_and_names_each_waiting_file(tmp_path):
    landing = LandingFolder(path=str(tmp_path))
    assert landing.failed_finding().passed and landing.failed_finding().summary == "no unreadable files"
    (tmp_path / "bad.csv").write_text("what,is,this\n")
    landing.move_aside(tmp_path / "bad.csv", "bad.csv: unknown header")
    finding = landing.failed_finding()
    assert not finding.passed and finding.summary.startswith("1 file(s) could not be ingested")
    assert finding.details["files"] == "- `bad.csv`: bad.csv: unknown header"  # shown in the UI as a list


def test_a_file_outside_the_landing_folder_is_never_moved_aside(tmp_path):
    """A run named a path outside the folder and could not read it: it was never delivered
    there, so it stays where it is and failed/ gets nothing."""
    landing = LandingFolder(path=str(tmp_path / "landing"))
    (tmp_path / "elsewhere").mkdir()
    outside = tmp_path / "elsewhere" / "bad.csv"
    outside.write_text("what,is,this\n")
    assert landing.move_aside(outside, "bad.csv: refused unread") is None
    assert outside.exists() and not landing.failed_folder.exists()


def test_a_dot_dot_past_a_link_inside_the_landing_folder_is_not_inside_it(tmp_path):
    """`sub/../x.csv` looks like `x.csv` as text, but with `sub` a symbolic link the system finds
    `x.csv` beside the link's target: a named file like that is neither read nor moved aside."""
    landing = LandingFolder(path=str(tmp_path / "landing"))
    landing.folder.mkdir()
    (tmp_path / "elsewhere" / "deeper").mkdir(parents=True)
    (landing.folder / "sub").symlink_to(tmp_path / "elsewhere" / "deeper")
    outside = tmp_path / "elsewhere" / "x.csv"
    outside.write_text("store_id,timezone_str\ns1,America/Chicago\n")
    named = landing.folder / "sub/../x.csv"
    assert named.read_text() == outside.read_text()  # what the system opens: the file outside
    assert not landing.holds(named) and landing.holds(landing.folder / "x.csv")
    with pytest.raises(FeedFileError, match="not directly inside the landing folder"):
        landing.open_complete(named)
    assert landing.move_aside(named, "x.csv: refused unread") is None and outside.exists()


def test_handing_out_a_batch_records_its_files_under_its_run_key_and_hands_nothing_when_none_is_ready(tmp_path):
    """LandingCursor.hand_out without Dagster: the bounded batch, its key, and what the cursor keeps."""
    from storemon_assets.landing import LandingCursor, LandingFile, batch_key

    files = [LandingFile(tmp_path / f"{n}.csv", size=10, mtime_ns=n, inode=n, ctime_ns=n) for n in (1, 2, 3)]
    cursor = LandingCursor()
    key, batch = cursor.hand_out(files, max_bytes=1_000, max_files=2)
    assert [f.name for f in batch] == ["1.csv", "2.csv"] and key == batch_key(batch)  # two files at most
    assert cursor.batches == {key: ["1.csv", "2.csv"]}
    assert cursor.handed == {f.name: f.identity for f in batch}
    assert cursor.hand_out([], max_bytes=1_000, max_files=2) == ("", []) and len(cursor.batches) == 1


def test_a_tick_moves_aside_what_a_failed_batch_did_not_load_and_hands_out_one_batch_at_a_time(home):
    """LandingFolderRules.tick without Dagster: the states and the failed runs' account are given."""
    from storemon_assets.landing import BatchState, LandingCursor

    for name in ("a.csv", "b.csv", "c.csv"):
        polls_file(home, name, [("s1", "2023-01-22 12:00:00 UTC")])
    files = {f.name: f for f in home.landing.scan()[0]}
    cursor = LandingCursor(handed={n: files[n].identity for n in ("a.csv", "b.csv")}, batches={"k": ["a.csv", "b.csv"]})
    asked = []

    def failure_of(key):
        asked.append(key)
        return {"a.csv"}, "not loaded by run r (FAILURE, 1 attempt(s)): boom"  # its run loaded a.csv

    tick = home.landing.tick(cursor, {"k": BatchState.FAILED}, failure_of)
    assert asked == ["k"] and tick.moved == ["b.csv: not loaded by run r (FAILURE, 1 attempt(s)): boom"]
    assert sorted(p.name for p in home.landing.failed_folder.iterdir()) == ["b.csv", "b.csv.error.txt"]
    [(key, batch)] = tick.requests.items()  # the failed batch settled: c.csv is the next batch
    assert [f.name for f in batch] == ["c.csv"] and cursor.batches == {key: ["c.csv"]}
    # Its run not created yet: asked again, and no other batch beside it; Dagster is not asked why.
    polls_file(home, "d.csv", [("s1", "2023-01-22 12:00:00 UTC")])
    again = home.landing.tick(cursor, {}, failure_of)
    assert {k: [f.name for f in b] for k, b in again.requests.items()} == {key: ["c.csv"]} and asked == ["k"]
    running = home.landing.tick(cursor, {key: BatchState.IN_FLIGHT}, failure_of)
    assert running.requests == {} and running.moved == []


@pytest.mark.parametrize(
    ("status", "tags", "state"),
    [
        ("STARTED", {}, "IN_FLIGHT"),
        ("FAILURE", {WILL_RETRY_TAG: "true"}, "IN_FLIGHT"),
        ("FAILURE", {}, "IN_FLIGHT"),  # just failed, untagged, run retries on: a retry may come
        ("FAILURE", {WILL_RETRY_TAG: "false"}, "FAILED"),
        ("CANCELED", {}, "FAILED"),
        ("SUCCESS", {}, "SUCCEEDED"),
    ],
)
def test_a_batch_state_comes_from_its_newest_run_by_the_one_retry_rule(status, tags, state):
    from storemon_assets.landing import BatchState

    assert BatchState.of_last_run(status, tags, retries_enabled=True, ended_at=time.time()) is BatchState[state]


def test_a_run_over_the_whole_folder_never_undoes_a_newer_delivery_of_hours(home, instance, tmp_path):
    """SPEC §1: authoritative files apply in delivery order. `make run` and the UI's materialise
    run the ingest job over every CSV in the landing folder; that re-applied an hours file a
    newer delivery had replaced (a new-user trial: the sample's menu_hours.csv undid hours
    loaded by `storemon ingest` at each `make run`). Such a run only looks at the folder again;
    the file is delivered again when it changes, and the sensor, which sees that, applies it."""
    header = "store_id,dayOfWeek,start_time_local,end_time_local\n"
    older = settled(write_csv(home.landing.folder, "hours_v1.csv", header + "s1,0,09:00,17:00\n"))
    newer = write_csv(tmp_path, "hours_v2.csv", header + "s1,0,10:00,18:00\n")  # delivered by `storemon ingest`
    engine = home.database.engine()

    def opening_hour() -> int:  # s1's Monday opening, in hours after local midnight
        [start_us] = read_table(engine, BUSINESS_HOURS).get_column("start_time_us").to_list()
        return start_us // 3_600_000_000

    def run_over_the_folder() -> dg.ExecuteInProcessResult:
        return dg.materialize([ingest_landing_files], resources=home.resources, instance=instance)

    first = tick(home, instance)
    run_requested(home, instance, first)
    seen = tick(home, instance, first.cursor)
    assert opening_hour() == 9
    assert service.ingest_file(engine, newer).loaded().describe() == "hours_v2.csv: loaded, hours, 1 rows, 0 rejected"
    assert opening_hour() == 10
    run = run_over_the_folder()  # as `make run` does at each start
    assert opening_hour() == 10  # was 9: the older file, untouched, applied again
    [hours] = [
        m
        for m in run.asset_materializations_for_node(raw.ingest_landing_files.op.name)
        if m.asset_key == raw.RAW_BUSINESS_HOURS
    ]
    assert hours.metadata["files_loaded"].value == "none (unchanged)"
    assert tick(home, instance, seen.cursor).run_requests == []  # nor does the sensor: nothing changed
    settled(older, 30)  # delivered again: a touch
    [again] = run_requested(home, instance, tick(home, instance, seen.cursor))
    assert again.success and opening_hour() == 9  # current again, in delivery order
