"""API tokens (SPEC §10): name, scope, store set, created/last-used/revoked instants, and the
token's SHA-256 only (the token itself is shown once and never stored).

Revision ID: 0009
Revises: 0010
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("token_hash", sa.Text(), primary_key=True, nullable=False, comment="SHA-256 of the token, hex."),
        sa.Column(
            "name",
            sa.Text(),
            nullable=False,
            comment="Unique name of the token (run tags say it as storemon/requested_by).",
        ),
        sa.Column("scope", sa.Text(), nullable=False, comment="'read', 'trigger' or 'admin'."),
        sa.Column("stores", sa.Text(), nullable=True, comment="JSON list of the store ids it sees; null: every store."),
        sa.Column(
            "created_at_us",
            sa.BigInteger(),
            nullable=False,
            comment="When it was created, microseconds since 1970-01-01 UTC.",
        ),
        sa.Column(
            "last_used_at_us",
            sa.BigInteger(),
            nullable=True,
            comment="When it was last used (written at most once a minute per token), microseconds since "
            "1970-01-01 UTC.",
        ),
        sa.Column(
            "revoked_at_us",
            sa.BigInteger(),
            nullable=True,
            comment="When it was revoked (null: valid), microseconds since 1970-01-01 UTC.",
        ),
        comment="Tokens of the HTTP API: who may read, trigger reports or administer, and which stores they see. "
        "The token itself is shown once when created and never stored.",
    )
    op.create_index("ix_api_tokens_name", "api_tokens", ["name"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_api_tokens_name", table_name="api_tokens")
    op.drop_table("api_tokens")
