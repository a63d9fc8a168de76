"""Alembic migrations of the storemon database; run by `storemon_assets.db.migrate`."""
