"""Sessions in Redis, shared by every worker and replica, with each worker's copies."""

from __future__ import annotations

from typing import Any

from gateway.core.errors import ServiceUnavailable
from gateway.core.settings import SessionSettings
from gateway.sessions import redisconn
from gateway.sessions.cache import SessionCache
from gateway.sessions.refresh_guard import RefreshGuard
from gateway.sessions.store import Session


def _unavailable(exc: Exception) -> ServiceUnavailable:
    return ServiceUnavailable("session_store_unavailable", detail=type(exc).__name__)


class RedisSessions:
    """Shared by every replica; keys expire on their own after the absolute lifetime.

    Redis being down fails closed: 503, never an anonymous or guessed identity. Every change
    is published in the same MULTI, so each worker's copies (session_cache.py) follow it.
    """

    def __init__(self, url: str, prefix: str, ttl_seconds: int,
                 cfg: SessionSettings | None = None) -> None:
        # redis is loaded only where Redis is configured
        from redis.exceptions import RedisError, WatchError

        self._watch_error = WatchError
        cfg = cfg or SessionSettings(store="redis", redis_url=url, redis_prefix=prefix)
        self._errors = (RedisError, OSError)
        self._redis = redisconn.request_client(cfg)
        self._probe = redisconn.probe_client(cfg)
        self._prefix = prefix + "session:"
        self._ttl = ttl_seconds
        self.cache = SessionCache(redisconn.subscriber_client(cfg), prefix + "session-changes")
        self.client = self._redis  # shared with the revision board (directory/revisions.py)
        self.refresh_guard = RefreshGuard(self._redis, prefix + "refresh-lock:", self._errors)

    async def start(self) -> None:
        self.cache.start()

    async def get(self, sid: str) -> Session | None:
        found = self.cache.get(sid)
        if found is not None:
            return found
        changes = self.cache.changes
        try:
            raw = await self._redis.get(self._prefix + sid)
        except self._errors as exc:
            raise _unavailable(exc) from exc
        session = Session.from_json(raw) if raw else None
        if session is not None:
            self.cache.put(session, changes)
        return session

    async def get_fresh(self, sid: str) -> Session | None:
        """From Redis itself, past this worker's copy (which follows changes a moment late)."""
        try:
            raw = await self._redis.get(self._prefix + sid)
        except self._errors as exc:
            raise _unavailable(exc) from exc
        return Session.from_json(raw) if raw else None

    async def save(self, session: Session) -> None:
        await self._change(session.id, "set", session.to_json(), ex=self._ttl)

    async def refresh(self, session: Session) -> bool:
        """SET XX: a session another request or replica deleted is never written back."""
        return bool(await self._change(session.id, "set", session.to_json(), ex=self._ttl,
                                       xx=True))

    async def swap(self, old: Session, new: Session) -> Session | None:
        """Write `new` only if Redis still holds `old` (WATCH, then MULTI: no other request,
        worker or replica wrote in between); else what Redis holds (None: gone)."""
        key = self._prefix + old.id
        self.cache.drop(old.id)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                await pipe.watch(key)
                raw = await pipe.get(key)
                current = Session.from_json(raw) if raw else None
                if current is None or current != old:
                    return current
                pipe.multi()
                pipe.set(key, new.to_json(), ex=self._ttl, xx=True)
                pipe.publish(self.cache.channel, old.id)
                await pipe.execute()
        except self._watch_error:
            return await self.get_fresh(old.id)
        except self._errors as exc:
            raise _unavailable(exc) from exc
        return new

    async def delete(self, sid: str) -> None:
        await self._change(sid, "delete")

    async def _change(self, sid: str, command: str, *args: Any, **kwargs: Any) -> Any:
        """The write and its announcement, atomically; this worker's copy goes at once."""
        self.cache.drop(sid)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                getattr(pipe, command)(self._prefix + sid, *args, **kwargs)
                pipe.publish(self.cache.channel, sid)
                result, _receivers = await pipe.execute()
        except self._errors as exc:
            raise _unavailable(exc) from exc
        return result

    async def all(self) -> list[Session]:
        try:
            keys = [k async for k in self._redis.scan_iter(match=self._prefix + "*", count=500)]
            raws = await self._redis.mget(keys) if keys else []
        except self._errors as exc:
            raise _unavailable(exc) from exc
        return [Session.from_json(r) for r in raws if r]

    async def ping(self) -> bool:
        """On the probe's own connection: a busy request pool is not a Redis outage."""
        return bool(await self._probe.ping())

    async def close(self) -> None:
        await self.cache.stop()
        await self.cache.redis.aclose()
        await self._probe.aclose()
        await self._redis.aclose()
