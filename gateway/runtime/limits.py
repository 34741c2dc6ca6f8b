"""Volume limits per CSR (impersonation.limits): distinct buyers, actions, starts per window.

Each count is a sliding window: a sorted set per CSR and limit, member = what was counted
(a buyer, a request, an impersonation), score = when. In Redis (the sessions' Redis) every
worker and replica counts into the same sets; each add is one MULTI (trim, add, count), so
exactly one caller sees a count go past its maximum and raises the alert. With memory
sessions the counts are per process. A `block` limit refuses the next start once passed;
when the counts cannot be read a start with any `block` limit is refused (503).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import TYPE_CHECKING, Protocol

from gateway.core.domain import Impersonation, User
from gateway.core.errors import Forbidden, ServiceUnavailable
from gateway.core.settings import LIMIT_WINDOWS as WINDOWS
from gateway.core.settings import Settings, VolumeLimit
from gateway.runtime.context import RequestContext

if TYPE_CHECKING:
    from gateway.runtime.gateway import Gateway

log = logging.getLogger("csr_gateway")
REFUSED = {"buyers_per_hour": "limit_buyers_per_hour",
           "actions_per_hour": "limit_actions_per_hour",
           "impersonations_per_day": "limit_impersonations_per_day"}


class Counts(Protocol):
    async def add(self, key: str, member: str, now: float, window: float) -> tuple[bool, int]:
        """Count `member` (True: it was new in the window) and return the window's count."""
    async def peek(self, key: str, member: str | None, now: float,
                   window: float) -> tuple[bool, int]:
        """(member already counted, count in the window), without counting."""
    async def close(self) -> None: ...


class MemoryCounts:
    """One process: member -> last time, per key."""

    def __init__(self) -> None:
        self.sets: dict[str, dict[str, float]] = {}

    def _trimmed(self, key: str, now: float, window: float) -> dict[str, float]:
        found = self.sets.setdefault(key, {})
        for member in [m for m, at in found.items() if at <= now - window]:
            del found[member]
        return found

    async def add(self, key: str, member: str, now: float, window: float) -> tuple[bool, int]:
        found = self._trimmed(key, now, window)
        new = member not in found
        found[member] = now
        return new, len(found)

    async def peek(self, key: str, member: str | None, now: float,
                   window: float) -> tuple[bool, int]:
        found = self._trimmed(key, now, window)
        return member in found, len(found)

    async def close(self) -> None:
        return None


class RedisCounts:
    """Shared by workers and replicas: ZREMRANGEBYSCORE, ZADD, ZCARD in one MULTI."""

    def __init__(self, settings: Settings) -> None:
        from gateway.sessions import redisconn  # redis only with Redis sessions (~6 MB)

        self.redis = redisconn.request_client(settings.sessions)
        self.prefix = settings.sessions.redis_prefix + "limits:"

    async def add(self, key: str, member: str, now: float, window: float) -> tuple[bool, int]:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(self.prefix + key, "-inf", now - window)
            pipe.zadd(self.prefix + key, {member: now})
            pipe.zcard(self.prefix + key)
            pipe.expire(self.prefix + key, int(window) + 60)
            _, added, count, _ = await pipe.execute()
        return bool(added), int(count)

    async def peek(self, key: str, member: str | None, now: float,
                   window: float) -> tuple[bool, int]:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(self.prefix + key, "-inf", now - window)
            pipe.zscore(self.prefix + key, member or "")
            pipe.zcard(self.prefix + key)
            _, score, count = await pipe.execute()
        return score is not None, int(count)

    async def close(self) -> None:
        await self.redis.aclose()


class VolumeLimits:
    """The configured limits, their counts, and the actions counted as owned tasks."""

    def __init__(self, limits: tuple[VolumeLimit, ...], counts: Counts) -> None:
        self.limits = {limit.name: limit for limit in limits}
        self.counts = counts
        self.tasks: set[asyncio.Task[None]] = set()

    async def check_start(self, gw: Gateway, ctx: RequestContext, csr: str,
                          buyer: User) -> None:
        """Refuse a start a passed `block` limit forbids (403), or any start with a `block`
        limit when the counts cannot be read (503)."""
        blocking = [lim for lim in self.limits.values() if lim.mode == "block"]
        now = time.time()
        for limit in blocking:
            member = buyer.username if limit.name == "buyers_per_hour" else None
            try:
                seen, count = await self.counts.peek(_key(csr, limit.name), member, now,
                                                     WINDOWS[limit.name])
            except Exception as exc:
                if not _store_failed(exc):
                    raise
                log.error("volume limits unreadable: %r; refusing the start", exc)
                ctx.deny("limits_unavailable")
                raise ServiceUnavailable("limits_unavailable") from exc
            if _refuses(limit, seen, count):
                ctx.extra.update(limit=limit.name, limit_max=limit.max, limit_count=count)
                raise Forbidden(REFUSED[limit.name],
                                f"You have reached the limit {limit.name} ({limit.max}).",
                                detail=f"{csr}: {count} of {limit.max} ({limit.name})")

    async def started(self, gw: Gateway, ctx: RequestContext, imp: Impersonation) -> None:
        """Count a start: one more impersonation, perhaps one more distinct buyer."""
        await self._count(gw, ctx, imp, "impersonations_per_day", imp.id)
        await self._count(gw, ctx, imp, "buyers_per_hour", imp.buyer)

    def acted(self, gw: Gateway, ctx: RequestContext) -> None:
        """Pipeline hook: a state-changing request forwarded as the buyer is one action."""
        actor = ctx.actor
        imp = actor.impersonation if actor is not None and actor.acting_as else None
        if "actions_per_hour" not in self.limits or imp is None or not ctx.state_changing \
                or ctx.decision != "allow" or (ctx.path or "").startswith("/_gateway/"):
            return
        task = asyncio.get_running_loop().create_task(
            self._count(gw, ctx, imp, "actions_per_hour", ctx.request_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _count(self, gw: Gateway, ctx: RequestContext, imp: Impersonation, name: str,
                     member: str) -> None:
        limit = self.limits.get(name)
        if limit is None:
            return
        try:
            new, count = await self.counts.add(_key(imp.csr, name), member, time.time(),
                                               WINDOWS[name])
        except Exception as exc:  # the counted thing already happened; the next start
            log.warning("volume limit %s not counted for %s: %r", name, imp.csr, exc)
            return  # with a block limit reads the counts again and fails closed there
        if new and count == limit.max + 1:  # the one caller that went past it
            exceeded(gw, ctx, imp, limit, count)

    async def settle(self) -> None:
        """This process's counting writes are done (shutdown, tests)."""
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=5)

    async def close(self) -> None:
        await self.settle()
        await self.counts.close()


def _store_failed(exc: BaseException) -> bool:
    """Redis down, slow or refusing (a 503), not a bug (a 500). redis is loaded only with
    Redis sessions, so its errors are recognised only then."""
    redis = sys.modules.get("redis.exceptions")
    return isinstance(exc, OSError) or (redis is not None and isinstance(exc, redis.RedisError))


def _refuses(limit: VolumeLimit, seen: bool, count: int) -> bool:
    """A start refused: the window already holds more than the limit allows (actions), or
    this start would make it so (starts, a buyer not yet counted)."""
    if limit.name == "actions_per_hour":
        return count > limit.max
    if limit.name == "buyers_per_hour" and seen:
        return False
    return count >= limit.max


def _key(csr: str, name: str) -> str:
    return f"{name}:{csr}"


def exceeded(gw: Gateway, ctx: RequestContext, imp: Impersonation, limit: VolumeLimit,
             count: int) -> None:
    """A CSR went past a limit: an audit line, a metric and the webhook."""
    buyer = gw.directory.snapshot.user(imp.buyer)
    company = buyer.company if buyer else None
    gw.audit.emit("impersonation_limit", request_id=ctx.request_id, user=imp.buyer,
                  actor=imp.csr, csr=imp.csr, company=company, method=ctx.method,
                  path=ctx.path, decision="allow" if limit.mode == "alert" else "deny",
                  reason="limit_exceeded", client_ip=ctx.client_ip, policy_rev=gw.policy.rev,
                  impersonation_id=imp.id, impersonation_reason=imp.reason, limit=limit.name,
                  limit_max=limit.max, limit_count=count, mode=limit.mode,
                  detail=f"{imp.csr}: {count} > {limit.max} ({limit.name})")
    gw.metrics.limits_exceeded.labels(limit.name, limit.mode).inc()
    if gw.notifier is not None:
        gw.notifier.tell({"event": "impersonation_limit", "id": f"limit-{imp.id}-{limit.name}"
                          f"-{ctx.request_id}", "impersonation_id": imp.id, "csr": imp.csr,
                          "customer": imp.buyer, "company": company, "limit": limit.name,
                          "max": limit.max, "count": count, "mode": limit.mode,
                          "reason": imp.reason}, gw.client)


def make_limits(settings: Settings) -> VolumeLimits | None:
    limits = settings.impersonation.limits
    if not limits:
        return None
    counts: Counts = RedisCounts(settings) if settings.sessions.store == "redis" \
        else MemoryCounts()
    return VolumeLimits(limits, counts)


__all__ = ["MemoryCounts", "RedisCounts", "VolumeLimits", "make_limits"]
