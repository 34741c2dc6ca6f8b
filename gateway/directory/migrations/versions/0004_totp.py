"""The authenticator-app second factor of local accounts, and its recovery codes.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "totp_credentials",
        sa.Column("username", sa.String(64),
                  sa.ForeignKey("users.username", ondelete="CASCADE"), primary_key=True),
        sa.Column("secret_sealed", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("enabled_at", sa.Float, nullable=True),
        sa.Column("last_step", sa.Integer, nullable=True))
    op.create_table(
        "recovery_codes", sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("username", sa.String(64),
                  sa.ForeignKey("users.username", ondelete="CASCADE"), nullable=False),
        sa.Column("hint", sa.String(4), nullable=False),
        sa.Column("code_hash", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("used_at", sa.Float, nullable=True))
    op.create_index("ix_recovery_codes_username", "recovery_codes", ["username"])


def downgrade() -> None:
    op.drop_table("recovery_codes")
    op.drop_table("totp_credentials")
