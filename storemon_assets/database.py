"""The storemon database: one SQLAlchemy engine, SQLite or PostgreSQL by URL.

Loading is set-based: each parsed file goes in inside one transaction, with batched
multi-row inserts whose conflict clauses make re-delivery harmless. Reading returns polars
frames typed by `schema`.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from storemon_assets.parsing import HOURS, POLLS, TIMEZONES, ParsedFeed
from storemon_assets.schema import (
    BUSINESS_HOURS,
    INGESTED_FILES,
    REJECTED_ROWS,
    SQL_TABLES,
    STORE_SCHEDULES,
    STORE_STATUS_POLLS,
    STORE_TIMEZONES,
    TableSpec,
    metadata,
)

INSERT_BATCH_ROWS = 20_000
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


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def create_db_engine(url: str) -> sa.Engine:
    """Engine for `url`; SQLite gets a busy timeout and WAL so sensors and runs can share it."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        database = engine.url.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def create_tables(engine: sa.Engine) -> None:
    metadata.create_all(engine)


def _bulk_insert(conn: sa.Connection, table: sa.Table, frame: pl.DataFrame, on_conflict: str = "DO NOTHING") -> None:
    """Insert a frame inside the connection's transaction, set-based.

    SQLite: the driver's executemany over tuples. PostgreSQL: COPY into a temporary staging
    table, then one INSERT ... SELECT. `on_conflict` is the SQL after `ON CONFLICT` (same
    syntax on both).
    """
    if frame.height == 0:
        return
    columns = ", ".join(frame.columns)
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        if conn.dialect.name == "sqlite":
            placeholders = ", ".join("?" for _ in frame.columns)
            sql = f"INSERT INTO {table.name} ({columns}) VALUES ({placeholders}) ON CONFLICT {on_conflict}"
            for batch in frame.iter_slices(INSERT_BATCH_ROWS):
                cursor.executemany(sql, batch.iter_rows())
        elif conn.dialect.name == "postgresql":
            staging = f"storemon_staging_{table.name}"
            cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} (LIKE {table.name}) ON COMMIT DROP")
            cursor.execute(f"TRUNCATE {staging}")
            buffer = io.BytesIO()
            frame.write_csv(buffer, include_header=False, null_value="\\N")
            buffer.seek(0)
            cursor.copy_expert(f"COPY {staging} ({columns}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buffer)
            cursor.execute(f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {staging} ON CONFLICT {on_conflict}")
        else:
            raise ValueError(f"unsupported database {conn.dialect.name!r}: storemon supports SQLite and PostgreSQL")
    finally:
        cursor.close()


def _delete_stores(conn: sa.Connection, table: sa.Table, store_ids: Sequence[str]) -> None:
    for start in range(0, len(store_ids), DELETE_BATCH_KEYS):
        chunk = list(store_ids[start : start + DELETE_BATCH_KEYS])
        conn.execute(table.delete().where(table.c.store_id.in_(chunk)))


def is_loaded(engine: sa.Engine, sha256: str) -> bool:
    ledger = SQL_TABLES[INGESTED_FILES.name]
    with engine.connect() as conn:
        return conn.execute(sa.select(ledger.c.file_sha256).where(ledger.c.file_sha256 == sha256)).first() is not None


def load_feed(engine: sa.Engine, feed: ParsedFeed) -> LoadOutcome:
    """Load one parsed file in one transaction; a file already in the ledger is a no-op.

    Polls are appended (exact duplicates ignored). A business-hours file replaces the hours
    of the stores whose rows it accepted. Timezones are upserted, the last row winning.
    Rejected rows of a store never erase what that store had.
    """
    if is_loaded(engine, feed.sha256):
        return LoadOutcome(feed.path.name, feed.kind, already_loaded=True)
    name = feed.path.name
    rows = feed.rows
    with engine.begin() as conn:
        if feed.kind == POLLS:
            table = SQL_TABLES[STORE_STATUS_POLLS.name]
            # Sorted by key, rows append to the primary-key B-tree instead of landing at random.
            frame = rows.select(STORE_STATUS_POLLS.column_names).unique().sort(STORE_STATUS_POLLS.column_names)
            _bulk_insert(conn, table, frame)
        elif feed.kind == HOURS:
            table = SQL_TABLES[BUSINESS_HOURS.name]
            frame = rows.with_columns(pl.lit(name).alias("source_file")).select(BUSINESS_HOURS.column_names)
            frame = frame.unique(subset=["store_id", "day_of_week", "start_time_us", "end_time_us"], keep="first")
            _delete_stores(conn, table, frame.get_column("store_id").unique().sort().to_list())
            _bulk_insert(conn, table, frame)
        elif feed.kind == TIMEZONES:
            table = SQL_TABLES[STORE_TIMEZONES.name]
            frame = (
                rows.with_columns(pl.lit(name).alias("source_file"))
                .unique(subset=["store_id"], keep="last", maintain_order=True)
                .select(STORE_TIMEZONES.column_names)
            )
            _bulk_insert(
                conn, table, frame,
                "(store_id) DO UPDATE SET timezone_str = excluded.timezone_str, source_file = excluded.source_file",
            )
        else:  # pragma: no cover - parsing only yields the three kinds
            raise ValueError(f"unknown feed kind {feed.kind!r}")

        rejected = feed.rejected.with_columns(
            pl.lit(feed.sha256).alias("file_sha256"), pl.lit(name).alias("file_name"), pl.lit(feed.kind).alias("kind")
        ).select(REJECTED_ROWS.column_names)
        _bulk_insert(conn, SQL_TABLES[REJECTED_ROWS.name], rejected)
        conn.execute(
            SQL_TABLES[INGESTED_FILES.name].insert(),
            {
                "file_sha256": feed.sha256,
                "file_name": name,
                "kind": feed.kind,
                "ingested_at_us": time.time_ns() // 1000,
                "rows_read": feed.rows_read,
                "rows_loaded": rows.height,
                "rows_rejected": feed.rejected.height,
            },
        )
    return LoadOutcome(
        name,
        feed.kind,
        already_loaded=False,
        rows_read=feed.rows_read,
        rows_loaded=rows.height,
        rows_rejected=feed.rejected.height,
        store_ids=tuple(rows.get_column("store_id").unique().sort().to_list()),
    )


def replace_store_schedules(engine: sa.Engine, schedule: pl.DataFrame, store_ids: Sequence[str]) -> None:
    """Replace the stored schedules of `store_ids` by `schedule`, in one transaction."""
    table = SQL_TABLES[STORE_SCHEDULES.name]
    with engine.begin() as conn:
        _delete_stores(conn, table, list(store_ids))
        _bulk_insert(conn, table, schedule.select(STORE_SCHEDULES.column_names))


def read_table(engine: sa.Engine, spec: TableSpec) -> pl.DataFrame:
    """A whole table as a typed polars frame.

    PostgreSQL is read through connectorx, which fills Arrow columns natively. SQLite is read
    through Python's own sqlite3 driver: connectorx (like ADBC) links a second copy of SQLite,
    and two copies in one process break each other's file locks ("disk I/O error", and worse).
    The driver's fetchall of plain tuples is still twice as fast as SQLAlchemy rows.
    """
    query = f"SELECT {', '.join(spec.column_names)} FROM {spec.name}"
    if engine.dialect.name == "postgresql":
        frame = pl.read_database_uri(query, connectorx_uri(engine), engine="connectorx")
        return frame.cast(spec.polars_schema) if frame.height else pl.DataFrame(schema=spec.polars_schema)  # type: ignore[arg-type]
    with engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            rows = cursor.execute(query).fetchall()
        finally:
            cursor.close()
    return pl.DataFrame(rows, schema=spec.polars_schema, orient="row")


def connectorx_uri(engine: sa.Engine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def feed_versions(engine: sa.Engine) -> dict[str, str]:
    """Per feed kind, a hash of the files loaded so far: it changes exactly when the feed does."""
    ledger = SQL_TABLES[INGESTED_FILES.name]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(ledger.c.kind, ledger.c.file_sha256).order_by(ledger.c.kind, ledger.c.file_sha256)).all()
    digests: dict = {}
    for kind, sha in rows:
        digests.setdefault(kind, hashlib.sha256()).update(sha.encode())
    return {kind: digest.hexdigest()[:16] for kind, digest in digests.items()}


def table_counts(engine: sa.Engine, specs: Iterable[TableSpec]) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            spec.name: conn.execute(sa.select(sa.func.count()).select_from(SQL_TABLES[spec.name])).scalar_one()
            for spec in specs
        }
