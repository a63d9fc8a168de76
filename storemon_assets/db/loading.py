"""Loading parsed feeds into the database, set-based.

Each parsed file goes in inside one transaction, with batched multi-row inserts whose
conflict clauses make re-delivery harmless.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from storemon_assets.core.feeds import AUTHORITATIVE_KINDS, HOURS, POLLS, SPECIAL, TIMEZONES
from storemon_assets.core.parsing import MAX_REJECTED_KEPT, FeedChunk, sum_counts
from storemon_assets.core.scalars import as_int
from storemon_assets.core.tables import (
    BUSINESS_HOURS,
    CURRENT_REPORT,
    CURRENT_REPORT_INFO,
    INGESTED_FILES,
    REJECTED_ROW_COUNTS,
    REJECTED_ROWS,
    SPECIAL_HOURS,
    STORE_INCIDENTS,
    STORE_SCHEDULES,
    STORE_STATUS_INTERVALS,
    STORE_STATUS_NOW,
    STORE_STATUS_POLLS,
    STORE_TIMEZONES,
    STORES,
)
from storemon_assets.db.driver import dbapi_connection
from storemon_assets.db.queries import retention_cutoff
from storemon_assets.db.schema import SQL_TABLES

INSERT_BATCH_ROWS = 20_000
# Polls of a file inserted at a time (some 90 MB of typed rows). Fewer, larger inserts are faster,
# on PostgreSQL most, and cost memory: a million rows keeps a 1 GB polls file's load under 1 GB
# of memory (docs/performance.md has the measurements).
POLLS_INSERT_ROWS = 1_000_000
INSERT_BATCH_STORES = 1_000
DELETE_BATCH_KEYS = 500


@dataclass(frozen=True)
class LoadOutcome:
    """What loading one file did."""

    file_name: str
    kind: str
    already_loaded: bool
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    redelivered: bool = False  # an authoritative file whose content was loaded before, applied again
    # Hours files: stores that had a weekday this file does not give them (an accidental split
    # of one store's rows over two files looks like this).
    stores_losing_weekdays: tuple[str, ...] = ()
    # Why rows were rejected, commonest first: (reason, rows).
    rejected_by_reason: tuple[tuple[str, int], ...] = ()

    def rejections(self) -> str:
        """'N rejected', and when any were, why (the SHOWN_REASONS commonest reasons)."""
        text = f"{self.rows_rejected:,} rejected"
        if not self.rejected_by_reason:
            return text
        shown = "; ".join(f"{rows:,} {reason}" for reason, rows in self.rejected_by_reason[:SHOWN_REASONS])
        more = len(self.rejected_by_reason) - SHOWN_REASONS
        return f"{text}: {shown}" + (f" and {more} more reason(s)" if more > 0 else "")

    def describe(self) -> str:
        """One line for a person: what happened to the file."""
        if self.already_loaded:
            return f"{self.file_name}: already loaded"
        again = " again (delivered before: its rows are current again)" if self.redelivered else ""
        line = f"{self.file_name}: loaded{again}, {self.kind}, {self.rows_loaded:,} rows, {self.rejections()}"
        if self.stores_losing_weekdays:
            shown = ", ".join(self.stores_losing_weekdays[:SHOWN_STORES])
            more = len(self.stores_losing_weekdays) - SHOWN_STORES
            line += f"; WARNING: {len(self.stores_losing_weekdays):,} stores lost weekdays they had: {shown}" + (
                f" and {more:,} more" if more > 0 else ""
            )
        return line


SHOWN_STORES = 10  # store ids a one-line message names
SHOWN_REASONS = 3  # rejection reasons it names


def _bulk_insert(
    conn: sa.Connection,
    table: sa.Table,
    frame: pl.DataFrame,
    on_conflict: str = "DO NOTHING",
    on_rows: Callable[[int, int], None] | None = None,
) -> None:
    """Insert a frame inside the connection's transaction, set-based.

    SQLite: the driver's executemany over tuples. PostgreSQL: COPY into a temporary staging
    table, then one INSERT ... SELECT. `on_conflict` is the SQL after `ON CONFLICT` (same
    syntax on both).
    """
    if frame.height == 0:
        return
    columns = ", ".join(frame.columns)
    cursor = dbapi_connection(conn).cursor()
    try:
        if conn.dialect.name == "sqlite":
            # Dates as ISO text, which is how SQLite stores them (its driver's date adapter is deprecated).
            frame = frame.with_columns(pl.col(pl.Date).dt.to_string("%Y-%m-%d"))
            placeholders = ", ".join("?" for _ in frame.columns)
            sql = f"INSERT INTO {table.name} ({columns}) VALUES ({placeholders}) ON CONFLICT {on_conflict}"
            for done, batch in enumerate(frame.iter_slices(INSERT_BATCH_ROWS), start=1):
                cursor.executemany(sql, batch.rows())
                if on_rows:
                    on_rows(min(done * INSERT_BATCH_ROWS, frame.height), frame.height)
        elif conn.dialect.name == "postgresql":
            staging = _copy_to_staging(cursor, table, frame)
            cursor.execute(
                f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {staging} ON CONFLICT {on_conflict}"
            )
        else:
            raise ValueError(f"unsupported database {conn.dialect.name!r}: storemon supports SQLite and PostgreSQL")
    finally:
        cursor.close()


def _copy_to_staging(cursor, table: sa.Table, frame: pl.DataFrame) -> str:
    """PostgreSQL: COPY the frame into a temporary table of just its columns; returns its name.

    Without the target's constraints, a column the database fills in (a store key) stays out.
    """
    columns = ", ".join(frame.columns)
    staging = f"storemon_staging_{table.name}_{len(frame.columns)}"
    cursor.execute(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} ON COMMIT DROP AS "
        f"SELECT {columns} FROM {table.name} WITH NO DATA"
    )
    cursor.execute(f"TRUNCATE {staging}")
    buffer = io.BytesIO()
    frame.write_csv(buffer, include_header=False, null_value="\\N")
    buffer.seek(0)
    cursor.copy_expert(f"COPY {staging} ({columns}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buffer)
    return staging


def _insert_polls(
    conn: sa.Connection, rows: pl.DataFrame, keys: pl.DataFrame, on_rows: Callable[[int, int], None] | None = None
) -> None:
    """Append a file's accepted polls (store_id, polled_at_us, status) under their store keys
    (`keys`: store_key, store_id); exact duplicates are ignored.

    SQLite: one statement per store whose polls arrive as one text of numbers (instant * 2 +
    active) that SQLite's json_each unpacks: three times less work than binding every row
    from Python. Each store's polls go in in time order, so they append to its key range.
    """
    active = (pl.col("status") == "active").alias("active")
    if conn.dialect.name == "postgresql":
        _insert_postgres_polls(conn, rows.join(keys, on="store_id").select("store_key", "polled_at_us", active))
        return
    table = SQL_TABLES[STORE_STATUS_POLLS.name]
    # Packed per store_id, then keyed: the join is on one row per store, not one per poll.
    # Sorting each store's few hundred numbers is cheaper than sorting the file.
    packed = (
        rows.group_by("store_id")
        .agg((pl.col("polled_at_us") * 2 + active.cast(pl.Int64)).sort().alias("numbers"), pl.len())
        .with_columns(pl.col("numbers").list.eval(pl.element().cast(pl.String)).list.join(","))
        .join(keys, on="store_id")
        .sort("store_key")
    )
    sql = (
        f"INSERT INTO {table.name} (store_key, polled_at_us, active) "
        "SELECT ?, value >> 1, value & 1 FROM json_each('[' || ? || ']') WHERE true ON CONFLICT DO NOTHING"
    )
    cursor = dbapi_connection(conn).cursor()
    try:
        done = 0
        for batch in packed.iter_slices(INSERT_BATCH_STORES):
            cursor.executemany(sql, batch.select("store_key", "numbers").rows())
            done += as_int(batch.get_column("len").sum())
            if on_rows:
                on_rows(done, rows.height)
    finally:
        cursor.close()


def _insert_postgres_polls(conn: sa.Connection, polls: pl.DataFrame) -> None:
    """PostgreSQL: COPY, then one INSERT of the polls not stored yet, in key order.

    An anti-join instead of ON CONFLICT, and key order instead of time order, make it twice as
    fast (key order keeps the primary-key B-tree's inserts local). The table lock (readers go
    on) keeps concurrent loaders from inserting the same poll twice.
    """
    columns = "store_key, polled_at_us, active"
    cursor = dbapi_connection(conn).cursor()
    try:
        cursor.execute(f"LOCK TABLE {STORE_STATUS_POLLS.name} IN SHARE ROW EXCLUSIVE MODE")
        staging = _copy_to_staging(cursor, SQL_TABLES[STORE_STATUS_POLLS.name], polls)
        cursor.execute(
            f"INSERT INTO {STORE_STATUS_POLLS.name} ({columns}) SELECT DISTINCT {columns} FROM {staging} s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {STORE_STATUS_POLLS.name} p WHERE p.store_key = s.store_key "
            f"AND p.polled_at_us = s.polled_at_us AND p.active = s.active) ORDER BY {columns}"
        )
    finally:
        cursor.close()


def _store_keys(conn: sa.Connection, store_ids: pl.Series, known: pl.DataFrame) -> pl.DataFrame:
    """store_id -> store_key (`known`, extended): adds the stores of `store_ids` seen for the first time."""
    new = store_ids.filter(~store_ids.is_in(known.get_column("store_id").implode())).sort()
    if new.is_empty():
        return known
    _bulk_insert(conn, SQL_TABLES[STORES.name], pl.DataFrame({"store_id": new}))  # the database assigns the keys
    return _all_store_keys(conn)


def _all_store_keys(conn: sa.Connection) -> pl.DataFrame:
    rows = conn.execute(sa.select(SQL_TABLES[STORES.name].c.store_key, SQL_TABLES[STORES.name].c.store_id)).all()
    return pl.DataFrame(rows, schema=STORES.polars_schema, orient="row")


def _delete_stores(conn: sa.Connection, table: sa.Table, store_ids: Sequence[str]) -> None:
    for start in range(0, len(store_ids), DELETE_BATCH_KEYS):
        chunk = list(store_ids[start : start + DELETE_BATCH_KEYS])
        conn.execute(table.delete().where(table.c.store_id.in_(chunk)))


def _enter_in_ledger(conn: sa.Connection, feed: Feed) -> bool | None:
    """Write the file's ledger row as the transaction's first statement: True when it is new;
    False when the ledger has it and there is nothing to do (a polls file; an authoritative file
    that is still the latest delivery of its kind, as when the ingest job runs again over the
    landing folder); None when the ledger has it, its kind is authoritative and a file of that
    kind was delivered after it: delivered again, it applies again (SPEC §1), and the row takes
    this delivery's name and time, which order the deliveries.

    Another process loading the same content at the same moment holds the write lock (SQLite)
    or the row (PostgreSQL) until it commits, so this waits, then finds the row: the loser
    reports "already loaded" instead of failing on the primary key."""
    ledger = SQL_TABLES[INGESTED_FILES.name]
    insert = (sqlite_insert if conn.dialect.name == "sqlite" else postgresql_insert)(ledger)
    now_us = time.time_ns() // 1000
    row = {
        "file_sha256": feed.sha256,
        "file_name": feed.path.name,
        "kind": feed.kind,
        "ingested_at_us": now_us,
        "rows_read": 0,  # counted as the file is read, set before the commit
        "rows_loaded": 0,
        "rows_rejected": 0,
    }
    if conn.execute(insert.values(row).on_conflict_do_nothing(index_elements=["file_sha256"])).rowcount == 1:
        return True
    if feed.kind not in AUTHORITATIVE_KINDS:
        return False
    this = sa.select(ledger.c.ingested_at_us).where(ledger.c.file_sha256 == feed.sha256).scalar_subquery()
    newer = sa.select(ledger.c.file_sha256).where(ledger.c.kind == feed.kind, ledger.c.ingested_at_us > this).limit(1)
    if conn.execute(newer).first() is None:
        return False  # still the latest delivery of its kind: its rows are current already
    conn.execute(
        ledger.update()
        .where(ledger.c.file_sha256 == feed.sha256)
        .values(file_name=feed.path.name, ingested_at_us=now_us)
    )
    return None


def _weekdays(conn: sa.Connection, store_ids: Sequence[str]) -> pl.DataFrame:
    """(store_id, day_of_week) of the stored business hours of these stores."""
    table = SQL_TABLES[BUSINESS_HOURS.name]
    found: list[sa.Row] = []
    for start in range(0, len(store_ids), DELETE_BATCH_KEYS):
        chunk = list(store_ids[start : start + DELETE_BATCH_KEYS])
        query = sa.select(table.c.store_id, table.c.day_of_week).where(table.c.store_id.in_(chunk)).distinct()
        found.extend(conn.execute(query).all())
    return pl.DataFrame(found, schema={"store_id": pl.String, "day_of_week": pl.Int8}, orient="row")


def _not_in(values: pl.DataFrame, seen: pl.DataFrame) -> pl.DataFrame:
    """The rows of `values` (unique) not in `seen`, which has the same columns."""
    return values.unique().join(seen, on=values.columns, how="anti", nulls_equal=True)


class _Sink:
    """Where a file's accepted rows go, a chunk at a time, inside the load's transaction."""

    def __init__(self, conn: sa.Connection, name: str):
        self.conn, self.name = conn, name

    def add(self, rows: pl.DataFrame) -> None:
        raise NotImplementedError

    def finish(self) -> tuple[str, ...]:
        """Stores that lost a weekday they had (hours files); nothing for the other kinds."""
        return ()


class _PollsSink(_Sink):
    """Polls are appended (exact duplicates ignored), under their stores' keys, POLLS_INSERT_ROWS
    at a time: fewer, larger inserts append each store's polls in fewer places (SQLite: one
    statement per store and insert)."""

    def __init__(self, conn: sa.Connection, name: str, on_rows: Callable[[int, int], None] | None):
        super().__init__(conn, name)
        self.keys = _all_store_keys(conn)
        self.on_rows = on_rows
        self.done = 0
        self.waiting: list[pl.DataFrame] = []

    def add(self, rows: pl.DataFrame) -> None:
        self.waiting.append(rows.select("store_id", "polled_at_us", "status"))
        if sum(w.height for w in self.waiting) >= POLLS_INSERT_ROWS:
            self._insert()

    def finish(self) -> tuple[str, ...]:
        self._insert()
        return ()

    def _insert(self) -> None:
        if not self.waiting:
            return
        rows = pl.concat(self.waiting)
        self.waiting = []
        self.keys = _store_keys(self.conn, rows.get_column("store_id").unique(), self.keys)
        _insert_polls(self.conn, rows, self.keys, self._progress)
        self.done += rows.height

    def _progress(self, done: int, total: int) -> None:
        """`on_rows` hears the polls inserted so far, the file's earlier inserts included."""
        if self.on_rows is not None:
            self.on_rows(self.done + done, self.done + total)


class _HoursSink(_Sink):
    """A business-hours file replaces the hours of the stores whose rows it accepted: a store's
    stored hours go when the file first names it, and the file's rows of it are added."""

    def __init__(self, conn: sa.Connection, name: str):
        super().__init__(conn, name)
        self.seen = pl.DataFrame(schema={"store_id": pl.String})
        self.had: list[pl.DataFrame] = []

    def add(self, rows: pl.DataFrame) -> None:
        key = ["store_id", "day_of_week", "start_time_us", "end_time_us"]
        # In key order, the primary-key index is appended to rather than written all over
        # (docs/performance.md has the figures); every reader sorts anyway.
        frame = (
            rows.with_columns(pl.lit(self.name).alias("source_file"))
            .select(BUSINESS_HOURS.column_names)
            .unique(subset=key, keep="first")
            .sort(key)
        )
        new = _not_in(frame.select("store_id"), self.seen).sort("store_id")
        stores = new.get_column("store_id").to_list()
        self.had.append(_weekdays(self.conn, stores))
        _delete_stores(self.conn, SQL_TABLES[BUSINESS_HOURS.name], stores)
        _bulk_insert(self.conn, SQL_TABLES[BUSINESS_HOURS.name], frame)  # a repeat of an earlier chunk's row: ignored
        self.seen = pl.concat([self.seen, new])

    def finish(self) -> tuple[str, ...]:
        had = pl.concat(self.had) if self.had else _weekdays(self.conn, [])
        now = _weekdays(self.conn, had.get_column("store_id").unique().to_list())
        lost = had.join(now, on=["store_id", "day_of_week"], how="anti")
        return tuple(lost.get_column("store_id").unique().sort().to_list())


class _TimezonesSink(_Sink):
    """Timezones are upserted, the last row winning."""

    def add(self, rows: pl.DataFrame) -> None:
        frame = (
            rows.with_columns(pl.lit(self.name).alias("source_file"))
            .unique(subset=["store_id"], keep="last", maintain_order=True)
            .select(STORE_TIMEZONES.column_names)
        )
        _bulk_insert(
            self.conn,
            SQL_TABLES[STORE_TIMEZONES.name],
            frame,
            "(store_id) DO UPDATE SET timezone_str = excluded.timezone_str, source_file = excluded.source_file",
        )


class _SpecialHoursSink(_Sink):
    """SPEC §4a: the file is authoritative for the (store, date) pairs it names; their earlier
    special rows go, whichever file they came from, when the file first names the pair. Exact
    repeats within the file count once."""

    PAIR = ["store_id", "local_date"]
    ROW = ["store_id", "local_date", "start_time_us", "end_time_us"]

    def __init__(self, conn: sa.Connection, name: str):
        super().__init__(conn, name)
        self.seen = pl.DataFrame(schema={"store_id": pl.String, "local_date": pl.Date})

    def add(self, rows: pl.DataFrame) -> None:
        table = SQL_TABLES[SPECIAL_HOURS.name]
        frame = (
            rows.with_columns(pl.lit(self.name).alias("source_file"))
            .select(SPECIAL_HOURS.column_names)
            .unique(subset=self.ROW, keep="first")
            .sort("store_id", "local_date", "start_time_us", nulls_last=False)
        )
        pairs = frame.select(self.PAIR)
        new = _not_in(pairs, self.seen).sort(self.PAIR)
        again = _not_in(pairs, new)  # named by an earlier chunk: its rows there are stored
        if again.height:
            frame = frame.join(self._stored(again), on=self.ROW, how="anti", nulls_equal=True)
        keys = new.rows()
        for start in range(0, len(keys), DELETE_BATCH_KEYS):
            chunk = keys[start : start + DELETE_BATCH_KEYS]
            self.conn.execute(table.delete().where(sa.tuple_(table.c.store_id, table.c.local_date).in_(chunk)))
        _bulk_insert(self.conn, table, frame)
        self.seen = pl.concat([self.seen, new])

    def _stored(self, pairs: pl.DataFrame) -> pl.DataFrame:
        table = SQL_TABLES[SPECIAL_HOURS.name]
        found: list[sa.Row] = []
        keys = pairs.rows()
        for start in range(0, len(keys), DELETE_BATCH_KEYS):
            chunk = keys[start : start + DELETE_BATCH_KEYS]
            columns = [table.c[c] for c in self.ROW]
            found.extend(
                self.conn.execute(
                    sa.select(*columns).where(sa.tuple_(table.c.store_id, table.c.local_date).in_(chunk))
                ).all()
            )
        schema = {c: SPECIAL_HOURS.polars_schema[c] for c in self.ROW}
        return pl.DataFrame(found, schema=schema, orient="row")


BEFORE_RETENTION_CUTOFF = "before retention cutoff"


def _split_at_cutoff(chunk: FeedChunk, cutoff_us: int | None) -> FeedChunk:
    """A polls chunk's rows split at the retention cutoff in force (SPEC §11): polls older than
    it are rejected, since their neighbours were pruned and they could change no stored value
    correctly. The parser drops the raw line of accepted rows, so a row rejected here keeps its
    line number and its fields rejoined as the raw text."""
    if cutoff_us is None:
        return chunk
    old = pl.col("polled_at_us") < cutoff_us
    late = chunk.rows.filter(old)
    if not late.height:
        return chunk
    rebuilt = late.select(
        "line_number",
        "store_id",
        pl.concat_str(
            "store_id",
            "status",
            pl.from_epoch("polled_at_us", time_unit="us").dt.strftime("%Y-%m-%d %H:%M:%S%.6f UTC"),
            separator=",",
        ).alias("raw_text"),
        pl.lit(BEFORE_RETENTION_CUTOFF).alias("reason"),
    )
    late_count = pl.DataFrame({"reason": [BEFORE_RETENTION_CUTOFF], "row_count": [late.height]})
    return FeedChunk(
        chunk.rows.filter(~old),
        pl.concat([chunk.rejected, rebuilt.cast(chunk.rejected.schema)]).sort("line_number"),
        pl.concat([chunk.rejected_by_reason, late_count.cast(chunk.rejected_by_reason.schema)]),
        chunk.rows_read,
    )


class Feed(Protocol):
    """A file to load: a `FeedFile` (read block by block) or a `ParsedFeed` (one chunk)."""

    path: Path
    kind: str
    sha256: str

    def chunks(self) -> Iterator[FeedChunk]: ...


def load_feed(engine: sa.Engine, feed: Feed, on_rows: Callable[[int, int], None] | None = None) -> LoadOutcome:
    """Load one file in one transaction, a parsed chunk at a time: what the process holds is one
    chunk's rows, whatever the file's size, and a kill leaves the file loaded or not at all. A
    polls file already in the ledger is a no-op (not read); an hours or timezones file is
    authoritative and applies at every delivery (SPEC §1).

    Polls are appended (exact duplicates ignored), those older than the retention cutoff
    rejected. A business-hours file replaces the hours of the stores whose rows it accepted,
    and names those that lost a weekday they had. Timezones are upserted, the last row
    winning. A special-hours file replaces the special rows of the (store, date) pairs it
    accepted. Rejected rows of a store never erase what that store had: the file's first
    MAX_REJECTED_KEPT are kept with their text, all counted by reason. `on_rows(done, total)`
    hears how far the insert of a polls file has got (total: so far).
    """
    name = feed.path.name
    with engine.begin() as conn:
        entered = _enter_in_ledger(conn, feed)
        if entered is False:
            return LoadOutcome(name, feed.kind, already_loaded=True)
        # Read after the ledger row took the write lock, so that a prune raising the cutoff is
        # either wholly before or wholly after this load.
        cutoff_us = retention_cutoff(conn) if feed.kind == POLLS else None
        sink = {
            POLLS: lambda: _PollsSink(conn, name, on_rows),
            HOURS: lambda: _HoursSink(conn, name),
            TIMEZONES: lambda: _TimezonesSink(conn, name),
            SPECIAL: lambda: _SpecialHoursSink(conn, name),
        }[feed.kind]()
        rows_read = rows_loaded = kept = 0
        counts: list[pl.DataFrame] = []
        first_poll: list[int] = []
        last_poll: list[int] = []
        for parsed in feed.chunks():
            chunk = _split_at_cutoff(parsed, cutoff_us) if feed.kind == POLLS else parsed
            del parsed
            sink.add(chunk.rows)
            rows_read += chunk.rows_read
            rows_loaded += chunk.rows.height
            if feed.kind == POLLS and chunk.rows.height:
                first_poll.append(as_int(chunk.rows.get_column("polled_at_us").min()))
                last_poll.append(as_int(chunk.rows.get_column("polled_at_us").max()))
            counts.append(chunk.rejected_by_reason)
            rejected = chunk.rejected.head(max(0, MAX_REJECTED_KEPT - kept))
            kept += rejected.height
            _bulk_insert(
                conn,
                SQL_TABLES[REJECTED_ROWS.name],
                rejected.with_columns(
                    pl.lit(feed.sha256).alias("file_sha256"),
                    pl.lit(name).alias("file_name"),
                    pl.lit(feed.kind).alias("kind"),
                ).select(REJECTED_ROWS.column_names),
            )
        losing = sink.finish()
        by_reason = sum_counts(counts).with_columns(
            pl.lit(feed.sha256).alias("file_sha256"), pl.lit(feed.kind).alias("kind")
        )
        _bulk_insert(conn, SQL_TABLES[REJECTED_ROW_COUNTS.name], by_reason.select(REJECTED_ROW_COUNTS.column_names))
        rows_rejected = int(by_reason.get_column("row_count").sum())
        ledger = SQL_TABLES[INGESTED_FILES.name]
        conn.execute(
            ledger.update()
            .where(ledger.c.file_sha256 == feed.sha256)
            .values(
                rows_read=rows_read,
                rows_loaded=rows_loaded,
                rows_rejected=rows_rejected,
                # What the daily refresh re-materialises (polls files only).
                **(
                    {"first_poll_us": min(first_poll, default=None), "last_poll_us": max(last_poll, default=None)}
                    if feed.kind == POLLS
                    else {}
                ),
            )
        )
    return LoadOutcome(
        name,
        feed.kind,
        already_loaded=False,
        rows_read=rows_read,
        rows_loaded=rows_loaded,
        rows_rejected=rows_rejected,
        redelivered=entered is None,
        stores_losing_weekdays=losing,
        rejected_by_reason=tuple(
            by_reason.filter(pl.col("row_count") > 0)
            .sort(["row_count", "reason"], descending=[True, False])
            .select("reason", "row_count")
            .iter_rows()
        ),
    )


def replace_store_schedules(engine: sa.Engine, schedule: pl.DataFrame, store_ids: Sequence[str]) -> None:
    """Replace the stored schedules of `store_ids` by `schedule`, in one transaction."""
    table = SQL_TABLES[STORE_SCHEDULES.name]
    with engine.begin() as conn:
        _delete_stores(conn, table, list(store_ids))
        _bulk_insert(conn, table, schedule.select(STORE_SCHEDULES.column_names))


@dataclass(frozen=True)
class CurrentReport:
    """What the API reads about the current report: its rows, its status intervals, its T."""

    report_id: str
    as_of_us: int
    report: pl.DataFrame  # CURRENT_REPORT columns
    intervals: pl.DataFrame  # STORE_STATUS_INTERVALS columns
    stores_without_observations: int
    incidents: pl.DataFrame | None = None  # STORE_INCIDENTS columns (None: leave the stored ones)
    status: pl.DataFrame | None = None  # STORE_STATUS_NOW columns


def replace_current_report(
    engine: sa.Engine, current: CurrentReport, before_commit: Callable[[], None] = lambda: None
) -> bool:
    """Make `current` the current report, unless the published one has a newer T (SPEC §6):
    compare and replace in one transaction. Returns False, having changed nothing, when a newer
    report is published.

    The transaction first takes the current report's write lock (PostgreSQL: a table lock that
    readers pass; SQLite: its first statement is a write, which takes the database's write lock
    before anything is read), so two publications are ordered and the later one sees the other's
    T. The incidents and status now, when given, are replaced in it too (SPEC §9). `before_commit`
    runs inside it, after the tables were replaced (the reports folder's CSV
    is switched there, storemon_assets/publication.py). Readers see the previous report until the
    commit, then the new one: never a mix.
    """
    info = SQL_TABLES[CURRENT_REPORT_INFO.name]
    with engine.connect() as conn, conn.begin() as transaction:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"LOCK TABLE {CURRENT_REPORT_INFO.name} IN SHARE ROW EXCLUSIVE MODE")
        conn.execute(info.delete().where(info.c.as_of_us <= current.as_of_us))
        newer = conn.execute(sa.select(sa.func.count()).select_from(info)).scalar_one()
        if newer:
            transaction.rollback()
            return False
        if current.incidents is not None and current.status is not None:
            _replace_incidents(conn, current.incidents, current.status)
        for spec in (CURRENT_REPORT, STORE_STATUS_INTERVALS):
            conn.execute(SQL_TABLES[spec.name].delete())
        # Sorted by key, rows append to the primary-key B-tree.
        _bulk_insert(
            conn, SQL_TABLES[CURRENT_REPORT.name], current.report.select(CURRENT_REPORT.column_names).sort("store_id")
        )
        _bulk_insert(
            conn,
            SQL_TABLES[STORE_STATUS_INTERVALS.name],
            current.intervals.select(STORE_STATUS_INTERVALS.column_names).sort("store_id", "start_half_us"),
        )
        conn.execute(
            info.insert(),
            {
                "report_id": current.report_id,
                "as_of_us": current.as_of_us,
                "published_at_us": time.time_ns() // 1000,
                "stores": current.report.height,
                "stores_without_observations": current.stores_without_observations,
            },
        )
        before_commit()
    return True


def _replace_incidents(conn: sa.Connection, incidents: pl.DataFrame, status: pl.DataFrame) -> None:
    """Replace the current report's incidents and status now inside the connection's transaction."""
    for spec, frame, order in (
        (STORE_INCIDENTS, incidents, ["store_id", "started_half_us"]),
        (STORE_STATUS_NOW, status, ["store_id"]),
    ):
        conn.execute(SQL_TABLES[spec.name].delete())
        _bulk_insert(conn, SQL_TABLES[spec.name], frame.select(spec.column_names).sort(order))
