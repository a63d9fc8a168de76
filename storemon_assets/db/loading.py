"""Loading parsed feeds into the database, set-based.

Each parsed file goes in inside one transaction, with batched multi-row inserts whose
conflict clauses make re-delivery harmless.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from storemon_assets.core.feeds import AUTHORITATIVE_KINDS, HOURS, POLLS, SPECIAL, TIMEZONES
from storemon_assets.core.parsing import MAX_REJECTED_KEPT, ParsedFeed
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
    store_ids: tuple[str, ...] = ()  # stores the file's accepted rows name
    redelivered: bool = False  # an authoritative file whose content was loaded before, applied again
    # Hours files: stores that had a weekday this file does not give them (an accidental split
    # of one store's rows over two files looks like this).
    stores_losing_weekdays: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for a person: what happened to the file."""
        if self.already_loaded:
            return f"{self.file_name}: already loaded"
        again = " again (delivered before: its rows are current again)" if self.redelivered else ""
        line = (
            f"{self.file_name}: loaded{again}, {self.kind}, {self.rows_loaded:,} rows, {self.rows_rejected:,} rejected"
        )
        if self.stores_losing_weekdays:
            shown = ", ".join(self.stores_losing_weekdays[:SHOWN_STORES])
            more = len(self.stores_losing_weekdays) - SHOWN_STORES
            line += f"; WARNING: {len(self.stores_losing_weekdays):,} stores lost weekdays they had: {shown}" + (
                f" and {more:,} more" if more > 0 else ""
            )
        return line


SHOWN_STORES = 10  # store ids a one-line message names


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


def _store_keys(conn: sa.Connection, store_ids: pl.Series) -> pl.DataFrame:
    """store_id -> store_key for these stores, adding the ones seen for the first time."""
    table = SQL_TABLES[STORES.name]
    known = _all_store_keys(conn)
    new = store_ids.filter(~store_ids.is_in(known.get_column("store_id").implode())).sort()
    if new.is_empty():
        return known
    _bulk_insert(conn, table, pl.DataFrame({"store_id": new}))  # the database assigns the keys
    return _all_store_keys(conn)


def _all_store_keys(conn: sa.Connection) -> pl.DataFrame:
    rows = conn.execute(sa.select(SQL_TABLES[STORES.name].c.store_key, SQL_TABLES[STORES.name].c.store_id)).all()
    return pl.DataFrame(rows, schema=STORES.polars_schema, orient="row")


def _delete_stores(conn: sa.Connection, table: sa.Table, store_ids: Sequence[str]) -> None:
    for start in range(0, len(store_ids), DELETE_BATCH_KEYS):
        chunk = list(store_ids[start : start + DELETE_BATCH_KEYS])
        conn.execute(table.delete().where(table.c.store_id.in_(chunk)))


def _enter_in_ledger(conn: sa.Connection, feed: ParsedFeed) -> bool | None:
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
        "rows_read": feed.rows_read,
        "rows_loaded": feed.rows.height,
        "rows_rejected": feed.rows_rejected,
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


def _replace_hours(conn: sa.Connection, frame: pl.DataFrame) -> tuple[str, ...]:
    """Replace the hours of the stores `frame` names; returns those that lost a weekday they had."""
    table = SQL_TABLES[BUSINESS_HOURS.name]
    key = ["store_id", "day_of_week", "start_time_us", "end_time_us"]
    # In key order, the primary-key index is appended to rather than written all over
    # (docs/performance.md has the figures); every reader sorts anyway.
    frame = frame.unique(subset=key, keep="first").sort(key)
    stores = frame.get_column("store_id").unique().sort().to_list()
    had = _weekdays(conn, stores)
    lost = had.join(
        frame.select("store_id", pl.col("day_of_week").cast(pl.Int8)), on=["store_id", "day_of_week"], how="anti"
    )
    _delete_stores(conn, table, stores)
    _bulk_insert(conn, table, frame)
    return tuple(lost.get_column("store_id").unique().sort().to_list())


BEFORE_RETENTION_CUTOFF = "before retention cutoff"


def _apply_retention_cutoff(conn: sa.Connection, feed: ParsedFeed) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """A polls file's rows split at the retention cutoff in force (SPEC §11): polls older than
    it are rejected, since their neighbours were pruned and they could change no stored value
    correctly. Read inside the load's transaction, after the ledger row took the write lock, so
    a prune that raises the cutoff is either wholly before or wholly after this load. The
    ledger row then gets the file's accepted counts and its first and last poll instant (what
    the daily refresh re-materialises). The parser drops the raw line of accepted rows, so a
    row rejected here keeps its line number and its fields rejoined as the raw text (while the
    file's kept rejected rows are fewer than MAX_REJECTED_KEPT; all are counted)."""
    rows, rejected, counts = feed.rows, feed.rejected, feed.rejected_by_reason
    cutoff_us = retention_cutoff(conn)
    if cutoff_us is not None:
        old = pl.col("polled_at_us") < cutoff_us
        late = rows.filter(old)
        if late.height:
            rows = rows.filter(~old)
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
            rejected = pl.concat([rejected, rebuilt.cast(rejected.schema)]).sort("line_number").head(MAX_REJECTED_KEPT)
            late_count = pl.DataFrame({"reason": [BEFORE_RETENTION_CUTOFF], "row_count": [late.height]})
            counts = pl.concat([counts, late_count.cast(counts.schema)])
    ledger = SQL_TABLES[INGESTED_FILES.name]
    times = rows.get_column("polled_at_us")
    conn.execute(
        ledger.update()
        .where(ledger.c.file_sha256 == feed.sha256)
        .values(
            rows_loaded=rows.height,
            rows_rejected=int(counts.get_column("row_count").sum()),
            first_poll_us=times.min(),
            last_poll_us=times.max(),
        )
    )
    return rows, rejected, counts


def load_feed(engine: sa.Engine, feed: ParsedFeed, on_rows: Callable[[int, int], None] | None = None) -> LoadOutcome:
    """Load one parsed file in one transaction. A polls file already in the ledger is a no-op;
    an hours or timezones file is authoritative and applies at every delivery (SPEC §1).

    Polls are appended (exact duplicates ignored). A business-hours file replaces the hours
    of the stores whose rows it accepted, and names those that lost a weekday they had.
    Timezones are upserted, the last row winning. A special-hours file replaces the special
    rows of the (store, date) pairs it accepted.
    Rejected rows of a store never erase what that store had. `on_rows(done, total)` hears
    how far the insert of a polls file has got.
    """
    name = feed.path.name
    rows = feed.rows
    rejected, counts = feed.rejected, feed.rejected_by_reason
    losing: tuple[str, ...] = ()
    with engine.begin() as conn:
        entered = _enter_in_ledger(conn, feed)
        if entered is False:
            return LoadOutcome(name, feed.kind, already_loaded=True)
        if feed.kind == POLLS:
            rows, rejected, counts = _apply_retention_cutoff(conn, feed)
        store_ids = rows.get_column("store_id").unique()
        if feed.kind == POLLS:
            _insert_polls(conn, rows, _store_keys(conn, store_ids), on_rows)
        elif feed.kind == HOURS:
            losing = _replace_hours(
                conn, rows.with_columns(pl.lit(name).alias("source_file")).select(BUSINESS_HOURS.column_names)
            )
        elif feed.kind == TIMEZONES:
            table = SQL_TABLES[STORE_TIMEZONES.name]
            frame = (
                rows.with_columns(pl.lit(name).alias("source_file"))
                .unique(subset=["store_id"], keep="last", maintain_order=True)
                .select(STORE_TIMEZONES.column_names)
            )
            _bulk_insert(
                conn,
                table,
                frame,
                "(store_id) DO UPDATE SET timezone_str = excluded.timezone_str, source_file = excluded.source_file",
            )
        elif feed.kind == SPECIAL:
            _replace_special_hours(conn, rows.with_columns(pl.lit(name).alias("source_file")))
        else:  # pragma: no cover - parsing only yields the four kinds
            raise ValueError(f"unknown feed kind {feed.kind!r}")

        rejected = rejected.with_columns(
            pl.lit(feed.sha256).alias("file_sha256"), pl.lit(name).alias("file_name"), pl.lit(feed.kind).alias("kind")
        ).select(REJECTED_ROWS.column_names)
        _bulk_insert(conn, SQL_TABLES[REJECTED_ROWS.name], rejected)
        counts = counts.with_columns(pl.lit(feed.sha256).alias("file_sha256"), pl.lit(feed.kind).alias("kind"))
        _bulk_insert(conn, SQL_TABLES[REJECTED_ROW_COUNTS.name], counts.select(REJECTED_ROW_COUNTS.column_names))
    return LoadOutcome(
        name,
        feed.kind,
        already_loaded=False,
        rows_read=feed.rows_read,
        rows_loaded=rows.height,
        rows_rejected=int(counts.get_column("row_count").sum()),
        store_ids=tuple(store_ids.sort().to_list()),
        redelivered=entered is None,
        stores_losing_weekdays=losing,
    )


def _replace_special_hours(conn: sa.Connection, rows: pl.DataFrame) -> None:
    """SPEC §4a: the file is authoritative for the (store, date) pairs it names; their earlier
    special rows go, whichever file they came from. Exact repeats within the file count once."""
    table = SQL_TABLES[SPECIAL_HOURS.name]
    frame = (
        rows.select(SPECIAL_HOURS.column_names)
        .unique(subset=["store_id", "local_date", "start_time_us", "end_time_us"], keep="first")
        .sort("store_id", "local_date", "start_time_us", nulls_last=False)
    )
    pairs = frame.select("store_id", "local_date").unique().sort("store_id", "local_date").rows()
    for start in range(0, len(pairs), DELETE_BATCH_KEYS):
        chunk = pairs[start : start + DELETE_BATCH_KEYS]
        conn.execute(table.delete().where(sa.tuple_(table.c.store_id, table.c.local_date).in_(chunk)))
    _bulk_insert(conn, table, frame)


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
