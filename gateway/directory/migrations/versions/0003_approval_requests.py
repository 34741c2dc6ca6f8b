"""Four-eyes approval: the requests CSRs file and approvers decide.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "approval_requests", sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("requester", sa.String(64), nullable=False),
        sa.Column("buyer", sa.String(64), nullable=False),
        sa.Column("company", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(400), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("approver", sa.String(64), nullable=True),
        sa.Column("decided_at", sa.Float, nullable=True),
        sa.Column("used_at", sa.Float, nullable=True))
    op.create_index("ix_approval_requests_requester", "approval_requests", ["requester"])
    op.create_index("ix_approval_requests_status", "approval_requests", ["status"])


def downgrade() -> None:
    op.drop_table("approval_requests")
