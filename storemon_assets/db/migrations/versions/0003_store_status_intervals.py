"""The current report's status intervals (when each store was up or down in the week before T).

The table first appeared, created without a migration, on main after the release; a database
created then already has it, so it is created only where it is missing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("store_status_intervals"):
        return
    op.create_table(
        "store_status_intervals",
        sa.Column("store_id", sa.Text(), primary_key=True, nullable=False, comment="Opaque store identifier."),
        sa.Column(
            "start_half_us",
            sa.BigInteger(),
            primary_key=True,
            nullable=False,
            comment="Start, half-microseconds since 1970-01-01 UTC (inclusive).",
        ),
        sa.Column(
            "end_half_us",
            sa.BigInteger(),
            nullable=False,
            comment="End, half-microseconds since 1970-01-01 UTC (exclusive).",
        ),
        sa.Column(
            "status",
            sa.Text(),
            nullable=False,
            comment="'up', 'down', or 'no_data' (the store has no observation at all).",
        ),
        sa.Column(
            "start_local_us",
            sa.BigInteger(),
            nullable=False,
            comment="Start on the store's wall clock, microseconds since 1970-01-01 local time.",
        ),
        sa.Column(
            "end_local_us",
            sa.BigInteger(),
            nullable=False,
            comment="End on the store's wall clock, microseconds since 1970-01-01 local time.",
        ),
        comment="When each store of the current report was up or down: its business time in the week before T "
        "cut at every status change (nearest observation), or 'no_data' for a store without observations. "
        "Summed per window, the intervals give the report's numbers exactly.",
    )


def downgrade() -> None:
    op.drop_table("store_status_intervals")
