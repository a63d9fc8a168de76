"""Alembic environment. storemon runs migrations itself (db/migrate.py), on a connection it has
opened and locked, inside one transaction: a failed upgrade leaves the database as it was."""

from alembic import context

from storemon_assets.db.schema import metadata

context.configure(connection=context.config.attributes["connection"], target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
