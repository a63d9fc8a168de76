"""Bringing a database to the schema declared in `core/tables.py`, with Alembic.

The migrations (db/migrations/versions/) are the only way tables are created or changed: a
fresh database runs all of them, a database of the last release (no alembic_version table,
the release's tables) is recorded at revision 0001 and upgraded in place, nothing lost.
Upgrades take a lock first (SQLite: an immediate write transaction; PostgreSQL: an advisory
lock) and run in one transaction, so processes starting together upgrade once, and a failed
upgrade changes nothing. A database already at the head costs one small query.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from storemon_assets.db.driver import dbapi_connection

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# The newest migration; a test checks it against the scripts, so that the start-up check
# needs no Alembic import when there is nothing to do.
HEAD_REVISION = "0011"
# The release before migrations existed, and a table that tells its databases apart.
RELEASE_REVISION = "0001"
RELEASE_MARKER_TABLE = "ingested_files"
VERSION_TABLE = "alembic_version"
_POSTGRES_LOCK_KEY = 0x53544F52454D4F4E  # "STOREMON"


def schema_revision(connection: sa.Connection) -> str | None:
    """The revision the database is at: None for an empty database or one of the release."""
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return None
    return connection.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").scalar()


def _alembic_config(connection: sa.Connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _lock(connection: sa.Connection) -> None:
    """Serialise upgraders: the second waits, then finds the database current."""
    if connection.dialect.name == "sqlite":
        # pysqlite would run DDL outside any transaction; an explicit one makes the whole
        # upgrade atomic, and IMMEDIATE takes the write lock before anything is read.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_POSTGRES_LOCK_KEY})")


def upgrade_schema(engine: sa.Engine) -> tuple[str | None, str]:
    """Upgrade the database to the head revision; returns (revision before, revision after)."""
    with engine.connect() as connection:
        before = schema_revision(connection)
        if before == HEAD_REVISION:
            return before, before
    from alembic import command

    with engine.connect() as connection:
        _lock(connection)
        before = schema_revision(connection)
        if before != HEAD_REVISION:
            config = _alembic_config(connection)
            if before is None and sa.inspect(connection).has_table(RELEASE_MARKER_TABLE):
                command.stamp(config, RELEASE_REVISION)
            command.upgrade(config, "head")
        connection.commit()
    incremental_auto_vacuum(engine)
    return before, HEAD_REVISION


# SQLite's `PRAGMA auto_vacuum` value for INCREMENTAL.
_SQLITE_INCREMENTAL = 2


def incremental_auto_vacuum(engine: sa.Engine) -> None:
    """SQLite: make the file able to shrink (`auto_vacuum = INCREMENTAL`, migration 0007).

    The mode of a file that already has tables only changes with a VACUUM, which rewrites the
    file and cannot run inside a transaction: it runs here, after the upgrade committed, once
    per database (a file already in the mode is left alone; a fresh one is nearly empty). A
    VACUUM needs free disk space of about the file's size. PostgreSQL reclaims space its own
    way (deploy/README.md).
    """
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return
    with engine.connect() as connection:
        if connection.exec_driver_sql("PRAGMA auto_vacuum").scalar() == _SQLITE_INCREMENTAL:
            return
        connection.exec_driver_sql("PRAGMA auto_vacuum = INCREMENTAL")
        connection.commit()
        raw = dbapi_connection(connection)
        previous, raw.isolation_level = raw.isolation_level, None  # VACUUM outside any transaction
        try:
            raw.execute("VACUUM")
        finally:
            raw.isolation_level = previous


def head_of_scripts() -> str:
    """The head revision according to the migration scripts themselves."""
    from alembic.script import ScriptDirectory

    config = _alembic_config(None)  # type: ignore[arg-type]
    head = ScriptDirectory.from_config(config).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration scripts in {MIGRATIONS_DIR}")
    return head


def schema_drift(engine: sa.Engine) -> list:
    """Differences between the database's tables and the declarations (empty: none)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from storemon_assets.db.schema import metadata

    with engine.connect() as connection:

        def include_object(obj, name, type_, reflected, compare_to):
            return not (type_ == "table" and name == VERSION_TABLE)

        context = MigrationContext.configure(
            connection, opts={"include_object": include_object, "compare_type": True, "compare_server_default": False}
        )
        return compare_metadata(context, metadata)
