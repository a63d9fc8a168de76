"""Database side of the store history: stored daily values, the retention cutoff, and pruning.

Kept apart from the report's reads (queries.py) and loads (loading.py): everything here is
about dates and the retention of polls (docs/history.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import polars as pl
import sqlalchemy as sa

from storemon_assets.core.instants import now_us
from storemon_assets.core.tables import INGESTED_FILES, RETENTION_STATE, STORE_DAILY_PACKED, STORES
from storemon_assets.db.driver import dbapi_connection
from storemon_assets.db.queries import retention_cutoff
from storemon_assets.db.readers import reader_for
from storemon_assets.db.schema import SQL_TABLES

PACKED = STORE_DAILY_PACKED.name

# One store's values of one date inside a packed row (STORE_DAILY_PACKED): fixed width, so a
# read of any number of rows is one numpy view of their joined bytes.
DAILY_RECORD_FIELDS = (
    ("store_key", "<i4"),
    ("business_half_us", "<i8"),
    ("up_half_us", "<i8"),
    ("down_half_us", "<i8"),
    ("final_from_us", "<i8"),
    ("as_of_us", "<i8"),
    ("computed_at_us", "<i8"),
)
DAILY_RECORD = np.dtype(list(DAILY_RECORD_FIELDS))
_RECORD_NAMES = tuple(name for name, _ in DAILY_RECORD_FIELDS)
SHARD_SIZE = 1024  # a packed row holds the stores of 1,024 consecutive keys (shard = store_key // 1024)
_NULL = -(2**63)  # final_from_us of a store with no observation
# The stored values as read: the store as its key (callers join the text id they need).
STORED_DAILY_SCHEMA = {"local_date": pl.Date(), "store_key": pl.Int32()} | {
    name: pl.Int64() for name in _RECORD_NAMES if name != "store_key"
}


# --- stored daily values --------------------------------------------------------------------


def read_daily(
    engine: sa.Engine, first_date: dt.date, last_date: dt.date, store_key: int | None = None
) -> pl.DataFrame:
    """Stored daily values of the dates first..last (of one store when given):
    STORED_DAILY_SCHEMA, sorted by date then store key.

    90 days of the real fleet are ~1,300 packed rows (one per date and shard of store keys),
    turned into columns a row at a time as they are fetched: no per-value conversion in the
    database or the driver, and (SQLite: its driver reads a row at each fetch) never all their
    64 MB of bytes in memory at once: a row's bytes are freed once unpacked and their memory
    serves the next (fewer page faults and a lower peak: docs/history.md).
    """
    p = reader_for(engine).placeholder
    where = f"WHERE local_date BETWEEN {p} AND {p}"
    params: tuple = (first_date.isoformat(), last_date.isoformat())
    if store_key is not None:
        where += f" AND shard = {p}"
        params += (store_key // SHARD_SIZE,)
    with engine.connect() as conn:
        cursor = dbapi_connection(conn).cursor()
        try:
            # How many values, to make the columns once (only a size: a write in between is fine).
            # Growing them as rows come instead costs more than this query (docs/history.md).
            cursor.execute(f"SELECT COALESCE(SUM(stores), 0) FROM {PACKED} {where}", params)
            expected = int((cursor.fetchone() or (0,))[0])
            cursor.execute(
                f"SELECT local_date, stores, packed FROM {PACKED} {where} ORDER BY local_date, shard", params
            )
            values = _unpack(iter(cursor.fetchone, None), expected)
        finally:
            cursor.close()
    return values if store_key is None else values.filter(pl.col("store_key") == store_key)


def write_daily(engine: sa.Engine, values: pl.DataFrame) -> int:
    """Insert or replace daily values (STORED_DAILY_SCHEMA columns), in one transaction.

    Each packed row touched is read, merged with the new values (they replace the stored ones
    of their store and date) and written back. Writers are serialised first (the reader's
    lock), so two runs refreshing dates of one shard never drop each other's stores.
    """
    if values.is_empty():
        return 0
    values = values.select(list(STORED_DAILY_SCHEMA)).cast(pl.Schema(STORED_DAILY_SCHEMA))
    shard = (pl.col("store_key") // SHARD_SIZE).alias("shard")
    touched = values.select("local_date", shard).unique()
    reader = reader_for(engine)
    p = reader.placeholder
    shards = touched.get_column("shard").unique().sort().to_list()
    sql = (
        f"SELECT local_date, stores, packed FROM {PACKED} WHERE local_date BETWEEN {p} AND {p} "
        f"AND shard IN ({', '.join(p for _ in shards)}) ORDER BY local_date, shard"
    )
    first, last = values.get_column("local_date").min(), values.get_column("local_date").max()
    assert isinstance(first, dt.date) and isinstance(last, dt.date)
    upsert = (
        f"INSERT INTO {PACKED} (local_date, shard, stores, packed) VALUES ({p}, {p}, {p}, {p}) "
        "ON CONFLICT (local_date, shard) DO UPDATE SET stores = excluded.stores, packed = excluded.packed"
    )
    with engine.begin() as conn:
        reader.lock_daily_values(conn)
        rows = _fetch_packed(conn, sql, (first.isoformat(), last.isoformat(), *shards))
        stored = _unpack(rows, sum(count for _, count, _ in rows))
        kept = stored.with_columns(shard).join(touched, on=["local_date", "shard"]).drop("shard")
        merged = pl.concat([kept.join(values, on=["local_date", "store_key"], how="anti"), values])
        rows = _pack(merged)
        cursor = dbapi_connection(conn).cursor()
        try:
            cursor.executemany(upsert, rows)
        finally:
            cursor.close()
    return values.height


def _fetch_packed(conn: sa.Connection, sql: str, params: tuple) -> Sequence[Sequence[Any]]:
    cursor = dbapi_connection(conn).cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()
    finally:
        cursor.close()


def _pack(values: pl.DataFrame) -> list[tuple[str, int, int, bytes]]:
    """Packed rows (local_date as ISO text, shard, stores, packed) of values, records sorted by key.

    The records are made in one numpy array; the loop is over the (date, shard) rows only."""
    ordered = values.sort("local_date", "store_key")
    records = np.empty(ordered.height, dtype=DAILY_RECORD)
    for name in _RECORD_NAMES:
        column = ordered.get_column(name)
        records[name] = (column.fill_null(_NULL) if name == "final_from_us" else column).to_numpy()
    raw = records.tobytes()
    groups = ordered.group_by(
        pl.col("local_date").dt.to_string("%Y-%m-%d"),
        (pl.col("store_key") // SHARD_SIZE).alias("shard"),
        maintain_order=True,
    ).len()
    rows, offset, width = [], 0, DAILY_RECORD.itemsize
    for local_date, shard, count in groups.iter_rows():
        rows.append((local_date, shard, count, raw[offset * width : (offset + count) * width]))
        offset += count
    return rows


def _unpack(rows: Iterable[Sequence[Any]], expected: int) -> pl.DataFrame:
    """STORED_DAILY_SCHEMA of packed rows (local_date, stores, packed), in their order;
    `expected`: how many values they hold (the columns' size, grown if short)."""
    # Each field copied straight from the row's bytes into its column, a row at a time: a row's
    # records (~53 KB) stay in the CPU's cache while its seven fields are taken out, where a
    # pass over all the bytes per field reads them from memory seven times (and a joined copy
    # of the bytes first costs more than both).
    columns = {name: np.empty(expected, dtype=kind) for name, kind in DAILY_RECORD_FIELDS}
    dates, counts, offset = [], [], 0
    for local_date, count, blob in rows:
        records = np.frombuffer(blob, dtype=DAILY_RECORD)
        if records.size != count:
            raise ValueError(f"a packed row of {local_date} holds {records.size} values, not {count}")
        if offset + count > len(columns["store_key"]):
            columns = {name: np.resize(column, 2 * (offset + count)) for name, column in columns.items()}
        for name, column in columns.items():
            column[offset : offset + count] = records[name]
        dates.append(local_date)
        counts.append(count)
        offset += count
    if not dates:
        return pl.DataFrame(schema=STORED_DAILY_SCHEMA)
    columns = {name: column[:offset] for name, column in columns.items()}
    # Dates come back as date objects (PostgreSQL) or as their ISO text (SQLite); each record's
    # is its row's, repeated as days since 1970 (4 bytes a record, no gather by row index).
    day = pl.Series("local_date", dates)
    day = day.str.to_date("%Y-%m-%d") if day.dtype == pl.String else day.cast(pl.Date)
    columns["local_date"] = np.repeat(day.cast(pl.Int32).to_numpy(), counts)
    return (
        pl.DataFrame(columns)
        .with_columns(
            pl.col("local_date").cast(pl.Date),
            pl.when(pl.col("final_from_us") != _NULL).then(pl.col("final_from_us")).alias("final_from_us"),
        )
        .select(list(STORED_DAILY_SCHEMA))
    )


def stored_daily_count(engine: sa.Engine) -> int:
    """How many (store, date) values are stored."""
    with engine.connect() as conn:
        return conn.exec_driver_sql(f"SELECT COALESCE(SUM(stores), 0) FROM {PACKED}").scalar_one()


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
    p = reader_for(engine).placeholder
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
    """Hand freed pages back to the file system where the database can (the reader says how)."""
    return reader_for(engine).reclaim_space(engine)
