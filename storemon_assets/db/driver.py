"""The driver's own connection under a SQLAlchemy one, for what SQLAlchemy does not wrap:
COPY, executemany over packed rows, SQLite's executescript and VACUUM."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine.interfaces import DBAPIConnection


def dbapi_connection(conn: sa.Connection) -> DBAPIConnection:
    """The DB-API connection `conn` holds (SQLAlchemy types it optional: None only once the
    connection has been invalidated or detached, which an open `conn` in use is not)."""
    raw = conn.connection.dbapi_connection
    if raw is None:
        raise RuntimeError("the database connection has been invalidated")
    return raw
