"""After the session the customer hears what a CSR did: one summary per impersonation,
retried with bounded backoff, signed, audited, whichever way the impersonation ended."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient

from gateway.core.domain import Impersonation
from gateway.runtime import impersonation
from gateway.services import notify
from gateway.services.ledger import RedisLedger
from gateway.services.notify import Notifier
from tests.support.gateway import (
    age,
    audit_lines,
    change_rows,
    gw_of,
    impersonate,
    login,
    unassign,
    whoami,
)
from tests.support.webhook import Hook


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same doubling schedule, 50 times faster."""
    monkeypatch.setattr(notify, "RETRY_DELAYS", (0.01, 0.02, 0.04, 0.08))


async def notifying(make_gateway: Any, hook: Hook, **changes: Any) -> TestClient:
    client = await make_gateway(impersonation={"notify_webhook": hook.url}, **changes)
    assert gw_of(client).notifier is not None
    return client


async def stop(client: TestClient) -> None:
    token = (await whoami(client))["csrf_token"]
    await client.post("/_gateway/impersonate/stop", data={"csrf_token": token},
                      allow_redirects=False)


def notifications(client: TestClient) -> list[dict[str, Any]]:
    return [r for r in audit_lines(client) if r["event"] == "notification"]


async def test_fails_twice_then_delivers(make_gateway, upstream, hook) -> None:
    """Two 503s, then 204: three attempts, one summary with what the CSR did, audited."""
    hook.statuses = [503, 503]
    client = await notifying(make_gateway, hook)
    await login(client, "csr-carol")
    await impersonate(client, "buyer-alice", reason="TICKET-8")
    await client.get("/cart")
    await client.post("/cart/add", data={"sku": "BC-100"})
    await client.get("/static/site.css")  # an asset: not an action
    await client.get("/account/password")  # denied: not done
    await client.get("/_gateway/whoami")  # the gateway's own page
    await client.post("/checkout", data={"po": "1"})
    await stop(client)
    await hook.wait(3)
    assert len(hook.calls) == 3
    summary = hook.received[-1]
    assert hook.received[0] == summary  # every attempt carries the same summary
    assert (summary["csr"], summary["customer"], summary["company"], summary["reason"],
            summary["ended_by"]) == ("csr-carol", "buyer-alice", "acme", "TICKET-8", "ok")
    assert summary["actions"] == 3
    assert [(a["method"], a["path"], a["page"], a["action"]) for a in
            summary["state_changing_actions"]] == [("POST", "/cart/add", "cart", "edit"),
                                                   ("POST", "/checkout", "checkout", "order")]
    assert summary["started_at"] <= summary["ended_at"]
    (line,) = notifications(client)
    assert (line["reason"], line["attempts"], line["actions"], line["csr"], line["user"]) == (
        "ok", 3, 3, "csr-carol", "buyer-alice")


async def test_summary_is_signed_and_idempotent(make_gateway, upstream, hook) -> None:
    """X-Gateway-Signature verifies with the published JWKS and covers the exact body."""
    client = await notifying(make_gateway, hook)
    await login(client, "csr-carol")
    await impersonate(client, "buyer-alice")
    await stop(client)
    await hook.wait(1)
    headers, body = hook.calls[0]
    jwks = await (await client.get("/_gateway/.well-known/jwks.json")).json()
    keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(jwks).keys}
    token = headers["X-Gateway-Signature"]
    claims = jwt.decode(token, keys[jwt.get_unverified_header(token)["kid"]].key,
                        algorithms=["EdDSA"], audience="impersonation-webhook")
    digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()
    assert claims["body_sha256"] == digest
    assert headers["Idempotency-Key"] == hook.received[0]["impersonation_id"]
    assert headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(("statuses", "attempts", "reason", "detail"), [
    ([500] * 9, 5, "notify_failed", "HTTP 500"),
    ([429, 429, 200], 3, "ok", "delivered"),
    ([400], 1, "notify_failed", "HTTP 400"),
    ([404, 200], 1, "notify_failed", "HTTP 404"),
    ([302], 1, "notify_failed", "HTTP 302"),
], ids=["gives-up-after-five", "429-retried", "400-not-retried", "404-not-retried",
        "redirect-not-followed"])
async def test_retries_are_bounded(make_gateway, upstream, hook, statuses, attempts, reason,
                                   detail) -> None:
    """5xx and 429 are retried, at most five attempts; other refusals are final."""
    hook.statuses = list(statuses)
    client = await notifying(make_gateway, hook)
    await login(client, "csr-carol")
    await impersonate(client, "buyer-alice")
    await stop(client)
    await hook.wait(attempts)
    await asyncio.sleep(0.3)
    assert len(hook.calls) == attempts
    (line,) = notifications(client)
    assert (line["reason"], line["attempts"], line["detail"]) == (reason, attempts, detail)


async def test_unreachable_webhook_is_retried_then_audited(make_gateway, upstream) -> None:
    """Nobody listening: five attempts, then `notify_failed`; the CSR never waits for it."""
    client = await make_gateway(impersonation={"notify_webhook": "http://127.0.0.1:9/hook"})
    await login(client, "csr-carol")
    await impersonate(client, "buyer-alice")
    await stop(client)
    for _ in range(100):
        if notifications(client):
            break
        await asyncio.sleep(0.05)
    (line,) = notifications(client)
    assert (line["reason"], line["attempts"]) == ("notify_failed", 5)
    assert line["detail"] == "ClientConnectorError"


async def by_stop(client: TestClient) -> None:
    await stop(client)


async def by_revocation(client: TestClient) -> None:
    await change_rows(client, unassign("csr-carol", "acme"))
    assert (await client.get("/cart")).status == 403


async def by_expiry(client: TestClient) -> None:
    await age(client, started=3601)
    assert (await client.get("/cart")).status == 403


async def by_sweeper(client: TestClient) -> None:
    await age(client, idle=61 * 60)
    assert await impersonation.sweep(gw_of(client)) == 1


async def by_kill_switch(client: TestClient) -> None:
    from gateway.runtime.context import RequestContext

    gw = gw_of(client)
    (session,) = await gw.sessions.all()
    await impersonation.end(gw, RequestContext(method="DELETE", client_ip="127.0.0.1"),
                            session, event="impersonation_end", reason="kill_switch")


@pytest.mark.parametrize(("ending", "ended_by"), [
    (by_stop, "ok"), (by_revocation, "not_assigned"), (by_expiry, "impersonation_expired"),
    (by_sweeper, "session_expired"), (by_kill_switch, "kill_switch"),
], ids=["stop", "revocation", "expiry", "sweeper", "kill-switch"])
async def test_every_way_of_ending_notifies_once(make_gateway, upstream, hook, ending,
                                                 ended_by) -> None:
    """Stop, revocation, expiry, the sweeper and the kill switch each send one summary."""
    client = await notifying(make_gateway, hook)
    await login(client, "csr-carol")
    await impersonate(client, "buyer-alice")
    await client.get("/cart")
    await ending(client)
    await hook.wait(1)
    await impersonation.sweep(gw_of(client))  # a later sweep finds nothing more to say
    await asyncio.sleep(0.2)
    (summary,) = hook.received
    assert (summary["ended_by"], summary["actions"]) == (ended_by, 1)


async def test_shutdown_mid_delivery_is_audited(hook) -> None:
    """A delivery cut short by shutdown is audited as failed, not lost silently."""
    import aiohttp

    lines: list[dict[str, Any]] = []

    class Audit:
        def emit(self, event: str, **fields: Any) -> None:
            lines.append({"event": event, **fields})

    hook.delay = 30
    notifier = Notifier(hook.url, Audit())
    imp = Impersonation("i1", "csr-carol", "buyer-alice", "T-1", 0.0)
    async with aiohttp.ClientSession() as session:
        assert await notifier.ended(imp, "acme", "ok", session) is True
        await hook.wait(1)
        (task,) = notifier.tasks
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert [(x["reason"], x["detail"]) for x in lines] == [
        ("notify_failed", "shutdown before delivery")]


async def test_replicas_share_counts_and_close_once(make_gateway, upstream, hook,
                                                   redis_prefix) -> None:
    """With Redis sessions, actions served by either replica are counted, and the end is
    written once whichever replica closes it."""
    shared = {"sessions": {"store": "redis", "redis_prefix": redis_prefix}}
    first = await notifying(make_gateway, hook, **shared)
    second = await notifying(make_gateway, hook, **shared)
    for client in (first, second):
        notifier = gw_of(client).notifier
        assert notifier is not None and isinstance(notifier.ledger, RedisLedger)
    await login(first, "csr-carol")
    await impersonate(first, "buyer-alice")
    cookie = next(c for c in first.session.cookie_jar if c.key == "csrgw_session")
    second.session.cookie_jar.update_cookies({"csrgw_session": cookie.value},
                                             response_url=second.make_url("/"))
    await first.get("/cart")
    await second.post("/cart/add", data={"sku": "BC-100"})
    await second.get("/cart")
    gw_a = gw_of(first)
    (session,) = await gw_a.sessions.all()
    assert session.impersonation is not None
    await stop(second)
    await hook.wait(1)
    assert await impersonation.record_end(gw_a, None, session.impersonation,
                                        event="impersonation_end", reason="kill_switch") \
        is False
    await asyncio.sleep(0.2)
    (summary,) = hook.received
    assert summary["actions"] == 3
    assert [a["path"] for a in summary["state_changing_actions"]] == ["/cart/add"]
