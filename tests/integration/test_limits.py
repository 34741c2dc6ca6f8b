"""Volume limits per CSR in one gateway: alert (audit, metric, webhook) and block (refusal)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.core.settings import VolumeLimit
from tests.support.gateway import audit_lines, gw_of, impersonate, login, whoami
from tests.support.webhook import Hook


async def stop(client: TestClient) -> None:
    token = (await whoami(client))["csrf_token"]
    await client.post("/_gateway/impersonate/stop", data={"csrf_token": token},
                      allow_redirects=False)


async def cart_add(client: TestClient) -> int:
    token = (await whoami(client))["csrf_token"]
    resp = await client.post("/cart/add", data={"sku": "7", "csrf_token": token})
    return resp.status


async def limited(make_gateway: Any, *limits: VolumeLimit, **changes: Any) -> TestClient:
    imp = {"limits": limits, **changes.pop("impersonation", {})}
    client = await make_gateway(impersonation=imp, **changes)
    await login(client, "csr-carol")
    return client


def alerts(client: TestClient) -> list[dict[str, Any]]:
    return [r for r in audit_lines(client) if r["event"] == "impersonation_limit"]


async def two_buyers(client: TestClient) -> int:
    assert await impersonate(client, "buyer-alice") == 303
    await stop(client)
    return await impersonate(client, "buyer-bob")


async def two_starts(client: TestClient) -> int:
    assert await impersonate(client, "buyer-alice") == 303
    await stop(client)
    return await impersonate(client, "buyer-alice")


async def two_actions_then_start(client: TestClient) -> int:
    assert await impersonate(client, "buyer-alice") == 303
    assert await cart_add(client) == 200
    assert await cart_add(client) == 200
    await gw_of(client).limits.settle()  # type: ignore[union-attr]  (counted)
    await stop(client)
    return await impersonate(client, "buyer-alice")


CASES = [("buyers_per_hour", two_buyers, "limit_buyers_per_hour"),
         ("impersonations_per_day", two_starts, "limit_impersonations_per_day"),
         ("actions_per_hour", two_actions_then_start, "limit_actions_per_hour")]


@pytest.mark.parametrize(("name", "steps", "reason"), CASES, ids=[c[0] for c in CASES])
async def test_alert_lets_the_start_through_and_tells(make_gateway, hook: Hook,
                                                      name, steps, reason) -> None:
    """An alert limit passed: one audit line, the metric, the webhook; nothing refused."""
    client = await limited(make_gateway, VolumeLimit(name, 1, "alert"),
                           impersonation={"notify_webhook": hook.url})
    assert await steps(client) == 303
    found = alerts(client)
    assert [(r["limit"], r["limit_max"], r["limit_count"], r["mode"], r["reason"], r["csr"])
            for r in found] == [(name, 1, 2, "alert", "limit_exceeded", "csr-carol")]
    metrics = (await client.get("/_gateway/metrics")).text
    text = await metrics()
    assert f'csrgw_impersonation_limits_exceeded_total{{limit="{name}",mode="alert"}} 1.0' \
        in text
    await hook.wait(1)
    assert any(m["event"] == "impersonation_limit" and m["limit"] == name
               for m in hook.received)


@pytest.mark.parametrize(("name", "steps", "reason"), CASES, ids=[c[0] for c in CASES])
async def test_block_refuses_the_next_start(make_gateway, name, steps, reason) -> None:
    """A block limit passed: the next start is a 403 page with the reason, audited."""
    client = await limited(make_gateway, VolumeLimit(name, 1, "block"))
    assert await steps(client) == 403
    assert (await whoami(client))["acting_as"] is None
    denied = [r for r in audit_lines(client) if r["event"] == "impersonation_denied"]
    assert [(r["reason"], r["csr"]) for r in denied] == [(reason, "csr-carol")]
    token = (await whoami(client))["csrf_token"]
    page = await client.post("/_gateway/impersonate", data={
        "buyer": "buyer-bob" if name == "buyers_per_hour" else "buyer-alice",
        "reason": "again", "csrf_token": token})
    text = await page.text()
    assert page.status == 403 and reason in text and "limit" in text.lower()


async def test_a_buyer_already_counted_is_not_a_new_one(make_gateway) -> None:
    """buyers_per_hour counts distinct buyers: the same buyer again passes a block limit."""
    client = await limited(make_gateway, VolumeLimit("buyers_per_hour", 1, "block"))
    assert await two_starts(client) == 303
    await stop(client)
    assert await impersonate(client, "buyer-bob") == 403


async def test_redis_down_fails_closed_for_block_and_recovers(make_gateway,
                                                              redis_prefix) -> None:
    """Counts unreadable: a start under a block limit is a 503; with Redis back it starts."""
    import redis.asyncio as redis

    client = await limited(make_gateway, VolumeLimit("impersonations_per_day", 5, "block"),
                           sessions={"store": "redis", "redis_prefix": redis_prefix})
    counts = gw_of(client).limits.counts  # type: ignore[union-attr]
    working = counts.redis  # type: ignore[attr-defined]
    counts.redis = redis.Redis.from_url(  # type: ignore[attr-defined]
        "redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    assert await impersonate(client, "buyer-alice") == 503
    refused = [r for r in audit_lines(client) if r["event"] == "request"
               and r["path"] == "/_gateway/impersonate"]
    assert refused[-1]["reason"] == "limits_unavailable"
    await counts.redis.aclose()  # type: ignore[attr-defined]
    counts.redis = working  # type: ignore[attr-defined]
    assert await impersonate(client, "buyer-alice") == 303
