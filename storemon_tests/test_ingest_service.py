"""service.ingest_file: the one ingestion path of the landing runs, `storemon ingest` and the tests.

Its callers only translate its result (a CLI line, Dagster metadata); the behaviours they show
end to end are tested in test_cli.py and test_landing.py, the path's own decisions here.
"""

from __future__ import annotations

import pytest

import storemon_assets.service as service
from storemon_assets.core.parsing import FeedFile, FeedFileError
from storemon_assets.service import ingest_file, ingest_files
from storemon_tests.conftest import copy_of_migrated_sqlite
from storemon_tests.helpers import write_csv

POLLS = "store_id,status,timestamp_utc\ns1,active,2023-01-22 12:00:00 UTC\n"
HOURS = "store_id,dayOfWeek,start_time_local,end_time_local\ns1,0,09:00,17:00\n"


@pytest.fixture
def engine(tmp_path, migrated_sqlite):
    engine = copy_of_migrated_sqlite(migrated_sqlite, tmp_path / "storemon.db")
    yield engine
    engine.dispose()


def test_a_file_that_cannot_be_read_is_named_once_in_the_one_wording(tmp_path, engine):
    missing = ingest_file(engine, tmp_path / "gone.csv")
    assert missing.failed and missing.outcome is None
    assert missing.describe() == "gone.csv: cannot read file (No such file or directory)"
    junk = ingest_file(engine, write_csv(tmp_path, "junk.csv", "order_id,amount\n1,2\n"))
    assert junk.unreadable is not None and junk.unreadable.startswith("junk.csv: unrecognised header")
    with pytest.raises(FeedFileError, match="^junk.csv: unrecognised header"):
        ingest_files(engine, [tmp_path / "junk.csv"])


def test_a_files_line_says_why_its_rows_were_rejected_commonest_first(tmp_path, engine):
    """`storemon ingest`, the landing runs' log and `storemon report` from files say why, not
    only how many: the commonest reasons, each with its count (ties by reason)."""
    body = POLLS + "s2,asleep,2023-01-22 12:00:00 UTC\ns3,asleep,2023-01-22 12:00:00 UTC\ns4,active,yesterday\n"
    outcome = ingest_file(engine, write_csv(tmp_path, "p.csv", body)).loaded()
    assert outcome.rejected_by_reason == (
        ("unknown status (expected active or inactive)", 2),  # s2 and s3
        ("bad timestamp_utc (expected e.g. 2023-01-22 12:09:39.388884 UTC)", 1),  # s4
    )
    assert outcome.describe() == (
        "p.csv: loaded, polls, 1 rows, 3 rejected: 2 unknown status (expected active or inactive); "
        "1 bad timestamp_utc (expected e.g. 2023-01-22 12:09:39.388884 UTC)"
    )
    many = type(outcome)("q.csv", "polls", False, 1, 1, 5, rejected_by_reason=(("a", 2), ("b", 1), ("c", 1), ("d", 1)))
    assert many.rejections() == "5 rejected: 2 a; 1 b; 1 c and 1 more reason(s)"


def test_polls_in_the_ledger_are_not_parsed_again_but_hours_are_handed_to_the_loader(tmp_path, engine, monkeypatch):
    polls, hours = write_csv(tmp_path, "p.csv", POLLS), write_csv(tmp_path, "h.csv", HOURS)
    assert ingest_file(engine, polls).describe() == "p.csv: loaded, polls, 1 rows, 0 rejected"
    assert ingest_file(engine, hours).describe() == "h.csv: loaded, hours, 1 rows, 0 rejected"
    loaded, parsed = [], []
    real_load, real_chunks = service.load_feed, FeedFile.chunks
    monkeypatch.setattr(
        service, "load_feed", lambda engine, feed, **kw: loaded.append(feed.path.name) or real_load(engine, feed, **kw)
    )
    monkeypatch.setattr(FeedFile, "chunks", lambda feed: parsed.append(feed.path.name) or real_chunks(feed))
    again = ingest_file(engine, polls)
    assert again.outcome is not None and again.outcome.already_loaded and again.outcome.kind == "polls"
    assert again.describe() == "p.csv: already loaded" and not again.failed
    # SPEC 1: hours are authoritative, so their file goes to the loader, which decides (the same
    # content as the hours in force: nothing to apply, and its rows are not even parsed).
    assert ingest_file(engine, hours).describe() == "h.csv: already loaded"
    assert loaded == ["h.csv"] and parsed == []


def test_a_file_still_being_written_is_left_for_later_unread(tmp_path, engine):
    later = ingest_file(engine, write_csv(tmp_path, "p.csv", POLLS), read=lambda path: None)
    assert later.outcome is None and not later.failed
    assert later.describe() == "p.csv: skipped, gone or its last line unfinished"
