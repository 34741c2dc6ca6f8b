"""The chain head kept outside the audit file (Redis or a SQL database), so a cut shows.

Once a second the keeper stores the last durable line of each file's chain: its segment
(the hash of the segment's `audit_start`), seq and hash, under the chain's name (host and
configured path). `audit verify --anchor` then needs that line in the file.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

import orjson

log = logging.getLogger("csr_gateway")
REDIS_KEY = "csrgw:audit:anchor:"
TABLE = "csrgw_audit_anchor"
TIMEOUT = 2.0
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
SQL_SCHEMES = ("postgresql", "postgres://", "sqlite")


class Anchor(Protocol):
    async def store(self, chain: str, head: dict[str, Any]) -> None: ...
    async def load(self, chain: str) -> dict[str, Any] | None: ...
    async def close(self) -> None: ...


def anchor_url(setting: str, directory_url: str) -> str | None:
    """`none` -> None; `directory` -> the directory database; else the URL itself."""
    if setting in ("", "none"):
        return None
    return directory_url if setting == "directory" else setting


def valid_anchor(setting: str) -> bool:
    return setting in ("", "none", "directory") or setting.startswith(REDIS_SCHEMES
                                                                      + SQL_SCHEMES)


def make_anchor(url: str) -> Anchor:
    if url.startswith(REDIS_SCHEMES):
        return RedisAnchor(url)
    return SqlAnchor(url)


class RedisAnchor:
    def __init__(self, url: str) -> None:
        # redis is loaded only where Redis is configured
        import redis.asyncio as redis

        self.client = redis.from_url(url, socket_timeout=TIMEOUT,
                                     socket_connect_timeout=TIMEOUT)

    async def store(self, chain: str, head: dict[str, Any]) -> None:
        await self.client.set(REDIS_KEY + chain, orjson.dumps(head))

    async def load(self, chain: str) -> dict[str, Any] | None:
        raw = await self.client.get(REDIS_KEY + chain)
        return orjson.loads(raw) if raw else None

    async def close(self) -> None:
        await self.client.aclose()


def _async_url(url: str) -> str:
    """Plain URLs work too: postgresql:// -> asyncpg, sqlite:// -> aiosqlite."""
    for plain, driver in (("postgresql://", "postgresql+asyncpg://"),
                          ("postgres://", "postgresql+asyncpg://"),
                          ("sqlite://", "sqlite+aiosqlite://")):
        if url.startswith(plain):
            return driver + url[len(plain):]
    return url


class SqlAnchor:
    """One row per chain in `csrgw_audit_anchor` (PostgreSQL, or SQLite for the demo)."""

    def __init__(self, url: str) -> None:
        # only for a database anchor: a file-only gateway never loads it here
        from sqlalchemy.ext.asyncio import create_async_engine

        self.engine = create_async_engine(_async_url(url))
        self._created = False

    async def _table(self, conn: Any) -> None:
        # only for a database anchor: a file-only gateway never loads it here
        from sqlalchemy import text

        if not self._created:
            await conn.execute(text(f"CREATE TABLE IF NOT EXISTS {TABLE} (chain TEXT PRIMARY "
                                    "KEY, head TEXT NOT NULL)"))
            self._created = True

    async def store(self, chain: str, head: dict[str, Any]) -> None:
        # only for a database anchor: a file-only gateway never loads it here
        from sqlalchemy import text

        async with self.engine.begin() as conn:
            await self._table(conn)
            params = {"chain": chain, "head": orjson.dumps(head).decode()}
            result = await conn.execute(
                text(f"UPDATE {TABLE} SET head = :head WHERE chain = :chain"), params)
            if result.rowcount == 0:  # one process writes each chain: no race to insert
                await conn.execute(text(f"INSERT INTO {TABLE} (chain, head) VALUES "
                                        "(:chain, :head)"), params)

    async def load(self, chain: str) -> dict[str, Any] | None:
        # only for a database anchor: a file-only gateway never loads it here
        from sqlalchemy import text

        async with self.engine.begin() as conn:
            await self._table(conn)
            row = (await conn.execute(text(f"SELECT head FROM {TABLE} WHERE chain = :chain"),
                                      {"chain": chain})).first()
        return orjson.loads(row[0]) if row else None

    async def close(self) -> None:
        await self.engine.dispose()


class AnchorKeeper:
    """Stores a head when it moved; a failing store is logged and retried next time,
    never in the way of requests (the file stays the record; the anchor only proves it)."""

    def __init__(self, anchor: Anchor) -> None:
        self.anchor = anchor
        self.stored: object = None
        self.error: str | None = None

    async def update(self, head: tuple[str, str | None, int, str] | None) -> None:
        if head is None or head == self.stored:
            return
        chain, segment, seq, hash_ = head
        try:
            async with asyncio.timeout(TIMEOUT * 2):
                await self.anchor.store(chain, {"segment": segment, "seq": seq, "hash": hash_})
        except Exception as exc:  # any store error: keep the last good anchor, try again
            if self.error is None:
                log.warning("audit anchor not stored: %r", exc)
            self.error = f"{type(exc).__name__}: {exc}"
            return
        self.stored, self.error = head, None

    async def close(self) -> None:
        await self.anchor.close()


async def load_heads(url: str, chains: list[str]) -> dict[str, dict[str, Any]]:
    """Every chain's anchored head, for verify."""
    anchor = make_anchor(url)
    try:
        found = {chain: await anchor.load(chain) for chain in chains if chain}
    finally:
        await anchor.close()
    return {k: v for k, v in found.items() if v}
