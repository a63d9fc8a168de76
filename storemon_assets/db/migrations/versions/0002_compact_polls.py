"""Compact polls: a `stores` table maps each store_id to an integer key, and a poll is
(store key, instant, active). SQLite keeps the rows inside the primary-key B-tree (WITHOUT
ROWID), about 20 bytes a poll instead of about 100; PostgreSQL adds a BRIN index on the
instant for time-range reads. Every poll is carried over; statuses become booleans.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

STORES_COMMENT = (
    "Every store that has a poll: its opaque store_id and the small integer key the polls table uses in its "
    "place (assigned when the store's first poll is loaded; never shown to users)."
)
POLLS_COMMENT = (
    "Every distinct status poll ever loaded (exact duplicates count once), in compact form: rows lie in "
    "(store, time) order, so one store's polls in a time range are one range read."
)


def _compact_polls_table(name: str) -> None:
    op.create_table(
        name,
        sa.Column("store_key", sa.Integer(), primary_key=True, nullable=False, comment="The store (stores.store_key)."),
        sa.Column(
            "polled_at_us",
            sa.BigInteger(),
            primary_key=True,
            nullable=False,
            comment="Poll instant, microseconds since 1970-01-01 UTC.",
        ),
        sa.Column(
            "active",
            sa.Boolean(),
            primary_key=True,
            nullable=False,
            comment="True for status 'active', false for 'inactive'.",
        ),
        comment=POLLS_COMMENT,
        sqlite_with_rowid=False,
    )


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "stores",
        sa.Column(
            "store_key",
            sa.Integer(),
            primary_key=True,
            nullable=False,
            comment="Integer key of the store, assigned by the database.",
        ),
        sa.Column("store_id", sa.Text(), nullable=False, comment="Opaque store identifier (never parsed as a number)."),
        comment=STORES_COMMENT,
    )
    op.create_index("ix_stores_store_id", "stores", ["store_id"], unique=True)
    _compact_polls_table("store_polls_compact")
    op.execute("INSERT INTO stores (store_id) SELECT DISTINCT store_id FROM store_status_polls ORDER BY store_id")
    # PostgreSQL appends rows in time order, so that the BRIN index's block ranges stay narrow;
    # SQLite fills its B-tree in key order, which packs its pages.
    order = "p.polled_at_us" if postgresql else "s.store_key, p.polled_at_us"
    op.execute(
        "INSERT INTO store_polls_compact (store_key, polled_at_us, active) "
        "SELECT s.store_key, p.polled_at_us, p.status = 'active' "
        f"FROM store_status_polls p JOIN stores s ON s.store_id = p.store_id ORDER BY {order}"
    )
    op.drop_table("store_status_polls")
    op.rename_table("store_polls_compact", "store_status_polls")
    if postgresql:
        op.create_index("ix_store_status_polls_time", "store_status_polls", ["polled_at_us"], postgresql_using="brin")


def downgrade() -> None:
    op.create_table(
        "store_polls_text",
        sa.Column("store_id", sa.Text(), primary_key=True, nullable=False),
        sa.Column("polled_at_us", sa.BigInteger(), primary_key=True, nullable=False),
        sa.Column("status", sa.Text(), primary_key=True, nullable=False),
    )
    op.execute(
        "INSERT INTO store_polls_text (store_id, polled_at_us, status) "
        "SELECT s.store_id, p.polled_at_us, CASE WHEN p.active THEN 'active' ELSE 'inactive' END "
        "FROM store_status_polls p JOIN stores s ON s.store_key = p.store_key"
    )
    op.drop_table("store_status_polls")
    op.drop_table("stores")
    op.rename_table("store_polls_text", "store_status_polls")
