"""Rejected rows counted per file and reason: `rejected_rows` keeps the first 10,000 rows of a
file with their text, and `rejected_row_counts` counts every rejected row by reason, so that a
file of garbage costs a bounded table (issue 20 row 5: 48 MB of bad rows made a 2.1 GB database).
The counts of the rows already stored are filled in from them; no row is removed.

Revision ID: 0010
Revises: 0006
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLE_COMMENT = (
    "Every rejected row, counted per file and reason (rejected_rows keeps the first 10,000 of a file with their text)."
)


def upgrade() -> None:
    op.create_table(
        "rejected_row_counts",
        sa.Column("file_sha256", sa.Text(), primary_key=True, nullable=False, comment="Content hash of the file."),
        sa.Column("reason", sa.Text(), primary_key=True, nullable=False, comment="Why the rows were rejected."),
        sa.Column("kind", sa.Text(), nullable=False, comment="Feed kind: polls, hours, timezones or special_hours."),
        sa.Column("row_count", sa.BigInteger(), nullable=False, comment="Rows of the file rejected for this reason."),
        comment=TABLE_COMMENT,
    )
    op.execute(
        "INSERT INTO rejected_row_counts (file_sha256, reason, kind, row_count) "
        "SELECT file_sha256, reason, MIN(kind), COUNT(*) FROM rejected_rows GROUP BY file_sha256, reason"
    )


def downgrade() -> None:
    op.drop_table("rejected_row_counts")
