"""One-time links: account activation (valid 24 hours) and password reset."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from gateway.directory.models import InvitationRow
from gateway.directory.store import Directory

LIFETIME = {"activate": timedelta(hours=24), "reset": timedelta(hours=1)}
MIN_PASSWORD = 10


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Invitations:
    """Tokens are random, stored only as hashes, and work once before they expire."""

    def __init__(self, directory: Directory,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.directory = directory
        self.now = now

    async def issue(self, username: str, purpose: str) -> str:
        token = secrets.token_urlsafe(32)
        async with self.directory.sessions.begin() as db:
            db.add(InvitationRow(token_hash=_digest(token), username=username, purpose=purpose,
                                 expires_at=self.now() + LIFETIME[purpose], used=False))
        return token

    async def peek(self, token: str) -> InvitationRow | None:
        """The live invitation behind a token (None when unknown, used or expired)."""
        async with self.directory.sessions() as db:
            row = await db.get(InvitationRow, _digest(token))
        if row is None or row.used:
            return None
        expires = row.expires_at if row.expires_at.tzinfo else \
            row.expires_at.replace(tzinfo=UTC)
        return row if expires > self.now() else None

    async def redeem(self, token: str, password: str) -> str:
        """Set the password and burn the token; returns the username."""
        if len(password) < MIN_PASSWORD:
            raise ValueError(f"the password needs at least {MIN_PASSWORD} characters")
        row = await self.peek(token)
        if row is None:
            raise LookupError("this link is unknown, already used or expired")
        async with self.directory.sessions.begin() as db:
            burned = await db.execute(update(InvitationRow).where(
                InvitationRow.token_hash == row.token_hash, InvitationRow.used.is_(False))
                .values(used=True))
        if burned.rowcount != 1:  # type: ignore[attr-defined]
            raise LookupError("this link was already used")
        await self.directory.set_password(row.username, password)
        return row.username


async def mail_link(address: str, link: str, purpose: str) -> bool:
    """Mail the link when CSRGW_SMTP_HOST is set (CSRGW_SMTP_PORT, CSRGW_SMTP_FROM);
    returns False when no SMTP server is configured."""
    # only when a mail is sent
    import asyncio
    import os
    import smtplib
    from email.message import EmailMessage

    host = os.environ.get("CSRGW_SMTP_HOST")
    if not host:
        return False
    message = EmailMessage()
    message["From"] = os.environ.get("CSRGW_SMTP_FROM", "csr-gateway@localhost")
    message["To"] = address
    message["Subject"] = ("Activate your account" if purpose == "activate"
                          else "Reset your password")
    message.set_content(f"Open this link within {LIFETIME[purpose]} to set your password:\n"
                        f"{link}\n\nIt works once.")

    def send() -> None:
        with smtplib.SMTP(host, int(os.environ.get("CSRGW_SMTP_PORT", "25")), timeout=10) as s:
            s.send_message(message)

    await asyncio.to_thread(send)
    return True
