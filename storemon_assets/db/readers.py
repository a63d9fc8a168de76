"""How each database is read fast: one reader per dialect (SQLite, PostgreSQL), chosen once per
engine by `reader_for`, so no read branches on the dialect (nor the two places where writing
differs: serialising writers of the packed daily values, and handing freed space back).

Both read a time range of polls as one range of the polls' primary key (store key, instant)
per store, written as one seek per store (a loop over `stores`, or over a JSON list of
per-store ranges) rather than as a filter on the instant, which would be answered by scanning
every poll. What differs is how rows leave the database cheaply:

- SQLite is read through Python's own sqlite3 driver: connectorx (like ADBC) links a second
  copy of SQLite, and two copies in one process break each other's file locks ("disk I/O
  error", and worse). Polls come out packed, one text row per store.
- PostgreSQL tables are read through connectorx (native Arrow columns), polls through
  `COPY ... TO STDOUT`, parsed by polars in bulk.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
import sqlalchemy as sa

from storemon_assets.db.driver import dbapi_connection

# What a poll read returns: sorted by store key, then instant.
POLL_READ_SCHEMA = {"store_key": pl.Int32(), "polled_at_us": pl.Int64(), "active": pl.Boolean()}
LAST_POLL_SCHEMA = {"store_key": pl.Int32(), "last_us": pl.Int64()}


@dataclass(frozen=True)
class KeyRange:
    """Stores whose key lies in [first, last]: a shard of the report."""

    first: int
    last: int


def frame_of_rows(rows: Sequence[Sequence[Any]], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Rows of plain values as a typed frame (SQLite hands booleans back as 0 and 1)."""
    raw = [(name, _read_as(dtype)) for name, dtype in schema.items()]
    frame = pl.DataFrame(rows, schema=raw, orient="row")
    iso_dates = [name for name, dtype in schema.items() if dtype == pl.Date and frame.schema[name] == pl.String]
    return frame.with_columns(pl.col(iso_dates).str.to_date("%Y-%m-%d")).cast(pl.Schema(schema))


def _read_as(dtype: pl.DataType) -> pl.DataType | None:
    """The type a driver's values of `dtype` are first read as."""
    if dtype == pl.Boolean:
        return pl.Int8()  # SQLite's 0 and 1
    # Dates come back as date objects or (SQLite's driver) as their ISO text: left to polars to tell.
    return None if dtype == pl.Date else dtype


def fetch(engine: sa.Engine, sql: str, params: tuple, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """A query's rows through the driver (placeholders: the reader's `placeholder`)."""
    with engine.connect() as conn:
        cursor = dbapi_connection(conn).cursor()
        try:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        finally:
            cursor.close()
    return frame_of_rows(rows, schema)


def json_rows(frame: pl.DataFrame) -> str:
    """Rows as a JSON array of objects: SQLite reads it with json_each, PostgreSQL with
    jsonb_to_recordset, so a list of per-store values is one query parameter."""
    return json.dumps(frame.to_dicts())


def connectorx_uri(engine: sa.Engine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class _Placeholders:
    """What both readers write the same way but for their placeholder (`?` or `%s`)."""

    placeholder: str

    def key_filter(self, alias: str, keys: KeyRange | None) -> tuple[str, tuple]:
        """` AND <alias>.store_key BETWEEN .. AND ..` and its parameters; nothing without keys."""
        if keys is None:
            return "", ()
        p = self.placeholder
        return f" AND {alias}.store_key BETWEEN {p} AND {p}", (keys.first, keys.last)


class SqliteReader(_Placeholders):
    placeholder = "?"

    def lock_daily_values(self, conn: sa.Connection) -> None:
        """Start the connection's transaction as a writer (db/history.py: write_daily reads the
        packed rows it rewrites): IMMEDIATE takes the write lock before anything is read, so a
        second writer waits (busy timeout) instead of rewriting rows from an older read."""
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    def reclaim_space(self, engine: sa.Engine) -> str:
        """The incremental vacuum (migration 0007 set the mode): freed pages go back to the
        file system."""
        with engine.connect() as conn:
            raw = dbapi_connection(conn)
            freed = raw.execute("PRAGMA freelist_count").fetchone()[0]
            # Through sqlite3_exec, which steps the pragma to its end: the driver's execute() steps
            # once, and each step frees a single page.
            raw.executescript("PRAGMA incremental_vacuum;")
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return f"SQLite: {freed:,} free pages handed back to the file system"

    def table(self, engine: sa.Engine, query: str, schema: dict[str, pl.DataType]) -> pl.DataFrame:
        """The driver's fetchall of plain tuples: twice as fast as SQLAlchemy rows."""
        return fetch(engine, query, (), schema)

    def polls(self, engine: sa.Engine, first_us: int, last_us: int, keys: KeyRange | None) -> pl.DataFrame:
        where, params = self.key_filter("s", keys)
        # CROSS JOIN fixes the join order in SQLite: one primary-key range per store.
        return self._packed_polls(
            engine,
            "s.store_key",  # the order stores are visited in: no sorting to group
            "FROM stores s CROSS JOIN store_status_polls p ON p.store_key = s.store_key "
            f"WHERE p.polled_at_us BETWEEN ? AND ?{where}",
            (first_us, last_us, *params),
        )

    def polls_in_ranges(self, engine: sa.Engine, ranges: pl.DataFrame) -> pl.DataFrame:
        return self._packed_polls(
            engine,
            "p.store_key",
            "FROM json_each(?) r CROSS JOIN store_status_polls p ON p.store_key = r.value ->> 'store_key' "
            "AND p.polled_at_us BETWEEN r.value ->> 'first_us' AND r.value ->> 'last_us'",
            (json_rows(ranges),),
        )

    def last_poll_before(self, engine: sa.Engine, cursors: pl.DataFrame) -> pl.DataFrame:
        sql = (
            "SELECT r.value ->> 'store_key', (SELECT MAX(q.polled_at_us) FROM store_status_polls q "
            "WHERE q.store_key = r.value ->> 'store_key' AND q.polled_at_us < r.value ->> 'before_us') "
            "FROM json_each(?) r"
        )
        return fetch(engine, sql, (json_rows(cursors),), LAST_POLL_SCHEMA)

    def _packed_polls(self, engine: sa.Engine, store_key: str, from_where: str, params: tuple) -> pl.DataFrame:
        """Polls fetched as one text row per store.

        Turning millions of rows into Python tuples is what makes a read slow; SQLite instead
        joins each store's polls into one string (instant * 2 + active, comma-separated) and
        polars splits and converts them in bulk, three times faster.
        """
        sql = f"SELECT {store_key}, group_concat(p.polled_at_us * 2 + p.active) {from_where} GROUP BY {store_key}"
        rows = fetch(engine, sql, params, {"store_key": pl.Int32(), "packed": pl.String()})
        packed = (
            rows.select("store_key", pl.col("packed").str.split(",").alias("packed"))
            .explode("packed")
            .select("store_key", pl.col("packed").cast(pl.Int64))
        )
        return packed.select(
            "store_key",
            pl.col("packed").floordiv(2).alias("polled_at_us"),
            (pl.col("packed") % 2 == 1).alias("active"),
        ).sort("store_key", "polled_at_us")


# PostgreSQL: OFFSET 0 keeps a LATERAL subquery from being merged into a join, which the
# planner may then answer by scanning every poll when its statistics lag behind the data (seen:
# 28 M rows estimated for a week of 2.3 M). Kept apart, each store is one primary-key range.
_ONE_RANGE = "OFFSET 0"


# Serialises writers of the packed daily values (pg_advisory_xact_lock: held to the commit).
_DAILY_VALUES_LOCK_KEY = 0x53544F5245444159  # "STOREDAY"


class PostgresReader(_Placeholders):
    placeholder = "%s"

    def lock_daily_values(self, conn: sa.Connection) -> None:
        """Serialise writers of the packed daily values until this transaction ends: a second
        writer waits here, then reads the rows the first one wrote (READ COMMITTED)."""
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_DAILY_VALUES_LOCK_KEY})")

    def reclaim_space(self, engine: sa.Engine) -> str:
        """PostgreSQL reuses freed rows itself (autovacuum); deploy/README.md says when to do more."""
        return "PostgreSQL: freed rows are reused by later inserts (autovacuum); see deploy/README.md"

    def table(self, engine: sa.Engine, query: str, schema: dict[str, pl.DataType]) -> pl.DataFrame:
        frame = pl.read_database_uri(query, connectorx_uri(engine), engine="connectorx")
        return frame.cast(schema) if frame.height else pl.DataFrame(schema=schema)  # type: ignore[arg-type]

    def polls(self, engine: sa.Engine, first_us: int, last_us: int, keys: KeyRange | None) -> pl.DataFrame:
        where, params = self.key_filter("s", keys)
        query = (
            "SELECT p.* FROM stores s CROSS JOIN LATERAL (SELECT q.store_key, q.polled_at_us, q.active "
            f"FROM store_status_polls q WHERE q.store_key = s.store_key AND q.polled_at_us BETWEEN %s AND %s {_ONE_RANGE}) p "
            f"WHERE true{where}"
        )
        return self._copied_polls(engine, query, (first_us, last_us, *params))

    def polls_in_ranges(self, engine: sa.Engine, ranges: pl.DataFrame) -> pl.DataFrame:
        sql = (
            "SELECT p.* FROM jsonb_to_recordset(%s::jsonb) AS r(store_key int, first_us bigint, last_us bigint) "
            "CROSS JOIN LATERAL (SELECT q.store_key, q.polled_at_us, q.active FROM store_status_polls q "
            f"WHERE q.store_key = r.store_key AND q.polled_at_us BETWEEN r.first_us AND r.last_us {_ONE_RANGE}) p"
        )
        return fetch(engine, sql, (json_rows(ranges),), POLL_READ_SCHEMA).sort("store_key", "polled_at_us")

    def last_poll_before(self, engine: sa.Engine, cursors: pl.DataFrame) -> pl.DataFrame:
        sql = (
            "SELECT r.store_key, (SELECT MAX(q.polled_at_us) FROM store_status_polls q "
            "WHERE q.store_key = r.store_key AND q.polled_at_us < r.before_us) "
            "FROM jsonb_to_recordset(%s::jsonb) AS r(store_key int, before_us bigint)"
        )
        return fetch(engine, sql, (json_rows(cursors),), LAST_POLL_SCHEMA)

    def _copied_polls(self, engine: sa.Engine, query: str, params: tuple) -> pl.DataFrame:
        """Polls through COPY ... TO STDOUT, PostgreSQL's fastest way out, parsed by polars in
        bulk (twice as fast here as connectorx's row transfer)."""
        buffer = io.BytesIO()
        with engine.connect() as conn:
            cursor = dbapi_connection(conn).cursor()
            try:
                # Compiling this plain range read to machine code (JIT) costs more than it saves.
                cursor.execute("SET LOCAL jit = off")
                # COPY takes no bind parameters: the driver quotes them into the text.
                cursor.copy_expert(f"COPY ({cursor.mogrify(query, params).decode()}) TO STDOUT", buffer)
            finally:
                cursor.close()
        if not buffer.getbuffer().nbytes:
            return pl.DataFrame(schema=POLL_READ_SCHEMA)
        buffer.seek(0)
        raw = {"store_key": pl.Int32, "polled_at_us": pl.Int64, "active": pl.String}
        frame = pl.read_csv(buffer, has_header=False, separator="\t", new_columns=list(raw), schema=raw)
        return frame.with_columns(pl.col("active") == "t").sort("store_key", "polled_at_us")


Reader = SqliteReader | PostgresReader
_READERS: dict[str, Reader] = {"sqlite": SqliteReader(), "postgresql": PostgresReader()}


def reader_for(engine: sa.Engine | sa.Connection) -> Reader:
    """The reader of this engine's database (readers hold no state: one per dialect)."""
    try:
        return _READERS[engine.dialect.name]
    except KeyError:
        raise ValueError(
            f"unsupported database {engine.dialect.name!r}: storemon supports SQLite and PostgreSQL"
        ) from None
