"""The approval requests of four-eyes approval, stored in the directory database.

Every worker and replica sees the same requests, and every change of state is one
conditional UPDATE: of two workers deciding, using or expiring the same request, exactly
one changes it (and audits it).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.directory.models import ApprovalRow

PENDING, APPROVED, DENIED, USED, EXPIRED = "pending", "approved", "denied", "used", "expired"
LIVE = (PENDING, APPROVED)  # states that expire


@dataclass(frozen=True)
class Approval:
    """One request to act for a buyer, as stored."""

    id: str
    requester: str
    buyer: str
    company: str | None
    reason: str
    status: str
    created_at: float
    expires_at: float
    approver: str | None = None
    decided_at: float | None = None
    used_at: float | None = None

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "requester": self.requester, "buyer": self.buyer,
                "company": self.company, "reason": self.reason, "status": self.status,
                "created_at": round(self.created_at, 3), "expires_at": round(self.expires_at, 3),
                "approver": self.approver,
                "decided_at": round(self.decided_at, 3) if self.decided_at else None}


def _approval(row: ApprovalRow) -> Approval:
    return Approval(row.id, row.requester, row.buyer, row.company, row.reason, row.status,
                    row.created_at, row.expires_at, row.approver, row.decided_at, row.used_at)


class Approvals:
    """The approval requests in the directory database (SQLite or PostgreSQL)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], minutes: int) -> None:
        self.sessions, self.seconds = sessions, minutes * 60

    async def file(self, requester: str, buyer: str, company: str | None,
                   reason: str) -> tuple[Approval, bool]:
        """The requester's pending request for this buyer, else a new one (True: new)."""
        now = time.time()
        async with self.sessions.begin() as db:
            found = await db.scalar(select(ApprovalRow).where(
                ApprovalRow.requester == requester, ApprovalRow.buyer == buyer,
                ApprovalRow.status == PENDING, ApprovalRow.expires_at > now))
            if found is not None:
                return _approval(found), False
            row = ApprovalRow(id=secrets.token_hex(8), requester=requester, buyer=buyer,
                              company=company, reason=reason, status=PENDING, created_at=now,
                              expires_at=now + self.seconds)
            db.add(row)
        return _approval(row), True

    async def get(self, request_id: str) -> Approval | None:
        async with self.sessions() as db:
            row = await db.get(ApprovalRow, request_id)
            return _approval(row) if row is not None else None

    async def pending(self) -> list[Approval]:
        async with self.sessions() as db:
            rows = await db.scalars(select(ApprovalRow).where(
                ApprovalRow.status == PENDING, ApprovalRow.expires_at > time.time())
                .order_by(ApprovalRow.created_at))
            return [_approval(r) for r in rows]

    async def decide(self, request_id: str, approver: str, approve: bool) -> Approval | None:
        """Approve or deny a pending request; None when it was no longer pending."""
        now = time.time()
        values: dict[str, Any] = {"status": APPROVED if approve else DENIED,
                                  "approver": approver, "decided_at": now}
        if approve:
            values["expires_at"] = now + self.seconds  # the approval's own lifetime
        changed = await self._move(request_id, PENDING, now, **values)
        return await self.get(request_id) if changed else None

    async def use(self, requester: str, buyer: str, reason: str) -> Approval | None:
        """Take the requester's live approval for this buyer and this reason (what the
        approver read), once: None when there is none."""
        now = time.time()
        async with self.sessions() as db:
            ids = list(await db.scalars(select(ApprovalRow.id).where(
                ApprovalRow.requester == requester, ApprovalRow.buyer == buyer,
                ApprovalRow.reason == reason, ApprovalRow.status == APPROVED,
                ApprovalRow.expires_at > now)))
        for request_id in ids:
            if await self._move(request_id, APPROVED, now, status=USED, used_at=now):
                return await self.get(request_id)
        return None

    async def lapse(self) -> list[Approval]:
        """Mark every live request past its time expired; returns those this call moved."""
        now = time.time()
        async with self.sessions() as db:
            due = list(await db.scalars(select(ApprovalRow).where(
                ApprovalRow.status.in_(LIVE), ApprovalRow.expires_at <= now)))
        moved = []
        for row in due:
            if await self._move(row.id, row.status, None, status=EXPIRED):
                moved.append(_approval(row))
        return moved

    async def _move(self, request_id: str, current: str, live_at: float | None,
                    **values: Any) -> bool:
        """One conditional UPDATE from `current` (and, with live_at, only while not yet
        expired): True for the one caller whose change applied."""
        condition = [ApprovalRow.id == request_id, ApprovalRow.status == current]
        if live_at is not None:
            condition.append(ApprovalRow.expires_at > live_at)
        async with self.sessions.begin() as db:
            result = await db.execute(update(ApprovalRow).where(*condition).values(**values))
        return bool(getattr(result, "rowcount", 0) == 1)
