"""Production safety: no user of a served directory may still log in with the demo password."""

from __future__ import annotations

from pathlib import Path

from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from gateway.defaults import HERE
from gateway.directory.models import UserRow
from gateway.directory.passwords import HASHER
from gateway.directory.seed import read_seed
from gateway.directory.store import Directory

DEMO_PASSWORD = "demo-pass-1"


# Each verification costs tens of milliseconds by design, so a large directory is checked
# only for the names a seed (the configured one or the demo's) gives a password.
CHECK_ALL_UP_TO = 200


def seeded_names(*seeds: Path | None) -> set[str]:
    names: set[str] = set()
    for seed in seeds:
        data = read_seed(seed)
        names |= {str(u.get("username")) for u in data.get("users", []) if isinstance(u, dict)}
    return names


async def demo_password_users(directory: Directory, seed: Path | None = None) -> list[str]:
    """Users whose stored hash matches the demo password."""
    async with directory.sessions() as db:
        rows = (await db.execute(select(UserRow.username, UserRow.password_hash)
                                 .where(UserRow.password_hash.is_not(None)))).all()
    if len(rows) > CHECK_ALL_UP_TO:
        names = seeded_names(seed, HERE / "config" / "directory.yaml")
        rows = [row for row in rows if row[0] in names]
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
        users = await demo_password_users(directory, seed)
    finally:
        await directory.close()
    if not users:
        return None
    shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
    return (f"refusing to serve: {len(users)} directory user(s) still have the demo password "
            f"({shown}); `csr-gateway demo` is the place for them. Set real passwords "
            "(`csr-gateway directory invite USER --reset`) or use a seed without passwords.")
