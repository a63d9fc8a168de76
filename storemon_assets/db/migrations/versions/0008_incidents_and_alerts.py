"""Incidents, each store's status now, and the alert ledger (SPEC §9).

`store_incidents` and `store_status_now` are replaced with the current report (the
`store_incidents` asset); `alert_deliveries` is the ledger that makes each notification go out at
most once per channel across restarts, and lets a failed one be tried again. New tables only:
every existing row stays as it was.

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "store_incidents",
        sa.Column("store_id", sa.Text(), primary_key=True, nullable=False, comment="Opaque store identifier."),
        sa.Column(
            "started_half_us",
            sa.BigInteger(),
            primary_key=True,
            nullable=False,
            comment="First down instant, half-microseconds since 1970-01-01 UTC (the week's start if the store was down then).",
        ),
        sa.Column(
            "ended_half_us",
            sa.BigInteger(),
            nullable=True,
            comment="First up instant after it, half-microseconds since 1970-01-01 UTC; null while open.",
        ),
        sa.Column(
            "downtime_half_us",
            sa.BigInteger(),
            nullable=False,
            comment="Its down business time inside the week, in half-microseconds.",
        ),
        sa.Column("open", sa.Boolean(), nullable=False, comment="True while the store is still down at T."),
        sa.Column(
            "started_local_us",
            sa.BigInteger(),
            nullable=False,
            comment="Start on the store's wall clock, microseconds since 1970-01-01 local time.",
        ),
        sa.Column(
            "ended_local_us", sa.BigInteger(), nullable=True, comment="End on the store's wall clock; null while open."
        ),
        comment="Incidents of the current report: maximal stretches of a store's down business time in the week before T with no up business time between their parts (closed time does not end one). Read off store_status_intervals, so each store's incidents sum to its downtime_last_week exactly.",
        sqlite_with_rowid=False,
    )
    op.create_table(
        "store_status_now",
        sa.Column("store_id", sa.Text(), primary_key=True, nullable=False, comment="Opaque store identifier."),
        sa.Column(
            "status",
            sa.Text(),
            nullable=False,
            comment="'up', 'down', 'closed' (outside business time at T) or 'no_data' (no observation).",
        ),
        sa.Column(
            "since_half_us",
            sa.BigInteger(),
            nullable=True,
            comment="Since when, half-microseconds since 1970-01-01 UTC; null: longer than the week.",
        ),
        sa.Column("open_now", sa.Boolean(), nullable=False, comment="Inside its business time at T."),
        sa.Column(
            "timezone",
            sa.Text(),
            nullable=False,
            comment="IANA timezone used (America/Chicago when the store has none).",
        ),
        sa.Column(
            "newest_poll_us",
            sa.BigInteger(),
            nullable=True,
            comment="Its newest poll at or before T, microseconds since 1970-01-01 UTC.",
        ),
        sa.Column(
            "not_reporting",
            sa.Boolean(),
            nullable=False,
            comment="Open at T and silent for longer than the stale limit: a guess.",
        ),
        comment="Each store of the current report at its T: up, down, closed or no_data, since when, its newest poll, and whether it is not reporting (inside business time, newest poll older than STOREMON_STALE_AFTER_MINUTES).",
        sqlite_with_rowid=False,
    )
    op.create_table(
        "alert_deliveries",
        sa.Column("store_id", sa.Text(), primary_key=True, nullable=False, comment="Opaque store identifier."),
        sa.Column(
            "kind", sa.Text(), primary_key=True, nullable=False, comment="'down', 'recovered' or 'not_reporting'."
        ),
        sa.Column(
            "subject_us",
            sa.BigInteger(),
            primary_key=True,
            nullable=False,
            comment="What it is about: the incident's first notified start (half-microseconds), or for not_reporting the newest poll it went silent after (microseconds).",
        ),
        sa.Column(
            "channel",
            sa.Text(),
            primary_key=True,
            nullable=False,
            comment="Short hash of the Apprise URL it goes to (never the URL: it holds secrets).",
        ),
        sa.Column("state", sa.Text(), nullable=False, comment="'sending', 'sent' or 'failed'."),
        sa.Column("attempts", sa.BigInteger(), nullable=False, comment="Delivery attempts so far."),
        sa.Column(
            "first_due_us",
            sa.BigInteger(),
            nullable=False,
            comment="When it first became due, microseconds since 1970-01-01 UTC.",
        ),
        sa.Column(
            "updated_us",
            sa.BigInteger(),
            nullable=False,
            comment="When the row last changed, microseconds since 1970-01-01 UTC.",
        ),
        sa.Column("as_of_us", sa.BigInteger(), nullable=False, comment="T of the report that made it due."),
        sa.Column("last_error", sa.Text(), nullable=True, comment="Why the last attempt failed."),
        comment="The alert ledger: one row per notification (store, subject, kind) and channel. A row is claimed ('sending') before its message goes out and marked 'sent' or 'failed' after, so each is sent at most once across restarts; failed ones are tried again at the next evaluation while still due.",
    )
    op.create_index("ix_alert_deliveries_state", "alert_deliveries", ["state"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_alert_deliveries_state", "alert_deliveries")
    for table in ("alert_deliveries", "store_status_now", "store_incidents"):
        op.drop_table(table)
