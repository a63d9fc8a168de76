"""Alembic environment. storemon runs migrations itself (db/migrate.py), on a connection it has
opened and locked, inside one transaction: a failed upgrade leaves the database as it was."""

from alembic import context

from storemon_assets.db.schema import applies_to, metadata

connection = context.config.attributes["connection"]


def include_object(obj, name, type_, reflected, compare_to):
    # An index declared for the other kind of database is not expected here.
    return not (type_ == "index" and not reflected and not applies_to(obj, connection.dialect.name))


context.configure(connection=connection, target_metadata=metadata, include_object=include_object)
with context.begin_transaction():
    context.run_migrations()
