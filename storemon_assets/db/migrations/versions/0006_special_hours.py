"""Special hours (SPEC §4a): the special_hours table, and store_schedules able to hold them.

A store's materialised schedule now carries its special-hours rows beside its weekly ones
(`special_date` set), so a new special row makes its store partition stale. A closed row has
no times, so the schedule's times become nullable and the table loses its primary key (an
index on store_id serves its reads and replacements). store_schedules is re-created with its
rows copied (SQLite cannot drop a primary key in place); they are all weekly rows.

Revision ID: 0006
Revises: 0007
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0007"
branch_labels = None
depends_on = None

OLD_SCHEDULES_COMMENT = (
    "Each store's normalised weekly schedule, as last materialised for its store partition: defaults applied "
    "(no rows = open around the clock) and timezone resolved."
)
NEW_SCHEDULES_COMMENT = (
    "Each store's normalised schedule, as last materialised for its store partition: weekly rows with the defaults "
    "applied (no rows = open around the clock), its special-hours rows (special_date set), and its timezone resolved."
)
OLD_KIND_COMMENT = "Feed kind: polls, hours or timezones."
NEW_KIND_COMMENT = "Feed kind: polls, hours, timezones or special_hours."
WEEKLY_COLUMNS = "store_id, day_of_week, start_time_us, end_time_us, timezone"


def _times(nullable: bool, closed: str) -> list[sa.Column]:
    return [
        sa.Column(
            "start_time_us",
            sa.BigInteger(),
            primary_key=not nullable,
            nullable=nullable,
            comment="Opening time, microseconds after local midnight" + closed,
        ),
        sa.Column(
            "end_time_us",
            sa.BigInteger(),
            primary_key=not nullable,
            nullable=nullable,
            comment="Closing time, microseconds after local midnight (<= start: next day)" + closed,
        ),
    ]


def _schedules_table(name: str, with_specials: bool) -> None:
    closed = "; null: closed." if with_specials else "."
    op.create_table(
        name,
        sa.Column(
            "store_id", sa.Text(), primary_key=not with_specials, nullable=False, comment="Opaque store identifier."
        ),
        sa.Column(
            "day_of_week",
            sa.SmallInteger(),
            primary_key=not with_specials,
            nullable=False,
            comment="0 = Monday ... 6 = Sunday.",
        ),
        *_times(with_specials, closed),
        sa.Column(
            "timezone",
            sa.Text(),
            nullable=False,
            comment="IANA timezone used (America/Chicago when the store has none).",
        ),
        *(
            [
                sa.Column(
                    "special_date",
                    sa.Date(),
                    nullable=True,
                    comment="Null on a weekly row; on a special-hours row, the local date it replaces the weekly rows "
                    "of (day_of_week is then that date's weekday).",
                )
            ]
            if with_specials
            else []
        ),
        comment=NEW_SCHEDULES_COMMENT if with_specials else OLD_SCHEDULES_COMMENT,
    )


def _replace_schedules(with_specials: bool) -> None:
    _schedules_table("store_schedules_next", with_specials)
    weekly_only = "" if with_specials else " WHERE special_date IS NULL"
    op.execute(
        f"INSERT INTO store_schedules_next ({WEEKLY_COLUMNS}) SELECT {WEEKLY_COLUMNS} FROM store_schedules{weekly_only}"
    )
    if not with_specials:
        op.drop_index("ix_store_schedules_store_id", table_name="store_schedules")
    op.drop_table("store_schedules")
    op.rename_table("store_schedules_next", "store_schedules")
    if with_specials:
        op.create_index("ix_store_schedules_store_id", "store_schedules", ["store_id"])


def _kind_comments(old: str, new: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite keeps no comments
    for table in ("rejected_rows", "ingested_files"):
        op.alter_column(
            table, "kind", comment=new, existing_comment=old, existing_type=sa.Text(), existing_nullable=False
        )


def upgrade() -> None:
    op.create_table(
        "special_hours",
        sa.Column("store_id", sa.Text(), nullable=False, comment="Opaque store identifier."),
        sa.Column(
            "local_date", sa.Date(), nullable=False, comment="The store's local calendar date these hours are for."
        ),
        *_times(True, "; null: closed."),
        sa.Column("source_file", sa.Text(), nullable=False, comment="Name of the file these rows came from."),
        comment="Dates on which a store's hours differ from its week (holidays, closures, short days), in local "
        "wall-clock time. A date's rows replace the store's weekly rows for that date; a row without "
        "times closes the store all that date. A file is authoritative for the (store, date) pairs it names.",
    )
    op.create_index("ix_special_hours_store_date", "special_hours", ["store_id", "local_date"])
    _replace_schedules(with_specials=True)
    _kind_comments(OLD_KIND_COMMENT, NEW_KIND_COMMENT)


def downgrade() -> None:
    _kind_comments(NEW_KIND_COMMENT, OLD_KIND_COMMENT)
    _replace_schedules(with_specials=False)
    op.drop_index("ix_special_hours_store_date", table_name="special_hours")
    op.drop_table("special_hours")
