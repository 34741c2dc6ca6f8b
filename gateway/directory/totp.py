"""The second factor of local accounts as stored: a sealed TOTP secret and recovery codes.

This module stores; it never sees a secret in the clear (gateway/services/totp.py seals and
checks). Every use is one conditional UPDATE, so of two workers accepting the same code or
the same recovery code at once exactly one succeeds: a code is never good twice.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.directory.models import RecoveryCodeRow, TotpRow

Hashed = tuple[str, str]  # a recovery code's (hint, argon2 hash)


@dataclass(frozen=True)
class TotpCredential:
    username: str
    secret_sealed: str
    created_at: float
    enabled_at: float | None
    last_step: int | None

    @property
    def enabled(self) -> bool:
        return self.enabled_at is not None


class SecondFactors:
    """The TOTP credentials and recovery codes in the directory database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def get(self, username: str) -> TotpCredential | None:
        async with self.sessions() as db:
            row = await db.get(TotpRow, username)
        if row is None:
            return None
        return TotpCredential(row.username, row.secret_sealed, row.created_at, row.enabled_at,
                              row.last_step)

    async def begin(self, username: str, sealed: str) -> bool:
        """A new secret awaiting confirmation; False when one is enabled already."""
        async with self.sessions.begin() as db:
            row = await db.get(TotpRow, username)
            if row is not None and row.enabled_at is not None:
                return False
            if row is None:
                db.add(TotpRow(username=username, secret_sealed=sealed, created_at=time.time()))
            else:
                row.secret_sealed, row.created_at, row.last_step = sealed, time.time(), None
        return True

    async def confirm(self, username: str, step: int, code_hashes: list[Hashed]) -> bool:
        """Enable the pending secret (the code of `step` proved it) with fresh codes."""
        async with self.sessions.begin() as db:
            done = await db.execute(
                update(TotpRow).where(TotpRow.username == username,
                                      TotpRow.enabled_at.is_(None))
                .values(enabled_at=time.time(), last_step=step))
            if done.rowcount != 1:  # type: ignore[attr-defined]
                return False
            await self._replace_codes(db, username, code_hashes)
        return True

    async def use_step(self, username: str, step: int) -> bool:
        """Accept the code of time step `step` once: False when it (or a later one) was used."""
        async with self.sessions.begin() as db:
            done = await db.execute(
                update(TotpRow).where(TotpRow.username == username,
                                      TotpRow.enabled_at.is_not(None),
                                      or_(TotpRow.last_step.is_(None),
                                          TotpRow.last_step < step))
                .values(last_step=step))
            return bool(done.rowcount == 1)  # type: ignore[attr-defined]

    async def remove(self, username: str) -> bool:
        """The enrolment and every recovery code gone; False when there was none."""
        async with self.sessions.begin() as db:
            await db.execute(delete(RecoveryCodeRow).where(RecoveryCodeRow.username == username))
            done = await db.execute(delete(TotpRow).where(TotpRow.username == username))
            return bool(done.rowcount)  # type: ignore[attr-defined]

    async def replace_codes(self, username: str, code_hashes: list[Hashed]) -> None:
        async with self.sessions.begin() as db:
            await self._replace_codes(db, username, code_hashes)

    @staticmethod
    async def _replace_codes(db: AsyncSession, username: str, code_hashes: list[Hashed]
                             ) -> None:
        await db.execute(delete(RecoveryCodeRow).where(RecoveryCodeRow.username == username))
        now = time.time()
        db.add_all(RecoveryCodeRow(id=secrets.token_hex(16), username=username, hint=hint,
                                   code_hash=hashed, created_at=now)
                   for hint, hashed in code_hashes)

    async def codes(self, username: str, hint: str | None = None
                    ) -> list[tuple[str, str, bool]]:
        """(id, hash, used) of the user's recovery codes (those starting with `hint`)."""
        query = select(RecoveryCodeRow.id, RecoveryCodeRow.code_hash, RecoveryCodeRow.used_at) \
            .where(RecoveryCodeRow.username == username)
        if hint is not None:
            query = query.where(RecoveryCodeRow.hint == hint)
        async with self.sessions() as db:
            rows = (await db.execute(query)).all()
        return [(row[0], row[1], row[2] is not None) for row in rows]

    async def spend_code(self, code_id: str) -> bool:
        """Mark one recovery code used; False when another request used it first."""
        async with self.sessions.begin() as db:
            done = await db.execute(
                update(RecoveryCodeRow).where(RecoveryCodeRow.id == code_id,
                                              RecoveryCodeRow.used_at.is_(None))
                .values(used_at=time.time()))
            return bool(done.rowcount == 1)  # type: ignore[attr-defined]
