"""PostgreSQL: drop the BRIN index on the poll instant. Reads of a time range go through the
primary key (store, instant), one range per store, as on SQLite: that does not depend on the
order rows were inserted in nor on the planner's statistics, which the BRIN index did. The
table's description says so.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


OLD_COMMENT = (
    "Every distinct status poll ever loaded (exact duplicates count once), in compact form: rows lie in "
    "(store, time) order, so one store's polls in a time range are one range read."
)
NEW_COMMENT = (
    "Every distinct status poll ever loaded (exact duplicates count once), in compact form. The primary key "
    "(store, time) serves every time-range read: one range per store."
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_store_status_polls_time", table_name="store_status_polls")
        op.create_table_comment("store_status_polls", NEW_COMMENT, existing_comment=OLD_COMMENT)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_store_status_polls_time", "store_status_polls", ["polled_at_us"], postgresql_using="brin")
        op.create_table_comment("store_status_polls", OLD_COMMENT, existing_comment=NEW_COMMENT)
