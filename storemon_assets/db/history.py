"""Database side of the store history: stored daily values, the retention cutoff, and pruning.

Kept apart from the report's reads (queries.py) and loads (loading.py): everything here is
about dates and the retention of polls (docs/history.md).
"""

from __future__ import annotations

import datetime as dt
import time

import polars as pl
import sqlalchemy as sa

from storemon_assets.core.tables import INGESTED_FILES, RETENTION_STATE, STORE_DAILY_UPTIME, STORES
from storemon_assets.db.driver import dbapi_connection
from storemon_assets.db.loading import _bulk_insert
from storemon_assets.db.queries import _fetch, _placeholder, retention_cutoff
from storemon_assets.db.schema import SQL_TABLES

DAILY_COLUMNS = STORE_DAILY_UPTIME.column_names
_VALUE_COLUMNS = ("business_half_us", "up_half_us", "down_half_us", "final_from_us", "as_of_us", "computed_at_us")


def now_us() -> int:
    return time.time_ns() // 1000


# --- stored daily values --------------------------------------------------------------------


def read_daily(engine: sa.Engine, first_date: dt.date, last_date: dt.date, store_id: str | None = None) -> pl.DataFrame:
    """Stored daily values of the dates first..last (of one store when given), as typed frames
    in no particular order.

    SQLite: packed, one text row per date (`_read_sqlite_daily`). PostgreSQL: dates travel as
    ISO text (PostgreSQL casts), one driver fetch.
    """
    if engine.dialect.name == "sqlite":
        return _read_sqlite_daily(engine, first_date, last_date, store_id)
    p = _placeholder(engine)
    columns = ", ".join(name if name != "local_date" else "CAST(local_date AS TEXT)" for name in DAILY_COLUMNS)
    sql = f"SELECT {columns} FROM {STORE_DAILY_UPTIME.name} WHERE local_date BETWEEN {p} AND {p}"
    params: tuple = (first_date.isoformat(), last_date.isoformat())
    if store_id is not None:
        sql += f" AND store_id = {p}"
        params += (store_id,)
    frame = _fetch(engine, sql, params, STORE_DAILY_UPTIME.polars_schema | {"local_date": pl.String()})
    return frame.with_columns(pl.col("local_date").str.to_date())


# Joins the packed values: never in a number, nor in a store id (ingest rejects control
# characters). A literal in the SQL text: SQLite would call char(31) once per row.
_SEPARATOR = "\x1f"


def _read_sqlite_daily(
    engine: sa.Engine, first_date: dt.date, last_date: dt.date, store_id: str | None
) -> pl.DataFrame:
    """Stored daily values through SQLite, packed: per date, each column's values joined into
    one text, split and converted by polars in bulk.

    Turning 90 days of the fleet (1.2 M rows) into Python tuples was most of `storemon daily`'s
    time; packed, 91 rows cross the driver, and one text per column costs SQLite half of one per
    row. The aggregates of one group step through the same rows in the same order, so the i-th
    value of every column is one row's (group_concat skips nulls: final_from_us goes as '').
    Dates come in the clustered key's order, so SQLite groups them without sorting.
    """
    values = [name for name in DAILY_COLUMNS if name != "local_date"]
    value_of = {name: f"IFNULL({name}, '')" if name == "final_from_us" else name for name in values}
    packed_columns = ", ".join(f"group_concat({value_of[name]}, '{_SEPARATOR}')" for name in values)
    sql = f"SELECT local_date, {packed_columns} FROM {STORE_DAILY_UPTIME.name} WHERE local_date BETWEEN ? AND ?"
    params: tuple = (first_date.isoformat(), last_date.isoformat())
    if store_id is not None:
        sql += " AND store_id = ?"
        params += (store_id,)
    sql += " GROUP BY local_date"
    with engine.connect() as conn:
        cursor = dbapi_connection(conn).cursor()
        try:
            rows = cursor.execute(sql, params).fetchall()
        finally:
            cursor.close()
    packed = pl.DataFrame(rows, schema={name: pl.String() for name in ("local_date", *values)}, orient="row")
    schema = STORE_DAILY_UPTIME.polars_schema
    return (
        packed.with_columns(pl.col(values).str.split(_SEPARATOR))
        .explode(values)
        .select(
            pl.col("local_date").str.to_date("%Y-%m-%d"),
            *(
                pl.col(name).replace("", None).cast(schema[name])
                if name == "final_from_us"
                else pl.col(name).cast(schema[name])
                for name in values
            ),
        )
    )


def write_daily(engine: sa.Engine, values: pl.DataFrame) -> int:
    """Insert or replace daily values (STORE_DAILY_UPTIME columns), in one transaction."""
    if values.is_empty():
        return 0
    frame = values.select(DAILY_COLUMNS).sort("local_date", "store_id")  # key order: appends to the B-tree
    if engine.dialect.name == "sqlite":
        frame = frame.with_columns(pl.col("local_date").cast(pl.String))
    update = ", ".join(f"{name} = excluded.{name}" for name in _VALUE_COLUMNS)
    with engine.begin() as conn:
        _bulk_insert(conn, SQL_TABLES[STORE_DAILY_UPTIME.name], frame, f"(local_date, store_id) DO UPDATE SET {update}")
    return frame.height


def stored_daily_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(SQL_TABLES[STORE_DAILY_UPTIME.name])).scalar_one()


def store_key_of(engine: sa.Engine, store_id: str) -> int | None:
    """The integer key of a store that has polls (None: no such store)."""
    table = SQL_TABLES[STORES.name]
    with engine.connect() as conn:
        return conn.execute(sa.select(table.c.store_key).where(table.c.store_id == store_id)).scalar()


# --- what arrived after values were computed ---------------------------------------------------


def ledger_arrivals(engine: sa.Engine) -> pl.DataFrame:
    """Every loaded file's kind, when it was loaded and, for polls files, its first and last poll
    instant: what can have changed values computed before it (a row per file ever loaded)."""
    ledger = SQL_TABLES[INGESTED_FILES.name]
    query = sa.select(ledger.c.kind, ledger.c.ingested_at_us, ledger.c.first_poll_us, ledger.c.last_poll_us)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    schema = {
        "kind": pl.String(),
        "ingested_at_us": pl.Int64(),
        "first_poll_us": pl.Int64(),
        "last_poll_us": pl.Int64(),
    }
    return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")


def oldest_poll_us(engine: sa.Engine) -> int | None:
    """The earliest poll instant: one seek per store for its first poll."""
    with engine.connect() as conn:
        return conn.exec_driver_sql(
            "SELECT MIN((SELECT MIN(q.polled_at_us) FROM store_status_polls q WHERE q.store_key = s.store_key)) "
            "FROM stores s"
        ).scalar()


# --- retention ---------------------------------------------------------------------------------


def raise_retention_cutoff(engine: sa.Engine, cutoff_us: int) -> int:
    """Set the cutoff, never moving it back (a prune for an older T keeps the newer cutoff);
    returns the cutoff now in force. One transaction."""
    table = SQL_TABLES[RETENTION_STATE.name]
    with engine.begin() as conn:
        current = retention_cutoff(conn)
        if current is None:
            conn.execute(table.insert().values(singleton=1, cutoff_us=cutoff_us, set_at_us=now_us()))
            return cutoff_us
        if cutoff_us > current:
            conn.execute(table.update().values(cutoff_us=cutoff_us, set_at_us=now_us()))
            return cutoff_us
        return current


def delete_old_polls(engine: sa.Engine, plan: pl.DataFrame) -> int:
    """Delete, in one transaction, each store's polls before its bound except the ones it keeps.

    `plan`: store_key, before_us, and keep_1..keep_3 (instants kept although before the bound;
    null: none). One primary-key range per store. Returns the polls deleted.
    """
    if plan.is_empty():
        return 0
    p = _placeholder(engine)
    keeps = [c for c in plan.columns if c.startswith("keep_")]
    rows = plan.select("store_key", "before_us", *(pl.col(c).fill_null(-1) for c in keeps))
    sql = (
        f"DELETE FROM store_status_polls WHERE store_key = {p} AND polled_at_us < {p} "
        f"AND polled_at_us NOT IN ({', '.join(p for _ in keeps)})"
    )
    deleted = 0
    with engine.begin() as conn:
        cursor = dbapi_connection(conn).cursor()
        try:
            for batch in rows.iter_slices(1_000):
                for row in batch.iter_rows():
                    cursor.execute(sql, row)
                    deleted += max(cursor.rowcount, 0)
        finally:
            cursor.close()
    return deleted


def reclaim_space(engine: sa.Engine) -> str:
    """Hand freed pages back to the file system: SQLite's incremental vacuum (migration 0007
    set the mode). PostgreSQL reuses freed space itself; deploy/README.md says when to do more."""
    if engine.dialect.name != "sqlite":
        return "PostgreSQL: freed rows are reused by later inserts (autovacuum); see deploy/README.md"
    with engine.connect() as conn:
        raw = dbapi_connection(conn)
        freed = raw.execute("PRAGMA freelist_count").fetchone()[0]
        # Through sqlite3_exec, which steps the pragma to its end: the driver's execute() steps
        # once, and each step frees a single page.
        raw.executescript("PRAGMA incremental_vacuum;")
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    return f"SQLite: {freed:,} free pages handed back to the file system"
