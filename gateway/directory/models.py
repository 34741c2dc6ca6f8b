"""SQLAlchemy tables of the directory; the same schema on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class CompanyRow(Base):
    __tablename__ = "companies"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    allow_assistance: Mapped[bool] = mapped_column(Boolean, default=False)
    no_impersonation: Mapped[bool] = mapped_column(Boolean, default=False)


class GroupRow(Base):
    __tablename__ = "groups"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str] = mapped_column(String(400), default="")


class UserRow(Base):
    __tablename__ = "users"
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    mobile: Mapped[str] = mapped_column(String(40), default="")
    kind: Mapped[str] = mapped_column(String(16), default="customer")
    company_id: Mapped[str | None] = mapped_column(ForeignKey("companies.id"), nullable=True)
    account_number: Mapped[str] = mapped_column(String(64), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    idle_minutes: Mapped[int] = mapped_column(Integer, default=60)
    features: Mapped[list[str]] = mapped_column(JSON, default=list)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    allow_assistance: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str] = mapped_column(String(16), default="")
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    groups: Mapped[list[MembershipRow]] = relationship(cascade="all, delete-orphan",
                                                       lazy="selectin")
    assignments: Mapped[list[AssignmentRow]] = relationship(cascade="all, delete-orphan",
                                                            lazy="selectin")
    fences: Mapped[list[FenceRow]] = relationship(cascade="all, delete-orphan", lazy="selectin")


class MembershipRow(Base):
    __tablename__ = "memberships"
    username: Mapped[str] = mapped_column(ForeignKey("users.username", ondelete="CASCADE"),
                                          primary_key=True)
    group: Mapped[str] = mapped_column(ForeignKey("groups.name"), primary_key=True)


class AssignmentRow(Base):
    __tablename__ = "assignments"
    username: Mapped[str] = mapped_column(ForeignKey("users.username", ondelete="CASCADE"),
                                          primary_key=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"),
                                            primary_key=True)


class FenceRow(Base):
    __tablename__ = "ip_fences"
    username: Mapped[str] = mapped_column(ForeignKey("users.username", ondelete="CASCADE"),
                                          primary_key=True)
    cidr: Mapped[str] = mapped_column(String(64), primary_key=True)


class InvitationRow(Base):
    __tablename__ = "invitations"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("users.username", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used: Mapped[bool] = mapped_column(Boolean, default=False)


class MetaRow(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class ApprovalRow(Base):
    """A CSR's request to act for a buyer the policy guards with a second person's approval."""

    __tablename__ = "approval_requests"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    requester: Mapped[str] = mapped_column(String(64), index=True)
    buyer: Mapped[str] = mapped_column(String(64))
    company: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str] = mapped_column(String(400), default="")
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending approved denied ...
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    approver: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    used_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class TotpRow(Base):
    """A local account's authenticator-app secret, sealed; enabled once confirmed."""

    __tablename__ = "totp_credentials"
    username: Mapped[str] = mapped_column(ForeignKey("users.username", ondelete="CASCADE"),
                                          primary_key=True)
    secret_sealed: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[float] = mapped_column(Float)
    enabled_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # None: enrolling
    last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)  # replay guard


class RecoveryCodeRow(Base):
    """One single-use recovery code, argon2-hashed like a password."""

    __tablename__ = "recovery_codes"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("users.username", ondelete="CASCADE"),
                                          index=True)
    hint: Mapped[str] = mapped_column(String(4))  # the code's first letters: one hash to check
    code_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[float] = mapped_column(Float)
    used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
