"""The directory's first schema: users, groups, companies, assignments, fences, invitations.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
USER = "users.username"


def upgrade() -> None:
    op.create_table(
        "companies", sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("allow_assistance", sa.Boolean, nullable=False),
        sa.Column("no_impersonation", sa.Boolean, nullable=False))
    op.create_table(
        "groups", sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("builtin", sa.Boolean, nullable=False),
        sa.Column("description", sa.String(400), nullable=False))
    op.create_table(
        "users", sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("first_name", sa.String(100), nullable=False),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("mobile", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("company_id", sa.String(64), sa.ForeignKey("companies.id"), nullable=True),
        sa.Column("account_number", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("idle_minutes", sa.Integer, nullable=False),
        sa.Column("features", sa.JSON, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("allow_assistance", sa.Boolean, nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=True))
    op.create_table(
        "memberships",
        sa.Column("username", sa.String(64), sa.ForeignKey(USER, ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("group", sa.String(64), sa.ForeignKey("groups.name"), primary_key=True))
    op.create_table(
        "assignments",
        sa.Column("username", sa.String(64), sa.ForeignKey(USER, ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("company_id", sa.String(64), sa.ForeignKey("companies.id",
                                                             ondelete="CASCADE"),
                  primary_key=True))
    op.create_table(
        "ip_fences",
        sa.Column("username", sa.String(64), sa.ForeignKey(USER, ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("cidr", sa.String(64), primary_key=True))
    op.create_table(
        "invitations", sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(64), sa.ForeignKey(USER, ondelete="CASCADE"),
                  nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used", sa.Boolean, nullable=False))
    op.create_table(
        "meta", sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Integer, nullable=False))


def downgrade() -> None:
    for table in ("meta", "invitations", "ip_fences", "assignments", "memberships", "users",
                  "groups", "companies"):
        op.drop_table(table)
