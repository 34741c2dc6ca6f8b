"""The ledger of running impersonations: what each did, and who closes it.

It counts the actions of running impersonations and lets exactly one caller close each
one (the stop button, the re-check, the sweeper and the kill switch may race, on several
replicas): the first gets the tally, audits the end and notifies; the others learn that it
is already over. In memory for one process, in Redis when replicas share sessions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import orjson

if TYPE_CHECKING:
    from gateway.core.settings import SessionSettings, Settings

log = logging.getLogger("csr_gateway")
KEEP_ACTIONS = 200  # state-changing actions listed per impersonation; the count goes on
KEEP_SECONDS = 86_400  # a ledger entry nobody closed (a replica died) is dropped after a day


@dataclass
class Tally:
    actions: int = 0
    changed: list[dict[str, Any]] = field(default_factory=list)
    touched: float = field(default_factory=time.time)


class Ledger(Protocol):
    def count(self, imp_id: str, change: dict[str, Any] | None) -> None: ...
    async def close_out(self, imp_id: str) -> Tally | None: ...
    async def settle(self) -> None: ...
    async def close(self) -> None: ...


class MemoryLedger:
    """One process (memory sessions): counts and closings in dicts, pruned after a day."""

    def __init__(self) -> None:
        self.tallies: dict[str, Tally] = {}
        self.closed: dict[str, float] = {}

    def count(self, imp_id: str, change: dict[str, Any] | None) -> None:
        tally = self.tallies.setdefault(imp_id, Tally())
        tally.actions, tally.touched = tally.actions + 1, time.time()
        if change is not None and len(tally.changed) < KEEP_ACTIONS:
            tally.changed.append(change)

    async def close_out(self, imp_id: str) -> Tally | None:
        if imp_id in self.closed:
            return None
        self._prune()
        self.closed[imp_id] = time.time()
        return self.tallies.pop(imp_id, None) or Tally()

    def _prune(self) -> None:
        old = time.time() - KEEP_SECONDS
        self.closed = {k: at for k, at in self.closed.items() if at >= old}
        self.tallies = {k: t for k, t in self.tallies.items() if t.touched >= old}

    async def settle(self) -> None:
        return None

    async def close(self) -> None:
        return None


class RedisLedger:
    """Shared by replicas (Redis sessions): HINCRBY and a capped list per impersonation;
    the closing is a SET NX, so one replica wins. Counting writes run as owned tasks."""

    def __init__(self, cfg: SessionSettings) -> None:
        # the Redis client only when the ledger is shared
        from gateway.sessions import redisconn

        self.redis = redisconn.request_client(cfg)
        self.prefix = cfg.redis_prefix + "impersonation:"
        self.pending: set[asyncio.Task[None]] = set()

    def count(self, imp_id: str, change: dict[str, Any] | None) -> None:
        task = asyncio.get_running_loop().create_task(self._count(imp_id, change))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _count(self, imp_id: str, change: dict[str, Any] | None) -> None:
        key = self.prefix + imp_id
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hincrby(key, "actions", 1)
                pipe.expire(key, KEEP_SECONDS)
                if change is not None:
                    pipe.rpush(key + ":changed", orjson.dumps(change))
                    pipe.ltrim(key + ":changed", 0, KEEP_ACTIONS - 1)
                    pipe.expire(key + ":changed", KEEP_SECONDS)
                await pipe.execute()
        except Exception as exc:  # a lost count must never fail the request it counts
            log.warning("impersonation %s: action not counted: %r", imp_id, exc)

    async def close_out(self, imp_id: str) -> Tally | None:
        key = self.prefix + imp_id
        await self.settle()
        if not await self.redis.set(key + ":closed", b"1", nx=True, ex=KEEP_SECONDS):
            return None
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hget(key, "actions")
            pipe.lrange(key + ":changed", 0, -1)
            pipe.delete(key, key + ":changed")
            actions, changed, _ = await pipe.execute()
        return Tally(int(actions or 0), [orjson.loads(c) for c in changed])

    async def settle(self) -> None:
        """This process's counting writes are in Redis before a tally is read."""
        if self.pending:
            await asyncio.wait(set(self.pending), timeout=5)

    async def close(self) -> None:
        await self.settle()
        await self.redis.aclose()


def make_ledger(settings: Settings) -> Ledger:
    cfg = settings.sessions
    return RedisLedger(cfg) if cfg.store == "redis" \
        else MemoryLedger()
