"""The storemon database engine: SQLite (the embedded default) or PostgreSQL, by URL."""

from __future__ import annotations

import importlib
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa

from storemon_assets.db.migrate import upgrade_schema
from storemon_assets.settings import sqlite_busy_timeout


def create_db_engine(url: str) -> sa.Engine:
    """Engine for `url`; SQLite gets a busy timeout (STOREMON_SQLITE_BUSY_TIMEOUT) and WAL so
    sensors and runs can share it."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": sqlite_busy_timeout()})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        database = engine.url.database
        if database and database != ":memory:" and not engine.url.query.get("uri"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        return engine
    if sa.engine.make_url(url).get_backend_name() == "postgresql":
        require_postgres_extra()
    return sa.create_engine(url, pool_pre_ping=True)


def open_database(url: str) -> sa.Engine:
    """Engine for `url`, with the schema upgraded to the current version first (db/migrate.py)."""
    engine = create_db_engine(url)
    upgrade_schema(engine)
    return engine


class DatabaseUnavailable(RuntimeError):
    """The storemon database cannot be used as it is: missing, unreadable or not a database. The
    message is one line for a client, without the server's paths."""


NOT_LOADED_YET = (
    "the storemon database does not exist: nothing has been loaded yet (storemon ingest, or a file in the "
    "landing folder), or it was removed"
)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for another database, or SQLite in memory)."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return None if parsed.query.get("uri") else Path(parsed.database)


def open_existing_database(url: str) -> sa.Engine:
    """For readers (the API's pages): like `open_database`, but a SQLite file is opened only if it
    exists (SQLite's `mode=rw`): a missing one is never created, empty, under the readers' feet.
    Raises DatabaseUnavailable when the database is missing or cannot be read."""
    path = sqlite_file(url)
    if path is not None:
        if not path.is_file():
            raise DatabaseUnavailable(NOT_LOADED_YET)
        url = f"sqlite:///file:{quote(str(path.resolve()))}?mode=rw&uri=true"
    engine = create_db_engine(url)
    try:
        upgrade_schema(engine)
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        raise DatabaseUnavailable(unreadable(exc)) from exc
    return engine


def unreadable(exc: sa.exc.DBAPIError) -> str:
    """One line for a client on a database error: the driver's reason, without SQL or parameters."""
    return f"the storemon database cannot be read: {database_error(exc)}"


def database_error(exc: BaseException) -> str:
    """One line for a database failure: the driver's own words ("database is locked", "database
    or disk is full"), never SQLAlchemy's statement and parameters."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines() or [type(cause).__name__]
    return lines[0][:300]


# The `postgres` extra: the driver, and connectorx + pyarrow for reading tables into polars.
POSTGRES_EXTRA_MODULES = ("psycopg2", "connectorx", "pyarrow")


class MissingExtraError(ImportError):
    """An optional feature was asked for without the packages of its extra."""


def require_postgres_extra() -> None:
    """Fail at once, saying what to install, rather than at the first read deep inside a run."""
    missing = []
    for module in POSTGRES_EXTRA_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise MissingExtraError(
            f"a PostgreSQL database needs the postgres extra ({', '.join(missing)} not installed): "
            "pip install 'storemon[postgres]' (in a checkout: pip install -e '.[postgres]')"
        )
