"""Production safety: no user of a served directory may still log in with the demo password."""

from __future__ import annotations

from pathlib import Path

from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from gateway.directory.models import UserRow
from gateway.directory.store import HASHER, Directory

DEMO_PASSWORD = "demo-pass-1"


async def demo_password_users(directory: Directory) -> list[str]:
    """Users whose stored hash matches the demo password (one verify per user with a hash)."""
    async with directory.sessions() as db:
        rows = (await db.execute(select(UserRow.username, UserRow.password_hash)
                                 .where(UserRow.password_hash.is_not(None)))).all()
    found = []
    for username, stored in rows:
        try:
            if stored and HASHER.verify(stored, DEMO_PASSWORD):
                found.append(username)
        except (VerificationError, InvalidHashError):
            continue
    return sorted(found)


async def refuse_demo_passwords(url: str, seed: Path | None) -> str | None:
    """The one-line refusal `run` prints, or None when the directory is safe to serve."""
    directory = await Directory.open(url, seed)
    try:
        users = await demo_password_users(directory)
    finally:
        await directory.close()
    if not users:
        return None
    shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
    return (f"refusing to serve: {len(users)} directory user(s) still have the demo password "
            f"({shown}); `csr-gateway demo` is the place for them. Set real passwords "
            "(`csr-gateway directory invite USER --reset`) or use a seed without passwords.")
