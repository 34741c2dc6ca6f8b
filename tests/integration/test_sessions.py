"""Sessions: server-side state in memory or Redis; replicas share Redis sessions."""

from __future__ import annotations

import dataclasses
import time

import pytest

from gateway.core.domain import Impersonation
from gateway.sessions.redis import RedisSessions
from gateway.sessions.store import MemorySessions, new_session, touched, update
from tests.support.gateway import impersonate, login, whoami


async def _store(kind: str, prefix: str):
    if kind == "memory":
        return MemorySessions()
    return RedisSessions("redis://127.0.0.1:6379/0", prefix, 60)


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_store_round_trip(kind: str, redis_prefix: str) -> None:
    """A session with its impersonation survives a save/get; delete removes it."""
    store = await _store(kind, redis_prefix)
    imp = Impersonation("i1", "csr-carol", "buyer-alice", "T-1", time.time(), "/x")
    session = new_session("csr-carol", 30, "127.0.0.1", imp)
    await store.save(session)
    assert await store.get(session.id) == session
    assert [s.id for s in await store.all()] == [session.id]
    await store.delete(session.id)
    assert await store.get(session.id) is None
    await store.close()


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_refresh_never_revives_a_deleted_session(kind: str, redis_prefix: str) -> None:
    """refresh rewrites a live session; once deleted (kill switch, logout) it stays gone."""
    store = await _store(kind, redis_prefix)
    session = new_session("csr-carol", 30, "127.0.0.1")
    await store.save(session)
    later = touched(session, session.last_seen + 30)
    assert later is not None and await store.refresh(later) is True
    assert await store.get(session.id) == later
    await store.delete(session.id)
    assert await store.refresh(later) is False
    assert await store.get(session.id) is None
    await store.close()


def test_session_ids_are_random_and_long() -> None:
    """Session ids and CSRF tokens are 256-bit random and never repeat."""
    ids = {new_session("u", 60, "").id for _ in range(200)}
    assert len(ids) == 200 and all(len(i) >= 43 for i in ids)


@pytest.mark.parametrize(("age", "expired"), [(59 * 60, False), (61 * 60, True)],
                         ids=["inside", "past"])
def test_idle_timeout_per_user(age: float, expired: bool) -> None:
    """A session idle longer than the user's minutes is expired."""
    session = new_session("u", 60, "")
    assert session.idle_expired(session.last_seen + age) is expired


def test_touch_is_throttled() -> None:
    """last_seen is rewritten at most every few seconds, not on every request."""
    session = new_session("u", 60, "")
    assert touched(session, session.last_seen + 1) is None
    assert touched(session, session.last_seen + 30).last_seen == session.last_seen + 30


async def test_replicas_share_redis_sessions(make_gateway, redis_prefix: str) -> None:
    """Two gateways on one Redis: a login and an impersonation on one work on the other."""
    settings = {"store": "redis", "redis_prefix": redis_prefix}
    first = await make_gateway(sessions=settings)
    second = await make_gateway(sessions=settings)
    await login(first, "csr-carol")
    assert await impersonate(first, "buyer-alice") == 303
    cookie = first.session.cookie_jar.filter_cookies(first.make_url("/"))["csrgw_session"]
    second.session.cookie_jar.update_cookies({"csrgw_session": cookie.value})
    me = await whoami(second)
    assert (me["user"], me["acting_as"]) == ("csr-carol", "buyer-alice")


async def test_expired_session_is_refused_and_audited(gateway) -> None:
    """An idle-expired session is deleted, audited as session_expired, and needs a new login."""
    from tests.support.gateway import audit_lines, gw_of

    await login(gateway, "buyer-alice")
    gw = gw_of(gateway)
    (session,) = await gw.sessions.all()
    await gw.sessions.save(dataclasses.replace(session, last_seen=time.time() - 7200))
    resp = await gateway.get("/cart", headers={"Accept": "application/json"})
    assert resp.status == 401
    assert any(r["event"] == "session_expired" for r in audit_lines(gateway))


async def test_redis_down_fails_closed(make_gateway, redis_prefix: str) -> None:
    """With the session store unreachable every request is 503, nothing forwarded."""
    from tests.support.gateway import audit_lines

    client = await make_gateway(sessions={"store": "redis", "redis_prefix": redis_prefix,
                                          "redis_url": "redis://127.0.0.1:1/0"})
    client.session.cookie_jar.update_cookies({"csrgw_session": "x" * 43})
    resp = await client.get("/cart", headers={"Accept": "application/json"})
    assert resp.status == 503
    assert audit_lines(client)[-1]["reason"] == "session_store_unavailable"


async def test_refresh_with_redis_down_fails_closed() -> None:
    """A last_seen refresh that cannot reach Redis is the same 503 as every other call."""
    from gateway.core.errors import ServiceUnavailable

    store = RedisSessions("redis://127.0.0.1:1/0", "csrgw-test:", 60)
    with pytest.raises(ServiceUnavailable) as err:
        await store.refresh(new_session("csr-carol", 30, "127.0.0.1"))
    assert err.value.reason == "session_store_unavailable"
    await store.close()


# --- Each worker's copies of Redis sessions (gateway/sessions/cache.py) -------------------
async def _worker(prefix: str) -> RedisSessions:
    """A store as one gateway worker has it, its invalidation subscription confirmed."""
    import asyncio

    store = RedisSessions("redis://127.0.0.1:6379/0", prefix, 60)
    await store.start()
    for _ in range(200):
        if store.cache.live:
            return store
        await asyncio.sleep(0.01)
    raise AssertionError("the invalidation subscription never came up")


async def _eventually(check, seconds: float = 2.0) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    for _ in range(int(seconds / 0.01)):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


async def test_a_worker_serves_its_copy_until_another_changes_the_session(
        redis_prefix: str) -> None:
    """Worker A reads a session once, then answers from its copy (no Redis round trip);
    when worker B rewrites or deletes it, A's copy is dropped and A sees the change."""
    a, b = await _worker(redis_prefix), await _worker(redis_prefix)
    session = new_session("csr-carol", 30, "127.0.0.1")
    await b.save(session)
    assert await a.get(session.id) == session
    assert session.id in a.cache.entries
    await a._redis.delete(a._prefix + session.id)  # behind the store's back: no message
    assert await a.get(session.id) == session  # so the copy still answers, for MAX_AGE

    await b.save(session)
    later = touched(session, session.last_seen + 30)
    assert later is not None and await b.refresh(later)

    async def sees_refresh() -> bool:
        return await a.get(session.id) == later
    await _eventually(sees_refresh)

    await b.delete(session.id)  # the kill switch on another worker

    async def sees_delete() -> bool:
        return await a.get(session.id) is None
    await _eventually(sees_delete, 0.5)
    await a.close()
    await b.close()


async def test_copies_expire_after_max_age_even_without_a_message(redis_prefix: str,
                                                                    monkeypatch) -> None:
    """A lost invalidation (no error, no message) costs at most MAX_AGE seconds."""
    from gateway.sessions import cache as session_cache

    a = await _worker(redis_prefix)
    session = new_session("buyer-alice", 30, "127.0.0.1")
    await a.save(session)
    assert await a.get(session.id) == session
    await a._redis.delete(a._prefix + session.id)  # no message: as if it were lost
    now = time.monotonic()
    monkeypatch.setattr(session_cache.time, "monotonic", lambda: now + session_cache.MAX_AGE + 1)
    assert await a.get(session.id) is None
    await a.close()


async def test_without_the_subscription_nothing_is_cached(redis_prefix: str) -> None:
    """When the invalidation connection is cut, the copies are thrown away and every read
    goes to Redis until the subscription is confirmed again."""
    import redis.asyncio as redis

    a = await _worker(redis_prefix)
    session = new_session("buyer-alice", 30, "127.0.0.1")
    await a.save(session)
    assert await a.get(session.id) == session and a.cache.entries
    admin = redis.from_url("redis://127.0.0.1:6379/0")
    await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")

    async def dropped() -> bool:
        return not a.cache.live
    await _eventually(dropped)
    assert a.cache.entries == {}
    await admin.delete(a._prefix + session.id)
    assert await a.get(session.id) is None  # read from Redis, not from a copy

    async def back() -> bool:
        return a.cache.live
    await _eventually(back, 5.0)
    await admin.aclose()
    await a.close()


async def test_a_read_overlapping_an_invalidation_is_not_kept(redis_prefix: str) -> None:
    """A GET that was answered before a change but processed after its message would keep a
    stale copy forever; such reads are used once and not cached."""
    a = await _worker(redis_prefix)
    session = new_session("buyer-alice", 30, "127.0.0.1")
    await a._redis.set(a._prefix + session.id, session.to_json())
    changes = a.cache.changes
    a.cache.changes += 1  # an invalidation arrives while the read is in flight
    a.cache.put(session, changes)
    assert session.id not in a.cache.entries
    await a.close()


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_swap_writes_only_over_the_copy_it_read(kind: str, redis_prefix: str) -> None:
    """swap(old, new) writes only while `old` is what is stored; a newer copy is returned
    unwritten, an ended session stays ended (None)."""
    store = await _store(kind, redis_prefix)
    session = new_session("csr-carol", 30, "127.0.0.1")
    await store.save(session)
    first = dataclasses.replace(session, auth_time=1.0)
    assert await store.swap(session, first) == first
    stale = dataclasses.replace(session, auth_time=2.0)  # made from the copy before `first`
    assert await store.swap(session, stale) == first
    assert await store.get_fresh(session.id) == first
    await store.delete(session.id)
    assert await store.swap(first, stale) is None
    assert await store.get_fresh(session.id) is None
    await store.close()


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_a_stale_touch_cannot_undo_a_mode_switch(kind: str, redis_prefix: str) -> None:
    """A request that read the session before a switch to read mode and touches it after
    (parallel requests of one page) leaves the switch in place; so does a refreshed provider
    token: update() makes the change again on the newer copy."""
    store = await _store(kind, redis_prefix)
    imp = Impersonation("i1", "csr-carol", "buyer-alice", "T-1", time.time(), "/x", mode="write")
    session = new_session("csr-carol", 30, "127.0.0.1", imp)
    await store.save(session)
    read_before = await store.get(session.id)
    assert read_before is not None
    switched = await update(store, session, lambda s: dataclasses.replace(
        s, impersonation=dataclasses.replace(imp, mode="read")))
    assert switched is not None and switched.impersonation is not None
    late_touch = touched(read_before, read_before.last_seen + 30)
    assert late_touch is not None
    assert await store.swap(read_before, late_touch) == switched
    later = await update(store, read_before, lambda s: dataclasses.replace(s, auth_time=9.0))
    assert later is not None and later.auth_time == 9.0
    stored = await store.get_fresh(session.id)
    assert stored is not None and stored.impersonation is not None
    assert stored.impersonation.mode == "read" and stored.auth_time == 9.0
    await store.close()
