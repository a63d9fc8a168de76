"""The schema of the last release before migrations (0.1.0, commit c4255c6; unchanged up to 52907bb).

A database created by that release has these six tables and no alembic_version table;
`upgrade_schema` recognises it and records it at this revision before upgrading.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

RELEASE_TABLES = (
    "store_status_polls",
    "business_hours",
    "store_timezones",
    "rejected_rows",
    "ingested_files",
    "store_schedules",
)


def upgrade() -> None:
    op.create_table(
        "store_status_polls",
        sa.Column(
            "store_id",
            sa.Text(),
            primary_key=True,
            nullable=False,
            comment="Opaque store identifier (never parsed as a number).",
        ),
        sa.Column(
            "polled_at_us",
            sa.BigInteger(),
            primary_key=True,
            nullable=False,
            comment="Poll instant, microseconds since 1970-01-01 UTC.",
        ),
        sa.Column("status", sa.Text(), primary_key=True, nullable=False, comment="'active' or 'inactive'."),
        comment="Every distinct status poll ever loaded (exact duplicates count once).",
    )
    op.create_table(
        "business_hours",
        sa.Column("store_id", sa.Text(), primary_key=True, nullable=False, comment="Opaque store identifier."),
        sa.Column(
            "day_of_week", sa.SmallInteger(), primary_key=True, nullable=False, comment="0 = Monday ... 6 = Sunday."
        ),
        sa.Column(
            "start_time_us",
            sa.BigInteger(),
            primary_key=True,
            nullable=False,
            comment="Opening time, microseconds after local midnight.",
        ),
        sa.Column(
            "end_time_us",
            sa.BigInteger(),
            primary_key=True,
            nullable=False,
            comment="Closing time, microseconds after local midnight (<= start: next day).",
        ),
        sa.Column("source_file", sa.Text(), nullable=False, comment="Name of the file these rows came from."),
        comment="Opening intervals in local wall-clock time. A hours file is authoritative for the stores it names: their earlier rows are replaced.",
    )
    op.create_table(
        "store_timezones",
        sa.Column("store_id", sa.Text(), primary_key=True, nullable=False, comment="Opaque store identifier."),
        sa.Column("timezone_str", sa.Text(), nullable=False, comment="IANA timezone name, e.g. America/Chicago."),
        sa.Column("source_file", sa.Text(), nullable=False, comment="Name of the file this row came from."),
        comment="Each store's IANA timezone; the last row loaded for a store wins.",
    )
    op.create_table(
        "rejected_rows",
        sa.Column(
            "file_sha256",
            sa.Text(),
            primary_key=True,
            nullable=False,
            comment="Content hash of the file the row came from.",
        ),
        sa.Column(
            "line_number",
            sa.BigInteger(),
            primary_key=True,
            nullable=False,
            comment="1-based line number in that file (the header is line 1).",
        ),
        sa.Column("file_name", sa.Text(), nullable=False, comment="Name of the file the row came from."),
        sa.Column("kind", sa.Text(), nullable=False, comment="Feed kind: polls, hours or timezones."),
        sa.Column("store_id", sa.Text(), nullable=True, comment="The row's store_id where one could be read."),
        sa.Column("raw_text", sa.Text(), nullable=False, comment="The line exactly as it appeared."),
        sa.Column("reason", sa.Text(), nullable=False, comment="Why the row was rejected."),
        comment="Input rows that could not be parsed, kept with their origin and the reason.",
    )
    op.create_table(
        "ingested_files",
        sa.Column("file_sha256", sa.Text(), primary_key=True, nullable=False, comment="SHA-256 of the file's bytes."),
        sa.Column("file_name", sa.Text(), nullable=False, comment="Name of the file when it was loaded."),
        sa.Column("kind", sa.Text(), nullable=False, comment="Feed kind: polls, hours or timezones."),
        sa.Column(
            "ingested_at_us",
            sa.BigInteger(),
            nullable=False,
            comment="When it was loaded, microseconds since 1970-01-01 UTC.",
        ),
        sa.Column(
            "rows_read", sa.BigInteger(), nullable=False, comment="Data rows in the file (blank lines excluded)."
        ),
        sa.Column(
            "rows_loaded",
            sa.BigInteger(),
            nullable=False,
            comment="Rows accepted (before de-duplication against earlier loads).",
        ),
        sa.Column("rows_rejected", sa.BigInteger(), nullable=False, comment="Rows sent to rejected_rows."),
        comment="Ledger of every file loaded, keyed by content hash, so a file is never loaded twice.",
    )
    op.create_table(
        "store_schedules",
        sa.Column("store_id", sa.Text(), primary_key=True, nullable=False, comment="Opaque store identifier."),
        sa.Column(
            "day_of_week", sa.SmallInteger(), primary_key=True, nullable=False, comment="0 = Monday ... 6 = Sunday."
        ),
        sa.Column(
            "start_time_us",
            sa.BigInteger(),
            primary_key=True,
            nullable=False,
            comment="Opening time, microseconds after local midnight.",
        ),
        sa.Column(
            "end_time_us",
            sa.BigInteger(),
            primary_key=True,
            nullable=False,
            comment="Closing time, microseconds after local midnight (<= start: next day).",
        ),
        sa.Column(
            "timezone",
            sa.Text(),
            nullable=False,
            comment="IANA timezone used (America/Chicago when the store has none).",
        ),
        comment="Each store's normalised weekly schedule, as last materialised for its store partition: defaults applied (no rows = open around the clock) and timezone resolved.",
    )


def downgrade() -> None:
    for name in reversed(RELEASE_TABLES):
        op.drop_table(name)
