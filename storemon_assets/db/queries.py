"""Every read storemon makes of its database, returning polars frames typed by `core/tables.py`."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import polars as pl
import sqlalchemy as sa

from storemon_assets.core.business_time import weekly_schedule
from storemon_assets.core.feeds import FEED_KINDS
from storemon_assets.core.tables import (
    BUSINESS_HOURS,
    INGESTED_FILES,
    REJECTED_ROWS,
    STORE_STATUS_POLLS,
    STORE_TIMEZONES,
    Table,
)
from storemon_assets.db.schema import SQL_TABLES


def is_loaded(engine: sa.Engine, sha256: str) -> bool:
    ledger = SQL_TABLES[INGESTED_FILES.name]
    with engine.connect() as conn:
        return conn.execute(sa.select(ledger.c.file_sha256).where(ledger.c.file_sha256 == sha256)).first() is not None


def read_table(engine: sa.Engine, spec: Table) -> pl.DataFrame:
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
        rows = conn.execute(
            sa.select(ledger.c.kind, ledger.c.file_sha256).order_by(ledger.c.kind, ledger.c.file_sha256)
        ).all()
    digests: dict = {}
    for kind, sha in rows:
        digests.setdefault(kind, hashlib.sha256()).update(sha.encode())
    return {kind: digest.hexdigest()[:16] for kind, digest in digests.items()}


def table_counts(engine: sa.Engine, specs: Iterable[Table]) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            spec.name: conn.execute(sa.select(sa.func.count()).select_from(SQL_TABLES[spec.name])).scalar_one()
            for spec in specs
        }


def read_weekly_schedules(engine: sa.Engine, store_ids: pl.Series | None = None) -> pl.DataFrame:
    """Normalised weekly schedules of the given stores (default: every store any feed names),
    derived from the raw hours and timezones tables with the SPEC §2 defaults."""
    hours = read_table(engine, BUSINESS_HOURS)
    timezones = read_table(engine, STORE_TIMEZONES)
    if store_ids is None:
        store_ids = known_store_ids(engine)
    return weekly_schedule(hours, timezones, store_ids)


def known_store_ids(engine: sa.Engine) -> pl.Series:
    """Every store named by an accepted row of any feed."""
    with engine.connect() as conn:
        query = sa.union(
            *(
                sa.select(SQL_TABLES[spec.name].c.store_id)
                for spec in (STORE_STATUS_POLLS, BUSINESS_HOURS, STORE_TIMEZONES)
            )
        )
        ids = [row[0] for row in conn.execute(query)]
    return pl.Series("store_id", ids, dtype=pl.String).sort()


def rejected_counts(engine: sa.Engine) -> dict[str, int]:
    """Rejected rows per feed kind (every kind present, zero when none)."""
    table = SQL_TABLES[REJECTED_ROWS.name]
    counts = dict.fromkeys(FEED_KINDS, 0)
    with engine.connect() as conn:
        counts.update(dict(conn.execute(sa.select(table.c.kind, sa.func.count()).group_by(table.c.kind)).all()))
    return counts


def polled_store_ids(engine: sa.Engine, as_of_us: int | None) -> pl.Series:
    """Stores with a poll at or before T, straight from SQL (an independent count for checks)."""
    table = SQL_TABLES[STORE_STATUS_POLLS.name]
    query = sa.select(table.c.store_id).distinct()
    if as_of_us is not None:
        query = query.where(table.c.polled_at_us <= as_of_us)
    with engine.connect() as conn:
        return pl.Series("store_id", [row[0] for row in conn.execute(query)], dtype=pl.String)


def newest_poll_us(engine: sa.Engine) -> int | None:
    table = SQL_TABLES[STORE_STATUS_POLLS.name]
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(table.c.polled_at_us))).scalar()
