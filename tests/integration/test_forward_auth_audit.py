"""Forward-auth write-ahead: the proxy forwards on our 200, so the intent is durable first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.disk import fill, records
from tests.support.gateway import login


def on_disk(path: Path) -> list[dict[str, Any]]:
    """What the file holds now, without asking the gateway to flush (complete lines)."""
    return records(path)


async def authz(client: Any, method: str, uri: str) -> Any:
    return await client.get("/_gateway/authz", headers={
        "X-Original-URI": uri, "X-Original-Method": method, "Accept": "application/json"})


@pytest.mark.parametrize(("method", "uri", "intent"), [
    ("POST", "/cart/add", True),
    ("GET", "/cart", False),
], ids=["post-intent", "get-no-intent"])
async def test_allowed_decision_has_its_intent_on_disk_before_200(
        make_gateway, tmp_path, method, uri, intent) -> None:
    """An allowed state-changing decision is answered 200 only once its request_intent
    line is in the file; a read needs none."""
    client = await make_gateway(audit={"fsync": "always"})
    await login(client, "buyer-alice")
    resp = await authz(client, method, uri)
    assert resp.status == 200
    request_id = resp.headers["X-Request-Id"]
    intents = [r for r in on_disk(tmp_path / "audit.jsonl")
               if r["event"] == "request_intent" and r["request_id"] == request_id]
    assert len(intents) == (1 if intent else 0)
    if intent:
        assert intents[0]["user"] == "buyer-alice" and intents[0]["method"] == "POST"


async def test_decision_with_the_sink_down_is_503(make_gateway, tmp_path,
                                                  small_disk) -> None:
    """With the audit disk full an allowed POST decision is 503 audit_unavailable, never
    a 200 the proxy would forward (nor a 403 blaming the user)."""
    # the in-process gateway's audit path is fixed in tmp_path: point it at the small disk
    (tmp_path / "audit.jsonl").symlink_to(small_disk / "audit.jsonl")
    client = await make_gateway(audit={"fsync": "always"})
    await login(client, "buyer-alice")
    assert (await authz(client, "POST", "/cart/add")).status == 200
    fill(small_disk)
    statuses, granted = [], []
    for _ in range(40):
        resp = await authz(client, "POST", "/cart/add")
        statuses.append(resp.status)
        if resp.status == 200:  # the file's last page may still hold a few lines
            granted.append(resp.headers["X-Request-Id"])
        else:
            assert (await resp.json())["error"] == "audit_unavailable"
    first = statuses.index(503)
    assert set(statuses[first:]) == {503}, statuses
    intents = {r["request_id"] for r in on_disk(small_disk / "audit.jsonl")
               if r["event"] == "request_intent"}
    assert set(granted) <= intents
