"""Daily values and retention (SPEC §8, §11): the `store_daily_uptime` table, the
`retention_state` table (the cutoff in force), and each polls file's first and last poll
instant in the ledger (what a late file can have changed). SQLite databases are switched to
`auto_vacuum = INCREMENTAL`, so that pages freed by pruning can be handed back to the file
system with `PRAGMA incremental_vacuum`: the mode of an existing file only changes with a
VACUUM, which cannot run inside the upgrade's transaction, so `db/migrate.py` runs it right
after the upgrade commits (once: a database already in that mode is left alone).

Revision ID: 0007
Revises: 0008
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "ingested_files",
        sa.Column(
            "first_poll_us",
            sa.BigInteger(),
            nullable=True,
            comment="Polls files: the earliest accepted poll instant (a late poll's reach).",
        ),
    )
    op.add_column(
        "ingested_files",
        sa.Column(
            "last_poll_us", sa.BigInteger(), nullable=True, comment="Polls files: the latest accepted poll instant."
        ),
    )
    op.create_table(
        "store_daily_uptime",
        sa.Column(
            "local_date", sa.Date(), primary_key=True, nullable=False, comment="The store's local calendar date."
        ),
        sa.Column("store_id", sa.Text(), primary_key=True, nullable=False, comment="Opaque store identifier."),
        sa.Column(
            "business_half_us",
            sa.BigInteger(),
            nullable=False,
            comment="Business time of the day before as_of_us, half-microseconds.",
        ),
        sa.Column(
            "up_half_us",
            sa.BigInteger(),
            nullable=False,
            comment="Of it, time whose nearest observation was active, half-microseconds.",
        ),
        sa.Column(
            "down_half_us",
            sa.BigInteger(),
            nullable=False,
            comment="Of it, time whose nearest observation was inactive, half-microseconds.",
        ),
        sa.Column(
            "final_from_us",
            sa.BigInteger(),
            nullable=True,
            comment="Later observations cannot change the values for any T at or after this instant (null: the "
            "store had no observation by as_of_us).",
        ),
        sa.Column(
            "as_of_us",
            sa.BigInteger(),
            nullable=False,
            comment="The T the values were computed for, microseconds since 1970-01-01 UTC.",
        ),
        sa.Column(
            "computed_at_us",
            sa.BigInteger(),
            nullable=False,
            comment="When they were computed, microseconds since 1970-01-01 UTC.",
        ),
        comment="Each store's business, up and down time per local calendar date (the part of the day before "
        "as_of_us), split by the nearest observation; kept after the polls behind them are pruned "
        "(docs/history.md).",
        sqlite_with_rowid=False,
    )
    op.create_index("ix_store_daily_uptime_store_id", "store_daily_uptime", ["store_id", "local_date"])
    op.create_table(
        "retention_state",
        sa.Column(
            "singleton",
            sa.SmallInteger(),
            primary_key=True,
            nullable=False,
            comment="Always 1: the table holds one row.",
        ),
        sa.Column(
            "cutoff_us",
            sa.BigInteger(),
            nullable=False,
            comment="Polls older than this were pruned, microseconds since 1970-01-01 UTC.",
        ),
        sa.Column(
            "set_at_us",
            sa.BigInteger(),
            nullable=False,
            comment="When the cutoff was set, microseconds since 1970-01-01 UTC.",
        ),
        comment="At most one row: the retention cutoff in force. Polls before it were pruned (except each store's "
        "carry-in and newest poll), and a poll before it that arrives later is rejected.",
    )
    if op.get_bind().dialect.name == "sqlite":
        # Recorded in the file at once; takes effect with the VACUUM db/migrate.py runs after commit.
        op.execute("PRAGMA auto_vacuum = INCREMENTAL")


def downgrade() -> None:
    op.drop_table("retention_state")
    op.drop_index("ix_store_daily_uptime_store_id", table_name="store_daily_uptime")
    op.drop_table("store_daily_uptime")
    with op.batch_alter_table("ingested_files") as batch:  # SQLite rebuilds the table to drop columns
        batch.drop_column("last_poll_us")
        batch.drop_column("first_poll_us")
