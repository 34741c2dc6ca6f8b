"""One decision, three front doors: the proxy, the forward-auth endpoint and the policy
tools give the same verdict and reason for every persona, impersonation and page of the
demo's decision tables."""

from __future__ import annotations

import itertools
from typing import Any

from gateway.config.load import load_settings
from gateway.policylab.harness import Harness
from gateway.policylab.tables import Case, load_table
from tests.support.gateway import ROOT, audit_lines, impersonate, login

TABLES = sorted((ROOT / "policies" / "tests").glob("*.yaml"))
# The shop's pages: the gateway's own pages have no forward-auth question; `unmask` and
# `ask` rows ask no request, and read-only rows are driven through both doors in
# tests/integration/test_impersonation_mode.py.
CASES = [c for path in TABLES for c in load_table(path)
         if not c.ask and not c.path.startswith("/_gateway") and c.unmask is None
         and c.mode == "write"]


async def _forward_auth(client: Any, case: Case) -> tuple[str, str]:
    resp = await client.get("/_gateway/authz", headers={
        "X-Original-Method": case.method, "X-Original-URI": case.path})
    line = audit_lines(client)[-1]
    assert (resp.status == 200) == (line["decision"] == "allow"), (resp.status, line)
    return line["decision"], line["reason"]


async def _proxied(client: Any, case: Case) -> tuple[str, str]:
    await client.request(case.method, case.path, allow_redirects=False)
    line = audit_lines(client)[-1]
    return line["decision"], line["reason"]


async def test_proxy_forward_auth_and_tools_agree(gateway) -> None:
    """Every row: the tools' verdict, the forward-auth answer and the proxy's audit line are
    the same decision with the same reason (public pages: the same on all three too)."""
    harness = Harness(load_settings(ROOT / "config" / "gateway.yaml"))
    rows = sorted(CASES, key=lambda c: (c.persona, c.acting_as or ""))
    assert len(rows) > 50
    disagree = []
    for (persona, acting), group in itertools.groupby(rows, lambda c: (c.persona,
                                                                          c.acting_as)):
        gateway.session.cookie_jar.clear()
        await login(gateway, persona)
        if acting and await impersonate(gateway, acting) != 303:
            continue  # refused at the start: no request of this pair is ever decided
        for case in group:
            offline = harness.decide(persona, acting, case.method, case.path)
            tools = (offline.decision, offline.reason)
            door = await _forward_auth(gateway, case)
            proxy = await _proxied(gateway, case)
            if not tools == door == proxy:
                disagree.append(f"{case.where} {case.label}: tools {tools}, "
                                f"forward-auth {door}, proxy {proxy}")
    assert disagree == []
