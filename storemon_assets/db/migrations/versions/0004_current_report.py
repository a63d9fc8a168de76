"""The current report as tables, for the API's store pages: its rows (`current_report`) and
which report they are (`current_report_info`). On SQLite the status intervals move into their
primary-key B-tree (WITHOUT ROWID): the table is rewritten whole by every report run, and one
B-tree to write is cheaper than a table plus its key index. Every interval is carried over.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _report_column(kind: str, window: str) -> sa.Column:
    unit = "minutes" if window == "hour" else "hours"
    return sa.Column(
        f"{kind}_last_{window}",
        sa.Float(),
        nullable=False,
        comment=f"{kind.capitalize()} during business hours in the last {window}, in {unit} (2 decimals).",
    )


def upgrade() -> None:
    op.create_table(
        "current_report",
        sa.Column("store_id", sa.Text(), primary_key=True, nullable=False, comment="Store identifier."),
        *(_report_column(kind, window) for kind in ("uptime", "downtime") for window in ("hour", "day", "week")),
        comment="The rows of the current report (combined_report.csv), one per store, as rounded there.",
        sqlite_with_rowid=False,
    )
    op.create_table(
        "current_report_info",
        sa.Column(
            "report_id",
            sa.Text(),
            primary_key=True,
            nullable=False,
            comment="The run that published it (its Dagster run id, or a local id).",
        ),
        sa.Column(
            "as_of_us", sa.BigInteger(), nullable=False, comment="The report's T, microseconds since 1970-01-01 UTC."
        ),
        sa.Column(
            "published_at_us",
            sa.BigInteger(),
            nullable=False,
            comment="When it was published, microseconds since 1970-01-01 UTC.",
        ),
        sa.Column("stores", sa.BigInteger(), nullable=False, comment="Stores in the report."),
        sa.Column(
            "stores_without_observations",
            sa.BigInteger(),
            nullable=False,
            comment="Stores with polls but no observation (no_data).",
        ),
        comment="One row: which report current_report and store_status_intervals hold.",
    )
    if op.get_bind().dialect.name == "sqlite":
        columns = "store_id, start_half_us, end_half_us, status, start_local_us, end_local_us"
        op.execute(
            "CREATE TABLE store_status_intervals_clustered (store_id TEXT NOT NULL, start_half_us BIGINT NOT NULL, "
            "end_half_us BIGINT NOT NULL, status TEXT NOT NULL, start_local_us BIGINT NOT NULL, "
            "end_local_us BIGINT NOT NULL, PRIMARY KEY (store_id, start_half_us)) WITHOUT ROWID"
        )
        op.execute(
            f"INSERT INTO store_status_intervals_clustered ({columns}) "
            f"SELECT {columns} FROM store_status_intervals ORDER BY store_id, start_half_us"
        )
        op.drop_table("store_status_intervals")
        op.rename_table("store_status_intervals_clustered", "store_status_intervals")


def downgrade() -> None:
    op.drop_table("current_report_info")
    op.drop_table("current_report")
