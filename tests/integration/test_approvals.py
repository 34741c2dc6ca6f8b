"""Four-eyes approval through the gateway: request, decide, use once, expire; audited, told."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from gateway.directory.models import ApprovalRow
from tests.support.gateway import audit_lines, change_rows, gw_of, login, set_user, whoami
from tests.support.webhook import Hook

GUARDED = "buyer-bob"  # globex: csr-carol's, not csr-dave's


async def guarded_gateway(make_gateway: Any, **changes: Any) -> TestClient:
    client = await make_gateway(**changes)
    await change_rows(client, set_user(GUARDED, tags=["approval_required"]))
    await login(client, "csr-carol")
    return client


async def start(client: TestClient, buyer: str = GUARDED, *, json: bool = False,
                reason: str = "TICKET-7") -> tuple[int, Any]:
    token = (await whoami(client))["csrf_token"]
    fields = {"buyer": buyer, "reason": reason, "csrf_token": token}
    resp = await (client.post("/_gateway/impersonate", json=fields, allow_redirects=False)
                  if json else client.post("/_gateway/impersonate", data=fields,
                                           allow_redirects=False))
    body = await resp.json() if json and resp.status == 202 else resp.headers.get("Location")
    return resp.status, body


async def stop(client: TestClient) -> None:
    token = (await whoami(client))["csrf_token"]
    resp = await client.post("/_gateway/impersonate/stop", data={"csrf_token": token},
                             allow_redirects=False)
    assert resp.status == 303


def events(client: TestClient, name: str) -> list[dict[str, Any]]:
    return [r for r in audit_lines(client) if r["event"] == name]


async def test_a_guarded_start_files_one_request(make_gateway) -> None:
    """Form: 303 to the pending page; JSON: 202 with the same pending request; audited."""
    client = await guarded_gateway(make_gateway)
    status, location = await start(client)
    assert status == 303 and location.startswith("/_gateway/impersonate/pending/")
    request_id = location.rsplit("/", 1)[1]
    status, body = await start(client, json=True)
    assert (status, body) == (202, {"status": "pending", "request": request_id})
    assert (await whoami(client))["acting_as"] is None
    filed = events(client, "approval_requested")
    assert [(r["actor"], r["user"], r["company"], r["approval_id"], r["impersonation_reason"])
            for r in filed] == [("csr-carol", GUARDED, "globex", request_id, "TICKET-7")]
    page = await client.get(location)
    assert page.status == 200 and 'data-status="pending"' in await page.text()
    lines = [r for r in audit_lines(client) if r["event"] == "request"
             and r["path"] == "/_gateway/impersonate"]
    assert {r["reason"] for r in lines} == {"approval_pending"}


async def test_unguarded_buyers_start_at_once(make_gateway) -> None:
    """A buyer the policy does not guard: today's start, no request filed."""
    client = await guarded_gateway(make_gateway)
    assert await start(client, "buyer-alice") == (303, "/")
    assert events(client, "approval_requested") == []


@pytest.mark.parametrize(("approver", "status", "reason"), [
    ("csr-carol", 403, "self_approval"),
    ("csr-dave", 403, "not_approver"),
    ("buyer-alice", 403, "policy_denied"),
], ids=["self-even-though-the-policy-allows", "csr-of-another-company", "a-buyer"])
async def test_who_may_not_approve(make_gateway, staff, approver, status, reason) -> None:
    """Self-approval is refused by the gateway, others by the policy; nothing granted."""
    client = await guarded_gateway(make_gateway)
    _, location = await start(client)
    request_id = location.rsplit("/", 1)[1]
    gw = gw_of(client)
    snapshot = gw.directory.snapshot
    carol = snapshot.user("csr-carol")
    from gateway.core.domain import Actor
    # the shipped policy would let csr-carol (assigned to globex) approve: the gateway refuses
    assert gw.policy.may_approve(Actor(carol), carol, snapshot.user(GUARDED), "TICKET-7",
                                 snapshot) is True
    person = await staff(client, approver)
    got, body = await person.decide(request_id, "approve")
    assert (got, body["error"]) == (status, reason)
    assert events(client, "approval_granted") == []
    refused = [r for r in audit_lines(client) if r["event"] == "request"
               and r["path"] == f"/_gateway/api/approvals/{request_id}/approve"]
    assert [(r["actor"], r["reason"], r["status"]) for r in refused] == [
        (approver, reason, status)]


async def test_approval_starts_once(make_gateway, staff, hook: Hook) -> None:
    """Approved: the CSR starts once; the next start files a new request; the webhook hears."""
    client = await guarded_gateway(make_gateway,
                                   impersonation={"notify_webhook": hook.url})
    _, location = await start(client)
    request_id = location.rsplit("/", 1)[1]
    ann = await staff(client, "admin-ann")
    assert [a["id"] for a in await ann.queue()] == [request_id]
    status, body = await ann.decide(request_id, "approve")
    assert (status, body["status"], body["approver"]) == (200, "approved", "admin-ann")
    assert await ann.queue() == []
    again, body = await ann.decide(request_id, "deny")
    assert (again, body["error"]) == (409, "approval_closed")
    assert await start(client) == (303, "/")
    assert (await whoami(client))["acting_as"] == GUARDED
    await stop(client)
    status, location = await start(client)
    assert status == 303 and location.rsplit("/", 1)[1] != request_id
    granted = events(client, "approval_granted")
    assert [(r["approver"], r["actor"], r["csr"], r["approval_id"]) for r in granted] == [
        ("admin-ann", "admin-ann", "csr-carol", request_id)]
    await hook.wait(4)  # requested, granted, requested again, and the end summary
    told = [m["event"] for m in hook.received]
    assert told.count("approval_requested") == 2 and "approval_granted" in told


async def test_denied_request_never_starts(make_gateway, staff) -> None:
    """Denied: audited with the approver; the pending page says so; a start asks anew."""
    client = await guarded_gateway(make_gateway)
    _, location = await start(client)
    request_id = location.rsplit("/", 1)[1]
    ann = await staff(client, "admin-ann")
    status, body = await ann.decide(request_id, "deny")
    assert (status, body["status"]) == (200, "denied")
    page = await client.get(location)
    assert 'data-status="denied"' in await page.text()
    assert [(r["approver"], r["decision"]) for r in events(client, "approval_denied")] == [
        ("admin-ann", "deny")]
    status, location = await start(client)
    assert status == 303 and "pending" in location


@pytest.mark.parametrize("decided", [False, True], ids=["pending", "approved"])
async def test_requests_and_approvals_expire(make_gateway, staff, decided) -> None:
    """Past approval_minutes a request (or an unused approval) expires, audited once."""
    client = await guarded_gateway(make_gateway)
    _, location = await start(client)
    request_id = location.rsplit("/", 1)[1]
    if decided:
        ann = await staff(client, "admin-ann")
        assert (await ann.decide(request_id, "approve"))[0] == 200
    async with gw_of(client).directory.sessions.begin() as db:
        await db.execute(update(ApprovalRow).where(ApprovalRow.id == request_id)
                         .values(expires_at=1.0))
    status, location = await start(client)
    assert status == 303 and location.rsplit("/", 1)[1] != request_id
    expired = events(client, "approval_expired")
    assert [(r["approval_id"], r["approver"]) for r in expired] == [
        (request_id, "admin-ann" if decided else None)]
    page = await client.get(f"/_gateway/impersonate/pending/{request_id}")
    assert 'data-status="expired"' in await page.text()


async def test_queue_page_decides_with_csrf(make_gateway, staff) -> None:
    """The HTML queue lists the request; a decision without the CSRF token is refused."""
    client = await guarded_gateway(make_gateway)
    _, location = await start(client)
    request_id = location.rsplit("/", 1)[1]
    ann = await staff(client, "admin-ann")
    async with ann.session.get(ann.url("/_gateway/admin/approvals")) as resp:
        assert resp.status == 200 and f'data-request="{request_id}"' in await resp.text()
    form = {"request": request_id, "decision": "approve"}
    async with ann.session.post(ann.url("/_gateway/admin/approvals"), data=form) as resp:
        assert resp.status == 403
    async with ann.session.post(ann.url("/_gateway/admin/approvals"),
                                data={**form, "csrf_token": ann.token}) as resp:
        assert resp.status == 200 and "Approved" in await resp.text()
    assert (await start(client)) == (303, "/")


async def test_pending_page_is_the_requesters_alone(make_gateway, staff) -> None:
    """Another person asking for the pending page gets 404, as for an unknown id."""
    client = await guarded_gateway(make_gateway)
    _, location = await start(client)
    dave = await staff(client, "csr-dave")
    async with dave.session.get(dave.url(location)) as resp:
        assert resp.status == 404
    assert (await client.get("/_gateway/impersonate/pending/nope")).status == 404


async def test_an_approval_is_for_the_reason_approved(make_gateway, staff) -> None:
    """A start with another reason than the approved one files a new request; the
    approved reason still starts."""
    client = await guarded_gateway(make_gateway)
    _, location = await start(client, reason="TICKET-7")
    request_id = location.rsplit("/", 1)[1]
    ann = await staff(client, "admin-ann")
    assert (await ann.decide(request_id, "approve"))[0] == 200
    status, other = await start(client, reason="something else")
    assert status == 303 and "pending" in other and request_id not in other
    assert await start(client, reason="TICKET-7") == (303, "/")
